"""`lorag eval run`: every question through every route of a gateway, with the official `openai` client.

This is the production path — the same routes, prompts, adapters and snapshots users get — so what the
report says is what users would see. Requests stream (to measure time to first token) and ask the gateway
for its sources' text (`lorag.include_text`), which lexical support is computed from.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from eval.datasets import Question
from eval.records import Record

Progress = Callable[[int, int], None]
"""(done, total) after each request."""


async def ask(
    client: Any,
    question: Question,
    route: str,
    *,
    max_tokens: int,
    temperature: float = 0.0,
    retrieval: str | None = None,
    k: int | None = None,
) -> Record:
    """One question through one route; a failed request becomes a record with `error` set."""
    extension: dict[str, Any] = {"include_text": True}
    if retrieval:
        extension["retrieval"] = retrieval
    if k:
        extension["k"] = k
    record = Record(
        question.id,
        route,
        question.kind,
        question.question,
        list(question.answers),
        list(question.gold_sources),
        getattr(question, "split", None),
    )
    started = time.perf_counter()
    pieces: list[str] = []
    try:
        stream = await client.chat.completions.create(
            model=route,
            messages=[{"role": "user", "content": question.question}],
            max_tokens=max_tokens,
            temperature=temperature,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"lorag": extension},
        )
        async for chunk in stream:
            extra = chunk.model_extra or {}
            if chunk.choices:
                choice = chunk.choices[0]
                if choice.delta and choice.delta.content:
                    if record.ttft_s is None:
                        record.ttft_s = time.perf_counter() - started
                    pieces.append(choice.delta.content)
                if choice.finish_reason:
                    record.finish_reason = choice.finish_reason
            if "lorag" in extra:
                _apply_extension(record, extra["lorag"], extra.get("citations") or [])
            if chunk.usage:
                record.prompt_tokens = chunk.usage.prompt_tokens
                record.completion_tokens = chunk.usage.completion_tokens
    except Exception as exc:  # noqa: BLE001 - one failed request must not end the run; it scores 0
        record.error = f"{type(exc).__name__}: {exc}"
    record.answer = "".join(pieces).strip()
    record.latency_s = time.perf_counter() - started
    return record


def _apply_extension(record: Record, extension: dict[str, Any], citations: list[dict[str, Any]]) -> None:
    record.policy = extension.get("policy")
    record.mode = extension.get("mode")
    record.relevance = extension.get("relevance")
    record.threshold = extension.get("threshold")
    record.adapter = extension.get("adapter")
    record.snapshot = extension.get("snapshot")
    record.citations = citations


async def run_questions(
    client: Any,
    questions: Sequence[Question],
    routes: Sequence[str],
    *,
    max_tokens: int,
    temperature: float = 0.0,
    concurrency: int = 4,
    retrieval: str | None = None,
    k: int | None = None,
    progress: Progress | None = None,
) -> list[Record]:
    """Every (question, route) pair, `concurrency` at a time; records come back in question-then-route
    order whatever order they finished in."""
    pairs = [(question, route) for question in questions for route in routes]
    limit = asyncio.Semaphore(concurrency)
    done = 0

    async def one(question: Question, route: str) -> Record:
        nonlocal done
        async with limit:
            record = await ask(
                client,
                question,
                route,
                max_tokens=max_tokens,
                temperature=temperature,
                retrieval=retrieval,
                k=k,
            )
        done += 1
        if progress is not None:
            progress(done, len(pairs))
        return record

    return list(await asyncio.gather(*(one(question, route) for question, route in pairs)))


def new_run_id() -> str:
    """Sortable and unique: UTC time plus a short random suffix."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
