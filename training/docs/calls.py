"""Teacher calls through the cache: a cap on new calls, a few in flight at once, a progress bar.

Replies are written to the cache by the main thread as each call completes, so whatever stops a run
(an error, the cap, Ctrl-C, SIGKILL) loses at most the calls still in flight.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from core.prompting import Message
from training.docs.cache import CallCache, call_key
from training.docs.errors import CallCapError
from training.docs.prompts import PROMPT_VERSIONS
from training.docs.teacher import GenerationParams, Teacher


@dataclass(frozen=True)
class Call:
    """One planned teacher call."""

    kind: str
    """`question` (about a sentence), `targeted` (about a sentence, for a given answer) or `paraphrase`."""
    chunk_hash: str
    subject: str
    """The sentence asked about, or the question to reword."""
    messages: list[Message] = field(compare=False, repr=False)
    params: GenerationParams

    def key(self, teacher: str) -> str:
        """This call's cache key for `teacher`."""
        return call_key(
            self.kind,
            self.chunk_hash,
            self.subject,
            teacher,
            PROMPT_VERSIONS[self.kind],
            self.params.to_dict(),
        )


@dataclass
class CallCounts:
    """Calls of one run, by what answered them."""

    planned: int = 0
    cached: int = 0
    made: int = 0


def cached_replies(cache: CallCache, calls: Sequence[Call], teacher: str) -> dict[Call, str]:
    """The replies `cache` holds for `calls` asked of `teacher`."""
    keys = {call: call.key(teacher) for call in calls}
    found = cache.get_many(keys.values())
    return {call: found[key] for call, key in keys.items() if key in found}


class CallRunner:
    """Answers calls from the cache, else from the teacher, never making more than `max_calls` new ones."""

    def __init__(
        self, cache: CallCache, teacher: Teacher, max_calls: int, concurrency: int = 4, progress: bool = True
    ) -> None:
        self.cache = cache
        self.teacher = teacher
        self.max_calls = max_calls
        self.concurrency = concurrency
        self.progress = progress
        self.counts: dict[str, CallCounts] = {}

    def cached(self, calls: Sequence[Call]) -> dict[Call, str]:
        """The replies the cache already holds (no teacher call)."""
        return cached_replies(self.cache, calls, self.teacher.identity)

    @property
    def made(self) -> int:
        """New teacher calls made so far in this run."""
        return sum(counts.made for counts in self.counts.values())

    def run(self, calls: Sequence[Call], label: str) -> dict[Call, str]:
        """Every call's reply, calling the teacher for those not cached; `CallCapError` (after caching what
        was done) if the cap leaves some unanswered."""
        unique = list(dict.fromkeys(calls))
        replies = self.cached(unique)
        pending = [call for call in unique if call not in replies]
        counts = self.counts.setdefault(label, CallCounts())
        counts.planned += len(unique)
        counts.cached += len(replies)
        allowed = pending[: max(0, self.max_calls - self.made)]
        replies.update(self._call(allowed, label, counts))
        if len(allowed) < len(pending):
            raise CallCapError(
                f"teacher.max_calls is {self.max_calls} and this run needs more: {self.made} new calls "
                f"made and cached, {len(pending) - len(allowed)} {label} calls left. Raise "
                "teacher.max_calls (see the plan with --dry-run) and run again: cached calls are not repeated"
            )
        return replies

    def _call(self, calls: Sequence[Call], label: str, counts: CallCounts) -> dict[Call, str]:
        from tqdm import tqdm

        replies: dict[Call, str] = {}
        if not calls:
            return replies
        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        try:
            futures: dict[Future[str], Call] = {
                pool.submit(self.teacher.complete, call.messages, call.params): call for call in calls
            }
            with tqdm(
                total=len(calls), desc=f"teacher: {label}", unit="call", disable=not self.progress
            ) as bar:
                for future in as_completed(futures):
                    call = futures[future]
                    reply = future.result()
                    reply = reply if isinstance(reply, str) else ""
                    self.cache.put(call.key(self.teacher.identity), call.kind, self.teacher.identity,
                                   PROMPT_VERSIONS[call.kind], reply)  # fmt: skip
                    replies[call] = reply
                    counts.made += 1
                    bar.update()
        finally:
            # On an error, calls not yet started are dropped; finished ones are already cached.
            pool.shutdown(wait=True, cancel_futures=True)
        return replies
