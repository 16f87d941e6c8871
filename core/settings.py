"""The one typed settings object: defaults < `lorag.yaml` < `LORAG_*` environment variables < CLI flags.

This module is the only place in lorag that reads the environment. Nested fields use `__` in variable
names, e.g. `LORAG_VLLM__PORT=8101`.
"""

from __future__ import annotations

import errno
import os
import warnings
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from core.embedder_spec import parse_embedder_ref
from core.prices import Price

DEFAULT_CHAT_MODEL = "SmolLM2-135M-Instruct"
DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
CONFIG_ENV = "LORAG_CONFIG"
DEFAULT_CONFIG_FILE = "lorag.yaml"


class RouteConfig(BaseModel):
    """One model name that clients may ask for: which adapter answers and whether to retrieve."""

    adapter: str | None = None
    """Adapter name in the registry (served at its current version), or None for the base model."""
    retrieval: Literal["never", "always", "auto"] = "never"
    """`always`: the last user message is searched in the index and the top-k chunks are added as sources.
    `auto`: searched, but the sources are added only when the top hit's score clears the route's threshold
    (see `auto_threshold`). A request may override this with `"lorag": {"retrieval": ...}`."""
    auto_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    """Pins this route's `auto` threshold; unset uses the calibrated thresholds file (`lorag eval
    calibrate`), else `DEFAULT_AUTO_THRESHOLD`."""
    k: int = Field(default=3, ge=1, le=50)
    """How many chunks to add when retrieving."""
    search: Literal["dense", "bm25", "hybrid"] = "dense"
    """Ranking: embeddings (`dense`), keywords (`bm25`), or both fused by reciprocal rank (`hybrid`)."""
    filters: dict[str, Any] = Field(default_factory=dict)
    """Only chunks that match: `source_prefix`, `source_glob`, `tags` (all given conditions must hold)."""
    recency_half_life_days: float | None = Field(default=None, gt=0)
    """Weight each chunk by `0.5 ** (age / half-life)` of its document, favouring recent documents."""
    context_header: str | None = None
    """The instruction above the retrieved sources; unset uses lorag's default, which asks for "one short
    sentence" (right for the 135M demo model; larger models answer longer questions better without it)."""
    default_max_tokens: int | None = Field(default=None, ge=1)
    """Answer length for requests that set no `max_tokens` / `max_completion_tokens`; unset uses the global
    `default_max_tokens`."""
    max_tokens_cap: int | None = Field(default=None, ge=1)
    """The most tokens a request on this route may generate (larger requests are clamped); unset uses the
    global `max_tokens_cap`."""
    description: str = ""
    """Shown in `/v1/models`."""


class ApiKey(BaseModel):
    """An API key limited to some routes (a plain string in `api_keys` may use every route)."""

    model_config = {"extra": "forbid"}
    key: str
    name: str = ""
    """Shown in logs instead of the key."""
    routes: list[str] | None = None
    """Route names this key may use; None: all."""


DEFAULT_AUTO_THRESHOLD = 0.4
"""`auto` retrieves when the best hit's dense cosine is at least this. Chosen with all-MiniLM-L6-v2 on the
demo dev split: questions whose answers are in the corpus score 0.58-0.83, ten off-topic requests ("write a
haiku", "what is 17 times 23?") 0.06-0.24; 0.4 sits midway, since short questions score lower ("What is the
return window?" 0.46). Other embedders have other scales: calibrate per route (`lorag eval calibrate`)."""

BM25_SCALE = 10.0
"""`auto` on a BM25-only route compares `s / (s + BM25_SCALE)` (0..1) with the threshold: raw BM25 scores
are unbounded, and rank-fusion scores reflect rank only, so neither can be thresholded."""

DEFAULT_RAG_K = 1
"""Sources per request on the default routes. The 135M default model answers best from one source: on the
demo dev questions it answered 10/14 with the top chunk alone, 6/14 with the top 2 and 6/14 with the top 3
(top-1 retrieval was right for all 14). Raise `k` with a larger model."""


def default_routes() -> dict[str, RouteConfig]:
    """The four routes every install has: base and demo adapter, each with and without retrieval."""
    return {
        "base": RouteConfig(description="The base model alone."),
        "base+rag": RouteConfig(
            retrieval="always", k=DEFAULT_RAG_K, description="The base model with retrieved sources."
        ),
        "demo": RouteConfig(adapter="demo", description="The demo LoRA adapter (static knowledge)."),
        "demo+rag": RouteConfig(
            adapter="demo",
            retrieval="always",
            k=DEFAULT_RAG_K,
            description="The demo adapter with retrieved sources.",
        ),
    }


