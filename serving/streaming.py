"""Relaying vLLM's stream to the client as server-sent events.

Each chunk is made OpenAI-shaped and renamed to the route; the chunk that ends a choice also carries
lorag's `citations` and `lorag` extensions; vLLM's usage chunk is counted and passed on only if the client
asked for it. However the stream ends — finished, an upstream error (sent as an `error` event: the headers
are gone), or a client that went away — the upstream stream is closed, so vLLM stops generating for
nobody, and `on_end` runs once with the status to record.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import anyio

from serving import sse
from serving.errors import GatewayError, error_body
from serving.protocol import openai_shaped

if TYPE_CHECKING:
    from serving.chat import ChatMetrics, PreparedChat

log = logging.getLogger("lorag.chat")

Chunks = AsyncIterator[dict[str, Any]]


async def relay(
    prepared: PreparedChat,
    first: dict[str, Any] | None,
    chunks: Chunks,
    metrics: ChatMetrics,
    on_end: Callable[[int], None],
) -> AsyncIterator[str]:
    """The events for `first` and the rest of `chunks`, then `[DONE]`; `on_end(status)` when it ends
    (499: the client went away)."""
    status = 200
    try:
        if first is not None:
            if (event := client_event(prepared, first, metrics)) is not None:
                yield event
            async for chunk in chunks:
                if (event := client_event(prepared, chunk, metrics)) is not None:
                    yield event
    except GatewayError as exc:  # OpenAI clients surface an `error` event as an APIError
        status = exc.status_code
        yield sse.event(exc.body())
    except Exception as exc:  # noqa: BLE001 - e.g. a malformed upstream line: end the stream cleanly
        status = 500
        yield sse.event(error_body(f"internal error while streaming: {type(exc).__name__}", "internal_error"))
    except BaseException:  # the client went away (cancelled): stop vLLM generating for nobody
        status = 499
        raise
    finally:
        await close(chunks)
        on_end(status)
    yield sse.DONE


def client_event(prepared: PreparedChat, chunk: dict[str, Any], metrics: ChatMetrics) -> str | None:
    """The event the client gets for one upstream chunk (None: nothing, a usage chunk it did not ask for)."""
    chunk = openai_shaped(chunk)
    usage = chunk.get("usage")
    if usage and not chunk.get("choices"):
        metrics.tokens(
            prepared.route.model_name, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
        )
        if not prepared.client_wants_usage:
            return None
    elif not prepared.client_wants_usage:
        chunk.pop("usage", None)
    chunk["model"] = prepared.route.model_name
    if any(choice.get("finish_reason") for choice in chunk.get("choices", [])):
        prepared.decorate(chunk)
    return sse.event(chunk)


async def close(chunks: Chunks) -> None:
    """Close the upstream stream (its HTTP connection), even from inside a cancelled task."""
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        with anyio.CancelScope(shield=True):
            try:
                await aclose()
            except Exception as exc:  # noqa: BLE001 - closing must not mask the original outcome
                log.debug("closing the upstream stream: %s", exc)
