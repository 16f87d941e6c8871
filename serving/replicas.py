"""Several vLLM replicas behind one Service: generation goes through the Service, adapter loads go to
every replica.

A load call sent through a Kubernetes Service reaches one pod only, so each gateway resolves a headless
Service (one DNS A record per ready pod) and loads adapters into each replica itself; reconciliation
(`serving/adapter_follow.py`) then re-loads whatever a new or restarted replica lacks. `vllm_replicas` is
either such a URL (`http://vllm-replicas.lorag.svc:8000`: every address its host resolves to is a replica)
or a comma-separated list of URLs.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

from serving.upstream import VLLMClient


def replica_urls(spec: str) -> list[str]:
    """The replica URLs `spec` names now: a comma-separated list as given, or one URL per address its host
    resolves to (a headless Service); resolved on every call, as pods come and go."""
    urls = [part.strip().rstrip("/") for part in spec.split(",") if part.strip()]
    if len(urls) != 1:
        return urls
    parts = urlsplit(urls[0])
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return urls
    addresses = sorted({str(info[4][0]) for info in infos})
    if len(addresses) <= 1:
        return urls
    return [f"{parts.scheme}://{_bracket(address)}:{port}" for address in addresses]


def _bracket(address: str) -> str:
    return f"[{address}]" if ":" in address else address


class ReplicaSet:
    """The gateway's upstream when vLLM has replicas: `chat`/`stream_chat` through the Service client,
    `load_adapter` on every replica, `models()` listing only what every replica serves."""

    def __init__(
        self, service: VLLMClient, replicas: Callable[[], list[str]], api_key: str | None, timeout_s: float
    ) -> None:
        self.service = service
        self.replicas = replicas
        self.api_key = api_key
        self.timeout_s = timeout_s
        self._clients: dict[str, VLLMClient] = {}

    def _client(self, url: str) -> VLLMClient:
        if url not in self._clients:
            self._clients[url] = VLLMClient(url, self.api_key, self.timeout_s)
        return self._clients[url]

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.service.chat(body)

    def stream_chat(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        return self.service.stream_chat(body)

    async def healthy(self) -> bool:
        return await self.service.healthy()

    async def load_adapter(self, served_name: str, path: str) -> None:
        urls = self.replicas() or [self.service.base_url]
        await asyncio.gather(*(self._client(url).load_adapter(served_name, path) for url in urls))

    async def unload_adapter(self, served_name: str) -> None:
        urls = self.replicas() or [self.service.base_url]
        await asyncio.gather(*(self._client(url).unload_adapter(served_name) for url in urls))

    async def models(self) -> list[dict[str, Any]]:
        """Models every replica serves (an adapter missing on one replica is missing)."""
        urls = self.replicas() or [self.service.base_url]
        listings = await asyncio.gather(*(self._client(url).models() for url in urls))
        common = set.intersection(*({card["id"] for card in listing} for listing in listings))
        return [card for card in listings[0] if card["id"] in common]

    async def aclose(self) -> None:
        await self.service.aclose()
        for client in self._clients.values():
            await client.aclose()
