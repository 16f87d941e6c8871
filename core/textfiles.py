"""Reading the text files users hand to lorag (datasets, training data, recipes) so that a bad one is
named: every error says which file, and where it can, which line."""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def read_text(path: Path) -> str:
    """The whole file as text (UTF-8, a BOM dropped); a file that is not UTF-8 is a `ValueError` naming it."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValueError(f"{path}:{line}: not UTF-8 text (byte {data[exc.start]:#04x})") from None


def lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) for every line, read lazily; a line that is not UTF-8 is a `ValueError` naming
    the file and the line."""
    with Path(path).open("rb") as file:
        for number, raw in enumerate(file, start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(f"{path}:{number}: not UTF-8 text (byte {raw[exc.start]:#04x})") from None


def read_json(path: Path) -> Any:
    """A JSON document; malformed JSON is a `ValueError` naming the file, line and column."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
