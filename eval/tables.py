"""Tables of already formatted cells, rendered as aligned text (the terminal), Markdown or HTML, so that
the report, its HTML page and `lorag eval compare` say the same thing in the same words."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from eval.bootstrap import Summary

MISSING = "–"
"""What a cell shows when there is no number (no items, no price)."""


@dataclass(frozen=True)
class Table:
    """A titled grid of strings; `note` says what the numbers count, under the table."""

    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    note: str = ""
    numeric_from: int = 1
    """Columns from this one on hold numbers (right-aligned in text and HTML)."""


def interval(summary: Summary | None, digits: int = 2, *, signed: bool = False) -> str:
    """`0.92 [0.83, 1.00]`: a mean with its bootstrap interval; `–` when there were no items."""
    if summary is None or summary["mean"] is None or summary["low"] is None or summary["high"] is None:
        return MISSING
    form = f"{'+' if signed else ''}.{digits}f"
    return f"{summary['mean']:{form}} [{summary['low']:{form}}, {summary['high']:{form}}]"


def number(value: float | None, form: str = ".2f") -> str:
    """The value in `form`, or `–` for None."""
    return MISSING if value is None else format(value, form)


def money(value: float | None) -> str:
    """Dollars, with enough digits to tell small costs apart: `$0.0012`, `$12.40`, `$3,888,000`."""
    if value is None:
        return MISSING
    if value >= 1000:
        return f"${value:,.0f}"
    return f"${value:.2f}" if value >= 1 else f"${value:.4g}"


def text(table: Table) -> str:
    """Aligned plain text under the title, as `bench.retrieval.format_table` prints."""
    cells = [list(table.header), *(list(row) for row in table.rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(table.header))]

    def line(row: Sequence[str]) -> str:
        padded = [
            cell.rjust(width) if i >= table.numeric_from else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return " | ".join(padded).rstrip()

    lines = [line(cells[0]), "-+-".join("-" * w for w in widths), *(line(row) for row in cells[1:])]
    heading = [table.title] if table.title else []
    return "\n".join([*heading, *lines, *([table.note] if table.note else [])])


def markdown(table: Table) -> str:
    """A `###` heading, a pipe table and the note in italics."""
    align = ["---:" if i >= table.numeric_from else ":---" for i in range(len(table.header))]
    rows = [table.header, align, *table.rows]
    body = "\n".join("| " + " | ".join(_markdown_cell(cell) for cell in row) + " |" for row in rows)
    note = f"\n\n_{table.note}_" if table.note else ""
    return f"### {table.title}\n\n{body}{note}\n"


def _markdown_cell(cell: str) -> str:
    # A pipe inside a cell would end it.
    return cell.replace("|", "\\|")


def to_html(table: Table) -> str:
    """A `<h3>` and a `<table>`, every cell escaped."""
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in table.header)
    rows = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"num" if i >= table.numeric_from else "txt"}">{html.escape(cell)}</td>'
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in table.rows
    )
    note = f'<p class="note">{html.escape(table.note)}</p>' if table.note else ""
    return f"<h3>{html.escape(table.title)}</h3><table><tr>{head}</tr>{rows}</table>{note}"
