"""One evaluation run's numbers, per route: quality by question kind with bootstrap intervals, retrieval,
latency, tokens and cost, plus the best route and paired differences between routes. Pure: data in, a
JSON-able dict out (`eval.report` writes it; `eval.compare` compares two of them).

How the records are counted:

- Quality (answer containment, exact match, token F1) is over every record of the route: a request that
  failed (`error` set) scores 0 and is also counted in `errors`, so that a route cannot look better by failing
  on the hard questions.
- Retrieval recall and MRR are over records whose question has `gold_sources` and whose reply has
  citations; recall looks at all of the reply's citations (k = their number, which `k` lists). The gateway
  may name a source `file.jsonl#id` where the dataset's gold says `id`: a citation matches a gold source if
  they are equal or if the citation ends with `#<gold>` (`source_matches`). Records that an `auto` policy
  answered without retrieving are left out of recall; `rag_share` says how many there were.
- Lexical support is over records with mode `rag` only: without sources there is nothing to support.
- Latency, tokens per request, the `rag` share and hence cost are over the requests that were answered;
  a failed request's latency (an instant 429, say) and its zero tokens would only blur them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations
from typing import Any

from pydantic import ValidationError

from eval.bootstrap import Summary, paired_difference, summarize
from eval.cost import Price, cost_per_1000, projection
from eval.metrics import answer_contained, exact_match_score, f1_score, lexical_support_score, percentile
from eval.records import Record, RunInfo

METRICS = ("containment", "exact_match", "token_f1")
"""The answer metrics, each scored per record (see `item_scores`)."""
OVERALL = "overall"


def item_scores(record: Record) -> dict[str, float]:
    """The record's answer metrics, 0 for each when the request failed."""
    if record.error is not None:
        return dict.fromkeys(METRICS, 0.0)
    return {
        "containment": 1.0 if answer_contained(record.answer, record.answers) else 0.0,
        "exact_match": exact_match_score(record.answer, record.answers),
        "token_f1": f1_score(record.answer, record.answers),
    }


def source_matches(cited: str, gold: str) -> bool:
    """True if a citation's source is the gold source: equal, or a `file#id` path that ends with `#<gold>`."""
    return cited == gold or cited.endswith(f"#{gold}")


def retrieval_scores(record: Record) -> tuple[float, float] | None:
    """(recall over all citations, reciprocal rank of the first gold citation), or None when the question has
    no gold sources or the reply no citations."""
    cited, gold = record.retrieved_sources, set(record.gold_sources)
    if not gold or not cited:
        return None
    found = {g for g in gold if any(source_matches(c, g) for c in cited)}
    rank = next((i for i, c in enumerate(cited, 1) if any(source_matches(c, g) for g in gold)), None)
    return len(found) / len(gold), (1.0 / rank if rank else 0.0)


def by_route(info: RunInfo, records: Iterable[Record]) -> dict[str, dict[str, Record]]:
    """Route → question id → record, routes in the run's order (then any it did not list)."""
    grouped: dict[str, dict[str, Record]] = {route: {} for route in info.routes}
    for record in records:
        answered = grouped.setdefault(record.route, {})
        if record.question_id in answered:
            raise ValueError(f"two records for question {record.question_id!r} on route {record.route!r}")
        answered[record.question_id] = record
    return {route: answered for route, answered in grouped.items() if answered}


def run_prices(info: RunInfo) -> dict[str, Price]:
    """The prices a run recorded in `run.json` (route or `*` → `Price`)."""
    try:
        return {key: Price(**fields) for key, fields in info.prices.items()}
    except ValidationError as exc:
        raise ValueError(f"run {info.run_id}: a price in run.json is not valid: {exc}") from exc


def summarize_run(
    info: RunInfo,
    records: list[Record],
    *,
    prices: dict[str, Price] | None = None,
    rate_rps: float = 10.0,
) -> dict[str, Any]:
    """The run's numbers as a JSON-able dict (see the module docstring for what each counts).

    `prices` maps a route, or `*` for every other route, to its price; None uses the prices the run
    recorded (`info.prices`). The projection prices a steady `rate_rps` requests per second.
    """
    routes = by_route(info, records)
    kinds = sorted({record.kind for record in records})
    priced = run_prices(info) if prices is None else prices
    summaries = {
        route: _route_summary(list(answered.values()), kinds, route, priced, info, rate_rps)
        for route, answered in routes.items()
    }
    return {
        "run": {
            "run_id": info.run_id,
            "dataset": info.dataset,
            "created_at": info.created_at,
            "questions": info.questions or len({r.question_id for r in records}),
        },
        "kinds": kinds,
        "rate_rps": rate_rps,
        "routes": summaries,
        "best_route": best_routes(summaries, kinds),
        "paired": paired_routes(routes, kinds),
    }


def _route_summary(
    records: list[Record],
    kinds: list[str],
    route: str,
    prices: Mapping[str, Price],
    info: RunInfo,
    rate_rps: float,
) -> dict[str, Any]:
    answered = [r for r in records if r.error is None]
    tokens = _tokens(answered)
    cost, cost_note = _cost(route, prices, info.capacity_rps.get(route), tokens, rate_rps)
    return {
        "n": len(records),
        "errors": len(records) - len(answered),
        "quality": {
            OVERALL: _quality(records),
            "by_kind": {kind: _quality([r for r in records if r.kind == kind]) for kind in kinds},
        },
        "retrieval": _retrieval(records, answered),
        "latency": _latency(answered),
        "tokens": tokens,
        "cost": cost,
        "cost_note": cost_note,
    }


