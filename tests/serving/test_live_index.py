"""Hot swap: the searcher follows `current` and never drops a request on the old snapshot."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from core.settings import parse_duration
from core.types import Chunk, Hit
from serving.live_index import LiveSearcher, current_target


class Snap:
    def __init__(self, snapshot_id: str) -> None:
        self.snapshot_id = snapshot_id
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def search(self, query: str, k: int) -> list[Hit]:
        return [Hit(Chunk(f"{self.snapshot_id}-c", "doc.md", query), 1.0)][:k]


def point(index_dir: Path, snapshot: str) -> None:
    (index_dir / "snapshots" / snapshot).mkdir(parents=True, exist_ok=True)
    tmp = index_dir / ".current-tmp"
    os.symlink(f"snapshots/{snapshot}", tmp)
    os.replace(tmp, index_dir / "current")


def opener(index_dir: Path) -> Snap:
    return Snap(Path(os.readlink(index_dir / "current")).name)


def test_swaps_when_current_moves_and_keeps_old_for_holders(tmp_path):
    point(tmp_path, "s1")
    live = LiveSearcher(tmp_path, opener)
    held = live.current()
    assert live.reload_if_changed() is False
    point(tmp_path, "s2")
    assert live.reload_if_changed() is True
    assert live.snapshot_id == "s2" and live.current().search("q", 1)[0].chunk.chunk_id == "s2-c"
    assert held.snapshot_id == "s1" and held.search("q", 1)[0].chunk.chunk_id == "s1-c"
    # The replaced snapshot stays open for requests that hold it, and is closed after the grace period.
    assert live.close_retired() == 0 and not held.closed
    assert live.close_retired(now=time.monotonic() + live.grace_s) == 1 and held.closed


def test_a_snapshot_that_fails_to_open_leaves_the_old_one_serving(tmp_path):
    point(tmp_path, "s1")
    calls = []

    def flaky(index_dir: Path) -> Snap:
        calls.append(1)
        if len(calls) > 1:
            raise OSError("truncated index")
        return opener(index_dir)

    live = LiveSearcher(tmp_path, flaky)
    point(tmp_path, "s2")
    assert live.reload_if_changed() is False and live.snapshot_id == "s1"
    assert live.reload_if_changed() is False and len(calls) == 2  # not retried until current moves again


def test_follow_polls_in_the_background(tmp_path):
    point(tmp_path, "s1")
    live = LiveSearcher(tmp_path, opener)

    async def scenario() -> str:
        task = asyncio.create_task(live.follow(0.01))
        point(tmp_path, "s3")
        for _ in range(200):
            await asyncio.sleep(0.01)
            if live.snapshot_id == "s3":
                break
        task.cancel()
        return live.snapshot_id

    assert asyncio.run(scenario()) == "s3"


def test_current_target_without_index(tmp_path):
    assert current_target(tmp_path) is None


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400)]
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "soon", "-5m", "0"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError):
        parse_duration(text)
