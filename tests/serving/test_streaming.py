"""The stream relay's pure part: what the client gets for each upstream chunk."""

from __future__ import annotations

import json

from core.settings import RouteConfig
from serving.chat import NoMetrics, PreparedChat
from serving.routing import build_routes
from serving.streaming import client_event
from tests.serving.fakes import BASE

ROUTE = build_routes({"base": RouteConfig()}, BASE, {})["base"]


class Counted(NoMetrics):
    def __init__(self) -> None:
        self.counted: list[tuple[int, int]] = []

    def tokens(self, route: str, prompt: int, completion: int) -> None:
        self.counted.append((prompt, completion))


def chunk(**fields):  # type: ignore[no-untyped-def]
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": BASE, **fields}


def decoded(event: str | None):  # type: ignore[no-untyped-def]
    assert event is not None
    return json.loads(event.removeprefix("data: "))


def test_chunks_are_renamed_and_the_finish_chunk_carries_the_extensions():
    prepared = PreparedChat(ROUTE, {}, [{"index": 1}], {"route": "base"})
    middle = decoded(
        client_event(prepared, chunk(choices=[{"index": 0, "delta": {"content": "a"}}]), NoMetrics())
    )
    assert middle["model"] == "base" and "lorag" not in middle
    last = decoded(
        client_event(
            prepared, chunk(choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]), NoMetrics()
        )
    )
    assert last["lorag"] == {"route": "base"} and last["citations"] == [{"index": 1}]


def test_the_usage_chunk_is_counted_and_passed_on_only_when_asked():
    usage = chunk(choices=[], usage={"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7})
    metrics = Counted()
    quiet = PreparedChat(ROUTE, {}, client_wants_usage=False)
    assert client_event(quiet, dict(usage), metrics) is None and metrics.counted == [(5, 2)]
    asked = PreparedChat(ROUTE, {}, client_wants_usage=True)
    assert decoded(client_event(asked, dict(usage), metrics))["usage"]["total_tokens"] == 7
