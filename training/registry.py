"""The adapter registry: immutable, numbered adapter versions and an atomically switched `current` alias.

Layout under the registry root:

    <name>/v1/            adapter files + manifest.json (never modified once registered)
    <name>/v2/
    <name>/current        one line, the served version (e.g. `v2`), replaced with os.replace

Serving reads `current` and serves the adapter under `<name>@<version>`, so a new version can be loaded
next to the old one and requests move over in one step; rolling back is `set_current` to an old version.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
CURRENT = "current"
VERSION_PATTERN = re.compile(r"v([1-9][0-9]*)")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
"""Adapter names become directory names and part of `name@version`, so no `/`, `@` or leading dot."""
RESERVED_FIELDS = ("name", "version", "created_at")


class AdapterNotFoundError(LookupError):
    """The registry has no such adapter or version."""


@dataclass(frozen=True)
class AdapterVersion:
    """One registered adapter version."""

    name: str
    version: str
    """`v1`, `v2`, ..."""
    path: Path
    """The directory holding the adapter files (what vLLM's `--lora-modules` points at)."""
    manifest: dict[str, Any]

    @property
    def served_name(self) -> str:
        """The model name vLLM serves this version under."""
        return f"{self.name}@{self.version}"


class AdapterRegistry:
    """Adapter versions stored on disk under `root` (see the module docstring for the layout)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def names(self) -> list[str]:
        """Adapters with at least one version, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if NAME_PATTERN.fullmatch(p.name) and self.versions(p.name)
        )

    def versions(self, name: str) -> list[str]:
        """The versions of `name`, oldest first (`v2` before `v10`)."""
        folder = self.root / name
        if not folder.is_dir():
            return []
        found = [
            p.name for p in folder.iterdir() if VERSION_PATTERN.fullmatch(p.name) and (p / MANIFEST).is_file()
        ]
        return sorted(found, key=_version_number)

    def get(self, name: str, version: str) -> AdapterVersion:
        """One version; `AdapterNotFoundError` if it is not registered."""
        path = self.root / name / version
        valid = NAME_PATTERN.fullmatch(name) and VERSION_PATTERN.fullmatch(version)
        if not valid or not (path / MANIFEST).is_file():
            raise AdapterNotFoundError(f"adapter {name!r} has no version {version!r}")
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        return AdapterVersion(name, version, path, manifest)

    def current(self, name: str) -> AdapterVersion | None:
        """The version `current` points at, or None when the adapter has never been made current."""
        alias = self.root / name / CURRENT
        if not alias.is_file():
            return None
        return self.get(name, alias.read_text(encoding="utf-8").strip())

    def set_current(self, name: str, version: str) -> AdapterVersion:
        """Point `current` at an existing version; readers see the old or the new value, never a mix."""
        adapter = self.get(name, version)
        _write_atomically(self.root / name / CURRENT, f"{version}\n")
        return adapter

    def register(self, name: str, adapter_dir: Path, manifest_fields: dict[str, Any]) -> AdapterVersion:
        """Copy `adapter_dir` in as the next version of `name`, with a manifest; `current` is not changed.

        The copy is assembled in a temporary directory and renamed into place, so a version directory is
        either complete or absent. Renaming onto an existing (non-empty) version fails, so two concurrent
        registrations cannot overwrite each other: the loser retries with the next number.
        """
        if not NAME_PATTERN.fullmatch(name):
            raise ValueError(f"invalid adapter name {name!r}: use letters, digits, '.', '_' or '-'")
        clash = [key for key in RESERVED_FIELDS if key in manifest_fields]
        if clash:
            raise ValueError(f"manifest fields {clash} are set by the registry")
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder, prefix=".register-") as tmp:
            staged = Path(tmp) / "adapter"
            shutil.copytree(adapter_dir, staged)
            for _attempt in range(100):
                version = f"v{self._next_number(name)}"
                manifest = {"name": name, "version": version, **manifest_fields, "created_at": _now()}
                (staged / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
                try:
                    staged.rename(folder / version)
                except OSError:
                    continue  # another process took this number first
                return AdapterVersion(name, version, folder / version, manifest)
        raise RuntimeError(f"could not allocate a new version of {name!r}")

    def _next_number(self, name: str) -> int:
        # Any vN directory counts, even one without a manifest, so numbers are never reused.
        folder = self.root / name
        numbers = [_version_number(p.name) for p in folder.iterdir() if VERSION_PATTERN.fullmatch(p.name)]
        return max(numbers, default=0) + 1


def _version_number(version: str) -> int:
    return int(version[1:])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_atomically(path: Path, text: str) -> None:
    """Write to a temporary file in the same directory, then os.replace it over `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
