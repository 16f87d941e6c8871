"""Re-runs: the cache, resuming, the stable fact-level split, retired eval items and review marks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.docs import build_dataset
from training.docs.outputs import CARD_FILE, EVAL_FILE, PAIRS_FILE
from training.docs.review import REVIEW_FILE
from training.docs.split import EVAL_ORIGINS, in_eval

from .conftest import DOCS, BrokenTeacher, FakeTeacher, options, write_docs


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def made(result) -> int:
    return sum(counts.made for counts in result.calls.values())


def test_unchanged_documents_cost_no_calls_and_a_changed_one_only_its_own(docs_dir, tmp_path, settings):
    out = tmp_path / "out"
    first = build_dataset(options(docs_dir, out), FakeTeacher(), settings)
    assert made(first) > 0
    teacher = FakeTeacher()
    again = build_dataset(options(docs_dir, out), teacher, settings)
    assert made(again) == 0 and teacher.calls == []
    assert again.calls["questions"].cached == first.calls["questions"].planned

    (docs_dir / "people.md").write_text(DOCS["people.md"].replace("grey seal", "harbour seal"))
    teacher = FakeTeacher()
    changed = build_dataset(options(docs_dir, out), teacher, settings)
    assert 0 < made(changed) < made(first)
    # Only the changed chunk's sentences are asked about again (and rewordings of its questions).
    people = " ".join((docs_dir / "people.md").read_text().split())
    asked = [
        request.split("Sentence: ")[1].split("\n")[0]
        for request, _ in teacher.calls
        if "Sentence: " in request
    ]
    assert asked and all(sentence in people for sentence in asked)


def test_a_killed_run_resumes_from_the_cache(docs_dir, tmp_path, settings):
    out = tmp_path / "out"
    single = settings.model_copy(update={"concurrency": 1})
    with pytest.raises(KeyboardInterrupt):
        build_dataset(options(docs_dir, out), BrokenTeacher(ok=7, error=KeyboardInterrupt), single)
    assert not (out / EVAL_FILE).exists()  # nothing half-written
    teacher = FakeTeacher()
    resumed = build_dataset(options(docs_dir, out), teacher, single)
    assert resumed.calls["questions"].cached == 7
    fresh = build_dataset(options(docs_dir, tmp_path / "fresh"), FakeTeacher(), single)
    assert made(resumed) == made(fresh) - 7
    assert (out / EVAL_FILE).read_text() == (tmp_path / "fresh" / EVAL_FILE).read_text()


def test_the_split_is_a_function_of_each_fact_alone(docs_dir, tmp_path, settings):
    both = build_dataset(options(docs_dir, tmp_path / "a", eval_share=0.5), FakeTeacher(), settings)
    only_history = write_docs(tmp_path / "docs-history", {"history.md": DOCS["history.md"]})
    alone = build_dataset(options(only_history, tmp_path / "b", eval_share=0.5), FakeTeacher(), settings)
    extra = {**DOCS, "boats.md": "# Boats\n\nThe club's racing eight is a boat called the Swiftlet.\n"}
    more = build_dataset(options(write_docs(tmp_path / "docs-more", extra), tmp_path / "c", eval_share=0.5),
                         FakeTeacher(), settings)  # fmt: skip

    def sides(result) -> dict[str, bool]:
        """Each fact of history.md that could be an eval item, and whether it is one."""
        return {
            status.pair.fact: status.pair.fact in result.split.eval_facts
            for status in result.assembly.statuses
            if status.pair.passage.chunk.source_id == "history.md" and status.pair.origin in EVAL_ORIGINS
        }

    runs = [sides(both), sides(alone), sides(more)]
    assert any(any(run.values()) for run in runs)
    for first in runs:
        for second in runs:
            shared = first.keys() & second.keys()
            assert shared and all(first[fact] == second[fact] for fact in shared)
    for result in (both, alone, more):
        assert all(in_eval(fact, 0.5) for fact in result.split.eval_facts)


def test_eval_items_stay_frozen_until_their_chunk_changes(docs_dir, tmp_path, settings):
    out = tmp_path / "out"
    build_dataset(options(docs_dir, out, eval_share=0.5), FakeTeacher(), settings)
    before = {item["id"]: item for item in read_jsonl(out / EVAL_FILE)}
    victim = next(iter(before.values()))
    # A different teacher next quarter does not rewrite the test...
    build_dataset(options(docs_dir, out, eval_share=0.5), OtherTeacher(), settings)
    assert {item["id"]: item for item in read_jsonl(out / EVAL_FILE)} == before
    # ...but an edit to an item's source chunk retires it.
    document = docs_dir / victim["metadata"]["source_id"]
    opening = victim["metadata"]["chunk_text"].splitlines()[0]
    document.write_text(document.read_text().replace(opening, f"{opening} The oars are painted blue."))
    result = build_dataset(options(docs_dir, out, eval_share=0.5), FakeTeacher(), settings)
    card = json.loads((out / CARD_FILE).read_text())
    retired = {item["id"]: item for item in card["retired_eval"]}
    assert "changed" in retired[victim["id"]]["retired_because"]
    assert card["counts"]["eval_items_retired"] == len(result.split.retired) >= 1
    for item in read_jsonl(out / EVAL_FILE):  # its fact may be tested again, from the new chunk
        assert (
            item["metadata"]["chunk_hash"] != victim["metadata"]["chunk_hash"] or item["id"] != victim["id"]
        )
    unchanged = [i for i in before.values() if i["metadata"]["source_id"] != victim["metadata"]["source_id"]]
    assert all(item in read_jsonl(out / EVAL_FILE) for item in unchanged)


class OtherTeacher(FakeTeacher):
    """Another teacher: same questions, different identity (so nothing is cached for it)."""

    identity = "another-teacher@test"


def test_review_marks_survive_a_rerun(docs_dir, tmp_path, settings):
    out = tmp_path / "out"
    build_dataset(options(docs_dir, out, max_examples_per_fact=3), FakeTeacher(), settings)
    pairs = read_jsonl(out / PAIRS_FILE)
    rejected = next(p for p in pairs if p["status"] == "train" and p["origin"] == "teacher")
    accepted = next(p for p in pairs if p["reason"] == "over_cap")
    marks = [
        {"id": rejected["id"], "mark": "reject", "note": "wrong"},
        {"id": accepted["id"], "mark": "accept"},
    ]
    (out / REVIEW_FILE).write_text("".join(json.dumps(mark) + "\n" for mark in marks))
    (docs_dir / "people.md").write_text(DOCS["people.md"] + "\nThe boat hall opens at dawn.\n")

    result = build_dataset(options(docs_dir, out, max_examples_per_fact=3), FakeTeacher(), settings)
    fates = {p["id"]: p for p in read_jsonl(out / PAIRS_FILE) if p["id"]}
    assert fates[rejected["id"]]["status"] == "rejected" and fates[rejected["id"]]["reason"] == "reviewer"
    assert fates[accepted["id"]]["status"] == "train" and fates[accepted["id"]]["review"] == "accept"
    assert rejected["question"] not in {pair.question for pair in result.assembly.train}
    review = json.loads((out / CARD_FILE).read_text())["review"]
    assert review["accepted"] == 1 and review["rejected"] == 1 and review["stale"] == 0
    assert (out / REVIEW_FILE).read_text() == "".join(json.dumps(mark) + "\n" for mark in marks)  # untouched
