"""`lorag bench serve --quick` end to end: its own demo home, a real vLLM and gateway, every target loaded."""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from bench.serve import DIRECT, GATEWAY, LORA, RAG
from cli import app
from tests.e2e.stack import REPORT

pytestmark = pytest.mark.e2e

PORTS = "18100-18199"
"""Any free band works; a fixed one keeps the bench's servers apart from other tests' on a shared machine."""


def test_quick_bench_serve_prints_one_table_and_writes_json_and_plot(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LORAG_HOME", str(tmp_path / "unused-home"))  # the bench prepares its own home
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)  # no stray lorag.yaml
    out = tmp_path / "bench.json"
    started = time.monotonic()
    result = CliRunner().invoke(
        app, ["bench", "serve", "--quick", "--out", str(out), "--port-range", PORTS], catch_exceptions=False
    )
    REPORT["bench serve --quick"] = f"{time.monotonic() - started:.0f} s"
    assert result.exit_code == 0, result.output
    table = result.output[result.output.index("\ntarget ") :]
    for label in (DIRECT, GATEWAY, RAG, LORA):
        assert label in table
    assert "(b)/(a) output tok/s" in table and "(c)-(b) TTFT p50" in table and "(d)/(b) output tok/s" in table
    assert "gateway CPU ms/req" in table

    results = json.loads(out.read_text())
    for label in (DIRECT, GATEWAY, RAG, LORA):
        (run,) = results["passes"][label]
        assert run["errors"] == 0 and run["requests"] == 2
        assert run["output_tok_s"] > 0 and run["ttft_p50_ms"] > 0
        # ignore_eos reached vLLM through the gateway: every request produced exactly max_tokens tokens.
        assert run["output_tok_s"] * run["wall_s"] == pytest.approx(2 * 8)
    assert results["retrieval"]["p50_ms"] > 0
    assert "gateway_cpu_ms" not in results["passes"][DIRECT][0]
    assert all(results["passes"][label][0]["gateway_cpu_ms"] > 0 for label in (GATEWAY, RAG, LORA))
    assert out.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
