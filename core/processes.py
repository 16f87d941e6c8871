"""Child processes that lorag starts: free ports, health polling, stopping, and `lorag` itself as a child.

One copy for everything that runs a server beside itself — the gateway's managed vLLM, an evaluation's
gateway, the benchmarks, a teacher server for training data and the end-to-end fixtures — so that each of
them starts, waits for and stops a child the same way.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import httpx

HealthOutcome = Literal["healthy", "exited", "timeout"]


def free_port(host: str) -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_ports(host: str, count: int, port_range: tuple[int, int] | None = None) -> list[int]:
    """`count` distinct ports nobody listens on, from `port_range` (inclusive) or anywhere."""
    if port_range is None:
        ports: set[int] = set()
        while len(ports) < count:
            ports.add(free_port(host))
        return sorted(ports)
    found = []
    for port in range(port_range[0], port_range[1] + 1):
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        found.append(port)
        if len(found) == count:
            return found
    raise RuntimeError(f"fewer than {count} free ports in {port_range[0]}-{port_range[1]}")


def parse_port_range(text: str) -> tuple[int, int]:
    """`18100-18199` → (18100, 18199)."""
    low, _, high = text.partition("-")
    try:
        first, last = int(low), int(high)
    except ValueError:
        raise ValueError(f"{text!r} is not a port range like 18100-18199") from None
    if not 0 < first <= last < 65536:
        raise ValueError(f"{text!r} is not a port range like 18100-18199")
    return first, last


def poll_health(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> HealthOutcome:
    """Poll `url/health` once a second until it answers 200, the process exits, or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return "exited"
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/health", timeout=2.0).status_code == 200:
                return "healthy"
        time.sleep(1.0)
    return "timeout"


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    """`poll_health`, raising `RuntimeError` with the tail of the child's log unless it became healthy."""
    outcome = poll_health(url, process, timeout_s)
    if outcome != "healthy":
        tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
        raise RuntimeError(f"{url}: the server {outcome} (exit code {process.returncode}); {log}:\n{tail}")


def stop_process(
    process: subprocess.Popen[bytes], grace_s: float = 30.0, sig: signal.Signals = signal.SIGINT
) -> None:
    """Ask a child to stop (SIGINT: uvicorn's graceful shutdown), SIGKILL it after `grace_s`."""
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def die_with_parent() -> None:
    """In a child (`preexec_fn`): its own process group, and SIGTERM when the parent dies, even by SIGKILL
    (Linux only), so that no server outlives the process that started it."""
    os.setsid()
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def lorag_command(*args: str) -> list[str]:
    """The argv of `lorag ARGS…` run by this interpreter (also where no console script is installed)."""
    return [sys.executable, "-m", "cli", *args]


def start_lorag(
    args: Sequence[str], log: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """`lorag ARGS…` as a child whose output goes to `log` (appended), with `env` (default: ours)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            lorag_command(*args),
            env=dict(env) if env is not None else None,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
