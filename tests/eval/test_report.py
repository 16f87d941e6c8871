from __future__ import annotations

import json

import pytest

from core.prices import Price
from eval.report import format_table, write_report
from eval.summary import summarize_run
from tests.eval.synthetic import demo_records, rag_records, run_info

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    info = run_info()
    prices = {"demo+rag": Price(input_per_million=1.0, output_per_million=2.0)}
    summary = summarize_run(info, demo_records() + rag_records(), prices=prices)
    directory = tmp_path_factory.mktemp("run")
    return directory, summary, write_report(directory, summary, info)


def test_writes_json_markdown_html_and_plots(report):
    directory, summary, paths = report
    names = sorted(p.relative_to(directory).as_posix() for p in paths)
    assert names == [
        "plots/cost.png",
        "plots/latency.png",
        "plots/quality.png",
        "plots/tokens.png",
        "report.html",
        "report.md",
        "summary.json",
    ]
    assert all(p.is_file() for p in paths)
    assert all(
        (directory / "plots" / name).read_bytes().startswith(PNG) for name in ("quality.png", "cost.png")
    )
    assert json.loads((directory / "summary.json").read_text()) == summary


def test_markdown_shows_means_with_intervals_and_says_how_to_read_them(report):
    directory, _, _ = report
    text = (directory / "report.md").read_text()
    assert "## How to read this" in text and "bootstrap 95% interval" in text
    assert "| demo+rag | 4 | 0 | 0.75 [0.25, 1.00] | 1.00 [1.00, 1.00] | 0.50 [0.00, 1.00] |" in text
    assert "| demo | 4 | 1 | 0.50 [" in text  # one failed request, counted
    assert "0.75 [0.50, 1.00] (n=2)" in text  # recall@k with '#' source ids
    assert "| demo+rag | 200.0 | 10.0 | 210.0 |" in text  # tokens per request
    assert "| demo+rag | own: per token | $0.22 | $7.92 |" in text  # cost per 1,000 and per hour at 10 req/s
    assert "| demo | no price for this route |" in text
    assert "demo+rag vs demo | 4 | +0.25 [" in text
    assert "![quality](plots/quality.png)" in text


def test_html_is_self_contained(report):
    directory, _, _ = report
    page = (directory / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 4
    assert 'src="http' not in page and 'href="http' not in page and "<link" not in page
    assert "<style>" in page and "0.75 [0.25, 1.00]" in page
    assert "<script" not in page


def test_no_cost_plot_when_nothing_is_priced(tmp_path):
    info = run_info()
    summary = summarize_run(info, demo_records() + rag_records())
    names = {p.name for p in write_report(tmp_path, summary, info)}
    assert "cost.png" not in names and "quality.png" in names


def test_terminal_table_has_one_row_per_route(report):
    _, summary, _ = report
    lines = format_table(summary).splitlines()
    assert lines[0] == "run run-a on synthetic (4 questions)"
    header = [cell.strip() for cell in lines[1].split("|")]
    assert header == [
        "route",
        "n",
        "containment",
        "evolving",
        "static",
        "recall@k",
        "tokens/req",
        "p50 s",
        "cost/1k",
    ]
    demo_rag = [cell.strip() for cell in lines[4].split("|")]
    assert demo_rag == [
        "demo+rag", "4", "0.75 [0.25, 1.00]", "1.00 [1.00, 1.00]", "0.50 [0.00, 1.00]",
        "0.75 [0.50, 1.00]", "210", "2.00", "$0.22",
    ]  # fmt: skip
    assert lines[3].split("|")[-1].strip() == "–"  # demo has no price
