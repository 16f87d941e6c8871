"""The promotion gate: a candidate adapter version is served only if it answers the route's frozen eval set
no worse than the current version, by more than a margin.

Both versions answer through the gateway — the production path, with the same prompts and routes users get
— pinned by name (`demo@v3` and `demo@v2`), so the comparison is of exactly the version that would be
replaced. Per-question containment scores go to `eval.gates.promotion_gate`, which gives the verdict and
the numbers; a refusal can be overridden (`force`), and the override is logged and kept in the history.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.types import ModelRef
from eval.datasets import DEMO_DATASET, Question, load_questions
from eval.gates import GateResult, promotion_gate
from eval.metrics import answer_contained
from eval.records import Record
from training.compatibility import serving_requirements
from training.registry import AdapterRegistry, AdapterVersion

if TYPE_CHECKING:
    import httpx

    from core.settings import Settings

log = logging.getLogger("lorag.promotion")
DEFAULT_KINDS = ("static",)
"""An adapter-only route is judged on what the adapter should know: the dataset's `static` questions."""
GATEWAY_LOG = Path("logs") / "promotion-gateway.log"


class PromotionRefusedError(RuntimeError):
    """The gate refused the candidate; `result` holds the numbers."""

    def __init__(self, result: GateResult) -> None:
        super().__init__(f"promotion refused: {result.message} (--force promotes anyway)")
        self.result = result


class GateError(RuntimeError):
    """The gate could not score the candidate (the gateway refused, or served another adapter)."""


@dataclass(frozen=True)
class Promotion:
    """What `promote_with_gate` did."""

    adapter: AdapterVersion
    """The version now current."""
    previous: str | None
    gate: GateResult | None
    """None when there was nothing to gate against (the first version)."""
    forced: bool = False


def adapter_route(settings: Settings, name: str) -> str:
    """The route that serves adapter `name` alone (no retrieval), else any route that uses it."""
    using = [route for route, config in settings.routes.items() if config.adapter == name]
    alone = [route for route in using if settings.routes[route].retrieval == "never"]
    if not using:
        raise ValueError(f"no route serves adapter {name!r}: add one to `routes`, or pass --route")
    return (alone or using)[0]


def gate_questions(dataset: Path, kinds: Sequence[str] | None) -> list[Question]:
    """The frozen eval set: `dataset`'s questions of `kinds` (all of them when None)."""
    questions = [q for q in load_questions(dataset) if kinds is None or q.kind in kinds]
    if not questions:
        raise ValueError(f"{dataset} has no questions of kind {list(kinds or [])}: nothing to gate on")
    return questions


def scores(records: Sequence[Record], route: str) -> list[float]:
    """Per-question containment of one route's answers (a failed request scores 0), in question order."""
    return [
        0.0 if r.error else float(answer_contained(r.answer, r.answers)) for r in records if r.route == route
    ]


async def gate_candidate(
    settings: Settings,
    name: str,
    version: str,
    *,
    gateway_url: str,
    api_key: str | None = None,
    admin_key: str | None = None,
    route: str | None = None,
    dataset: Path = DEMO_DATASET,
    kinds: Sequence[str] | None = DEFAULT_KINDS,
    margin: float | None = None,
    max_tokens: int = 64,
    http_client: httpx.AsyncClient | None = None,
) -> GateResult:
    """Load `name@version` into the gateway's vLLM, answer the eval set with it and with the current version
    through `route`, and judge with `promotion_gate` (`margin` defaults to `settings.promotion_margin`)."""
    import httpx
    from openai import AsyncOpenAI

    from eval.run import run_questions

    route = route or adapter_route(settings, name)
    admin_key = admin_key or next(iter(settings.admin_keys), None)
    current = AdapterRegistry(settings.adapters_dir).current(name)
    questions = gate_questions(dataset, kinds)
    candidate_model = str(ModelRef(route, version))
    models = [candidate_model] + ([str(ModelRef(route, current.version))] if current else [])
    client = http_client or httpx.AsyncClient(timeout=settings.request_timeout_s)
    try:
        await load_version(client, gateway_url, name, version, admin_key)
        openai = AsyncOpenAI(
            base_url=f"{gateway_url.rstrip('/')}/v1",
            api_key=api_key or admin_key or "unused",
            # openai types this as its own `httpx2` client; it takes an httpx one (one pool, one transport).
            http_client=client,  # type: ignore[arg-type]
            max_retries=0,  # a failed answer scores 0 rather than being retried into a different sample
        )
        records = await run_questions(openai, questions, models, max_tokens=max_tokens)
    finally:
        if http_client is None:
            await client.aclose()
    check_answered_by(records, candidate_model, str(ModelRef(name, version)))
    current_scores = scores(records, models[1]) if current else None
    margin = settings.promotion_margin if margin is None else margin
    return promotion_gate(scores(records, candidate_model), current_scores, margin, metric="containment")