class VLLMSettings(BaseModel):
    """How `lorag serve` starts its managed vLLM server (ignored with an external `vllm_url`)."""

    host: str = "127.0.0.1"
    """The managed server binds to loopback only: nothing but the gateway should reach it."""
    port: int = 8100
    dtype: str = "bfloat16"
    max_model_len: int = 4096
    kv_cache_gib: int = 4
    """KV cache size on CPU (VLLM_CPU_KVCACHE_SPACE)."""
    enable_lora: bool = True
    """Serve LoRA adapters. Off only for a server that never serves one: on CPU vLLM then keeps its
    compiled paths (`lorag bench serve` shows the price of LoRA being on)."""
    max_loras: int = 4
    """Adapters resident at once; leaves room for old and new versions to overlap during a swap."""
    max_lora_rank: int = 16
    tool_call_parser: str | None = "pythonic"
    """vLLM honours `tool_choice` only with a tool parser. Named and `required` calls are forced by guided
    decoding with any model; `auto` calls are parsed from the model's output, so pick the parser that
    matches the model (e.g. `hermes` for Qwen 2.5). None: vLLM refuses requests that send `tools`."""
    startup_timeout_s: float = 600.0
    extra_args: list[str] = Field(default_factory=list)
    """Passed verbatim to `vllm.entrypoints.openai.api_server`."""


class ChunkingSettings(BaseModel):
    """How documents are cut into chunks; part of the index manifest."""

    max_tokens: int = Field(default=160, ge=16)
    """Upper bound on a chunk's size, counted in whitespace-separated words."""
    overlap: int = Field(default=24, ge=0)
    """Words carried over between consecutive chunks of one long paragraph."""


class IndexSettings(BaseModel):
    """How the index reads the corpus and how many snapshots it keeps."""

    max_document_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    """Corpus files (and JSONL lines) larger than this are skipped and reported."""
    keep_snapshots: int = Field(default=5, ge=1)
    """Snapshots kept after each build, refresh or deletion (the current one and its parent always are)."""
    kind: Literal["flat", "hnsw", "ivf"] = "flat"
    """Dense index: exact (`flat`), or approximate `hnsw` / `ivf` (past ~100K chunks; see the benchmark)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Index parameters: hnsw `m`, `ef_construction`, `ef_search`; ivf `nlist`, `nprobe`."""
    gate_questions: Path | None = None
    """Refresh gate: a JSONL of questions with `gold_sources` (the eval format). When set, a refresh whose
    recall@`gate_k` falls below the current snapshot's by more than `gate_margin` is refused."""
    gate_k: int = Field(default=5, ge=1)
    gate_margin: float = Field(default=0.05, ge=0.0, le=1.0)


class TeacherSettings(BaseModel):
    """The model that writes questions for `lorag train data from-docs`: any OpenAI-compatible chat endpoint.

    The default is the base model as the local gateway serves it (`lorag serve`, route `base`); point `url`
    and `model` at a larger model (e.g. `https://api.openai.com/v1`, `gpt-4o-mini`) for better questions.
    """

    model_config = {"extra": "forbid"}
    url: str = "http://127.0.0.1:8000/v1"
    """Base URL of the OpenAI-compatible API (ends in `/v1`)."""
    model: str = "base"
    """The model name sent in each request (a route name for a lorag gateway)."""
    api_key_env: str | None = None
    """Name of the environment variable that holds the API key (never the key itself); unset: no key."""
    max_calls: int = Field(default=2000, ge=0)
    """Most teacher calls one run may make (cached answers are free): protects paid APIs. A run that needs
    more stops with an error after caching what it did; the next run continues from the cache."""
    temperature: float = Field(default=0.8, ge=0.0, le=2.0)
    """Sampling temperature of every call after the first for a sentence (the first is greedy)."""
    max_tokens: int = Field(default=64, ge=8)
    """Reply length limit: one question is short, and a runaway reply is junk anyway."""
    concurrency: int = Field(default=4, ge=1, le=64)
    """Calls in flight at once (vLLM batches them)."""
    timeout_s: float = Field(default=120.0, gt=0)
    """Per-call timeout; a call that fails after the client's retries stops the run (cached calls stay)."""

    def api_key(self) -> str | None:
        """The key from `api_key_env`; a clear error if that variable is named but unset or empty."""
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env, "").strip()
        if not key:
            raise ValueError(f"teacher.api_key_env names ${self.api_key_env}, which is not set")
        return key


