"""The gateway's view of `auto` thresholds: route config, else the calibrated file it follows, else the
default."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from core.settings import DEFAULT_AUTO_THRESHOLD
from core.thresholds import ThresholdFile, ThresholdFileError, current_version_target, read_current
from serving.policy import Threshold

log = logging.getLogger("lorag.thresholds")


class ThresholdBook:
    """Answers "which threshold for this route?" and follows `thresholds/current` like the index."""

    def __init__(self, directory: Path | None, embedder: str | None) -> None:
        """`directory` None: calibration files are not used (defaults and route config only)."""
        self.directory = directory
        self.embedder = embedder
        self.calibrated: ThresholdFile | None = None
        self._target: str | None = None
        self.reload_if_changed()

    def threshold(self, route: str, pinned: float | None) -> Threshold:
        """`pinned` is the route config's `auto_threshold` (the operator's word wins)."""
        if pinned is not None:
            return Threshold(pinned, "route config")
        calibrated = self.calibrated
        if calibrated is not None and route in calibrated.routes:
            return Threshold(calibrated.routes[route], f"calibrated {calibrated.version}")
        return Threshold(DEFAULT_AUTO_THRESHOLD, "default")

    def reload_if_changed(self) -> bool:
        """Load the file `current` names if it changed; a bad file is logged and the old one kept."""
        if self.directory is None:
            return False
        target = current_version_target(self.directory)
        if target == self._target:
            return False
        self._target = target
        try:
            loaded = read_current(self.directory)
        except ThresholdFileError as exc:
            log.warning("ignoring thresholds %s, keeping the previous ones: %s", target, exc)
            return False
        if loaded is not None and self.embedder and loaded.embedder and loaded.embedder != self.embedder:
            log.warning(
                "ignoring thresholds %s: calibrated with embedder %s, the gateway embeds with %s",
                loaded.version,
                loaded.embedder,
                self.embedder,
            )
            return False
        self.calibrated = loaded
        if loaded is not None:
            log.info("auto thresholds %s loaded: %s", loaded.version, loaded.routes)
        return True

    async def follow(self, poll_s: float) -> None:
        """Re-check `current` every `poll_s` seconds (the background task of a serving gateway)."""
        while True:
            await asyncio.sleep(poll_s)
            self.reload_if_changed()