async def load_version(
    client: httpx.AsyncClient, gateway_url: str, name: str, version: str, admin_key: str | None
) -> None:
    """`POST /admin/adapters/load`: the gateway loads the version into vLLM under `name@version`."""
    headers = {"Authorization": f"Bearer {admin_key}"} if admin_key else {}
    url = f"{gateway_url.rstrip('/')}/admin/adapters/load"
    response = await client.post(url, json={"name": name, "version": version}, headers=headers)
    if response.status_code != 200:
        raise GateError(f"the gateway did not load {name}@{version}: {response.status_code} {response.text}")


def check_answered_by(records: Sequence[Record], model: str, served_name: str) -> None:
    """Refuse to judge answers the candidate did not give: every request failed, or another adapter
    answered (a gateway that ignores the pin would make the gate compare a version with itself)."""
    mine = [r for r in records if r.route == model]
    if all(r.error for r in mine):
        raise GateError(f"every request to {model} failed, e.g. {mine[0].error}")
    others = {r.adapter for r in mine if not r.error and r.adapter != served_name}
    if others:
        raise GateError(f"{model} was answered by {sorted(map(str, others))}, not {served_name}")


def promote_with_gate(
    settings: Settings,
    name: str,
    version: str,
    *,
    force: bool = False,
    gateway_url: str | None = None,
    **gate_options: Any,
) -> Promotion:
    """Check the version (intact, servable), gate it, and promote it if it passed or `force` is set.

    Without `gateway_url` a `lorag serve` is started on `settings.home` for the gate and stopped after.
    `gate_options` go to `gate_candidate`. A refusal raises `PromotionRefusedError` with the numbers.
    """
    registry = AdapterRegistry(settings.adapters_dir)
    candidate = registry.check(name, version, serving_requirements(settings))
    current = registry.current(name)
    if current is not None and current.version == version:
        return Promotion(candidate, version, None)  # already served: nothing to do
    if current is None:
        # The first version has nothing to be compared with (and no route can serve it yet to ask).
        registry.promote(name, version, reason="first version: no current one to gate against")
        return Promotion(candidate, None, None)
    result = run_gate(settings, name, version, gateway_url, gate_options)
    if not result.passed and not force:
        raise PromotionRefusedError(result)
    if not result.passed:
        log.warning("promoting %s despite the gate (--force): %s", candidate.served_name, result.message)
    registry.promote(name, version, forced=not result.passed, gate=result.message, replacing=current.version)
    return Promotion(candidate, current.version, result, forced=not result.passed)


def run_gate(
    settings: Settings, name: str, version: str, gateway_url: str | None, options: dict[str, Any]
) -> GateResult:
    """`gate_candidate` against `gateway_url`, or against a gateway started for the purpose."""
    if gateway_url:
        return asyncio.run(gate_candidate(settings, name, version, gateway_url=gateway_url, **options))
    from eval.gateway import managed_gateway

    with managed_gateway(settings.home, settings.home / GATEWAY_LOG) as url:
        return asyncio.run(gate_candidate(settings, name, version, gateway_url=url, **options))
