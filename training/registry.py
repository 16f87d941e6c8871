"""The adapter registry: immutable, numbered adapter versions and a `current` alias moved by promotion.

Layout under the registry root:

    <name>/v1/             adapter files + manifest.json, read-only, never modified once registered
    <name>/v2/
    <name>/current         one line, the served version (e.g. `v2`), replaced with os.replace
    <name>/history.jsonl   one line per promotion or rollback (see `training.history`)

Registering adds a *candidate*: the alias stays where it is until `promote` moves it (after the gate in
`eval.promotion`). Serving reads `current` and serves the adapter under `<name>@<version>`, so a new
version can be loaded next to the old one and requests move over in one step.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.types import ModelRef
from training import history
from training.compatibility import Requirements, check_compatible
from training.fingerprint import file_sha256, files_sha256

MANIFEST = "manifest.json"
CURRENT = "current"
VERSION_PATTERN = re.compile(r"v([1-9][0-9]*)")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
"""Adapter names become directory names and part of `name@version`, so no `/`, `@` or leading dot."""
RESERVED_FIELDS = ("name", "version", "created_at", "adapter_sha256", "files")
"""Manifest fields the registry sets: identity, and the hashes that `verify` checks the files against."""
log = logging.getLogger(__name__)

__all__ = [
    "AdapterNotFoundError",
    "AdapterRegistry",
    "AdapterVersion",
    "StaleGateError",
    "TamperedAdapterError",
    "check_compatible",
]


class AdapterNotFoundError(LookupError):
    """The registry has no such adapter or version."""


class StaleGateError(RuntimeError):
    """`current` changed between the gate's comparison and the promotion it allowed."""