class Settings(BaseSettings):
    """Everything lorag can be configured with. Build it with `load_settings()`."""

    model_config = SettingsConfigDict(env_prefix="LORAG_", env_nested_delimiter="__", extra="forbid")

    home: Path = Path(".lorag")
    """Where lorag keeps its state: index snapshots and the adapter registry."""
    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "lorag")
    """Where pulled models are kept (shared by every checkout of one user)."""
    chat_model: str = DEFAULT_CHAT_MODEL
    """The base chat model: a packaged name (`lorag models list`), a local directory or a hub id."""
    embedder: str = DEFAULT_EMBEDDER
    """The sentence-transformers embedder: a packaged name, a local directory or a hub id, optionally with
    the backend that runs it: `<model>@torch`, `@onnx` (ONNX Runtime), `@openvino`, and `@onnx-int8` /
    `@openvino-int8` for int8 weights (`lorag models pull` exports the model file once). Without a suffix:
    torch on a CUDA GPU, OpenVINO on a CPU (2-3x torch's chunks/s here, same recall). The backend is
    part of the embedder's name in snapshots: changing it rebuilds the index (see `core/embedder_spec.py`)."""
    host: str = "127.0.0.1"
    port: int = 8000
    api_keys: list[str | ApiKey] = Field(default_factory=list)
    """Bearer tokens the gateway accepts: a string may use every route, an `ApiKey` only its `routes`.
    Empty means no authentication, which is refused on a non-loopback address."""
    admin_keys: list[str] = Field(default_factory=list)
    """Bearer tokens for `/admin/*` (snapshot reload, adapter load, status) and `/metrics`; they also work as
    API keys. With no keys at all (loopback development) admin routes are open."""
    strict_requests: bool = False
    """Reject request fields the gateway does not know (400) instead of passing them to vLLM and logging."""
    max_request_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """Larger request bodies are refused with 413."""
    max_in_flight: int = Field(default=64, ge=1)
    """Requests sent to vLLM at once; more wait in a queue."""
    max_queue: int = Field(default=256, ge=0)
    """Requests waiting for a slot; past this the gateway answers 429 with Retry-After."""
    default_max_tokens: int = Field(default=512, ge=1)
    """Answer length (tokens) for requests that set no `max_tokens` / `max_completion_tokens`, as stock
    clients (the openai SDK, LangChain) send them: sent to vLLM, and kept free in the context budget. Without
    it vLLM generates to the end of the context. A route may set its own."""
    max_tokens_cap: int = Field(default=2048, ge=1)
    """The most tokens any request may generate; a larger `max_tokens` is clamped and the response's
    `lorag.max_tokens_capped` says so. A route may set its own."""
    answer_reserve_tokens: int | None = Field(default=None, ge=1)
    """Deprecated: the old name of `default_max_tokens` (which also limits generation); still read, with a
    warning, when `default_max_tokens` is not set."""
    json_logs: bool = True
    """One JSON object per log line (with request ids); false: plain text."""
    restart_vllm: bool = True
    """Restart a managed vLLM that dies, then re-load every adapter the gateway uses."""
    vllm_url: str | None = None
    """An already running vLLM OpenAI server (e.g. `http://vllm:8000`); unset starts a managed one."""
    vllm_replicas: str | None = None
    """With several vLLM replicas behind `vllm_url` (a Service): where each replica is, so that adapters are
    loaded into all of them — a headless Service URL whose host resolves to every pod
    (`http://vllm-replicas:8000`) or a comma-separated list of URLs. Unset: `vllm_url` is one server."""
    vllm_api_key: str | None = None
    """The key of the external vLLM server. A managed one uses it if set (so that other gateways can share
    that server), else a fresh random key each start, known only to this gateway."""
    request_timeout_s: float = 300.0
    vllm: VLLMSettings = Field(default_factory=VLLMSettings)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    teacher: TeacherSettings = Field(default_factory=TeacherSettings)
    adapter_poll_s: float = Field(default=5.0, gt=0)
    """How often a gateway follows the registry's adapter aliases (promote/rollback without a restart) and
    re-loads adapters vLLM no longer lists."""
    adapter_keep_s: float | None = Field(default=600.0, ge=0)
    """An adapter version no route serves any more (after a promotion or rollback) is unloaded from vLLM
    once it has had no request for this long; a request pinned to it later loads it again. None: never.
    (On CPU this is safe with the cpu_lora plugin: vllm-cpu's own ops served base requests with the last
    adapter slot's weights, which an unload and re-load made visible.)"""
    snapshot_poll_s: float = Field(default=2.0, gt=0)
    """How often a gateway checks whether the index's `current` snapshot changed (hot swap)."""
    refresh_every_s: float | None = Field(default=None, gt=0)
    """Refresh the index in the gateway process this often (`lorag serve --refresh-every 15m`); unset:
    refreshes come from elsewhere (`lorag index refresh` in cron or a CronJob)."""
    corpus_dir: Path | None = None
    """Documents indexed by `lorag index build`; unset uses the demo corpus shipped with lorag."""
    routes: dict[str, RouteConfig] = Field(default_factory=default_routes)
    promotion_margin: float = Field(default=0.05, ge=0.0, le=1.0)
    """`lorag adapters promote` refuses a candidate adapter whose mean score on its route's eval set is below
    the current version's by more than this (`--force` overrides)."""
    prices: dict[str, Price] = Field(default_factory=dict)
    """What each route costs, for evaluation reports: route name (or `*` for all) → per-million-token prices
    (`input_per_million`, `output_per_million`) or `gpu_hour` + `gpus` (see `eval/cost.py`)."""

    @field_validator("api_keys")
    @classmethod
    def _no_blank_keys(cls, keys: list[str | ApiKey]) -> list[str | ApiKey]:
        # A blank key (an unexpanded template, say) would accept a blank token: authentication off.
        if any(not (key if isinstance(key, str) else key.key).strip() for key in keys):
            raise ValueError("api_keys must not contain empty or blank keys")
        return keys

    @field_validator("embedder")
    @classmethod
    def _known_embedder_backend(cls, ref: str) -> str:
        parse_embedder_ref(ref)  # raises, naming the backends, on `model@tensorrt` and the like
        return ref

    @field_validator("admin_keys")
    @classmethod
    def _no_blank_admin_keys(cls, keys: list[str]) -> list[str]:
        if any(not key.strip() for key in keys):
            raise ValueError("admin_keys must not contain empty or blank keys")
        return keys

    @field_validator("routes")
    @classmethod
    def _route_names(cls, routes: dict[str, RouteConfig]) -> dict[str, RouteConfig]:
        for name in routes:
            if not name or "@" in name or "/" in name or name != name.strip():
                raise ValueError(f"route name {name!r} must be non-empty, without '@', '/' or spaces")
        return routes

    @model_validator(mode="after")
    def _answer_lengths(self) -> Settings:
        if self.answer_reserve_tokens is not None:
            ignored = "default_max_tokens" in self.model_fields_set
            warnings.warn(
                "answer_reserve_tokens is deprecated: "
                + ("ignored, default_max_tokens is set" if ignored else "use default_max_tokens"),
                FutureWarning,
                stacklevel=2,
            )
            if not ignored:
                self.default_max_tokens = self.answer_reserve_tokens
        for name, route in {"": RouteConfig(), **self.routes}.items():
            default = route.default_max_tokens or self.default_max_tokens
            cap = route.max_tokens_cap or self.max_tokens_cap
            if default > cap:
                where = f"route {name!r}: " if name else ""
                raise ValueError(f"{where}default_max_tokens ({default}) is above max_tokens_cap ({cap})")
        return self

    @property
    def index_dir(self) -> Path:
        """Root of the index snapshots."""
        return self.home / "index"

    @property
    def thresholds_dir(self) -> Path:
        """Versioned `auto` thresholds written by `lorag eval calibrate` (`current` points at one)."""
        return self.home / "thresholds"

    @property
    def adapters_dir(self) -> Path:
        """Root of the adapter registry."""
        return self.home / "adapters"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if settings_cls.model_config.get("yaml_file"):
            sources.append(YamlConfigSettingsSource(settings_cls))
        return tuple(sources)


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in `90`, `90s`, `15m`, `2h` or `1d`; a clear error for anything else."""
    value = text.strip().lower()
    unit = value[-1:] if value[-1:] in _DURATION_UNITS else "s"
    number = value[:-1] if value[-1:] in _DURATION_UNITS else value
    try:
        seconds = float(number) * _DURATION_UNITS[unit]
    except ValueError:
        raise ValueError(f"{text!r} is not a duration: use e.g. 90s, 15m, 2h or 1d") from None
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return seconds


def config_path(explicit: Path | None = None) -> Path | None:
    """The YAML file to read: the explicit one, else `$LORAG_CONFIG`, else `./lorag.yaml` if present."""
    if explicit is not None:
        if not explicit.is_file():
            raise FileNotFoundError(errno.ENOENT, "no such settings file", str(explicit))
        return explicit
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return config_path(Path(from_env))
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from defaults, the YAML file, the environment and `overrides` (highest first last).

    `overrides` are CLI flags; None values are ignored so that unset flags do not mask other sources.
    """
    path = config_path(config)
    cls: type[Settings] = Settings
    if path is not None:
        model_config = SettingsConfigDict(**{**Settings.model_config, "yaml_file": path})
        cls = type("FileSettings", (Settings,), {"model_config": model_config, "__doc__": Settings.__doc__})
    try:
        return cls(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        source = f"settings ({path}, LORAG_* variables, options)" if path else "settings"
        raise ValueError(f"{source}: {validation_message(exc)}") from None


def validation_message(exc: ValidationError) -> str:
    """A pydantic error as one line: each bad field's dotted path and what is wrong with it."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'value'}: {error['msg']}" for error in exc.errors()
    )
