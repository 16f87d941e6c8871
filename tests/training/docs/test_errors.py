"""Bad input and bad teachers: a clear error of the `DocsDataError` family, earlier output intact."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.docs import DocsDataError, build_dataset, format_plan, plan_dataset
from training.docs.errors import (
    CallCapError,
    NoUsableDocumentsError,
    ReviewFileError,
    TeacherError,
    TeacherOutputError,
)
from training.docs.outputs import CACHE_FILE
from training.docs.review import REVIEW_FILE

from .conftest import BrokenTeacher, FakeTeacher, JunkTeacher, options


def snapshot(out: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in out.iterdir() if path.name != CACHE_FILE}


@pytest.fixture
def earlier(docs_dir, tmp_path, settings) -> Path:
    """An output folder with a good earlier run in it."""
    out = tmp_path / "out"
    build_dataset(options(docs_dir, out), FakeTeacher(), settings)
    return out


def test_an_empty_or_missing_folder_is_a_clear_error(tmp_path, settings):
    (tmp_path / "empty").mkdir()
    with pytest.raises(NoUsableDocumentsError, match="no usable document"):
        build_dataset(options(tmp_path / "empty", tmp_path / "out"), FakeTeacher(), settings)
    with pytest.raises(NoUsableDocumentsError, match="does not exist"):
        build_dataset(options(tmp_path / "nowhere", tmp_path / "out"), FakeTeacher(), settings)
    assert not (tmp_path / "out").exists()


def test_a_folder_of_only_unusable_files_says_why_each_was_skipped(tmp_path, settings):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "manual.pdf").write_bytes(b"%PDF-1.7")
    (docs / "notes.txt").write_bytes(b"\xff\xfe\x00binary")
    (docs / "blank.md").write_text("   \n")
    with pytest.raises(NoUsableDocumentsError) as error:
        build_dataset(options(docs, tmp_path / "out"), FakeTeacher(), settings)
    message = str(error.value)
    assert (
        "manual.pdf: PDF files are not read" in message and "notes.txt" in message and "blank.md" in message
    )
    assert "\n" not in message  # one line on the CLI


def test_a_failing_teacher_leaves_the_earlier_output_intact(docs_dir, earlier, settings):
    before = snapshot(earlier)
    (docs_dir / "people.md").write_text("# People\n\nThe boat captain of the club is Ilse Varga.\n")
    with pytest.raises(TeacherError, match="teacher down"):
        build_dataset(options(docs_dir, earlier), BrokenTeacher(ok=0), settings)
    assert snapshot(earlier) == before


def test_a_teacher_that_returns_junk_is_a_clear_error(docs_dir, earlier, settings):
    before = snapshot(earlier)
    with pytest.raises(TeacherOutputError, match="none of the .* replies .* was a question"):
        build_dataset(options(docs_dir, earlier), JunkTeacher(), settings)
    assert snapshot(earlier) == before


def test_the_call_cap_refuses_before_calling(docs_dir, tmp_path, settings):
    teacher = FakeTeacher()
    capped = settings.model_copy(update={"max_calls": 3})
    with pytest.raises(CallCapError, match="max_calls is 3: raise it"):
        build_dataset(options(docs_dir, tmp_path / "out"), teacher, capped)
    assert teacher.calls == []


def test_the_call_cap_stops_a_run_that_needs_more_and_the_next_run_continues(docs_dir, tmp_path, settings):
    out = tmp_path / "out"
    plan = plan_dataset(options(docs_dir, out), FakeTeacher.identity, settings)
    capped = settings.model_copy(
        update={"max_calls": plan.question_calls + 1}
    )  # questions fit, rewordings not
    with pytest.raises(CallCapError, match="paraphrases calls left"):
        build_dataset(options(docs_dir, out), FakeTeacher(), capped)
    teacher = FakeTeacher()
    result = build_dataset(options(docs_dir, out), teacher, settings)
    assert result.calls["questions"].made == 0
    assert result.calls["paraphrases"].cached == 1


def test_the_dry_run_plan_counts_calls_and_writes_nothing(docs_dir, tmp_path, settings):
    out = tmp_path / "out"
    plan = plan_dataset(options(docs_dir, out), FakeTeacher.identity, settings)
    assert not out.exists()
    assert plan.documents == 3 and plan.question_calls > 0 and plan.question_calls_cached == 0
    assert plan.new_calls_at_least >= plan.question_calls
    result = build_dataset(options(docs_dir, out), FakeTeacher(), settings)
    assert plan.new_calls_at_least <= sum(c.made for c in result.calls.values()) <= plan.new_calls_at_most
    after = plan_dataset(options(docs_dir, out), FakeTeacher.identity, settings)
    assert after.new_calls_at_least == after.new_calls_at_most == 0
    assert after.question_calls_cached == after.question_calls == plan.question_calls
    assert "new teacher calls: 0 to 0" in format_plan(after)


def test_a_bad_review_file_names_its_line(docs_dir, earlier, settings):
    (earlier / REVIEW_FILE).write_text('{"id": "abc", "mark": "accept"}\n{"id": "def", "mark": "maybe"}\n')
    with pytest.raises(ReviewFileError, match=r"review.jsonl:2"):
        build_dataset(options(docs_dir, earlier), FakeTeacher(), settings)


def test_every_deliberate_error_is_one_family():
    for error in (NoUsableDocumentsError, TeacherError, TeacherOutputError, CallCapError, ReviewFileError):
        assert issubclass(error, DocsDataError)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="eval_share"):
        options(Path("."), Path("out"), eval_share=1.0)
