"""HTTP routes: a few lines each — authenticate, call the handler, shape the response."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from serving.adapters import AdapterPool
from serving.auth import Keyring, Principal
from serving.chat import ChatHandler
from serving.embeddings import EmbeddingRequest, EmbeddingsHandler
from serving.errors import NotFoundError, UpstreamUnavailableError
from serving.protocol import ChatCompletionRequest, ModelList


async def caller(request: Request) -> Principal:
    """The caller behind the request's Bearer key (401 when keys are configured and it names none).

    `async` although it never awaits: FastAPI runs a plain `def` dependency in its thread pool, one thread
    hop per request, and re-creates the pool's threads after 10 s idle, which stalled the first requests
    of a burst by 0.3-1.7 s on a busy 2-core machine (`Thread.start` waiting on the main loop)."""
    keyring: Keyring = request.app.state.keyring
    return keyring.identify(request.headers.get("authorization"))


async def admin(request: Request) -> Principal:
    """Only admin keys (or no keys at all, on loopback) pass (`async`, as `caller`)."""
    keyring: Keyring = request.app.state.keyring
    return keyring.identify_admin(request.headers.get("authorization"))


Caller = Annotated[Principal, Depends(caller)]

router = APIRouter()
v1 = APIRouter(prefix="/v1")
admin_router = APIRouter(prefix="/admin", dependencies=[Depends(admin)])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the gateway process answers."""
    return {"status": "ok"}


@router.get("/ready", response_model=None)
async def ready(request: Request) -> JSONResponse:
    """Readiness: vLLM answers and, if a route retrieves, an index snapshot is loaded (503 otherwise)."""
    ok, checks = await request.app.state.readiness()
    return JSONResponse({"status": "ready" if ok else "not ready", **checks}, status_code=200 if ok else 503)


@router.get("/metrics", dependencies=[Depends(admin)])
async def metrics(request: Request) -> Response:
    """Prometheus exposition (admin key when keys are configured)."""
    await request.app.state.status()  # brings the snapshot and queue gauges up to date
    content, media_type = request.app.state.metrics.render()
    return Response(content=content, media_type=media_type)


@v1.get("/models")
async def list_models(request: Request, principal: Caller) -> ModelList:
    """The routes this caller can name in `model`; adapter routes are children of the base model."""
    cards = [card for card in request.app.state.model_cards if principal.may_use(card.id)]
    return ModelList(data=cards)


@v1.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, principal: Caller
) -> JSONResponse | StreamingResponse:
    """OpenAI chat completions, streaming or not, with lorag's `citations` and `lorag` extensions."""
    handler: ChatHandler = request.app.state.chat
    result = await handler.handle(body, principal)
    if isinstance(result, dict):
        return JSONResponse(result)
    return StreamingResponse(result, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@v1.post("/embeddings", dependencies=[Depends(caller)])
async def embeddings(body: EmbeddingRequest, request: Request) -> dict[str, Any]:
    """OpenAI embeddings with the index's embedder."""
    handler: EmbeddingsHandler | None = request.app.state.embeddings
    if handler is None:
        raise NotFoundError(
            "no embedding model is loaded: no route retrieves", param="model", code="model_not_found"
        )
    return await handler.handle(body)


@admin_router.get("/status")
async def status(request: Request) -> dict[str, Any]:
    """What this gateway serves: snapshot, thresholds version, loaded adapters, vLLM process state."""
    result: dict[str, Any] = await request.app.state.status()
    return result


@admin_router.post("/index/reload")
async def reload_index(request: Request) -> dict[str, Any]:
    """Switch to the index's current snapshot now instead of at the next poll."""
    searcher = request.app.state.chat.searcher
    if searcher is None:
        raise UpstreamUnavailableError("no index is open: no route retrieves")
    swapped = await asyncio.to_thread(searcher.reload_if_changed)
    return {"snapshot": searcher.snapshot_id, "swapped": swapped}


class AdapterLoad(BaseModel):
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)


@admin_router.post("/adapters/load")
async def load_adapter(body: AdapterLoad, request: Request) -> dict[str, Any]:
    """Load a registered adapter version into vLLM under its versioned name: `{"name": "demo", "version":
    "v2"}`; requests can then pin it (`model="demo@v2"`)."""
    adapters: AdapterPool = request.app.state.adapters
    adapter = await adapters.version(body.name, body.version)
    return {"loaded": str(adapter.ref)}


router.include_router(v1)
router.include_router(admin_router)
