from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.processes import free_port
from core.settings import Settings, VLLMSettings
from core.vllm_server import ManagedVLLM, VLLMStartError, start_failure, vllm_command, vllm_environment
from serving.serve import UnsafeBindError, check_bind, is_loopback


def test_command_binds_loopback_with_key_and_lora():
    argv = vllm_command("/m", "Base", VLLMSettings(), 8100, "secret")
    assert argv[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    pairs = dict(zip(argv[3::2], argv[4::2], strict=False))
    assert pairs["--host"] == "127.0.0.1" and pairs["--model"] == "/m"
    assert "--api-key=secret" in argv
    assert "--enable-lora" in argv


def test_a_key_that_starts_with_a_dash_reaches_vllm_as_the_keys_value():
    import argparse

    argv = vllm_command("/m", "Base", VLLMSettings(), 8100, "-Xk3y")
    parser = argparse.ArgumentParser()
    parser.add_argument("--api-key", nargs="+")  # as vLLM declares it
    known, _ = parser.parse_known_args(argv[3:])
    assert known.api_key == ["-Xk3y"]


def test_a_server_without_adapters_is_started_without_lora():
    argv = vllm_command("/m", "Base", VLLMSettings(enable_lora=False), 8100, "secret")
    assert not {"--enable-lora", "--max-loras", "--max-lora-rank"} & set(argv)


def test_environment_allows_runtime_adapters(monkeypatch):
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    env = vllm_environment(VLLMSettings(kv_cache_gib=3))
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "3"


def test_public_bind_without_keys_is_refused():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and not is_loopback("0.0.0.0")
    with pytest.raises(UnsafeBindError):
        check_bind(Settings(host="0.0.0.0"))
    check_bind(Settings(host="0.0.0.0", api_keys=["k"]))
    check_bind(Settings())


def test_start_failure_leads_with_the_logs_last_line(tmp_path: Path) -> None:
    """The one-line CLI error shows a message's first lines; vLLM's log starts with usage text."""
    log = tmp_path / "vllm.log"
    tail = (
        "usage: api_server.py [-h] [--host HOST]\n  [--port PORT]\n"
        "api_server.py: error: argument --api-key: expected\n\n"
    )
    message = start_failure("vLLM exited during start-up", tail, log)
    first = message.splitlines()[0]
    assert (
        first
        == f"vLLM exited during start-up: api_server.py: error: argument --api-key: expected (log: {log})"
    )
    assert "usage: api_server.py" in message
    assert start_failure("vLLM not healthy after 5 s", "", log) == f"vLLM not healthy after 5 s (log: {log})"


def test_a_server_that_dies_at_once_is_reported_with_its_error(tmp_path: Path) -> None:
    """A real child process that prints usage and an error, then exits: the error line is named."""
    log = tmp_path / "vllm.log"
    server = ManagedVLLM("unused", "base", VLLMSettings(port=free_port("127.0.0.1")), log)
    server.start = lambda: None  # type: ignore[method-assign]
    script = "import sys; print('usage: x [-h]'); print('x: error: bad flag', file=sys.stderr); sys.exit(2)"
    with log.open("ab") as out:
        server._process = subprocess.Popen(
            [sys.executable, "-c", script], stdout=out, stderr=subprocess.STDOUT
        )
    with pytest.raises(VLLMStartError) as caught:
        server.wait_healthy(timeout_s=20)
    assert str(caught.value).splitlines()[0].startswith("vLLM exited during start-up: x: error: bad flag")
