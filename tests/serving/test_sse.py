"""SSE framing: compact JSON per event, `[DONE]` last."""

from __future__ import annotations

import json

from serving import sse


def test_an_event_is_one_data_line_of_compact_json():
    text = sse.event({"choices": [], "model": "base"})
    assert text == 'data: {"choices":[],"model":"base"}\n\n'
    assert json.loads(text.removeprefix("data: ")) == {"choices": [], "model": "base"}


def test_done_ends_the_stream():
    assert sse.DONE == "data: [DONE]\n\n"
