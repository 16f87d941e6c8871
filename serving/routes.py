"""HTTP routes: a few lines each — validate, call the handler, shape the response."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from serving.chat import ChatHandler
from serving.errors import AuthenticationError
from serving.protocol import ChatCompletionRequest, ModelList


def require_api_key(request: Request) -> None:
    """Bearer-token check against the configured keys (none configured: open, loopback only)."""
    keys: list[str] = request.app.state.api_keys
    if not keys:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    # Compare against every key in constant time so timing reveals nothing about which key is close.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(token.encode(), key.encode())
    if scheme.lower() != "bearer" or not token or not matched:
        raise AuthenticationError(
            "Invalid or missing API key: send `Authorization: Bearer <key>`.", code="invalid_api_key"
        )


router = APIRouter()
v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the gateway process answers."""
    return {"status": "ok"}


@v1.get("/models")
async def list_models(request: Request) -> ModelList:
    """The routes clients can name in `model`; adapter routes are children of the base model."""
    return ModelList(data=request.app.state.model_cards)


@v1.post("/chat/completions", response_model=None)
async def chat_completions(body: ChatCompletionRequest, request: Request) -> JSONResponse | StreamingResponse:
    """OpenAI chat completions, streaming or not, with lorag's `citations` and `lorag` extensions."""
    handler: ChatHandler = request.app.state.chat
    prepared = await handler.prepare(body)
    if body.stream:
        events = await handler.stream(prepared)
        return StreamingResponse(
            events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )
    return JSONResponse(await handler.complete(prepared))


router.include_router(v1)
