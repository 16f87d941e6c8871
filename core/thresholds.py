"""Calibrated `auto` thresholds: versioned JSON files that calibration writes and gateways follow.

Layout, like index snapshots: `<home>/thresholds/<version>.json` files that are never changed once written,
and a `current` symlink naming one of them, replaced atomically. A gateway re-reads `current` every few
seconds (`snapshot_poll_s`) and uses the new thresholds for the next request.

File format (`format: lorag.thresholds/1`):

    {
      "format": "lorag.thresholds/1",
      "version": "20261126T233126Z-3f2a1b",
      "created_at": "2026-11-26T23:31:26Z",
      "embedder": "all-MiniLM-L6-v2",
      "routes": {
        "demo+rag": {"threshold": 0.47, "signal": "dense", "questions": 40, "note": "..."}
      },
      "meta": {"dataset": "eval/datasets/demo.jsonl", "split": "calibration"}
    }

`threshold` is compared with the best hit's dense cosine (`signal: dense`) or squashed BM25 score
(`signal: bm25`, `s / (s + 10)`); see `serving/policy.py`. Thresholds fitted with one embedder mean nothing
with another, so a file whose `embedder` differs from the gateway's is ignored (with a warning).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "lorag.thresholds/1"


class ThresholdFileError(ValueError):
    """A thresholds file that cannot be used."""


@dataclass(frozen=True)
class ThresholdFile:
    """One version of calibrated thresholds."""

    version: str
    embedder: str
    routes: dict[str, float]
    created_at: str = ""
    details: dict[str, dict[str, Any]] = field(default_factory=dict)


def parse_thresholds(payload: dict[str, Any]) -> ThresholdFile:
    """Validate a decoded file; raises `ThresholdFileError` naming what is wrong."""
    if payload.get("format") != FORMAT:
        raise ThresholdFileError(f"not a {FORMAT} file (format={payload.get('format')!r})")
    routes: dict[str, float] = {}
    for name, entry in (payload.get("routes") or {}).items():
        value = entry.get("threshold") if isinstance(entry, dict) else None
        if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
            raise ThresholdFileError(f"route {name!r}: threshold must be a number in [0, 1], got {value!r}")
        routes[name] = float(value)
    return ThresholdFile(
        str(payload.get("version", "")),
        str(payload.get("embedder", "")),
        routes,
        str(payload.get("created_at", "")),
        {name: dict(entry) for name, entry in (payload.get("routes") or {}).items()},
    )


def write_thresholds(
    directory: Path,
    routes: dict[str, dict[str, Any]],
    *,
    embedder: str,
    meta: dict[str, Any] | None = None,
) -> str:
    """Write a new version and point `current` at it; returns the version. `routes` maps a route name to
    at least `{"threshold": float}` (plus whatever calibration wants to record)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = time.gmtime()
    version = f"{time.strftime('%Y%m%dT%H%M%SZ', now)}-{secrets.token_hex(3)}"
    payload = {
        "format": FORMAT,
        "version": version,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", now),
        "embedder": embedder,
        "routes": routes,
        "meta": meta or {},
    }
    parse_thresholds(payload)  # never publish a file the gateway would refuse
    staged = directory / f".{version}.json.tmp"
    with staged.open("w") as handle:
        json.dump(payload, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    staged.rename(directory / f"{version}.json")
    link = directory / f".current.{version}.tmp"
    link.symlink_to(f"{version}.json")
    os.replace(link, directory / "current")
    return version


def current_version_target(directory: Path) -> str | None:
    """The file name `current` points at, or None (cheap: one readlink)."""
    try:
        return os.readlink(directory / "current")
    except OSError:
        return None


def read_current(directory: Path) -> ThresholdFile | None:
    """The current thresholds, or None when calibration never ran."""
    target = current_version_target(directory)
    if target is None:
        return None
    try:
        payload = json.loads((directory / target).read_text())
    except (OSError, ValueError) as exc:
        raise ThresholdFileError(f"{directory / target}: {exc}") from exc
    return parse_thresholds(payload)
