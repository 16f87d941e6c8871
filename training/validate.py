"""Validate a chat JSONL training file: every problem with its line number, and what training it would cost.

`validate_file` reads one file the way the recipe does (`training.data`), then adds the checks that need
the tokenizer or the whole file: over-length conversations (rendered through the chat template, so the
count is what training sees) and duplicates. The report keeps the good examples, so the recipe trains on
exactly what was validated; `--strict` (or `TrainConfig.strict`) turns any problem into a failure.
"""

from __future__ import annotations

import json
import logging
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from core.textfiles import lines
from training.data import IGNORE_INDEX, ChatTokenizer, DataError, Example, parse_example, tokenize_example

log = logging.getLogger(__name__)

CPU_TOKENS_PER_SECOND = 280.0
"""Training throughput (all tokens, prompt included) measured for bf16 LoRA r=16 on SmolLM2-135M with the 2
CPU cores of the development machine; other models and machines differ, so pass your own measurement (the
recipe logs `tokens_per_s`)."""
NO_LIMIT = 1 << 30


class LineProblem(NamedTuple):
    """One problem: the 1-based line it is on, a short code, and a message for people."""

    line: int
    code: str
    """`invalid_json`, `not_a_conversation`, `not_an_object`, `unknown_role`, `empty_content`,
    `bad_tools`, `no_assistant`, `no_user_first`, `template`, `too_long` or `duplicate`."""
    message: str


@dataclass(frozen=True)
class ValidationSummary:
    """The file in numbers. Token counts are of the kept examples, rendered with the chat template."""

    rows: int
    """Non-blank lines."""
    kept: int
    skipped: int
    """Rows with at least one problem (duplicates and over-length rows included)."""
    duplicates: int
    over_length: int
    total_tokens: int
    assistant_tokens: int
    """Tokens the loss is taken on (assistant replies and their end-of-turn tokens)."""
    min_tokens: int
    mean_tokens: float
    max_tokens: int
    epochs: int
    tokens_per_second: float
    estimated_seconds: float
    """`total_tokens × epochs / tokens_per_second`: every token goes through forward and backward."""


@dataclass(frozen=True)
class ValidationReport:
    """What `validate_file` found: the problems, the examples that passed, and the summary."""

    path: Path
    problems: list[LineProblem]
    examples: list[Example] = field(repr=False)
    summary: ValidationSummary

    @property
    def ok(self) -> bool:
        return not self.problems


def validate_file(
    path: Path,
    tokenizer: ChatTokenizer,
    *,
    max_length: int,
    tokens_per_second: float = CPU_TOKENS_PER_SECOND,
    epochs: int = 1,
) -> ValidationReport:
    """Check every line of a chat JSONL file and summarise the examples that pass (see the module doc)."""
    path = Path(path)
    problems: list[LineProblem] = []
    kept: list[tuple[Example, int, int]] = []  # example, tokens, assistant tokens
    first_seen: dict[str, int] = {}
    rows = 0
    for number, line in lines(path):
        if not line.strip():
            continue
        rows += 1
        found, counted = check_line(line, f"{path}:{number}", tokenizer, max_length, first_seen)
        problems.extend(LineProblem(number, code, message) for code, message in found)
        if counted is not None:
            kept.append(counted)
            first_seen[dedup_key(counted[0])] = number
    summary = summarise(rows, kept, problems, epochs, tokens_per_second)
    return ValidationReport(path, problems, [example for example, _, _ in kept], summary)


