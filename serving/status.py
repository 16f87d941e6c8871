"""What `/ready` and `/admin/status` report: whether the gateway can serve, and what it serves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from serving.adapters import AdapterPool
from serving.admission import Admission
from serving.chat import ChatHandler
from serving.observability import Metrics
from serving.supervisor import VLLMSupervisor


@dataclass
class GatewayStatus:
    """Reads the running gateway's parts; the routes call `readiness()` and `status()`."""

    chat: ChatHandler
    adapters: AdapterPool
    admission: Admission
    metrics: Metrics
    supervisor: VLLMSupervisor | None = None
    """Set when the gateway manages (and restarts) its own vLLM."""

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready when vLLM answers and, if a route retrieves, an index snapshot is loaded."""
        checks: dict[str, Any] = {}
        healthy = getattr(self.chat.upstream, "healthy", None)
        checks["vllm"] = "ok" if healthy is None or await healthy() else "unreachable"
        if self.supervisor is not None and self.supervisor.state != "running":
            checks["vllm"] = self.supervisor.state
        retrieves = any(route.retrieval != "never" for route in self.chat.routes.values())
        if retrieves:
            checks["snapshot"] = self._snapshot()
        ok = checks["vllm"] == "ok" and (not retrieves or checks["snapshot"] is not None)
        return ok, checks

    async def status(self) -> dict[str, Any]:
        """Snapshot, thresholds version, loaded adapters, vLLM process state and the queue; brings the
        snapshot and queue gauges up to date on the way."""
        snapshot = self._snapshot()
        self.metrics.snapshot(snapshot)
        self.metrics.queue(self.admission.in_flight, self.admission.waiting)
        calibrated = self.chat.thresholds.calibrated
        supervisor = self.supervisor
        return {
            "snapshot": snapshot,
            "thresholds": calibrated.version if calibrated else None,
            "adapters": self.adapters.names(),
            "vllm": {
                "state": supervisor.state if supervisor else "external",
                "restarts": supervisor.restarts if supervisor else 0,
                "pid": getattr(getattr(supervisor, "server", None), "pid", None),
            },
            "queue": {"in_flight": self.admission.in_flight, "waiting": self.admission.waiting},
        }

    def _snapshot(self) -> str | None:
        searcher = self.chat.searcher
        return searcher.current().snapshot_id if searcher is not None else None
