from __future__ import annotations

import pytest

from core.settings import Settings, VLLMSettings
from core.vllm_server import vllm_command, vllm_environment
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
