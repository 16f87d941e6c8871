"""The client for vLLM's OpenAI server: the gateway's only generation path."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Protocol

import httpx

from serving.errors import UpstreamError, UpstreamUnavailableError


class Generation(Protocol):
    """What the chat handler needs from a generation backend."""

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """A non-streaming chat completion."""
        ...

    def stream_chat(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The chunks of a streaming chat completion, decoded, up to (not including) `[DONE]`."""
        ...


class AdapterControl(Protocol):
    """What the adapter pool needs: load and unload LoRA adapters, and list what is served."""

    async def load_adapter(self, served_name: str, path: str) -> None:
        """Make a LoRA adapter servable under `served_name`."""
        ...

    async def unload_adapter(self, served_name: str) -> None:
        """Forget the adapter served under `served_name` (unknown names count as done)."""
        ...

    async def models(self) -> list[dict[str, Any]]:
        """vLLM's model cards: the base model and the loaded adapters."""
        ...


class Upstream(Generation, AdapterControl, Protocol):
    """A vLLM server (or a set of replicas) as the gateway uses it: `VLLMClient`, `ReplicaSet`."""


class VLLMClient:
    """Talks to one vLLM OpenAI-compatible server over HTTP."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout_s: float = 300.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`transport` replaces the network (tests pass an `httpx.MockTransport`)."""
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=5.0),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        response = await self._request("POST", "/v1/chat/completions", json=body)
        result: dict[str, Any] = response.json()
        return result

    async def stream_chat(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        try:
            async with self._client.stream("POST", "/v1/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _upstream_error(response)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[len("data:") :].strip()
                    if data == "[DONE]":
                        return
                    yield json.loads(data)
        except httpx.TransportError as exc:
            raise UpstreamUnavailableError(f"vLLM server unreachable: {exc}") from exc

    async def models(self) -> list[dict[str, Any]]:
        """The models vLLM serves (base model and loaded adapters)."""
        data: list[dict[str, Any]] = (await self._request("GET", "/v1/models")).json()["data"]
        return data

    async def healthy(self) -> bool:
        """True when vLLM answers its health endpoint."""
        try:
            response = await self._client.get("/health", timeout=5.0)
        except httpx.TransportError:
            return False
        return response.status_code == 200

    async def load_adapter(self, served_name: str, path: str) -> None:
        """Load a LoRA adapter under `served_name` (needs VLLM_ALLOW_RUNTIME_LORA_UPDATING on the server).

        Already loaded (by another gateway sharing this server) counts as done: versioned names never change
        meaning, so the adapter there is the one asked for."""
        try:
            await self._request(
                "POST", "/v1/load_lora_adapter", json={"lora_name": served_name, "lora_path": path}
            )
        except UpstreamError as exc:
            if exc.status_code != 400 or "already been loaded" not in exc.message:
                raise

    async def unload_adapter(self, served_name: str) -> None:
        """Forget a LoRA adapter's name; vLLM finishes the requests already using it. Unknown names (never
        loaded here, or unloaded by another gateway sharing this server) count as done."""
        try:
            await self._request("POST", "/v1/unload_lora_adapter", json={"lora_name": served_name})
        except UpstreamError as exc:
            if exc.status_code != 404:
                raise

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise UpstreamUnavailableError(f"vLLM server unreachable: {exc}") from exc
        if response.status_code >= 400:
            raise _upstream_error(response)
        return response


def _upstream_error(response: httpx.Response) -> UpstreamError:
    """vLLM's error (OpenAI-shaped, or plain text) as a gateway error with the same status."""
    try:
        payload = response.json()
        error = payload.get("error", payload) if isinstance(payload, dict) else {}
        message = error.get("message") or response.text
        # vLLM names its exception class ("BadRequestError") as the type; clients expect OpenAI's types.
        kind = "invalid_request_error" if response.status_code < 500 else error.get("type")
        return UpstreamError(response.status_code, str(message), kind, error.get("param"))
    except ValueError:
        return UpstreamError(response.status_code, response.text or response.reason_phrase, None)
