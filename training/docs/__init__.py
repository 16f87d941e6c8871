"""Training data from documents: a folder of static documents → grounded chat examples, a frozen eval set
and a data card (`lorag train data from-docs`).

The library the command calls: `DocsOptions` says what to read and write, `open_teacher` builds the teacher
from settings, `plan_dataset` is `--dry-run`, `build_dataset` does the work; every error it raises on
purpose is a `DocsDataError`, printed as one line.
"""

from training.docs.build import DocsOptions, build_dataset
from training.docs.card import RunResult, format_report
from training.docs.errors import DocsDataError
from training.docs.plan import Plan, format_plan, plan_dataset
from training.docs.raft_data import RaftSource
from training.docs.teacher import CachedOnlyTeacher, GenerationParams, OpenAITeacher, Teacher, open_teacher

__all__ = [
    "CachedOnlyTeacher",
    "DocsDataError",
    "DocsOptions",
    "GenerationParams",
    "OpenAITeacher",
    "Plan",
    "RaftSource",
    "RunResult",
    "Teacher",
    "build_dataset",
    "format_plan",
    "format_report",
    "open_teacher",
    "plan_dataset",
]
