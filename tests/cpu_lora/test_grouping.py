"""Which rows each adapter slot owns."""

from __future__ import annotations

import pytest

from cpu_lora.grouping import Plan, plan_rows, slot_runs


def test_runs_per_slot_skip_base_rows_and_keep_row_order() -> None:
    plan = slot_runs((0, -1, 1, 0, -1), (3, 2, 1, 4, 5), limit=15)
    assert plan == Plan(slots=((0, ((0, 3), (6, 10))), (1, ((5, 6),))), covered=8)


def test_rows_past_the_limit_are_dropped() -> None:
    assert slot_runs((0, 1, 2), (4, 4, 4), limit=6) == Plan(((0, ((0, 4),)), (1, ((4, 6),))), covered=6)


def test_a_batch_of_base_rows_has_no_runs() -> None:
    assert slot_runs((-1,), (7,), limit=7) == Plan((), covered=0)


def test_mismatched_segments_are_refused() -> None:
    with pytest.raises(ValueError, match="2 segment slots for 1 segment lengths"):
        slot_runs((0, 1), (3,), limit=3)


def test_one_input_row_is_broadcast_to_every_output_row() -> None:
    assert plan_rows((1,), (1,), n_in=1, n_out=5) == Plan(((1, ((0, 5),)),), covered=5)
    assert plan_rows((-1,), (1,), n_in=1, n_out=5) == Plan((), covered=0)


def test_extra_input_rows_are_dropped_and_missing_ones_refused() -> None:
    assert plan_rows((0, 1), (3, 3), n_in=6, n_out=4).slots == ((0, ((0, 3),)), (1, ((3, 4),)))
    with pytest.raises(ValueError, match="3 input rows for an output of 4 rows"):
        plan_rows((0,), (3,), n_in=3, n_out=4)
