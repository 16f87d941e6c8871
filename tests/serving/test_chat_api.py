"""The gateway's HTTP surface against a fake vLLM: routing, retrieval, citations, streaming, errors."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient

from serving.app import GatewayOptions, GatewayParts, build_app
from tests.serving.fakes import BASE, FakeRegistry, FakeUpstream, served


def chat(client: TestClient, **body):
    body.setdefault("messages", [{"role": "user", "content": "How much is the Driftglass 3?"}])
    return client.post("/v1/chat/completions", json=body)


def test_base_route_goes_to_base_model_without_retrieval(client, upstream, searcher):
    response = chat(client, model="base")
    assert response.status_code == 200
    payload = response.json()
    assert payload["model"] == "base"
    assert payload["citations"] == []
    assert payload["lorag"] == {
        "route": "base",
        "adapter": None,
        "adapter_version": None,
        "snapshot": None,
        "policy": "never",
        "mode": "none",
        "reason": "policy never",
        "sources": 0,
        "trimmed": 0,
        "max_tokens": 512,
    }
    assert upstream.bodies[0]["model"] == BASE and upstream.bodies[0]["max_tokens"] == 512
    assert searcher.queries == []


def test_adapter_route_uses_versioned_adapter_name(client, upstream):
    chat(client, model="demo")
    assert upstream.bodies[0]["model"] == "demo@v1"


def test_rag_route_inserts_sources_after_callers_system_message(client, upstream, searcher):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": [{"type": "text", "text": "Driftglass 3 price?"}]},
    ]
    payload = chat(client, model="demo+rag", messages=messages).json()
    sent = upstream.bodies[0]["messages"]
    assert [m["role"] for m in sent] == ["system", "system", "user", "assistant", "user"]
    assert sent[0]["content"] == "Be brief."
    assert "[1] pricing.md — Tents\nThe Driftglass 3 tent costs $319." in sent[1]["content"]
    assert searcher.queries == [("Driftglass 3 price?", 3)]
    assert payload["citations"][0] == {
        "index": 1,
        "source": "pricing.md",
        "chunk_id": "c1",
        "score": 0.81,
        "snapshot": searcher.snapshot_id,
        "revision": "h1",
    }
    assert payload["lorag"]["snapshot"] == searcher.snapshot_id


def test_prompt_overrides_never_reach_vllm(client, upstream):
    chat(client, model="base", chat_template="{{ 'pwned' }}", add_special_tokens=True, top_k=3)
    assert "chat_template" not in upstream.bodies[0] and "add_special_tokens" not in upstream.bodies[0]
    assert upstream.bodies[0]["top_k"] == 3


def test_unknown_fields_are_passed_on_and_known_ones_kept(client, upstream):
    chat(client, model="base", temperature=0, max_tokens=7, top_k=5, stop=["\n"])
    body = upstream.bodies[0]
    assert (
        body["temperature"] == 0 and body["max_tokens"] == 7 and body["top_k"] == 5 and body["stop"] == ["\n"]
    )
    assert "stream" not in body or body["stream"] is False


def _events(response) -> list:
    lines = [line for line in response.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    return [json.loads(line[len("data: ") :]) for line in lines[:-1]]


def test_streaming_rewrites_model_and_puts_citations_on_final_chunk(client):
    response = chat(client, model="base+rag", stream=True)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response)
    assert all(event["model"] == "base+rag" for event in events)
    assert "citations" not in events[0]
    assert events[-1]["choices"][0]["finish_reason"] == "stop"
    assert [c["source"] for c in events[-1]["citations"]] == ["pricing.md", "stock.md"]
    text = "".join(event["choices"][0]["delta"].get("content", "") for event in events)
    assert text == "echo: How much is the Driftglass 3?"


def test_models_lists_routes_with_adapters_as_children(client):
    cards = {card["id"]: card for card in client.get("/v1/models").json()["data"]}
    assert set(cards) == {"base", "base+rag", "demo", "demo+rag"}
    assert cards["base"]["parent"] is None and cards["base"]["root"] == BASE
    assert cards["demo"]["parent"] == BASE and cards["demo"]["root"] == "demo@v1"
    assert cards["demo+rag"]["lorag"]["retrieval"] == "always"


def test_health(client):
    assert client.get("/health").json() == {"status": "ok"}


def assert_openai_error(response, status: int, param: str | None = None, text: str = "") -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    assert text in error["message"]
    return error


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "base"}, "messages"),
        ({"model": "base", "messages": []}, "messages"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "base", "messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
        ({"model": "base", "messages": "hello"}, "messages"),
        ({"model": 5, "messages": [{"role": "user", "content": "x"}]}, "model"),
        (
            {"model": "base", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
            "temperature",
        ),
        ({"model": "base", "messages": [{"role": "user", "content": "x"}], "temperature": 3}, "temperature"),
        ({"model": "base", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
        ({"model": "base", "messages": [{"role": "user", "content": "x"}], "stream": "yes please"}, "stream"),
    ],
)
def test_bad_requests_get_400_naming_the_field(client, body, param):
    error = assert_openai_error(client.post("/v1/chat/completions", json=body), 400, param, param)
    assert error["type"] == "invalid_request_error"


def test_malformed_json_is_400(client):
    response = client.post(
        "/v1/chat/completions",
        content=b'{"model": "base", "messages": [',
        headers={"content-type": "application/json"},
    )
    assert_openai_error(response, 400, None, "not valid JSON")


def test_unknown_model_is_404_listing_models(client):
    error = assert_openai_error(chat(client, model="gpt-9"), 404, "model", "gpt-9")
    assert error["code"] == "model_not_found"
    assert "demo+rag" in error["message"]


def test_unknown_endpoint_is_openai_shaped_404(client):
    assert_openai_error(client.post("/v1/completions", json={}), 404, None, "/v1/completions")
    assert_openai_error(client.get("/v1/files"), 404, None, "/v1/files")


def test_vllm_down_is_503_with_retry_after(routes, searcher):
    client = TestClient(build_app(GatewayParts(routes, FakeUpstream(down=True), BASE, searcher)))
    for stream in (False, True):
        response = chat(client, model="base", stream=stream)
        assert_openai_error(response, 503, None, "unreachable")
        assert response.headers["retry-after"] == "5"


def test_api_keys_are_enforced_when_configured(routes, upstream, searcher):
    client = TestClient(
        build_app(
            GatewayParts(routes, upstream, BASE, searcher, options=GatewayOptions(api_keys=["k1", "k2"]))
        )
    )
    assert_openai_error(chat(client, model="base"), 401)
    assert_openai_error(client.get("/v1/models", headers={"Authorization": "Bearer nope"}), 401)
    assert_openai_error(client.get("/v1/models", headers={"Authorization": "Bearer "}), 401)
    assert client.get("/v1/models", headers={"Authorization": "Bearer k2"}).status_code == 200
    assert client.get("/health").status_code == 200


def test_retrieval_failure_is_503_with_its_message(routes, upstream, searcher):
    from retrieval.errors import CorruptSnapshotError

    def broken(query, k, **options):  # type: ignore[no-untyped-def]
        raise CorruptSnapshotError("snapshot s1 has no BM25 index")

    searcher.search = broken
    client = TestClient(build_app(GatewayParts(routes, upstream, BASE, searcher)))
    assert_openai_error(chat(client, model="base+rag"), 503, None, "no BM25 index")


def test_a_broken_upstream_stream_still_ends_with_done(routes, searcher):
    class Garbled(FakeUpstream):
        async def stream_chat(self, body):  # type: ignore[no-untyped-def,override]
            yield {"choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]}
            raise json.JSONDecodeError("bad line", "data: {", 6)

    client = TestClient(build_app(GatewayParts(routes, Garbled(), BASE, searcher)))
    response = chat(client, model="base", stream=True)
    lines = [line for line in response.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[-2][6:])["error"]["type"] == "internal_error"


def test_pinned_adapter_version_is_loaded_once_and_reported(routes, upstream, searcher):
    registry = FakeRegistry([served("demo@v1", "/a/demo/v1"), served("demo@v2", "/a/v2")])
    client = TestClient(build_app(GatewayParts(routes, upstream, BASE, searcher, registry)))
    for _ in range(2):
        payload = chat(client, model="demo+rag@v2").json()
        assert payload["model"] == "demo+rag@v2" and payload["lorag"]["adapter"] == "demo@v2"
    assert upstream.bodies[-1]["model"] == "demo@v2"
    assert upstream.loaded == [("demo@v2", "/a/v2")]  # v1 is the served version: already loaded
    chat(client, model="demo@v1")
    assert upstream.loaded == [("demo@v2", "/a/v2")] and upstream.bodies[-1]["model"] == "demo@v1"
    assert_openai_error(chat(client, model="demo@v9"), 404, "model", "no version 'v9'")
    assert_openai_error(chat(client, model="base@v1"), 404, "model", "no adapter to pin")


def test_an_unknown_field_is_logged_at_info_once_then_at_debug(client, caplog):
    with caplog.at_level(logging.DEBUG, logger="lorag.chat"):
        for _ in range(3):
            chat(client, model="base", top_k=5)
        chat(client, model="base", top_k=5, ignore_eos=True)
    levels = [r.levelname for r in caplog.records if "unknown request fields" in r.getMessage()]
    assert levels == ["INFO", "DEBUG", "DEBUG", "INFO"]  # ignore_eos is new in the last request
