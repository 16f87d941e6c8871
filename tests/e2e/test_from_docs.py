"""Documents in, a registered adapter out, on the real stack: the session's gateway (route `base`, the
135M model on real vLLM) is the teacher for one handbook page, then `lorag retrain --docs` regenerates
(every call cached now), validates, trains a few real LoRA steps and registers the first version."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from tests.e2e.stack import LORAG, REPORT, lorag_env
from training.demo_data import DEMO_DIR

pytestmark = pytest.mark.e2e
PAGE = "03-products-and-quality.md"  # the shortest page of the handbook


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([LORAG, *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, (
        f"lorag {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    )
    return done


def made(card: dict) -> int:  # type: ignore[type-arg]
    return sum(kind["made"] for kind in card["counts"]["teacher_calls"].values())


def test_a_handbook_page_becomes_data_and_a_trained_adapter(gateway, tmp_path):  # type: ignore[no-untyped-def]
    docs, out = tmp_path / "docs", tmp_path / "data"
    docs.mkdir()
    shutil.copy(DEMO_DIR / "handbook" / PAGE, docs / PAGE)
    env = lorag_env(tmp_path / "home", LORAG_TEACHER__URL=f"{gateway.url}/v1")
    started = time.monotonic()
    small = ["--question-samples", "1", "--targeted-spans", "1", "--paraphrase-samples", "1"]
    run(env, "train", "data", "from-docs", "--docs", str(docs), "--out", str(out), *small)
    generated = time.monotonic() - started
    card = json.loads((out / "card.json").read_text())
    assert card["teacher"]["identity"] == f"base@{gateway.url}/v1"
    assert made(card) > 0 and card["counts"]["train_examples"]["static"] > 0
    trained_on = (out / "train.jsonl").read_text()
    held_out = [json.loads(line) for line in (out / "eval.jsonl").read_text().splitlines()]
    assert held_out and not any(item["question"] in trained_on for item in held_out)

    recipe = tmp_path / "handbook.yaml"
    recipe.write_text(
        json.dumps(
            {
                "output_name": "handbook",
                "base_model": "SmolLM2-135M-Instruct",
                "data_files": [str(out / "train.jsonl")],
                "lora_r": 8,
                "lora_alpha": 16,
                "max_steps": 3,
                "batch_size": 4,
                "max_length": 256,
                "dtype": "bfloat16",
            }
        )  # fmt: skip
    )
    started = time.monotonic()
    done = run(env, "retrain", "--config", str(recipe), "--docs", str(docs))
    retrained = time.monotonic() - started
    assert made(json.loads((out / "card.json").read_text())) == 0  # same options, same chunks: all cached
    assert "registered candidate handbook@v1" in done.stdout
    version = tmp_path / "home" / "adapters" / "handbook" / "v1"
    manifest = json.loads((version / "manifest.json").read_text())
    assert (tmp_path / "home" / "adapters" / "handbook" / "current").read_text().strip() == "v1"
    assert manifest["gate_eval"]["questions"] == len((version / "gate-eval.jsonl").read_text().splitlines())
    assert (version / "adapter_model.safetensors").stat().st_size > 0
    REPORT["from-docs, one handbook page"] = (
        f"{made(card)} teacher calls in {generated:.0f} s, {card['counts']['train_examples']['static']} "
        f"examples, {len(held_out)} held out; retrain --docs (0 calls, 3 steps) {retrained:.0f} s"
    )
