"""Each chat completions field has its documented effect on the real vLLM, through the real `openai` client.

Most checks run in three flavours: the sync client, the async client and a sync stream (whose chunks are
folded back into one reply), so the gateway's streaming path is held to the same contract. Outputs stay a
few tokens long: the CPU build makes ~20 tokens per second per stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import openai
import pytest

from tests.e2e.stack import Gateway

pytestmark = pytest.mark.e2e

FLAVOURS = ["sync", "async", "stream"]
QUESTION = [{"role": "user", "content": "Name three colours of the rainbow."}]
STORY = [{"role": "user", "content": "Write a long story about a dragon who learns to bake bread."}]
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 30}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
TIME = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}


@dataclass
class Choice:
    text: str = ""
    finish_reason: str | None = None
    tool_calls: list[dict[str, str]] = field(default_factory=list)
    logprobs: list[Any] = field(default_factory=list)


@dataclass
class Reply:
    """A completion reduced to what the tests compare, however it was received."""

    choices: dict[int, Choice]
    usage: Any


def from_completion(completion: Any) -> Reply:
    choices = {}
    for choice in completion.choices:
        calls = [
            {"name": call.function.name, "arguments": call.function.arguments}
            for call in choice.message.tool_calls or []
        ]
        logprobs = list(choice.logprobs.content or []) if choice.logprobs else []
        choices[choice.index] = Choice(choice.message.content or "", choice.finish_reason, calls, logprobs)
    return Reply(choices, completion.usage)


def from_chunks(chunks: Iterator[Any]) -> Reply:
    """Fold a stream into one reply: text and tool-call arguments concatenated per choice and call."""
    choices: dict[int, Choice] = {}
    usage = None
    for chunk in chunks:
        usage = chunk.usage or usage
        for delta_choice in chunk.choices:
            choice = choices.setdefault(delta_choice.index, Choice())
            delta = delta_choice.delta
            choice.text += delta.content or ""
            for call in delta.tool_calls or []:
                while len(choice.tool_calls) <= call.index:
                    choice.tool_calls.append({"name": "", "arguments": ""})
                if call.function and call.function.name:
                    choice.tool_calls[call.index]["name"] = call.function.name
                if call.function and call.function.arguments:
                    choice.tool_calls[call.index]["arguments"] += call.function.arguments
            if delta_choice.logprobs:
                choice.logprobs.extend(delta_choice.logprobs.content or [])
            choice.finish_reason = delta_choice.finish_reason or choice.finish_reason
    return Reply(choices, usage)


@pytest.fixture(scope="session")
def event_loop_for_clients() -> Iterator[asyncio.AbstractEventLoop]:
    """One loop for every async call, so the async client's connections outlive a single test."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def async_client(gateway: Gateway, event_loop_for_clients: asyncio.AbstractEventLoop):  # type: ignore[no-untyped-def]
    """`openai.AsyncOpenAI` on the session gateway; run its calls on `event_loop_for_clients`."""
    client = openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0, timeout=300)
    yield client
    event_loop_for_clients.run_until_complete(client.close())


@pytest.fixture
def complete(client, async_client, event_loop_for_clients):  # type: ignore[no-untyped-def]
    """`complete(flavour, **request)` → `Reply`; streams ask for the usage chunk."""

    def run(flavour: str, **request: Any) -> Reply:
        request.setdefault("model", "base")
        if flavour == "sync":
            return from_completion(client.chat.completions.create(**request))
        if flavour == "async":
            call = async_client.chat.completions.create(**request)
            return from_completion(event_loop_for_clients.run_until_complete(call))
        stream = client.chat.completions.create(
            **request, stream=True, stream_options={"include_usage": True}
        )
        return from_chunks(iter(stream))

    return run


def only(reply: Reply) -> Choice:
    assert list(reply.choices) == [0]
    return reply.choices[0]


def assert_usage_adds_up(reply: Reply) -> None:
    usage = reply.usage
    assert usage is not None, "no usage reported"
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.prompt_tokens + usage.completion_tokens == usage.total_tokens


