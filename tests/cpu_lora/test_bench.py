"""The micro-benchmark runs and reports both op sets on the model's shapes."""

from __future__ import annotations

import torch

from cpu_lora.bench import Scenario, benchmark_ops, format_rows


def test_benchmark_reports_a_row_per_scenario_and_restores_threads() -> None:
    threads = torch.get_num_threads()
    scenarios = (Scenario("tiny mixed", (0, -1, 1, 1)), Scenario("tiny base", (-1, -1)))
    rows = benchmark_ops(scenarios, dtype=torch.float32, layers=1, repeats=1, threads=1)
    assert [row["scenario"] for row in rows] == ["tiny mixed", "tiny base"]
    assert all(row["threads"] == 1 and row["vllm_cpu_lora_ms"] > 0 < row["grouped_lora_ms"] for row in rows)
    assert all(row["fused_lora_ms"] > 0 < row["fused_speedup"] for row in rows)
    assert torch.get_num_threads() == threads
    assert "tiny mixed" in format_rows(rows).splitlines()[1]
