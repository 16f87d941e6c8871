"""`lorag bench serve`'s pure parts: SSE parsing, per-request timing, percentiles, spreads, verdict, table."""

from __future__ import annotations

import asyncio
import json
import math

import httpx
import pytest

from bench import serve_report as report
from bench.hf_generate import TokenClock
from bench.loadgen import (
    DONE,
    StreamResult,
    Target,
    parse_sse_line,
    percentile_ms,
    record_chunk,
    request_body,
    stream_one,
    summarize,
    wave_ttft_p50_ms,
)
from core.processes import parse_port_range


def chunk(content: str | None = None, usage: int | None = None) -> dict:
    choices = [] if content is None else [{"index": 0, "delta": {"content": content}}]
    payload: dict = {"choices": choices}
    if usage is not None:
        payload["usage"] = {"completion_tokens": usage}
    return payload


def test_percentile_ms_is_nan_for_a_pass_without_successes() -> None:
    assert percentile_ms([0.001, 0.003], 50) == pytest.approx(2.0)
    assert math.isnan(percentile_ms([], 50))


def test_parse_sse_line() -> None:
    assert parse_sse_line('data: {"a": 1}') == {"a": 1}
    assert parse_sse_line("data: [DONE]") == DONE
    assert parse_sse_line("") is None
    assert parse_sse_line(": keep-alive") is None


def test_record_chunk_times_first_token_and_gaps_and_takes_usage() -> None:
    result = StreamResult()
    last = record_chunk(result, chunk(""), 0.0, 0.1, 0.0)  # the role chunk carries no token
    assert result.ttft_s is None
    last = record_chunk(result, chunk("Hel"), 0.0, 0.5, last)
    last = record_chunk(result, chunk("lo"), 0.0, 0.6, last)
    last = record_chunk(result, chunk("!"), 0.0, 0.8, last)
    record_chunk(result, chunk(None, usage=3), 0.0, 0.9, last)
    assert result.ttft_s == 0.5
    assert result.gaps_s == pytest.approx([0.1, 0.2])
    assert result.output_tokens == 3


def test_record_chunk_keeps_an_error_event() -> None:
    result = StreamResult()
    record_chunk(result, {"error": {"message": "upstream went away"}}, 0.0, 1.0, 0.0)
    assert result.error == "upstream went away"


def test_summarize_counts_throughput_over_wall_time_and_skips_failures() -> None:
    good = [StreamResult(ttft_s=0.1 * i, gaps_s=[0.01, 0.03], output_tokens=3) for i in (1, 2, 3)]
    failed = StreamResult(error="HTTP 500")
    metrics = summarize([*good, failed], wall_s=2.0)
    assert metrics.output_tok_s == 4.5
    assert metrics.requests_s == 1.5
    assert metrics.ttft_p50_ms == pytest.approx(200)
    assert metrics.itl_p50_ms == pytest.approx(20)
    assert (metrics.requests, metrics.errors, metrics.error_sample) == (4, 1, "HTTP 500")


def test_waves_are_the_kth_request_of_every_client_and_skip_failures() -> None:
    def client(*ttfts: float | None) -> list[StreamResult]:
        return [StreamResult(ttft_s=t) if t is not None else StreamResult(error="HTTP 500") for t in ttfts]

    per_client = [client(0.1, 1.0), client(0.3, None), client(0.2, 3.0, 9.0)]
    assert wave_ttft_p50_ms(per_client) == pytest.approx((200.0, 2000.0, 9000.0))
    assert wave_ttft_p50_ms([]) == ()


def test_the_wave_line_pairs_each_waves_p50_repeat_by_repeat() -> None:
    def run(*waves: float) -> dict:
        return {"ttft_p50_ms": 0.0, "ttft_p50_by_wave_ms": list(waves)}

    passes = {"a": [run(100, 900), run(110, 950)], "b": [run(105, 1900), run(120, 950)]}
    line = report.wave_line(passes, "a", "b")
    assert line is not None and "wave 1 +8 [+5-+10]" in line and "wave 2 +500 [+0-+1000]" in line
    assert report.wave_line({"a": [{"ttft_p50_ms": 1.0}], "b": [{"ttft_p50_ms": 2.0}]}, "a", "b") is None


def test_request_body_asks_for_fixed_length_greedy_stream_with_usage() -> None:
    body = request_body("base", "hi", 128)
    assert body["stream"] and body["ignore_eos"] and body["stream_options"] == {"include_usage": True}
    assert (body["max_tokens"], body["temperature"], body["messages"][-1]["content"]) == (128, 0, "hi")


def sse(*payloads: object) -> bytes:
    lines = [f"data: {p if isinstance(p, str) else json.dumps(p)}\n\n" for p in payloads]
    return "".join(lines).encode()


def test_stream_one_against_a_mock_server() -> None:
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["auth"] = request.headers.get("authorization")
        seen["body"] = json.loads(request.content)
        body = sse(chunk(""), chunk("a"), chunk("b"), chunk(None, usage=2), "[DONE]")
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    async def run() -> StreamResult:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await stream_one(client, Target("t", "http://x", "m", "key"), request_body("m", "q", 2))

    result = asyncio.run(run())
    assert result.error is None and result.output_tokens == 2 and len(result.gaps_s) == 1
    assert seen["auth"] == "Bearer key" and seen["body"]["ignore_eos"] is True


def test_stream_one_records_an_http_error() -> None:
    async def run() -> StreamResult:
        transport = httpx.MockTransport(lambda request: httpx.Response(404, json={"error": "no"}))
        async with httpx.AsyncClient(transport=transport) as client:
            return await stream_one(client, Target("t", "http://x", "m"), request_body("m", "q", 2))

    assert asyncio.run(run()).error.startswith("HTTP 404")  # type: ignore[union-attr]


