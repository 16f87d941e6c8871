"""LangChain's standard integration tests for chat models (`langchain-tests`), with `langchain-openai`'s
`ChatOpenAI` pointed at lorag's gateway, on a plain route and on both retrieval routes.

What the default model (SmolLM2-135M-Instruct, not trained for tools) cannot do is declared off or xfailed,
with the reason, rather than left to fail:
- images, audio, PDFs: the models behind lorag are text-only (the gateway answers 422 to such parts).
- tool calling runs on `base` and `base+rag`: LangChain forces the call (`tool_choice="any"`, sent as
  `"required"`), which vLLM enforces by guided decoding, so calls are well-formed and the model only picks
  the arguments. Two tool tests stay xfail: the agent loop (after the tool's result the model must answer
  in words that use it) and the Japanese-arguments one (it writes ASCII). On `demo+rag` tool calling is
  off: the Lumora adapter fills the arguments with Lumora facts (`magic_function(3)` → another number).
- structured output (`json_schema`, LangChain's default for ChatOpenAI) runs on `base`; its optional-field
  test is xfail (the model never closes that answer). On the retrieval routes the retrieved Lumora text
  leads the model to write on inside the schema's strings until the length limit: off there.
- JSON mode (`json_object`: any object): SmolLM2 keeps writing until `max_tokens`: off.
- model override: each route is a lorag model name; the tests' override names an OpenAI model: skipped
  by langchain-tests itself.
A tool-trained model (e.g. Qwen 2.5 with vLLM's `hermes` parser) should turn these on.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_openai import ChatOpenAI
from langchain_tests.integration_tests import ChatModelIntegrationTests

MAX_TOKENS = 24
"""Short answers keep the suite within minutes on a CPU; the tests need a few words, not paragraphs."""
STRUCTURED_MAX_TOKENS = 200
"""Structured output and tool calls need room for a whole JSON object (a truncated one does not parse)."""
JSON_TESTS = ("structured", "tool", "agent", "runnables")


class LoragRoute(ChatModelIntegrationTests):
    """The standard tests against one lorag route; subclasses name the route and what it can do."""

    route = "base"
    tool_calling = True
    structured_output = False

    @pytest.fixture(autouse=True)
    def _gateway(self, gateway_url: str, request: pytest.FixtureRequest) -> None:
        self.url = gateway_url
        json_answer = any(word in request.node.name for word in JSON_TESTS)
        self.max_tokens = STRUCTURED_MAX_TOKENS if json_answer else MAX_TOKENS

    @property
    def chat_model_class(self) -> type[ChatOpenAI]:
        return ChatOpenAI

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "model": self.route,
            "base_url": f"{self.url}/v1",
            "api_key": "unused-on-loopback",
            "temperature": 0,
            "max_tokens": self.max_tokens,
            "stream_usage": True,
            "max_retries": 0,
            "timeout": 300,
        }

    @property
    def has_tool_calling(self) -> bool:
        return self.tool_calling

    @property
    def has_structured_output(self) -> bool:
        return self.structured_output

    @property
    def supports_json_mode(self) -> bool:
        return False  # json_object allows any object: SmolLM2-135M writes on to the length limit

    @property
    def supports_image_inputs(self) -> bool:
        return False  # text-only models

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @pytest.mark.xfail(reason="the model must answer from the tool's result: SmolLM2 is not tool-trained")
    def test_agent_loop(self, model: Any) -> None:
        super().test_agent_loop(model)

    @pytest.mark.xfail(reason="SmolLM2-135M writes ASCII where the test asks for Japanese arguments")
    def test_unicode_tool_call_integration(self, model: Any, **kwargs: Any) -> None:
        super().test_unicode_tool_call_integration(model, **kwargs)

    @pytest.mark.xfail(reason="SmolLM2-135M fills the optional field on to the length limit")
    def test_structured_output_optional_param(self, model: Any) -> None:
        super().test_structured_output_optional_param(model)


class TestBaseRoute(LoragRoute):
    route = "base"
    structured_output = True  # json_schema: vLLM's guided decoding makes any model answer in the schema


class TestBaseRagRoute(LoragRoute):
    route = "base+rag"


class TestDemoRagRoute(LoragRoute):
    route = "demo+rag"
    tool_calling = False  # the Lumora adapter puts Lumora facts into the arguments
