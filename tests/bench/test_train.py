"""`lorag bench train`: the table's shape, and a quick run through the CLI."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from bench.train import SYSTEMS, format_table
from cli import app


def test_the_table_has_one_line_per_model_and_system():
    rows = [
        {"model": "tiny", "system": s, "steps": 4, "tokens_per_s": 100.0 * (i + 1), "speedup": 1.0 + i,
         "peak_rss_mb": 900.0, "final_loss": 10.5,
         **({"eval_packed": 2.0, "eval_padded": 2.0} if i < 2 else {})}
        for i, s in enumerate(SYSTEMS)
    ]  # fmt: skip
    lines = format_table(rows)
    assert len(lines) == 2 + len(SYSTEMS)
    assert "2.0000 / 2.0000" in lines[2] and lines[-1].rstrip().endswith("-")


@pytest.mark.slow
def test_quick_bench_runs_every_system_and_packing_keeps_the_eval_loss(smol_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LORAG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LORAG_CONFIG", raising=False)
    result = CliRunner().invoke(app, ["bench", "train", "--quick"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("tiny")]
    assert len(lines) == len(SYSTEMS)
    packed, padded = (float(x) for x in lines[0].split()[-3::2])
    assert abs(packed - padded) <= 0.02 * padded