@pytest.fixture(scope="module")
def unstopped(client: openai.OpenAI) -> str:
    reply = client.chat.completions.create(model="base", messages=QUESTION, temperature=0, max_tokens=24)
    return reply.choices[0].message.content or ""


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_stop_truncates_before_the_stop_string(complete, unstopped, flavour):
    words = unstopped.split()
    assert len(words) >= 4, unstopped
    stop = " " + words[3]  # a word the greedy answer reaches, with text before it
    choice = only(complete(flavour, messages=QUESTION, temperature=0, max_tokens=24, stop=[stop]))
    assert choice.finish_reason == "stop"
    assert choice.text == unstopped[: unstopped.index(stop)]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_n_returns_that_many_choices(complete, flavour):
    reply = complete(flavour, messages=QUESTION, n=3, temperature=1.0, max_tokens=4)
    assert sorted(reply.choices) == [0, 1, 2]
    assert all(choice.finish_reason in ("length", "stop") for choice in reply.choices.values())
    assert reply.usage.completion_tokens <= 12


@pytest.mark.parametrize("limit", ["max_tokens", "max_completion_tokens"])
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_token_limits_end_with_length(complete, flavour, limit):
    reply = complete(flavour, messages=STORY, temperature=0, **{limit: 5})
    assert only(reply).finish_reason == "length"
    assert reply.usage.completion_tokens == 5
    assert_usage_adds_up(reply)


def test_streamed_usage_matches_the_non_streamed_counts(complete):
    request = {"messages": QUESTION, "temperature": 0, "max_tokens": 12}
    plain, streamed = complete("sync", **request), complete("stream", **request)
    assert_usage_adds_up(plain)
    assert streamed.usage.model_dump() == plain.usage.model_dump()
    assert only(streamed).text == only(plain).text


def test_retrieved_context_counts_as_prompt_tokens(complete):
    question = [{"role": "user", "content": "What is the return window?"}]
    base = complete("sync", model="base", messages=question, max_tokens=1)
    rag = complete("stream", model="base+rag", messages=question, max_tokens=1)
    assert rag.usage.prompt_tokens > base.usage.prompt_tokens + 50
    assert_usage_adds_up(rag)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_json_schema_output_validates(complete, flavour):
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "person", "schema": PERSON, "strict": True},
    }
    messages = [{"role": "user", "content": "Invent a person: give a name and an age."}]
    choice = only(
        complete(flavour, messages=messages, temperature=0, max_tokens=64, response_format=response_format)
    )
    assert choice.finish_reason == "stop", choice.text
    jsonschema.validate(json.loads(choice.text), PERSON)


@pytest.mark.parametrize("flavour", ["sync", "stream"])
def test_json_object_output_parses(complete, flavour):
    messages = [{"role": "user", "content": "Give me a person with a name and an age."}]
    choice = only(
        complete(
            flavour, messages=messages, temperature=0, max_tokens=64, response_format={"type": "json_object"}
        )
    )
    assert choice.finish_reason == "stop", choice.text
    assert isinstance(json.loads(choice.text), dict)


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_seed_reproduces_sampling(complete, flavour):
    request = {"messages": STORY, "temperature": 1.0, "max_tokens": 12}
    first = only(complete(flavour, seed=1234, **request)).text
    again = only(complete(flavour, seed=1234, **request)).text
    assert first == again
    others = {only(complete(flavour, seed=seed, **request)).text for seed in (1, 2)}
    assert others != {first}, "two other seeds both reproduced seed 1234's sample"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_logprobs_with_top_alternatives(complete, flavour):
    reply = complete(flavour, messages=QUESTION, temperature=0, max_tokens=4, logprobs=True, top_logprobs=2)
    entries = only(reply).logprobs
    assert len(entries) == reply.usage.completion_tokens == 4
    for entry in entries:
        assert entry.logprob <= 0 and len(entry.top_logprobs) == 2
        # Greedy: the chosen token is the most likely one.
        assert entry.top_logprobs[0].logprob == pytest.approx(entry.logprob, abs=1e-3)


