from __future__ import annotations

import json

import pytest

from core.prices import Price
from eval.summary import item_scores, source_matches, summarize_run, verdict
from tests.eval.synthetic import demo_records, rag_records, record, run_info

PER_TOKEN = {"*": Price(input_per_million=1.0, output_per_million=2.0)}


@pytest.fixture(scope="module")
def summary():
    return summarize_run(run_info(), demo_records() + rag_records(), prices=PER_TOKEN, rate_rps=10)


def test_quality_means_overall_and_by_kind_with_a_failed_request_scored_0(summary):
    demo = summary["routes"]["demo"]
    assert demo["n"] == 4 and demo["errors"] == 1
    overall = demo["quality"]["overall"]
    assert overall["containment"]["mean"] == 0.5 and overall["containment"]["n"] == 4
    assert overall["exact_match"]["mean"] == 0.25
    assert overall["token_f1"]["mean"] == pytest.approx((1 + 0.5 + 0 + 0) / 4)
    assert demo["quality"]["by_kind"]["static"]["containment"]["mean"] == 1.0
    assert demo["quality"]["by_kind"]["evolving"]["containment"] == {
        "mean": 0.0,
        "low": 0.0,
        "high": 0.0,
        "n": 2,
    }
    rag = summary["routes"]["demo+rag"]["quality"]
    assert rag["overall"]["containment"]["mean"] == 0.75
    assert rag["by_kind"]["static"]["containment"]["mean"] == 0.5
    assert rag["by_kind"]["evolving"]["exact_match"]["mean"] == 1.0  # "$319" is "319" once punctuation goes
    low, high = rag["overall"]["containment"]["low"], rag["overall"]["containment"]["high"]
    assert 0 <= low <= 0.75 <= high <= 1


def test_a_failed_request_scores_0_whatever_it_says():
    failed = record("s1", "demo", "Marisol Okafor", error="429")
    assert item_scores(failed) == {"containment": 0.0, "exact_match": 0.0, "token_f1": 0.0}


def test_citation_sources_match_bare_gold_ids_after_a_hash():
    assert source_matches("catalog.jsonl#tents", "tents") and source_matches("tents", "tents")
    assert not source_matches("catalog.jsonl#old-tents", "tents")
    assert not source_matches("tents.jsonl", "tents")


def test_recall_and_mrr_over_cited_questions_with_gold_sources(summary):
    retrieval = summary["routes"]["demo+rag"]["retrieval"]
    # e1: recall 1, rank 2; e2: recall 1/2, rank 1. s1 cites but has no gold; s2 cites nothing.
    assert retrieval["recall"]["mean"] == 0.75 and retrieval["recall"]["n"] == 2
    assert retrieval["mrr"]["mean"] == 0.75
    assert retrieval["k"] == [1, 2]
    assert summary["routes"]["demo"]["retrieval"]["recall"] == {
        "mean": None,
        "low": None,
        "high": None,
        "n": 0,
    }


def test_lexical_support_and_rag_share_count_rag_answers_only(summary):
    rag = summary["routes"]["demo+rag"]["retrieval"]
    # s1, e1, e2 are rag and every answer token is in their sources; s2's "Quillfern" (mode none) is left out.
    assert rag["lexical_support"]["mean"] == 1.0 and rag["lexical_support"]["n"] == 3
    assert rag["rag_share"] == 0.75
    demo = summary["routes"]["demo"]["retrieval"]
    assert demo["lexical_support"]["n"] == 0 and demo["rag_share"] == 0.0


def test_latency_and_tokens_over_answered_requests(summary):
    demo = summary["routes"]["demo"]
    # 1, 2, 3 s (the failed request's 0.1 s is left out): p95 = 2 + 0.9 * (3 - 2).
    assert demo["latency"] == {"p50": 2.0, "p95": pytest.approx(2.9), "ttft_p50": None}
    assert demo["tokens"] == {"prompt": 50.0, "completion": 10.0, "total": 60.0}
    rag = summary["routes"]["demo+rag"]
    assert rag["tokens"]["prompt"] == (250 + 50 + 250 + 250) / 4
    assert rag["latency"]["ttft_p50"] == 0.5


