"""One exception family for retrieval, so that the CLI and the gateway can map it in one place."""

from __future__ import annotations


class RetrievalError(Exception):
    """Base of every error raised on purpose by the retrieval package."""


class CorpusNotFoundError(RetrievalError, FileNotFoundError):
    """The corpus directory to index does not exist."""


class EmptyCorpusError(RetrievalError, ValueError):
    """The corpus has no usable document (an empty folder, or every file unreadable)."""


class UnknownSourceError(RetrievalError, ValueError):
    """A source id that the current snapshot does not hold."""


class NoSnapshotError(RetrievalError, FileNotFoundError):
    """There is no index snapshot to serve yet."""


class CorruptSnapshotError(RetrievalError):
    """A snapshot directory is incomplete or its parts disagree with each other."""


class EmbedderMismatchError(RetrievalError, ValueError):
    """A snapshot was built with a different embedder than the one asked to search it."""


class RefreshInProgressError(RetrievalError):
    """Another process (or thread) is already writing to the index directory: build, refresh or rollback."""


class GateRefusedError(RetrievalError):
    """The refresh gate refused a new snapshot; the current one keeps serving."""
