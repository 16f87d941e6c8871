from __future__ import annotations

import pytest

from core.settings import Settings, VLLMSettings
from serving.serve import UnsafeBindError, check_bind, is_loopback
from serving.vllm_process import vllm_command, vllm_environment


def test_command_binds_loopback_with_key_and_lora():
    argv = vllm_command("/m", "Base", VLLMSettings(), 8100, "secret")
    assert argv[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    pairs = dict(zip(argv[3::2], argv[4::2], strict=False))
    assert pairs["--host"] == "127.0.0.1" and pairs["--api-key"] == "secret" and pairs["--model"] == "/m"
    assert "--enable-lora" in argv


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


def test_an_adapter_of_another_base_model_is_refused(tmp_path):
    from serving.routing import RouteConfigError
    from serving.serve import registered_adapters
    from training.registry import AdapterRegistry

    source = tmp_path / "adapter"
    source.mkdir()
    (source / "adapter_config.json").write_text("{}")
    registry = AdapterRegistry(tmp_path / "home" / "adapters")
    registry.set_current("demo", registry.register("demo", source, {"base_model": "Other-7B"}).version)
    settings = Settings(home=tmp_path / "home")
    with pytest.raises(RouteConfigError, match="trained on 'Other-7B'"):
        registered_adapters(settings)
    assert registered_adapters(Settings(home=tmp_path / "home", chat_model="Other-7B"))[
        "demo"
    ].upstream_name == ("demo@v1")
