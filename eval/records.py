"""What one evaluation run records: one `Record` per (question, route), and the run's `RunInfo`.

A run directory holds `run.json` (RunInfo), `records.jsonl` (Records), and what the report writes from them
(`summary.json`, `report.md`, `report.html`, `plots/`). Records are plain data so that runs from different
lorag versions can still be compared.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

RECORDS_FILE = "records.jsonl"
RUN_FILE = "run.json"


@dataclass
class Record:
    """One question answered through one route (the production path: the gateway, the openai client)."""

    question_id: str
    route: str
    kind: str
    question: str
    answers: list[str]
    gold_sources: list[str] = field(default_factory=list)
    split: str | None = None
    answer: str = ""
    finish_reason: str | None = None
    policy: str | None = None
    """The retrieval policy applied (`never`, `always`, `auto`)."""
    mode: str | None = None
    """`rag` when sources went into the prompt, else `none`."""
    relevance: float | None = None
    """The best hit's relevance when the index was searched (what `auto` thresholds)."""
    threshold: float | None = None
    adapter: str | None = None
    """The versioned adapter that answered (`demo@v1`), or None for the base model."""
    snapshot: str | None = None
    citations: list[dict[str, Any]] = field(default_factory=list)
    """As the gateway returned them: `source`, `chunk_id`, `score` and `text`."""
    latency_s: float = 0.0
    ttft_s: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    """The error message when the request failed (the record then scores 0)."""

    @property
    def retrieved_sources(self) -> list[str]:
        return [str(citation.get("source", "")) for citation in self.citations]

    @property
    def retrieved_texts(self) -> list[str]:
        return [str(citation.get("text", "")) for citation in self.citations]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        """Tolerates fields it does not know (written by a newer lorag)."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclass
class RunInfo:
    """How a run was made."""

    run_id: str
    created_at: str
    dataset: str
    routes: list[str]
    gateway: str
    """The gateway URL, or `managed` when the run started its own."""
    max_tokens: int
    temperature: float = 0.0
    questions: int = 0
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Route (or `*`) → `eval.cost.Price` fields, as configured when the run was made."""
    capacity_rps: dict[str, float] = field(default_factory=dict)
    """Route → measured requests/s at saturation, for GPU-hour prices."""
    notes: dict[str, Any] = field(default_factory=dict)


def write_run(directory: Path, info: RunInfo, records: list[Record]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / RUN_FILE).write_text(json.dumps(asdict(info), indent=2))
    with (directory / RECORDS_FILE).open("w") as handle:
        for record in records:
            handle.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")


def read_run(directory: Path) -> tuple[RunInfo, list[Record]]:
    """A run written by `write_run`; errors name the file."""
    try:
        info = RunInfo(**json.loads((directory / RUN_FILE).read_text()))
        lines = (directory / RECORDS_FILE).read_text().splitlines()
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"{directory} is not an evaluation run: {exc}") from exc
    return info, [Record.from_dict(json.loads(line)) for line in lines if line.strip()]