def check_line(
    line: str, source: str, tokenizer: ChatTokenizer, max_length: int, first_seen: dict[str, int]
) -> tuple[list[tuple[str, str]], tuple[Example, int, int] | None]:
    """The problems of one line, and (example, tokens, assistant tokens) when it has none."""
    example, problems = parse_example(line, source)
    if example is None:
        return problems, None
    earlier = first_seen.get(dedup_key(example))
    if earlier is not None:
        return [("duplicate", f"same messages as line {earlier}")], None
    try:
        input_ids, labels = tokenize_example(tokenizer, example.messages, NO_LIMIT, example.tools)
    except DataError as error:
        return [("template", str(error))], None
    if len(input_ids) > max_length:
        return [("too_long", f"{len(input_ids)} tokens, over max_length={max_length}")], None
    assistant = sum(label != IGNORE_INDEX for label in labels)
    return [], (example, len(input_ids), assistant)


def dedup_key(example: Example) -> str:
    """The conversation as normalised JSON (keys sorted, text parts joined): equal keys, equal training."""
    return json.dumps({"messages": example.messages, "tools": example.tools}, sort_keys=True)


def summarise(
    rows: int,
    kept: Sequence[tuple[Example, int, int]],
    problems: Sequence[LineProblem],
    epochs: int,
    tokens_per_second: float,
) -> ValidationSummary:
    """The numbers of a report (token statistics are 0 when nothing was kept)."""
    lengths = [tokens for _, tokens, _ in kept]
    total = sum(lengths)
    return ValidationSummary(
        rows=rows,
        kept=len(kept),
        skipped=len({problem.line for problem in problems}),
        duplicates=sum(problem.code == "duplicate" for problem in problems),
        over_length=sum(problem.code == "too_long" for problem in problems),
        total_tokens=total,
        assistant_tokens=sum(assistant for _, _, assistant in kept),
        min_tokens=min(lengths, default=0),
        mean_tokens=statistics.fmean(lengths) if lengths else 0.0,
        max_tokens=max(lengths, default=0),
        epochs=epochs,
        tokens_per_second=tokens_per_second,
        estimated_seconds=total * epochs / tokens_per_second,
    )


def format_report(report: ValidationReport) -> str:
    """The problems as `path:line: [code] message`, then the summary, for a terminal."""
    s = report.summary
    lines = [f"{report.path}:{p.line}: [{p.code}] {p.message}" for p in report.problems]
    lines += [
        f"{report.path}: {s.rows} rows, {s.kept} kept, {s.skipped} skipped "
        f"({s.duplicates} duplicates, {s.over_length} over the length limit)",
        f"tokens: {s.total_tokens} in all, {s.assistant_tokens} trained on (assistant); per example "
        f"min {s.min_tokens}, mean {s.mean_tokens:.1f}, max {s.max_tokens}",
        f"estimated training time: {format_duration(s.estimated_seconds)} for {s.epochs} epoch(s) "
        f"at {s.tokens_per_second:g} tokens/s",
    ]
    return "\n".join(lines)


def format_duration(seconds: float) -> str:
    """`42s`, `3m 05s` or `2h 07m`."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def load_training_examples(
    paths: Sequence[Path], tokenizer: ChatTokenizer, *, max_length: int, strict: bool, epochs: int = 1
) -> list[Example]:
    """The valid examples of every file, for the recipe.

    With `strict`, any problem raises `DataError` listing all of them; otherwise bad rows are skipped and
    counted in a warning. Either way a run with no example left is an error.
    """
    reports = [validate_file(p, tokenizer, max_length=max_length, epochs=epochs) for p in paths]
    problems = [f"{r.path}:{p.line}: {p.message}" for r in reports for p in r.problems]
    if problems and strict:
        raise DataError(f"{len(problems)} problem(s):\n" + "\n".join(problems))
    skipped = sum(r.summary.skipped for r in reports)
    if skipped:
        log.warning("skipped %d bad row(s) (strict=True fails instead):\n%s", skipped, "\n".join(problems))
    examples = [example for report in reports for example in report.examples]
    if not examples:
        raise DataError(f"no usable examples in {', '.join(str(p) for p in paths)}")
    return examples


def load_tokenizer(model_dir: Path) -> Any:
    """The model's tokenizer (no weights): all that validation needs."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)
