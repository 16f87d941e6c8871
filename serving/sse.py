"""Server-sent events as OpenAI streams chat completions: one `data:` line per JSON chunk, then `[DONE]`
(pure functions)."""

from __future__ import annotations

import json
from typing import Any

DONE = "data: [DONE]\n\n"
"""The last event of every stream, errors included: OpenAI clients stop reading at it."""


def event(payload: dict[str, Any]) -> str:
    """One event carrying `payload` as compact JSON."""
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"
