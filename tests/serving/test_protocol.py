"""The chat completions request surface: what is accepted, what is sent on, and which field a 400 names."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from serving.protocol import UNSUPPORTED_PART_ERROR, ChatCompletionRequest, NamedToolChoice, openai_shaped

USER = [{"role": "user", "content": "hi"}]
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
NAMED = {"type": "function", "function": {"name": "get_weather"}}


def request(**fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": "base", "messages": USER, **fields})


def test_every_documented_field_is_sent_on_as_given():
    fields = {
        "frequency_penalty": 0.5,
        "logit_bias": {"42": -100},
        "logprobs": True,
        "top_logprobs": 2,
        "max_tokens": 8,
        "max_completion_tokens": 8,
        "n": 2,
        "presence_penalty": -0.5,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": {"type": "object"}, "strict": True},
        },
        "seed": 7,
        "stop": ["\n", "END"],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.7,
        "top_p": 0.9,
        "tools": [TOOL],
        "tool_choice": NAMED,
        "parallel_tool_calls": False,
        "user": "u-1",
    }
    body = request(**fields).upstream_body("vllm-model", [{"role": "user", "content": "hi"}])
    assert body == {**fields, "model": "vllm-model", "messages": [{"role": "user", "content": "hi"}]}


def test_a_single_stop_string_is_sent_as_a_list():
    assert request(stop="END").upstream_body("m", [])["stop"] == ["END"]


def test_tool_choice_modes_and_named_choice():
    assert request(tools=[TOOL], tool_choice="required").tool_choice == "required"
    assert request(tools=[TOOL], tool_choice="auto").tool_choice == "auto"
    assert isinstance(request(tools=[TOOL], tool_choice=NAMED).tool_choice, NamedToolChoice)
    assert request(tool_choice="none").tool_choice == "none"  # "none" needs no tools


def test_top_logprobs_zero_needs_no_logprobs():
    # vLLM's rule: only a positive top_logprobs asks for something logprobs must enable.
    assert request(top_logprobs=0).top_logprobs == 0


def test_unknown_fields_are_listed_in_request_order_and_still_sent_on():
    parsed = request(metadata={"a": "b"}, ignore_eos=True, temperature=0)
    assert parsed.unknown_fields() == ["metadata", "ignore_eos"]
    body = parsed.upstream_body("m", [])
    assert body["ignore_eos"] is True and body["metadata"] == {"a": "b"}
    assert request().unknown_fields() == []


def test_prompt_overrides_are_dropped_but_listed_as_unknown():
    parsed = request(chat_template="{{ evil }}", echo=True)
    assert parsed.unknown_fields() == ["chat_template", "echo"]
    assert "chat_template" not in parsed.upstream_body("m", []) and "echo" not in parsed.upstream_body(
        "m", []
    )


def test_all_roles_and_tool_turns_are_accepted():
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": "Answer in English."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    parsed = request(messages=messages)
    assert [message.role for message in parsed.messages] == [
        "system",
        "developer",
        "user",
        "assistant",
        "tool",
    ]
    assert (
        parsed.messages[3].model_dump(exclude_none=True)["tool_calls"][0]["function"]["name"] == "get_weather"
    )


def test_text_parts_are_joined_and_refusals_kept():
    parts = [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}]
    refusal = [{"type": "refusal", "refusal": "I can't."}]
    parsed = request(messages=[{"role": "user", "content": parts}, {"role": "assistant", "content": refusal}])
    assert [message.content for message in parsed.messages] == ["first\nsecond", "I can't."]


@pytest.mark.parametrize("kind", ["image_url", "input_audio", "file"])
def test_non_text_parts_are_refused_by_type(kind):
    parts = [{"type": "text", "text": "what is this?"}, {"type": kind, kind: {}}]
    with pytest.raises(ValidationError) as raised:
        request(messages=[{"role": "user", "content": parts}])
    error = raised.value.errors()[0]
    assert error["type"] == UNSUPPORTED_PART_ERROR
    assert error["loc"] == ("messages", 0, "content")
    assert f"part 1 has type '{kind}'" in error["msg"] and "text-only" in error["msg"]


BAD_VALUES = [
    ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages.0.content"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
    (
        {"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f"}}]}]},
        "messages.0.tool_calls.0.function.arguments",
    ),
    ({"frequency_penalty": 3}, "frequency_penalty"),
    ({"presence_penalty": -3}, "presence_penalty"),
    ({"logit_bias": {"token": 1}}, "logit_bias"),
    ({"logit_bias": {"5": 101}}, "logit_bias.5"),
    ({"logprobs": "maybe"}, "logprobs"),
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ({"max_completion_tokens": 0}, "max_completion_tokens"),
    ({"n": 0}, "n"),
    ({"response_format": {"type": "xml"}}, "response_format.type"),
    ({"response_format": {"type": "json_schema"}}, "response_format"),
    (
        {"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}},
        "response_format.json_schema.name",
    ),
    (
        {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": 5}}},
        "response_format.json_schema.schema",
    ),
    ({"seed": 2**64}, "seed"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"stop": 5}, "stop"),
    ({"stop": [5]}, "stop.0"),
    ({"stop": [""]}, "stop.0"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
    ({"top_p": 0}, "top_p"),
    ({"tools": []}, "tools"),
    ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools.0.type"),
    ({"tools": [{"type": "function", "function": {"description": "no name"}}]}, "tools.0.function.name"),
    ({"tools": [TOOL], "tool_choice": "always"}, "tool_choice"),
    ({"tools": [TOOL], "tool_choice": {"type": "function"}}, "tool_choice"),
    ({"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "other"}}}, "tool_choice"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"parallel_tool_calls": "sometimes"}, "parallel_tool_calls"),
    ({"user": 5}, "user"),
]


@pytest.mark.parametrize(("fields", "param"), BAD_VALUES, ids=[param for _, param in BAD_VALUES])
def test_bad_values_are_400s_naming_the_field(client, fields, param):
    body = {"model": "base", "messages": USER, **fields}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param, error
    assert error["message"].startswith(f"{param}: ")
    assert error["type"] == "invalid_request_error"


def test_named_tool_choice_errors_say_what_is_missing(client):
    body = {"model": "base", "messages": USER, "tools": [TOOL], "tool_choice": {"type": "function"}}
    error = client.post("/v1/chat/completions", json=body).json()["error"]
    assert error["message"] == "tool_choice: function: Field required"


def test_openai_shaped_drops_the_nulls_openai_leaves_out():
    completion = {
        "id": "c",
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "refusal": None,
                    "annotations": None,
                    "audio": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
                "stop_reason": None,
            }
        ],
        "usage": {
            "prompt_tokens": 1,
            "completion_tokens": 1,
            "total_tokens": 2,
            "prompt_tokens_details": None,
        },
        "lorag": {"snapshot": None},
    }
    assert openai_shaped(completion) == {
        "id": "c",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        "lorag": {"snapshot": None},  # lorag's extension is not OpenAI's to shape
    }
    chunk = {
        "choices": [{"index": 0, "delta": {"content": "a", "tool_calls": None}, "finish_reason": None}],
        "usage": None,
    }
    assert openai_shaped(chunk) == {
        "choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": None}]
    }


def test_openai_shaped_completes_logprobs_with_refusal():
    choice = {"index": 0, "message": {"role": "assistant", "content": "a"}, "logprobs": {"content": []}}
    shaped = openai_shaped({"choices": [choice]})
    assert shaped["choices"][0]["logprobs"] == {"content": [], "refusal": None}
