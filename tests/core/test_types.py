"""`ModelRef`: the one parser of `name@version`."""

from __future__ import annotations

import pytest

from core.types import ModelRef


@pytest.mark.parametrize(
    ("text", "name", "version"),
    [
        ("demo", "demo", None),
        ("demo@v2", "demo", "v2"),
        ("demo+rag@v10", "demo+rag", "v10"),
        ("demo@", "demo@", None),  # nothing pinned: names no route, so the caller gets a 404
    ],
)
def test_parse_and_print_round_trip(text, name, version):  # type: ignore[no-untyped-def]
    ref = ModelRef.parse(text)
    assert (ref.name, ref.version) == (name, version) and str(ref) == text


def test_refs_compare_by_value():
    assert ModelRef.parse("demo@v1") == ModelRef("demo", "v1") != ModelRef("demo", "v2")
    assert str(ModelRef("demo")) == "demo"
