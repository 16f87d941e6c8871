"""The committed from-documents demo data is what the pipeline produces from the handbook and the cache."""

from __future__ import annotations

import json
import shutil

import pytest

from core.settings import TeacherSettings
from training.demo_data import DEMO_DIR
from training.docs import build_dataset
from training.docs.outputs import CACHE_FILE, CARD_FILE, EVAL_FILE, PAIRS_FILE, TRAIN_FILE

from .conftest import options

FROM_DOCS = DEMO_DIR / "from_docs"


class CacheOnlyTeacher:
    """The teacher the data was made with, as the cache knows it; it must never be called."""

    def __init__(self, identity: str) -> None:
        self.identity = identity

    def complete(self, messages, params):  # type: ignore[no-untyped-def]
        pytest.fail("the committed cache should answer every call")


def test_the_committed_data_is_reproduced_from_the_cache(tmp_path):
    card = json.loads((FROM_DOCS / CARD_FILE).read_text())
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(FROM_DOCS / CACHE_FILE, out / CACHE_FILE)
    teacher = CacheOnlyTeacher(card["teacher"]["identity"])
    build_dataset(
        options(DEMO_DIR / "handbook", out, eval_share=card["options"]["eval_share"]),
        teacher,
        TeacherSettings(max_calls=0),
    )
    for name in (TRAIN_FILE, EVAL_FILE, PAIRS_FILE):
        assert (out / name).read_text() == (FROM_DOCS / name).read_text(), name


def test_the_generator_never_saw_the_frozen_eval_questions():
    frozen = DEMO_DIR.parents[2] / "eval" / "datasets" / "demo.jsonl"
    questions = {json.loads(line)["question"].lower() for line in frozen.read_text().splitlines() if line}
    train = {json.loads(line)["messages"][0]["content"].lower() for line in (FROM_DOCS / TRAIN_FILE).open()}
    handbook = " ".join(p.read_text().lower() for p in (DEMO_DIR / "handbook").glob("*.md"))
    assert not any(question in handbook for question in questions)
    # One coincidence: the "X was founded by Y" rule asks the obvious question, as the eval's author did.
    assert questions & train == {"who founded lumora outfitters?"}
