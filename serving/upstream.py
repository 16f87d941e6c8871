"""The client for vLLM's OpenAI server: the gateway's only generation path.

Streams go through aiohttp, everything else through httpx. A stream is the hot path: every output token is
one SSE line, and on a 2-core machine that the gateway shares with vLLM, httpx's line reader cost ~5-10 ms
of CPU per 64-token stream against aiohttp's ~1 ms (16 streams at once). The rest (non-streaming chat,
models, adapter loading) is a request or two each, where httpx's mock transport keeps the tests simple.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Protocol

import aiohttp
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
        """`transport` replaces the network for the httpx requests (tests pass an `httpx.MockTransport`);
        streams always use the network."""
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self._headers = headers
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=5.0),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._session is not None:
            await self._session.close()

    def _stream_session(self) -> aiohttp.ClientSession:
        """The streams' session, made on first use: aiohttp binds it to the running event loop."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                base_url=self.base_url + "/",
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=5.0, sock_read=self._timeout_s),
                connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=60.0),
                read_bufsize=2**20,  # an SSE line (a chunk with logprobs) can be long
            )
        return self._session

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        response = await self._request("POST", "/v1/chat/completions", json=body)
        result: dict[str, Any] = response.json()
        return result

    async def stream_chat(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        try:
            async with self._stream_session().post("v1/chat/completions", json=body) as response:
                if response.status >= 400:
                    raise upstream_error(response.status, await response.text(), response.reason or "")
                async for raw in response.content:
                    line = raw.decode("utf-8").strip()
                    if not line.startswith("data:"):
                        continue
                    data = line[len("data:") :].strip()
                    if data == "[DONE]":
                        # Read to the end of the body (vLLM ends it right after): a fully read response
                        # hands its connection back to the pool, so the next request does not open a new
                        # one, which a busy vLLM may accept late.
                        await response.content.read()
                        return
                    yield json.loads(data)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamUnavailableError(f"vLLM server unreachable: {exc or type(exc).__name__}") from exc

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
    return upstream_error(response.status_code, response.text, response.reason_phrase)


def upstream_error(status: int, text: str, reason: str) -> UpstreamError:
    """vLLM's error (OpenAI-shaped, or plain text) as a gateway error with the same status."""
    try:
        payload = json.loads(text)
        error = payload.get("error", payload) if isinstance(payload, dict) else {}
        message = error.get("message") or text
        # vLLM names its exception class ("BadRequestError") as the type; clients expect OpenAI's types.
        kind = "invalid_request_error" if status < 500 else error.get("type")
        return UpstreamError(status, str(message), kind, error.get("param"))
    except ValueError:
        return UpstreamError(status, text or reason, None)
