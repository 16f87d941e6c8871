"""The demo adapter shipped with lorag: registering it, and re-shipping a freshly trained one.

`training/demo_adapter/` holds the adapter trained by `lorag train --config training/configs/demo.yaml`
(weights stored in bf16 to keep the artifact small), its manifest and its loss curve. `lorag demo prepare`
registers it as the `demo` adapter so a fresh install serves it without training first.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from core.models import resolve_model
from training.fingerprint import files_sha256, weights_sha256
from training.registry import MANIFEST, RESERVED_FIELDS, AdapterRegistry, AdapterVersion

DEMO_ADAPTER_DIR = Path(__file__).parent / "demo_adapter"
DEMO_NAME = "demo"
WEIGHTS = "adapter_model.safetensors"
SHIPPED_FILES = ("adapter_config.json", WEIGHTS, MANIFEST, "loss_curve.png")
log = logging.getLogger("lorag.demo_adapter")


def register_demo_adapter(
    registry_root: Path, cache_dir: Path, source: Path = DEMO_ADAPTER_DIR
) -> AdapterVersion:
    """Register the shipped adapter as `demo` unless the registry already has it; return the current version.

    Idempotent: the shipped weights are recognised by the hash the registry records of them
    (`adapter_sha256`). A version the user trained and promoted is left current.
    """
    registry = AdapterRegistry(registry_root)
    digest = files_sha256([source / WEIGHTS])
    shipped = next(
        (
            registry.get(DEMO_NAME, v)
            for v in registry.versions(DEMO_NAME)
            if registry.get(DEMO_NAME, v).manifest.get("adapter_sha256") == digest
        ),
        None,
    )
    if shipped is None:
        provenance = json.loads((source / MANIFEST).read_text())
        fields = {k: v for k, v in provenance.items() if k not in RESERVED_FIELDS}
        fields.update(shipped_version=provenance.get("version"), parent=None)
        # A fresh install has nothing to gate against: the shipped adapter is served straight away.
        make_current = registry.current(DEMO_NAME) is None
        shipped = registry.register(DEMO_NAME, source, fields, make_current=make_current)
        check_base_weights(shipped, cache_dir)
    current = registry.current(DEMO_NAME)
    return current if current is not None else registry.promote(DEMO_NAME, shipped.version)


def check_base_weights(adapter: AdapterVersion, cache_dir: Path) -> None:
    """Warn when the local base model's weights differ from those the adapter was trained on."""
    expected = adapter.manifest.get("base_weights_sha256")
    base = Path(resolve_model(str(adapter.manifest.get("base_model", "")), cache_dir))
    if expected and base.is_dir() and weights_sha256(base) != expected:
        log.warning(
            "%s was trained on other weights of %s than the ones in %s: answers may differ",
            adapter.served_name,
            adapter.manifest["base_model"],
            base,
        )


def ship(version_dir: Path, target: Path = DEMO_ADAPTER_DIR) -> None:
    """Copy a trained version into the shipped artifact, with its weights cast to bf16."""
    import torch
    from safetensors.torch import load_file, save_file

    target.mkdir(parents=True, exist_ok=True)
    for name in SHIPPED_FILES:
        if name != WEIGHTS and (version_dir / name).exists():
            shutil.copy2(version_dir / name, target / name)
    tensors = load_file(version_dir / WEIGHTS)
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in tensors.items()}, target / WEIGHTS)


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m training.demo_adapter REGISTRY_VERSION_DIR`: re-ship a trained demo adapter."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("version_dir", type=Path, help="e.g. .lorag/adapters/demo/v2")
    ship(parser.parse_args(argv).version_dir)


if __name__ == "__main__":
    main()
