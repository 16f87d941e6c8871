"""Property test: requests generated from OpenAI's published spec never make the gateway fail with a 5xx.

schemathesis generates `createChatCompletion` bodies that fit OpenAI's schema; each is pinned to the
`base` route with a tiny token budget (the CPU makes ~20 tokens/s) and sent to the session gateway. Fields
the real API has but the gateway or vLLM refuse (streaming aside, which is turned off) must come back as
4xx; a 200 must conform to OpenAI's response schema and content type.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack import REPORT, Gateway

pytestmark = pytest.mark.e2e

SPEC = Path(__file__).resolve().parents[3] / "shared" / "data" / "openai-openapi.yaml"
"""`../shared/data/openai-openapi.yaml` from the repository root (a checkout beside the shared folder)."""
EXAMPLES = 100
MAX_TOKENS = 16
MAX_CHOICES = 2


def pinned(body: Any) -> Any:
    """A generated body made cheap and answerable: our route, few tokens, few choices, no streaming."""
    if not isinstance(body, dict):
        return body
    body = {**body, "model": "base", "stream": False}
    body.pop("stream_options", None)  # only allowed with `stream: true`
    for limit in ("max_tokens", "max_completion_tokens"):
        if isinstance(body.get(limit), int):
            body[limit] = max(1, min(body[limit], MAX_TOKENS))
    if body.get("max_tokens") is None and body.get("max_completion_tokens") is None:
        body["max_tokens"] = MAX_TOKENS
    if isinstance(body.get("n"), int):
        body["n"] = max(1, min(body["n"], MAX_CHOICES))
    return body


def test_generated_chat_requests_never_get_a_server_error(gateway: Gateway) -> None:
    if not SPEC.exists():
        pytest.skip(f"OpenAI's spec is not at {SPEC}")
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

    operation = schemathesis.openapi.from_path(SPEC).include(operation_id="createChatCompletion")
    strategy = operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE)
    statuses: dict[int, int] = {}

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case: Any) -> None:
        case.body = pinned(case.body)
        response = case.call_and_validate(
            base_url=f"{gateway.url}/v1",
            checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
            timeout=120,
        )
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    started = time.monotonic()
    check()
    summary = ", ".join(f"{code}: {count}" for code, count in sorted(statuses.items()))
    REPORT["schemathesis createChatCompletion"] = f"{time.monotonic() - started:.0f} s ({summary})"
    assert statuses.get(200), f"no generated request succeeded: {summary}"
