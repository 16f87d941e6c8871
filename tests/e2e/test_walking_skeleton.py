"""The whole path with real parts: openai client → gateway → FAISS retrieval → vLLM (+ LoRA) → answer."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from eval.datasets import load_questions
from eval.metrics import answer_contained, containment
from tests.e2e.stack import REPORT

pytestmark = pytest.mark.e2e

ROUTES = ["base", "base+rag", "demo", "demo+rag"]
GREEDY = {"temperature": 0, "max_tokens": 64, "seed": 0}


def ask(client, route: str, question: str, **params):  # type: ignore[no-untyped-def]
    return client.chat.completions.create(
        model=route, messages=[{"role": "user", "content": question}], **{**GREEDY, **params}
    )


def ask_all(client, route: str, questions, workers: int = 8) -> list:  # type: ignore[no-untyped-def]
    # Several at once, as real traffic arrives: vLLM batches them.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda q: ask(client, route, q.question), questions))


def test_time_to_first_answer(client, gateway):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    response = ask(client, "base", "Say hello.", max_tokens=8)
    assert response.choices[0].message.content
    REPORT["first answer after healthy"] = f"{time.monotonic() - started:.2f} s"


def test_models_lists_the_four_routes(client):  # type: ignore[no-untyped-def]
    cards = {model.id: model for model in client.models.list()}
    assert set(ROUTES) <= set(cards)
    assert cards["demo"].model_extra["parent"] == cards["base"].model_extra["root"]
    assert cards["base"].model_extra["parent"] is None


@pytest.mark.parametrize("route", ROUTES)
def test_every_route_answers_streaming_and_not(client, route):  # type: ignore[no-untyped-def]
    question = "What is the price of the Driftglass 3 tent?"
    response = ask(client, route, question)
    text = response.choices[0].message.content
    assert text and response.model == route
    assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0
    citations = response.model_extra["citations"]
    assert bool(citations) == route.endswith("+rag")

    stream = client.chat.completions.create(
        model=route, messages=[{"role": "user", "content": question}], stream=True, **GREEDY
    )
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert all(chunk.model == route for chunk in chunks)
    final = [chunk for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert len(final) == 1
    assert final[0].model_extra["citations"] == citations
    # Greedy decoding through the same server: streaming must not change the answer.
    assert streamed == text


def test_demo_adapter_knows_static_facts_base_does_not(client):  # type: ignore[no-untyped-def]
    static = [q for q in load_questions() if q.kind == "static"]
    scores = {}
    for route in ("demo", "base"):
        answers = [r.choices[0].message.content for r in ask_all(client, route, static)]
        scores[route] = containment(answers, [q.answers for q in static])["score"]
    REPORT["static questions answered (demo / base)"] = (
        f"{scores['demo']:.0%} / {scores['base']:.0%} of {len(static)}"
    )
    assert scores["demo"] >= 0.7
    assert scores["base"] <= 0.2


def test_base_rag_answers_evolving_facts_and_cites_the_right_chunk(client, gateway):  # type: ignore[no-untyped-def]
    evolving = [q for q in load_questions() if q.kind == "evolving"]
    # One at a time: on CPU vLLM a bf16 batch's numbers depend on what shares it, so concurrent greedy
    # answers flip on near-ties (8 or 9 of these 12 across CI runs); alone, each prompt answers the same way.
    responses = ask_all(client, "base+rag", evolving, workers=1)
    answered = containment([r.choices[0].message.content for r in responses], [q.answers for q in evolving])
    right_chunk = [
        cites_answer_chunk(gateway.home, r.model_extra["citations"], q)
        for r, q in zip(responses, evolving, strict=True)
    ]
    REPORT["evolving questions answered by base+rag"] = f"{answered['score']:.0%} of {len(evolving)}"
    REPORT["evolving questions citing the chunk with the answer"] = f"{sum(right_chunk) / len(evolving):.0%}"
    assert answered["score"] >= 0.7
    assert all(right_chunk)


def cites_answer_chunk(home, citations, question) -> bool:  # type: ignore[no-untyped-def]
    """True if a cited chunk is from a gold source and holds one of the answers (read from the snapshot)."""
    for citation in citations:
        if citation["source"] not in question.gold_sources:
            continue
        database = home / "index" / "snapshots" / citation["snapshot"] / "chunks.sqlite"
        with sqlite3.connect(database) as connection:
            query = "SELECT text FROM chunks WHERE chunk_id = ?"
            row = connection.execute(query, (citation["chunk_id"],)).fetchone()
        if row and answer_contained(row[0], question.answers):
            return True
    return False