def test_spread_and_its_format() -> None:
    spread = report.Spread.of([3.0, 1.0, 2.0])
    assert (spread.median, spread.low, spread.high, spread.width) == (2.0, 1.0, 3.0, 2.0)
    assert spread.format("{:.1f}") == "2.0 [1.0-3.0]"
    assert report.Spread.of([5.0]).format("{:.1f}") == "5.0"
    assert report.Spread.of([math.nan]).format("{:.1f}") == "-"


def run(tok: float, ttft: float) -> dict[str, float]:
    return {
        "output_tok_s": tok,
        "requests_s": 1.0,
        "ttft_p50_ms": ttft,
        "ttft_p99_ms": ttft,
        "itl_p50_ms": 5.0,
    }


LABELS = {"direct": "a", "gateway": "b", "rag": "c", "lora": "d"}


def test_verdict_meets_targets_and_pairs_repeats() -> None:
    passes = {
        "a": [run(100, 50), run(110, 52), run(90, 48)],
        "b": [run(98, 55), run(108, 57), run(88, 53)],
        "c": [run(97, 70), run(107, 71), run(87, 69)],
        "d": [run(80, 60), run(85, 62), run(75, 58)],
    }
    throughput, ttft, rag = report.verdict(passes, LABELS, retrieval_p50_ms=8.0)
    assert throughput.met and throughput.value.startswith("0.98")  # median of the per-repeat ratios
    assert ttft.met and ttft.value.startswith("+5.0")
    assert not ttft.within_noise  # 5 ms apart, while (a) spread only 4 ms
    assert rag.met and rag.value.startswith("+15.0") and "18.0 ms" in rag.target
    assert "MISSED" not in "\n".join(check.line() for check in (throughput, ttft, rag))
    lora_tok, lora_ttft = report.lora_checks(passes, LABELS)
    assert lora_tok.met and lora_tok.value.startswith("0.816")  # 80/98, 85/108, 75/88
    assert lora_ttft.met and lora_ttft.value.startswith("1.09")  # 60/55, 62/57, 58/53


def test_the_lora_checks_miss_a_slow_adapter_route_and_gateway_cpu_is_a_column() -> None:
    passes = {"b": [run(100, 50)], "d": [{**run(40, 90), "gateway_cpu_ms": 1.5}]}
    tok, ttft = report.lora_checks(passes, {"gateway": "b", "lora": "d"})
    assert not tok.met and not ttft.met
    summary = report.summarize_passes(passes)
    assert summary["d"]["gateway_cpu_ms"].median == 1.5 and math.isnan(summary["b"]["gateway_cpu_ms"].median)


def test_a_miss_within_the_baselines_spread_is_flagged_as_noise() -> None:
    passes = {"a": [run(100, 50), run(80, 110)], "b": [run(85, 110), run(75, 155)]}
    throughput, ttft = report.verdict(passes, {"direct": "a", "gateway": "b"}, retrieval_p50_ms=None)
    assert not throughput.met and throughput.within_noise
    assert not ttft.met and ttft.within_noise
    assert "MISSED; difference within the baseline's spread" in ttft.line()


def test_format_table_has_one_row_per_target_and_dashes_for_missing_metrics() -> None:
    summary = report.summarize_passes({"(a) vLLM": [run(100, 50), run(120, 40)]})
    table = report.format_table(summary, {"(e) HF": {"output_tok_s": 30.0, "ttft_p50_ms": 12.0}})
    lines = table.splitlines()
    assert lines[0].startswith("target") and "TTFT p50 ms" in lines[0]
    assert set(lines[1]) <= {"-", "+"}
    assert "110.0 [100.0-120.0]" in lines[2]
    assert lines[3].startswith("(e) HF") and "30.0" in lines[3] and " - " in lines[3]
    bars = [[i for i, c in enumerate(line) if c in "|+"] for line in lines]
    assert bars[0] == bars[1] == bars[2] == bars[3]  # aligned


def test_plot_and_json_are_written(tmp_path) -> None:  # type: ignore[no-untyped-def]
    summary = report.summarize_passes({"a": [run(100, 50)], "b": [run(90, 60), run(95, 55)]})
    report.write_plot(tmp_path / "bench.png", summary, {"e": {"output_tok_s": 10.0, "ttft_p50_ms": 5.0}})
    report.write_json(tmp_path / "bench.json", {"x": 1})
    assert (tmp_path / "bench.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads((tmp_path / "bench.json").read_text()) == {"x": 1}


def test_token_clock_skips_the_prompt() -> None:
    clock = TokenClock()
    for _ in range(4):
        clock.put(None)
    clock.started = clock.times[0] - 0.5
    metrics = clock.metrics()
    assert metrics["output_tokens"] == 3 and metrics["ttft_p50_ms"] == pytest.approx(500)


def test_parse_port_range() -> None:
    assert parse_port_range("18100-18199") == (18100, 18199)
    for bad in ("18100", "a-b", "200-100", "0-10"):
        with pytest.raises(ValueError):
            parse_port_range(bad)


def test_cpu_seconds_sees_a_few_milliseconds_of_work() -> None:
    """A quick pass costs the gateway a few ms of CPU: 10 ms ticks (`/proc/<pid>/stat`) rounded it to 0."""
    import os
    import time

    from bench.serve_extras import cpu_seconds

    before = cpu_seconds(os.getpid())
    deadline = time.thread_time() + 0.002
    while time.thread_time() < deadline:
        pass
    spent = cpu_seconds(os.getpid()) - before
    assert 0.002 <= spent < 0.5