class TamperedAdapterError(RuntimeError):
    """A registered version's files no longer match the hashes recorded when it was registered."""


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
        return str(ModelRef(self.name, self.version))


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
        """Point `current` at an existing version; readers see the old or the new value, never a mix.

        The bare alias switch, with no gate, check or history entry: use `promote` or `rollback`.
        """
        adapter = self.get(name, version)
        _write_atomically(self.root / name / CURRENT, f"{version}\n")
        return adapter

    def register(
        self,
        name: str,
        adapter_dir: Path,
        manifest_fields: dict[str, Any],
        *,
        requirements: Requirements | None = None,
        make_current: bool = False,
    ) -> AdapterVersion:
        """Copy `adapter_dir` in as the next version of `name`, with a manifest; a candidate unless
        `make_current` (which promotes it without a gate: for the shipped demo adapter).

        The adapter must be servable (see `training.compatibility`; `requirements` adds the server's rank
        limit and base weights). The copy is assembled in a temporary directory and renamed into place, so
        a version directory is either complete or absent. Renaming onto an existing (non-empty) version
        fails, so two concurrent registrations cannot overwrite each other: the loser takes the next number.
        """
        if not NAME_PATTERN.fullmatch(name):
            raise ValueError(f"invalid adapter name {name!r}: use letters, digits, '.', '_' or '-'")
        clash = [key for key in RESERVED_FIELDS if key in manifest_fields]
        if clash:
            raise ValueError(f"manifest fields {clash} are set by the registry")
        required = requirements or Requirements()
        check_compatible(
            adapter_dir,
            manifest_fields,
            base_model_hash=required.base_model_hash,
            max_lora_rank=required.max_lora_rank,
        )
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder, prefix=".register-") as tmp:
            staged = Path(tmp) / "adapter"
            shutil.copytree(adapter_dir, staged)
            (staged / MANIFEST).unlink(missing_ok=True)  # a copied manifest (the shipped one) is replaced
            hashes = {**manifest_fields, **_fingerprints(staged)}
            adapter = self._place(name, staged, hashes)
        _make_read_only(adapter.path)
        if make_current:
            self.promote(name, adapter.version, reason="registered as current")
        return adapter

    def _place(self, name: str, staged: Path, fields: dict[str, Any]) -> AdapterVersion:
        folder = self.root / name
        for _attempt in range(100):
            version = f"v{self._next_number(name)}"
            manifest = {"name": name, "version": version, **fields, "created_at": history.now()}
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

    def verify(self, name: str, version: str) -> AdapterVersion:
        """The version, if its files are exactly those registered; `TamperedAdapterError` otherwise."""
        adapter = self.get(name, version)
        recorded = adapter.manifest.get("files")
        if recorded is None:
            # Registered before file hashes were recorded: nothing to compare with.
            log.warning("%s records no file hashes; its integrity cannot be checked", adapter.served_name)
            return adapter
        actual = _fingerprints(adapter.path)["files"]
        changed = sorted(p for p in recorded.keys() & actual.keys() if recorded[p] != actual[p])
        missing, added = sorted(recorded.keys() - actual.keys()), sorted(actual.keys() - recorded.keys())
        if changed or missing or added:
            raise TamperedAdapterError(
                f"{adapter.served_name} was modified after registration "
                f"(changed: {changed}, missing: {missing}, added: {added}); register a new version instead"
            )
        return adapter

    def check(self, name: str, version: str, requirements: Requirements) -> AdapterVersion:
        """The version, if it is intact and the server described by `requirements` can load it."""
        adapter = self.verify(name, version)
        check_compatible(
            adapter.path,
            adapter.manifest,
            base_model_hash=requirements.base_model_hash,
            max_lora_rank=requirements.max_lora_rank,
        )
        return adapter

    def promote(
        self,
        name: str,
        version: str,
        *,
        forced: bool = False,
        gate: str | None = None,
        reason: str | None = None,
        replacing: str | None = None,
    ) -> AdapterVersion:
        """Make an intact version current and record it (with the gate's verdict) in the history.

        `replacing`: the version the gate compared with; if another promotion moved `current` meanwhile,
        the verdict is stale and `StaleGateError` is raised. Promoting the current version is a no-op.
        """
        adapter = self.verify(name, version)
        with history.locked(self.root / name):
            previous = self.current(name)
            if replacing is not None and (previous is None or previous.version != replacing):
                now = previous.served_name if previous else "nothing"
                raise StaleGateError(
                    f"{name}@{replacing} was gated against, but {now} is current now: promote again"
                )
            if previous is not None and previous.version == version:
                return adapter
            # Alias first: if the history write is lost, `history.stack` still puts the alias on top.
            self.set_current(name, version)
            entry = history.entry(
                "promote", version, previous.version if previous else None, forced=forced, gate=gate
            )
            history.append(self.root / name, {**entry, **({"reason": reason} if reason else {})})
        return adapter

    def rollback(self, name: str) -> AdapterVersion:
        """Move `current` back to the version promoted before it (one step; again goes one further)."""
        with history.locked(self.root / name):
            current = self.current(name)
            if current is None:
                raise AdapterNotFoundError(f"adapter {name!r} has no current version to roll back from")
            stack = history.stack(self.history(name), current.version)
            if len(stack) < 2:
                raise history.NothingToRollBackError(
                    f"{current.served_name} is the first promoted version: nothing to roll back to"
                )
            target = self.verify(name, stack[-2])
            self.set_current(name, target.version)
            history.append(self.root / name, history.entry("rollback", target.version, current.version))
        return target

    def history(self, name: str) -> list[dict[str, Any]]:
        """Every promotion and rollback of `name`, oldest first."""
        return history.read(self.root / name)

    def show(self, name: str, version: str | None = None) -> dict[str, Any]:
        """A version's manifest, where it is, whether it is current and intact, and its history entries.

        Without `version`: the current version, else the newest one.
        """
        if version is None:
            current = self.current(name)
            versions = self.versions(name)
            if current is None and not versions:
                raise AdapterNotFoundError(f"no adapter {name!r} in the registry")
            version = current.version if current else versions[-1]
        adapter = self.get(name, version)
        try:
            self.verify(name, version)
            intact: bool | str = True
        except TamperedAdapterError as exc:
            intact = str(exc)
        current = self.current(name)
        return {
            "served_name": adapter.served_name,
            "path": str(adapter.path),
            "current": current is not None and current.version == version,
            "intact": intact,
            "manifest": adapter.manifest,
            "history": [e for e in self.history(name) if version in (e.get("version"), e.get("previous"))],
        }


def _fingerprints(folder: Path) -> dict[str, Any]:
    """The registry-owned hashes: the weights (`adapter_sha256`, how the demo adapter is recognised) and
    every file but the manifest (`files`, what `verify` compares)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.relative_to(folder) != Path(MANIFEST))
    weights = sorted(p for p in files if p.suffix == ".safetensors")
    return {
        "adapter_sha256": files_sha256(weights) if weights else None,
        "files": {p.relative_to(folder).as_posix(): file_sha256(p) for p in files},
    }


def _make_read_only(folder: Path) -> None:
    """Files become read-only, so a slip (an editor, a script) cannot change a registered version.

    Directories stay writable so that `rm -r` of a home still works; an added or replaced file is caught
    by `verify`, which is what guards promotion.
    """
    read_only = ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    for path in [*folder.rglob("*")]:
        if path.is_file():
            path.chmod(path.stat().st_mode & read_only)


def _version_number(version: str) -> int:
    return int(version[1:])


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