def _quality(records: Sequence[Record]) -> dict[str, Summary]:
    scores = [item_scores(record) for record in records]
    return {metric: summarize([s[metric] for s in scores]) for metric in METRICS}


def _retrieval(records: Sequence[Record], answered: Sequence[Record]) -> dict[str, Any]:
    scored = [s for s in map(retrieval_scores, records) if s is not None]
    rag = [r for r in answered if r.mode == "rag"]
    return {
        "k": sorted({len(r.citations) for r in records if r.gold_sources and r.citations}),
        "recall": summarize([recall for recall, _ in scored]),
        "mrr": summarize([rr for _, rr in scored]),
        "lexical_support": summarize([lexical_support_score(r.answer, r.retrieved_texts) for r in rag]),
        "rag_share": len(rag) / len(answered) if answered else None,
    }


def _latency(answered: Sequence[Record]) -> dict[str, float | None]:
    seconds = [r.latency_s for r in answered]
    ttft = [r.ttft_s for r in answered if r.ttft_s is not None]
    return {
        "p50": percentile(seconds, 50) if seconds else None,
        "p95": percentile(seconds, 95) if seconds else None,
        "ttft_p50": percentile(ttft, 50) if ttft else None,
    }


def _tokens(answered: Sequence[Record]) -> dict[str, float | None]:
    if not answered:
        return {"prompt": None, "completion": None, "total": None}
    prompt = sum(r.prompt_tokens for r in answered) / len(answered)
    completion = sum(r.completion_tokens for r in answered) / len(answered)
    return {"prompt": prompt, "completion": completion, "total": prompt + completion}


def _cost(
    route: str,
    prices: Mapping[str, Price],
    capacity_rps: float | None,
    tokens: Mapping[str, float | None],
    rate_rps: float,
) -> tuple[dict[str, Any] | None, str | None]:
    """(cost per 1,000 requests and the projection at `rate_rps`, None) or (None, why it was skipped)."""
    key = route if route in prices else "*" if "*" in prices else None
    if key is None:
        return None, "no price for this route"
    price = prices[key]
    if price.per_gpu_hour and not capacity_rps:
        return None, "GPU-hour price but no measured capacity_rps for this route"
    prompt, completion = tokens["prompt"], tokens["completion"]
    if prompt is None or completion is None:
        return None, "no answered requests to measure tokens on"
    capacity = capacity_rps if price.per_gpu_hour else None
    per_1000 = cost_per_1000(price, prompt, completion, capacity_rps=capacity)
    return {
        "price": key,
        "basis": "gpu_hour" if price.per_gpu_hour else "per_token",
        "capacity_rps": capacity,
        "per_1000": per_1000,
        "projection": projection(price, per_1000 / 1000, rate_rps, capacity_rps=capacity),
    }, None


def best_routes(routes: Mapping[str, Mapping[str, Any]], kinds: Sequence[str]) -> dict[str, Any]:
    """The route with the highest mean containment, overall and per kind. Routes whose means tie with it are
    listed in `tied_with`: the bootstrap intervals decide whether any gap is real, not this ranking."""

    def best(pick: Any) -> dict[str, Any] | None:
        means = {route: pick(summary)["containment"]["mean"] for route, summary in routes.items()}
        means = {route: mean for route, mean in means.items() if mean is not None}
        if not means:
            return None
        top = max(means, key=lambda route: means[route])  # the first listed on a tie
        tied = [route for route, mean in means.items() if route != top and abs(mean - means[top]) < 1e-12]
        return {"route": top, "containment": means[top], "tied_with": tied}

    return {
        OVERALL: best(lambda s: s["quality"][OVERALL]),
        "by_kind": {kind: best(lambda s, kind=kind: s["quality"]["by_kind"][kind]) for kind in kinds},
    }


def paired_routes(routes: Mapping[str, Mapping[str, Record]], kinds: Sequence[str]) -> dict[str, Any]:
    """`"A vs B"` → the paired difference A − B of containment on the questions both routes answered,
    overall and per kind, for every pair (A is the later route in the run's order, so with the default
    routes `demo+rag` is compared with each of the others)."""
    paired = {}
    for baseline, candidate in combinations(routes, 2):
        a, b = routes[candidate], routes[baseline]
        shared = sorted(set(a) & set(b))
        paired[f"{candidate} vs {baseline}"] = {
            OVERALL: pair(a, b, shared),
            "by_kind": {kind: pair(a, b, [q for q in shared if a[q].kind == kind]) for kind in kinds},
        }
    return paired


def pair(
    candidate: Mapping[str, Record],
    baseline: Mapping[str, Record],
    question_ids: Sequence[str],
    metric: str = "containment",
) -> dict[str, Any]:
    """Candidate − baseline `metric` on the given questions: both means, the paired difference, a verdict."""
    first = [item_scores(candidate[q])[metric] for q in question_ids]
    second = [item_scores(baseline[q])[metric] for q in question_ids]
    difference = paired_difference(first, second)
    return {
        "metric": metric,
        "candidate": sum(first) / len(first) if first else None,
        "baseline": sum(second) / len(second) if second else None,
        "difference": difference,
        "verdict": verdict(difference),
    }


def verdict(difference: Summary) -> str | None:
    """`better` when the whole interval of a difference is above 0, `worse` when below, else `no clear
    change`; None when nothing was paired."""
    low, high = difference["low"], difference["high"]
    if low is None or high is None:
        return None
    return "better" if low > 0 else "worse" if high < 0 else "no clear change"
