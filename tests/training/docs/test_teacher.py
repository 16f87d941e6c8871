"""The real teacher client against a stand-in OpenAI-compatible server (no network, no model)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from core.settings import TeacherSettings
from training.docs.errors import TeacherError
from training.docs.teacher import GenerationParams, OpenAITeacher, open_teacher


class _Handler(BaseHTTPRequestHandler):
    requests: list[dict] = []
    status = 200

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
        reply = {
            "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "Who coaches the crews?"}}],
        }  # fmt: skip
        payload = json.dumps(reply if self.status == 200 else {"error": {"message": "boom"}}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.requests, _Handler.status = [], 200
    httpd = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/v1"
    httpd.shutdown()


def test_the_teacher_sends_the_chat_and_the_sampling_parameters(server):
    teacher = OpenAITeacher(server, "big-model", api_key="sk-test", max_retries=0)
    reply = teacher.complete(
        [{"role": "user", "content": "Sentence: ..."}], GenerationParams(0.7, 32, seed=2)
    )
    assert reply == "Who coaches the crews?"
    request = _Handler.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer sk-test"
    assert (request["model"], request["temperature"], request["max_tokens"], request["seed"]) == (
        "big-model",
        0.7,
        32,
        2,
    )
    assert teacher.identity == f"big-model@{server}"


def test_a_failing_endpoint_is_a_teacher_error_naming_it(server):
    _Handler.status = 500
    teacher = OpenAITeacher(server, "big-model", max_retries=0)
    with pytest.raises(TeacherError, match=f"teacher big-model@{server} failed"):
        teacher.complete([{"role": "user", "content": "x"}], GenerationParams(0.0, 8))


def test_the_api_key_comes_from_the_named_environment_variable(monkeypatch):
    settings = TeacherSettings(api_key_env="MY_TEACHER_KEY")
    monkeypatch.delenv("MY_TEACHER_KEY", raising=False)
    with pytest.raises(TeacherError, match=r"\$MY_TEACHER_KEY, which is not set"):
        open_teacher(settings)
    monkeypatch.setenv("MY_TEACHER_KEY", "sk-from-env")
    assert settings.api_key() == "sk-from-env"
    assert TeacherSettings().api_key() is None
