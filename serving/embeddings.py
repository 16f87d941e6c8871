"""`POST /v1/embeddings` with the index's embedder, so clients can embed exactly as the index does."""

from __future__ import annotations

import asyncio
import base64
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from serving.errors import BadRequestError, NotFoundError


class EmbeddingRequest(BaseModel):
    """OpenAI's embeddings request; token-array inputs are refused (this embedder takes text)."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1)
    input: str | list[str] = Field(min_length=1)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None


class TextEmbedder(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: list[str]) -> np.ndarray: ...


MAX_INPUTS = 2048
"""OpenAI's limit on inputs per request."""


class EmbeddingsHandler:
    """Embeds with the gateway's loaded embedder; `model` must name it (full name or last path part, with or
    without the `@backend` suffix)."""

    def __init__(self, embedder: TextEmbedder, token_count: Any = None) -> None:
        """`token_count(texts) -> int` reports usage (default: whitespace words, when no tokenizer)."""
        self.embedder = embedder
        # The model may be asked for without the backend suffix (`all-MiniLM-L6-v2` for
        # `all-MiniLM-L6-v2@openvino`): the backend is the gateway's business, not the client's.
        refs = {embedder.name, embedder.name.rpartition("@")[0] or embedder.name}
        self.names = refs | {ref.rstrip("/").rsplit("/", 1)[-1] for ref in refs}
        self.token_count = token_count or (lambda texts: sum(len(text.split()) for text in texts))

    async def handle(self, request: EmbeddingRequest) -> dict[str, Any]:
        if request.model not in self.names:
            raise NotFoundError(
                f"The model {request.model!r} does not exist. "
                f"Available embedding models: {self.embedder.name}.",
                param="model",
                code="model_not_found",
            )
        texts = [request.input] if isinstance(request.input, str) else list(request.input)
        if len(texts) > MAX_INPUTS:
            raise BadRequestError(f"input: at most {MAX_INPUTS} inputs per request", param="input")
        if any(not text for text in texts):
            raise BadRequestError("input: empty strings cannot be embedded", param="input")
        if request.dimensions is not None and request.dimensions != self.embedder.dimension:
            raise BadRequestError(
                f"dimensions: {self.embedder.name} embeds into {self.embedder.dimension} dimensions only",
                param="dimensions",
            )
        vectors = await asyncio.to_thread(self.embedder.embed, texts)
        tokens = int(self.token_count(texts))
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": _encode(vector, request.encoding_format)}
                for i, vector in enumerate(vectors)
            ],
            "model": self.embedder.name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


def _encode(vector: np.ndarray, encoding: str) -> list[float] | str:
    if encoding == "base64":  # what the openai SDKs ask for by default: little-endian float32
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
    return [float(x) for x in vector]
