"""A closed-loop load generator for OpenAI-compatible streaming chat: N clients, fixed prompts, SSE timings.

Each client sends its prompt `requests_per_client` times, one after the other, with `stream=True`; all
clients start together. Per request it records the time to the first content token (TTFT), the gaps
between later content chunks (inter-token latency, ITL; vLLM streams one chunk per token) and the number
of output tokens (from the final `usage` chunk that `stream_options.include_usage` asks for, else the
number of content chunks). The metrics helpers are pure, so they are unit-tested without a server.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from core.stats import percentile

DONE = "[DONE]"


@dataclass
class StreamResult:
    """One streamed request, timed from the moment it was sent."""

    ttft_s: float | None = None
    """Seconds to the first chunk with non-empty content (None: no content arrived)."""
    gaps_s: list[float] = field(default_factory=list)
    """Seconds between consecutive content chunks after the first."""
    output_tokens: int = 0
    wall_s: float = 0.0
    error: str | None = None


@dataclass(frozen=True)
class PassMetrics:
    """One pass of the load against one target."""

    output_tok_s: float
    requests_s: float
    ttft_p50_ms: float
    ttft_p99_ms: float
    itl_p50_ms: float
    requests: int
    errors: int
    wall_s: float
    error_sample: str | None = None
    """The first failed request's error, if any."""
    ttft_p50_by_wave_ms: tuple[float, ...] = ()
    """TTFT p50 of each wave: wave k is the k-th request of every client (see `wave_ttft_p50_ms`)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile_ms(seconds: Sequence[float], q: float) -> float:
    """The `q`-th percentile of `seconds` in milliseconds; NaN for a pass in which no request succeeded."""
    return percentile(seconds, q) * 1000 if seconds else math.nan


def parse_sse_line(line: str) -> dict[str, Any] | str | None:
    """A `data:` line's JSON payload, `DONE` for the terminator, None for anything else (comments, blanks)."""
    if not line.startswith("data:"):
        return None
    data = line[len("data:") :].strip()
    if data == DONE:
        return DONE
    payload: dict[str, Any] = json.loads(data)
    return payload


def chunk_content(chunk: dict[str, Any]) -> str:
    """The text a chat-completion chunk adds (the first choice's delta content), "" if none."""
    choices = chunk.get("choices") or []
    if not choices:
        return ""
    return (choices[0].get("delta") or {}).get("content") or ""


def record_chunk(
    result: StreamResult, chunk: dict[str, Any], started: float, now: float, last: float
) -> float:
    """Fold one decoded chunk into `result`; returns the time of the latest content chunk."""
    if "error" in chunk:
        result.error = str(chunk["error"].get("message", chunk["error"]))
        return last
    usage = chunk.get("usage")
    if usage and usage.get("completion_tokens") is not None:
        result.output_tokens = int(usage["completion_tokens"])
    if not chunk_content(chunk):
        return last
    if result.ttft_s is None:
        result.ttft_s = now - started
    else:
        result.gaps_s.append(now - last)
    return now


def wave_ttft_p50_ms(per_client: Sequence[Sequence[StreamResult]]) -> tuple[float, ...]:
    """The TTFT p50 of each wave, wave k being the k-th request of every client.

    Closed-loop clients that start together and ask for the same number of tokens send their k-th
    requests at about the same time, so a pass is a few bursts; the pass's p50 falls between two of them
    and jumps when one burst is late. Per wave, a late burst shows as itself.
    """
    waves = max((len(results) for results in per_client), default=0)

    def ttfts(k: int) -> list[float]:
        wave = (results[k] for results in per_client if k < len(results))
        return [r.ttft_s for r in wave if r.error is None and r.ttft_s is not None]

    return tuple(percentile_ms(ttfts(k), 50) for k in range(waves))


def summarize(results: Sequence[StreamResult], wall_s: float, waves: Sequence[float] = ()) -> PassMetrics:
    """Throughput over the pass's wall time and latency percentiles over its successful requests;
    `waves`: the per-wave TTFT p50s, if the caller knows the waves."""
    ok = [r for r in results if r.error is None and r.ttft_s is not None]
    ttfts = [r.ttft_s for r in ok if r.ttft_s is not None]
    gaps = [gap for r in ok for gap in r.gaps_s]
    tokens = sum(r.output_tokens for r in ok)
    return PassMetrics(
        output_tok_s=tokens / wall_s if wall_s > 0 else 0.0,
        requests_s=len(ok) / wall_s if wall_s > 0 else 0.0,
        ttft_p50_ms=percentile_ms(ttfts, 50),
        ttft_p99_ms=percentile_ms(ttfts, 99),
        itl_p50_ms=percentile_ms(gaps, 50),
        requests=len(results),
        errors=len(results) - len(ok),
        wall_s=wall_s,
        error_sample=next((r.error or "no content" for r in results if r.error or r.ttft_s is None), None),
        ttft_p50_by_wave_ms=tuple(waves),
    )


@dataclass(frozen=True)
class Target:
    """Where to send the load: an OpenAI-compatible base URL (without /v1), its key and the model name."""

    label: str
    url: str
    model: str
    api_key: str | None = None


def request_body(model: str, prompt: str, max_tokens: int) -> dict[str, Any]:
    """A fixed-length streaming request: greedy, `ignore_eos` (a vLLM field the gateway passes through)."""
    return {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": max_tokens,
        "temperature": 0,
        "ignore_eos": True,
    }


async def stream_one(client: httpx.AsyncClient, target: Target, body: dict[str, Any]) -> StreamResult:
    """Send one streaming request and time its chunks; failures are recorded, never raised."""
    result = StreamResult()
    headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
    started = last = time.perf_counter()
    try:
        async with client.stream(
            "POST", f"{target.url}/v1/chat/completions", json=body, headers=headers
        ) as response:
            if response.status_code >= 400:
                result.error = f"HTTP {response.status_code}: {(await response.aread())[:200]!r}"
                return result
            async for line in response.aiter_lines():
                payload = parse_sse_line(line)
                if payload == DONE:
                    break
                if isinstance(payload, dict):
                    last = record_chunk(result, payload, started, time.perf_counter(), last)
    except (httpx.HTTPError, json.JSONDecodeError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        result.wall_s = time.perf_counter() - started
    if result.output_tokens == 0 and result.ttft_s is not None:
        result.output_tokens = len(result.gaps_s) + 1  # no usage chunk: count content chunks
    return result


async def run_load(
    target: Target, prompts: Sequence[str], clients: int, requests_per_client: int, max_tokens: int
) -> PassMetrics:
    """One pass: `clients` concurrent closed-loop clients, client i sending `prompts[i % len(prompts)]`."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=httpx.Timeout(600.0, connect=10.0), limits=limits) as client:

        async def one_client(i: int) -> list[StreamResult]:
            body = request_body(target.model, prompts[i % len(prompts)], max_tokens)
            return [await stream_one(client, target, body) for _ in range(requests_per_client)]

        started = time.perf_counter()
        per_client = await asyncio.gather(*(one_client(i) for i in range(clients)))
        wall_s = time.perf_counter() - started
    return summarize([r for results in per_client for r in results], wall_s, wave_ttft_p50_ms(per_client))
