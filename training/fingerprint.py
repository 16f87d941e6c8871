"""Content fingerprints recorded in adapter manifests: which base weights and which data made an adapter."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

CHUNK_BYTES = 1 << 20


def files_sha256(paths: Iterable[Path]) -> str:
    """One SHA-256 over the contents of `paths`, in the order given (each file's length is mixed in too)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f"{path.stat().st_size}\n".encode())
        with path.open("rb") as handle:
            while block := handle.read(CHUNK_BYTES):
                digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """The plain SHA-256 of one file (what `sha256sum` prints), for per-file manifests."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(model_dir: Path) -> str:
    """The fingerprint of a model directory's `*.safetensors` files, sorted by name.

    An adapter only makes sense on the exact weights it was trained against; serving can compare this
    with the base model it has loaded.
    """
    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no .safetensors files in {model_dir}")
    return files_sha256(files)