def assert_weather_call(choice: Choice) -> None:
    assert len(choice.tool_calls) == 1, choice
    call = choice.tool_calls[0]
    assert call["name"] == "get_weather"
    jsonschema.validate(json.loads(call["arguments"]), WEATHER["function"]["parameters"])  # type: ignore[index]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_named_tool_choice_forces_that_call(complete, flavour):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    tool_choice = {"type": "function", "function": {"name": "get_weather"}}
    choice = only(
        complete(
            flavour,
            messages=messages,
            temperature=0,
            max_tokens=48,
            tools=[TIME, WEATHER],
            tool_choice=tool_choice,
        )
    )
    assert_weather_call(choice)


@pytest.mark.parametrize("flavour", ["sync", "stream"])
def test_tool_choice_required_makes_a_call(complete, flavour):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    choice = only(
        complete(
            flavour, messages=messages, temperature=0, max_tokens=64, tools=[WEATHER], tool_choice="required"
        )
    )
    assert choice.finish_reason == "tool_calls"
    assert_weather_call(choice)


@pytest.mark.parametrize("flavour", ["sync", "stream"])
def test_parallel_tool_calls_false_gives_exactly_one_call(complete, flavour):
    """What LangChain's tool tests expect: one call. vLLM caps the guided array at one item and drops any
    further call; the gateway passes the field through (JSON and streaming)."""
    messages = [{"role": "user", "content": "What is the weather in Paris, in Rome and in Tokyo?"}]
    reply = complete(
        flavour,
        messages=messages,
        temperature=0,
        max_tokens=96,
        tools=[WEATHER],
        tool_choice="required",
        parallel_tool_calls=False,
    )
    choice = only(reply)
    assert choice.finish_reason == "tool_calls"
    assert len(choice.tool_calls) == 1
    assert_weather_call(choice)


def test_every_role_and_text_parts_are_accepted(complete):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is the weather"},
                {"type": "text", "text": "in Paris?"},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "call_1",
            "content": [{"type": "text", "text": "Sunny, 21 degrees."}],
        },
    ]
    for flavour in ("sync", "stream"):
        reply = complete(flavour, messages=messages, temperature=0, max_tokens=8, user="e2e")
        assert only(reply).text
        assert_usage_adds_up(reply)


IMAGE = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
BAD_REQUESTS = [
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"response_format": {"type": "xml"}}, "response_format.type"),
    (
        {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "get_time"}}},
        "tool_choice",
    ),
    ({"messages": [{"role": "narrator", "content": "hi"}]}, "messages.0.role"),
]


@pytest.mark.parametrize(("fields", "param"), BAD_REQUESTS, ids=[param for _, param in BAD_REQUESTS])
def test_bad_values_are_400s_naming_the_field(client, fields, param):
    request = {"model": "base", "messages": QUESTION, "max_tokens": 4, **fields}
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(**request)
    assert raised.value.body["param"] == param, raised.value.body


def test_image_parts_are_refused_as_text_only(client):
    # Well-formed but not for this model: 422 (Unprocessable), naming the message.
    messages = [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, IMAGE]}]
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        client.chat.completions.create(model="base", messages=messages, max_tokens=4)
    assert "text-only" in raised.value.body["message"]
    assert raised.value.body["param"] == "messages.0.content"


def test_vllm_refusals_pass_through_as_400s(client):
    # Schemas guided decoding cannot compile are vLLM's to refuse; the client still gets a 400, not a 500.
    bad_schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nonsense"}}}
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="base", messages=QUESTION, max_tokens=4, response_format=bad_schema
        )
    with pytest.raises(openai.BadRequestError) as out_of_vocab:
        client.chat.completions.create(
            model="base", messages=QUESTION, max_tokens=4, logit_bias={"999999": 1}
        )
    assert out_of_vocab.value.body["param"] == "logit_bias"
