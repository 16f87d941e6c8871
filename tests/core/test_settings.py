"""Settings precedence: defaults < YAML < environment < explicit overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import RouteConfig, Settings, load_settings


def test_defaults_have_the_four_routes(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LORAG_CONFIG", raising=False)
    settings = load_settings()
    assert set(settings.routes) == {"base", "base+rag", "demo", "demo+rag"}
    assert settings.routes["demo+rag"].adapter == "demo" and settings.routes["demo+rag"].retrieval == "always"
    assert settings.routes["base"].adapter is None and settings.routes["base"].retrieval == "never"
    assert settings.host == "127.0.0.1" and settings.port == 8000
    assert settings.index_dir == Path(".lorag/index")


def test_yaml_then_env_then_overrides(monkeypatch, tmp_path):
    config = tmp_path / "lorag.yaml"
    config.write_text(
        "port: 9000\nvllm:\n  port: 8200\nroutes:\n  kb:\n    adapter: kb\n    retrieval: always\n    k: 5\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LORAG_CONFIG", raising=False)
    settings = load_settings()
    assert settings.port == 9000 and settings.vllm.port == 8200
    assert list(settings.routes) == ["kb"] and settings.routes["kb"].k == 5
    monkeypatch.setenv("LORAG_PORT", "9100")
    monkeypatch.setenv("LORAG_VLLM__KV_CACHE_GIB", "2")
    settings = load_settings()
    assert settings.port == 9100 and settings.vllm.kv_cache_gib == 2 and settings.vllm.port == 8200
    assert load_settings(port=9200, host=None).port == 9200


def test_explicit_config_path_and_env_path(monkeypatch, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text("port: 7000\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings(other).port == 7000
    monkeypatch.setenv("LORAG_CONFIG", str(other))
    assert load_settings().port == 7000
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "missing.yaml")


def test_bad_values_are_rejected(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="retrieval"):
        load_settings(routes={"x": {"retrieval": "sometimes"}})
    with pytest.raises(ValueError, match="route name"):
        load_settings(routes={"a@b": {}})
    with pytest.raises(ValueError, match="empty or blank"):
        load_settings(api_keys=["k", " "])
    with pytest.raises(ValueError, match="unknown_field|extra"):
        load_settings(unknown_field=1)


def test_answer_lengths_default_to_512_capped_at_2048_and_a_default_above_its_cap_is_refused():
    settings = Settings()
    assert (settings.default_max_tokens, settings.max_tokens_cap) == (512, 2048)
    with pytest.raises(ValueError, match="route 'kb': default_max_tokens \\(300\\) is above max_tokens_cap"):
        Settings(routes={"kb": RouteConfig(default_max_tokens=300, max_tokens_cap=200)})
    with pytest.raises(ValueError, match="default_max_tokens \\(4096\\) is above max_tokens_cap \\(2048\\)"):
        Settings(default_max_tokens=4096)


def test_the_old_answer_reserve_setting_maps_to_the_default_with_a_warning(monkeypatch):
    monkeypatch.setenv("LORAG_ANSWER_RESERVE_TOKENS", "300")
    with pytest.warns(FutureWarning, match="answer_reserve_tokens is deprecated: use default_max_tokens"):
        assert Settings().default_max_tokens == 300
    with pytest.warns(FutureWarning, match="ignored, default_max_tokens is set"):
        assert Settings(default_max_tokens=100).default_max_tokens == 100
