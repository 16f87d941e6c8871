"""One from-documents run configured by lorag's `Settings`: what `lorag train data from-docs`, `lorag retrain
--docs` and `lorag bench from-docs` share.

The options take chunking and the document size limit from the settings (documents are cut as the index
cuts them); the teacher is reached only when the cache cannot answer every planned call (a rebuild from a
committed cache needs no server); RAFT and counterfactual examples draw their distractors from an index
searched as the serving routes search it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from core.settings import Settings, TeacherSettings
from training.docs.build import DocsOptions, build_dataset
from training.docs.card import RunResult
from training.docs.plan import plan_dataset
from training.docs.raft_data import RaftSource
from training.docs.teacher import CachedOnlyTeacher, Teacher

LiveTeacher = Callable[[], AbstractContextManager[Teacher]]
"""Opens the teacher for the calls the cache cannot answer (e.g. starting a local vLLM), closed after."""


def teacher_identity(teacher: TeacherSettings) -> str:
    """What the teacher's cached replies are keyed on: `model@url`."""
    return f"{teacher.model}@{teacher.url.rstrip('/')}"


def docs_options(settings: Settings, docs: Path, out: Path, **options: Any) -> DocsOptions:
    """`DocsOptions` with the settings' chunking and document size limit; `options` as `DocsOptions`
    takes them (`cache` is its `cache_path`)."""
    return DocsOptions(
        docs,
        out,
        chunking=settings.chunking,
        max_document_bytes=settings.index.max_document_bytes,
        cache_path=options.pop("cache", None),
        **options,
    )


def build_from_settings(
    settings: Settings,
    options: DocsOptions,
    live_teacher: LiveTeacher,
    raft_index: Settings | None = None,
    raft_mode: str = "dense",
) -> RunResult:
    """Build the dataset; `live_teacher` is opened only if some planned call is not cached. With
    `raft_index`, RAFT and counterfactual examples retrieve from that home's index in `raft_mode`."""
    identity = teacher_identity(settings.teacher)
    with contextlib.ExitStack() as stack:
        if plan_dataset(options, identity, settings.teacher).new_calls_at_most == 0:
            teacher: Teacher = CachedOnlyTeacher(identity)
        else:
            teacher = stack.enter_context(live_teacher())
        source = stack.enter_context(index_source(raft_index, raft_mode)) if raft_index else None
        return build_dataset(options, teacher, settings.teacher, source)


@contextlib.contextmanager
def index_source(settings: Settings, mode: str = "dense") -> Iterator[RaftSource]:
    """A RAFT source searching the index of `settings`' home (`dense`, `bm25` or `hybrid`)."""
    from retrieval.embedders import load_embedder
    from retrieval.search import open_retriever

    retriever = open_retriever(settings.index_dir, load_embedder(settings.embedder, settings.cache_dir))
    try:
        yield RaftSource(lambda query, k: retriever.search(query, k, mode=mode))  # type: ignore[arg-type]
    finally:
        retriever.close()
