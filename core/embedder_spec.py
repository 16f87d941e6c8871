"""Embedder references: which model, run by which backend, with which weights.

A reference is `<model>[@<backend>[-int8]]`: `all-MiniLM-L6-v2`, `all-MiniLM-L6-v2@onnx-int8`,
`/models/my-embedder@openvino`. The backends:

- `torch`: sentence-transformers on torch, as the model was trained (CUDA when present).
- `onnx`: ONNX Runtime on a model file exported once by `lorag models pull`.
- `openvino`: OpenVINO on the same exported model. OpenVINO computes in bf16 on CPUs that have bf16
  instructions (AVX512-BF16, AMX) and in fp32 elsewhere; both are recorded as `@openvino`.

`-int8` runs int8 weights: dynamically quantised per channel for `onnx`, weight-compressed for `openvino`.

Without a backend the reference is resolved for the machine (`auto`): torch on a CUDA GPU, `AUTO_CPU_BACKEND`
on a CPU, and torch for a hub id, which has no local directory to export into.

The resolved reference is the embedder's *name*, recorded in snapshot manifests and thresholds files: a
change of backend or weights changes the name, so the index is rebuilt. Torch's name is the bare model
reference, as before backends existed, so that torch-built snapshots stay valid.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Backend = Literal["torch", "onnx", "openvino"]
Quantization = Literal["none", "int8"]
BACKENDS: tuple[Backend, ...] = ("torch", "onnx", "openvino")

AUTO_CPU_BACKEND: Backend = "openvino"
"""The default on a CPU. On PubMedQA dev chunks (2-core AMD EPYC with AVX512-BF16, a machine shared with
other jobs, so only same-run ratios count) it embedded 2.2x, 2.4x and 3.3x as many chunks per second as
torch in the three runs with unpinned threads, one query in a quarter of the time or less, with HotpotQA-dev
recall@10 0.840 against torch's 0.838 and vectors at cosine 0.99998 to torch's. `onnx-int8` ran 1.75-2.3x,
`onnx` 1.1-1.25x. Reproduce with `lorag bench retrieval` (bench/embedding.py)."""


class EmbedderRefError(ValueError):
    """An embedder reference names an unknown backend or an impossible combination."""


@dataclass(frozen=True)
class EmbedderSpec:
    """A parsed embedder reference; `backend` None means "resolve for this machine"."""

    model: str
    """The model: a packaged name, a local directory or a hub id."""
    backend: Backend | None = None
    quantization: Quantization = "none"

    @property
    def runtime(self) -> Backend:
        """The backend of a resolved spec (`resolve_spec`); a `ValueError` before."""
        if self.backend is None:
            raise ValueError(f"embedder {self.model!r} has no backend yet: resolve it first")
        return self.backend

    @property
    def name(self) -> str:
        """The embedder's id in manifests (only for a resolved spec): torch bare, others with a suffix."""
        if self.runtime == "torch":
            return self.model
        return f"{self.model}@{self.runtime}{'-int8' if self.quantization == 'int8' else ''}"


def parse_embedder_ref(ref: str) -> EmbedderSpec:
    """Split `<model>[@<backend>[-int8]]`; an `@` followed by anything else is part of the model name."""
    model, at, suffix = ref.rpartition("@")
    if not at or "/" in suffix:  # `/data/me@host/model`: the `@` belongs to a directory name
        return EmbedderSpec(ref)
    backend, dash, quant = suffix.partition("-")
    if backend not in BACKENDS:
        raise EmbedderRefError(
            f"embedder {ref!r}: unknown backend {backend!r} after '@' (use one of {', '.join(BACKENDS)}, "
            "optionally with -int8, e.g. all-MiniLM-L6-v2@onnx-int8)"
        )
    if dash and quant != "int8":
        raise EmbedderRefError(f"embedder {ref!r}: unknown quantisation {quant!r} (only -int8 exists)")
    if quant and backend == "torch":
        raise EmbedderRefError(f"embedder {ref!r}: int8 needs the onnx or openvino backend")
    if not model:
        raise EmbedderRefError(f"embedder {ref!r} names no model before '@'")
    return EmbedderSpec(model, backend, "int8" if quant else "none")  # type: ignore[arg-type]


def resolve_spec(spec: EmbedderSpec, *, local: bool, cuda: bool | None = None) -> EmbedderSpec:
    """`spec` with its backend chosen: as given, else torch on CUDA or for a non-`local` (hub) model, else
    `AUTO_CPU_BACKEND`. `cuda` None asks `cuda_available()`."""
    if spec.backend is not None:
        return spec
    on_cuda = cuda_available() if cuda is None else cuda
    return EmbedderSpec(spec.model, "torch" if on_cuda or not local else AUTO_CPU_BACKEND)


@functools.cache
def cuda_available() -> bool:
    """Whether torch can use a GPU. On Linux without a GPU device node it answers without importing torch,
    so that naming an embedder (which every index command does) stays cheap."""
    if sys.platform.startswith("linux") and not _gpu_device_nodes():
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _gpu_device_nodes() -> bool:
    dev = Path("/dev")
    return any(dev.glob("nvidia[0-9]*")) or (dev / "kfd").exists()
