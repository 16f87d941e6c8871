"""One exception family for building training data from documents: the CLI prints any of them as one line."""

from __future__ import annotations


class DocsDataError(Exception):
    """Base of every error raised on purpose while building data from documents; earlier output is intact."""


class NoUsableDocumentsError(DocsDataError):
    """The documents folder is missing, empty, or holds nothing that could be read and chunked."""


class TeacherError(DocsDataError):
    """The teacher endpoint failed (unreachable, refused, timed out) after the client's retries."""


class TeacherOutputError(DocsDataError):
    """Every reply of the teacher was junk: nothing could be read as a question."""


class CallCapError(DocsDataError):
    """The run needs more teacher calls than `teacher.max_calls` allows."""


class ReviewFileError(DocsDataError):
    """`review.jsonl` has a line that is not `{"id": ..., "mark": "accept" | "reject"}`."""