def test_cost_per_1000_and_projection_from_a_per_token_price(summary):
    # demo+rag: 200 prompt tokens at $1/M + 10 completion at $2/M = $0.00022 a request, $0.22 per 1,000;
    # 10 requests/s for an hour: 0.00022 * 10 * 3600 = $7.92.
    cost = summary["routes"]["demo+rag"]["cost"]
    assert cost["price"] == "*" and cost["basis"] == "per_token"
    assert cost["per_1000"] == pytest.approx(0.22)
    assert cost["projection"]["per_hour"] == pytest.approx(7.92)
    assert cost["projection"]["per_month"] == pytest.approx(7.92 * 24 * 30)
    assert summary["routes"]["demo"]["cost"]["per_1000"] == pytest.approx(0.07)


def test_gpu_hour_prices_use_the_measured_capacity_or_are_skipped():
    prices = {"demo": Price(gpu_hour=3.6), "demo+rag": Price(gpu_hour=3.6)}
    info = run_info(capacity_rps={"demo": 2.0})
    summary = summarize_run(info, demo_records() + rag_records(), prices=prices, rate_rps=3)
    demo = summary["routes"]["demo"]["cost"]
    # $3.6 an hour is $0.001 a second; at 2 requests/s, $0.0005 a request: $0.50 per 1,000.
    assert demo["per_1000"] == pytest.approx(0.5) and demo["basis"] == "gpu_hour"
    assert demo["projection"]["replicas"] == 2 and demo["projection"]["per_hour"] == pytest.approx(7.2)
    assert summary["routes"]["demo+rag"]["cost"] is None
    assert "capacity" in summary["routes"]["demo+rag"]["cost_note"]


def test_without_prices_the_run_s_recorded_prices_apply_and_none_means_no_cost():
    info = run_info(prices={"demo": {"input_per_million": 1.0, "output_per_million": 2.0}})
    summary = summarize_run(info, demo_records() + rag_records())
    assert summary["routes"]["demo"]["cost"]["per_1000"] == pytest.approx(0.07)
    assert summary["routes"]["demo+rag"]["cost"] is None
    assert summary["routes"]["demo+rag"]["cost_note"] == "no price for this route"


def test_best_route_overall_and_by_kind(summary):
    best = summary["best_route"]
    assert best["overall"] == {"route": "demo+rag", "containment": 0.75, "tied_with": []}
    assert best["by_kind"]["static"]["route"] == "demo"
    assert best["by_kind"]["evolving"]["route"] == "demo+rag"


def test_paired_difference_between_routes_on_the_same_questions(summary):
    paired = summary["paired"]["demo+rag vs demo"]
    # Per question demo+rag − demo: s1 0, s2 −1, e1 +1, e2 +1.
    assert paired["overall"]["difference"]["mean"] == 0.25 and paired["overall"]["difference"]["n"] == 4
    assert paired["overall"]["candidate"] == 0.75 and paired["overall"]["baseline"] == 0.5
    evolving = paired["by_kind"]["evolving"]
    assert evolving["difference"] == {"mean": 1.0, "low": 1.0, "high": 1.0, "n": 2}
    assert evolving["verdict"] == "better"
    assert paired["by_kind"]["static"]["difference"]["mean"] == -0.5
    assert paired["by_kind"]["static"]["verdict"] == "no clear change"  # [−1, 0] reaches 0


def test_verdict_reads_the_interval():
    assert verdict({"mean": -0.2, "low": -0.3, "high": -0.1, "n": 9}) == "worse"
    assert verdict({"mean": 0.0, "low": -0.1, "high": 0.1, "n": 9}) == "no clear change"
    assert verdict({"mean": None, "low": None, "high": None, "n": 0}) is None


def test_the_summary_is_json(summary):
    assert json.loads(json.dumps(summary)) == summary


def test_two_records_for_one_question_and_route_are_refused():
    with pytest.raises(ValueError, match="two records for question 's1' on route 'demo'"):
        summarize_run(run_info(), demo_records() + demo_records()[:1])
