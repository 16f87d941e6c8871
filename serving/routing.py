"""Routing: which vLLM model and retrieval policy answer a request's `model` (pure functions)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from core.settings import RouteConfig, Settings
from core.types import ModelRef
from serving.answer_length import AnswerLength
from serving.errors import NotFoundError

DEFAULT_LENGTH = AnswerLength(
    Settings.model_fields["default_max_tokens"].default, Settings.model_fields["max_tokens_cap"].default
)
"""The answer length of routes that set none, when no settings say otherwise (`Settings`' defaults)."""


@dataclass(frozen=True)
class ServedAdapter:
    """A registered adapter version as the gateway serves it."""

    ref: ModelRef
    """Its name and version, `demo@v2`: what responses, `/v1/models` and metrics show."""
    path: str
    """The directory vLLM loads it from."""
    digest: str | None = None
    """The first 8 hex digits of the registry's `adapter_sha256` (None: the registry recorded none)."""

    @property
    def upstream_name(self) -> str:
        """The name vLLM serves it under: `demo@v2-1a2b3c4d`. vLLM takes a name it already holds as loaded,
        so two registries sharing one vLLM, each with its own `demo@v2`, must not load them under the same
        name: the content hash keeps them apart (and a changed adapter never reuses a name)."""
        return f"{self.ref}-{self.digest}" if self.digest else str(self.ref)


@dataclass(frozen=True)
class Route:
    """A resolved route: everything the chat handler needs to serve one `model` name."""

    name: str
    upstream_model: str
    """The vLLM model name: the base model or a versioned adapter."""
    adapter: ServedAdapter | None
    retrieval: str
    k: int
    description: str = ""
    search: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for the searcher: `mode`, `filters`, `recency_half_life_days`."""
    auto_threshold: float | None = None
    """The route config's pinned `auto` threshold (None: calibrated or default)."""
    context_header: str | None = None
    """The instruction above the sources (None: lorag's default)."""
    answer: AnswerLength = DEFAULT_LENGTH
    """The default and the cap on generated tokens."""
    pinned: str | None = None
    """The adapter version a request pinned (`model="demo@v2"`); None: the route's current version."""

    @property
    def model_name(self) -> str:
        """The name responses and metrics report: the route, with `@version` when the request pinned one."""
        return str(ModelRef(self.name, self.pinned))


class RouteConfigError(ValueError):
    """The configured routes cannot be served (e.g. an adapter that is not registered)."""


def build_routes(
    configs: Mapping[str, RouteConfig],
    base_model: str,
    adapters: Mapping[str, ServedAdapter],
    length: AnswerLength = DEFAULT_LENGTH,
) -> dict[str, Route]:
    """Resolve route configs against the base model's served name and the registry's current adapters;
    `length` applies where a route sets no answer length of its own."""
    routes: dict[str, Route] = {}
    for name, config in configs.items():
        adapter = None
        if config.adapter is not None:
            adapter = adapters.get(config.adapter)
            if adapter is None:
                raise RouteConfigError(
                    f"route {name!r} needs adapter {config.adapter!r}, which is not registered "
                    "(run `lorag demo prepare` for the demo adapter, or `lorag train`)"
                )
        upstream = adapter.upstream_name if adapter else base_model
        routes[name] = Route(
            name,
            upstream,
            adapter,
            config.retrieval,
            config.k,
            config.description,
            search_options(config),
            config.auto_threshold,
            config.context_header,
            answer_length(config, length),
        )
    return routes


def answer_length(config: RouteConfig, fallback: AnswerLength) -> AnswerLength:
    """The route's own answer length, field by field, else `fallback`'s."""
    default = config.default_max_tokens or fallback.default
    cap = config.max_tokens_cap or fallback.cap
    try:
        return AnswerLength(default, cap)
    except ValueError as exc:
        raise RouteConfigError(str(exc)) from exc


def search_options(config: RouteConfig) -> dict[str, Any]:
    """The searcher arguments a route's config asks for; empty for the default dense search."""
    from retrieval.hybrid import filters_from_spec

    options: dict[str, Any] = {}
    if config.search != "dense":
        options["mode"] = config.search
    if config.filters:
        try:
            options["filters"] = filters_from_spec(config.filters)
        except ValueError as exc:
            raise RouteConfigError(f"route filters: {exc}") from exc
    if config.recency_half_life_days is not None:
        options["recency_half_life_days"] = config.recency_half_life_days
    return options


def pin_route(route: Route, adapter: ServedAdapter) -> Route:
    """`route` served by a specific adapter version, reported under the pinned name (`demo+rag@v2`)."""
    return replace(route, upstream_model=adapter.upstream_name, adapter=adapter, pinned=adapter.ref.version)


def retarget(routes: Mapping[str, Route], name: str, adapter: ServedAdapter) -> dict[str, Route]:
    """A copy of `routes` whose routes on adapter `name` are served by `adapter` (pure)."""
    return {
        key: replace(route, upstream_model=adapter.upstream_name, adapter=adapter)
        if route.adapter is not None and route.adapter.ref.name == name
        else route
        for key, route in routes.items()
    }


def select_route(routes: Mapping[str, Route], model: str) -> Route:
    """The route a request names, or a 404 listing the ones that exist."""
    route = routes.get(model)
    if route is None:
        known = ", ".join(sorted(routes))
        raise NotFoundError(
            f"The model {model!r} does not exist. Available models: {known}.",
            param="model",
            code="model_not_found",
        )
    return route
