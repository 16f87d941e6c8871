"""What the end-to-end tests share besides fixtures: the measurements report, the `lorag` command and its
environment, and the running gateway's description. Starting and stopping children is `core.processes`."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.processes import free_port, stop_process, wait_healthy

REPORT: dict[str, str] = {}
LORAG = str(Path(sys.executable).parent / "lorag")
START_TIMEOUT_S = 900
ADAPTER_KEEP_S = 10
"""The session gateway unloads old adapter versions after this many idle seconds, so that tests see it."""


def lorag_env(home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, LORAG_HOME=str(home), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


@dataclass
class Gateway:
    url: str
    vllm_url: str
    vllm_api_key: str
    home: Path
    process: subprocess.Popen[bytes]
    log: Path


def prepare_demo_home(home: Path) -> None:
    """`lorag demo prepare` into `home`: the demo index built, the shipped demo adapter registered."""
    subprocess.run([LORAG, "demo", "prepare"], env=lorag_env(home), check=True)


@contextmanager
def running_gateway(home: Path, log: Path, **env: str) -> Iterator[Gateway]:
    """`lorag serve` on `home` with its managed vLLM, on free ports (and `env`); stopped at the end, its
    log copied into the home."""
    port, vllm_port = free_port("127.0.0.1"), free_port("127.0.0.1")
    key = secrets.token_urlsafe(16)
    variables = lorag_env(
        home, LORAG_PORT=str(port), LORAG_VLLM__PORT=str(vllm_port), LORAG_VLLM_API_KEY=key, **env
    )
    with log.open("wb") as out:
        process = subprocess.Popen([LORAG, "serve"], env=variables, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log, START_TIMEOUT_S)
        yield Gateway(url, f"http://127.0.0.1:{vllm_port}", key, home, process, log)
    finally:
        stop_process(process, grace_s=60)
        shutil.copy(log, home / "gateway.log")


def lorag(gateway, *args: str, **env: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    done = subprocess.run([LORAG, *args], env=lorag_env(gateway.home, **env), capture_output=True, text=True)
    output = f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert done.returncode == 0, f"lorag {' '.join(args)} failed:\n{output}"
    return done


def shipped_fields(note: str) -> dict:  # type: ignore[type-arg]
    """The shipped demo adapter's provenance (base weights hash, data hash, config), for a re-registration."""
    import json

    from training.demo_adapter import DEMO_ADAPTER_DIR

    manifest = json.loads((DEMO_ADAPTER_DIR / "manifest.json").read_text())
    owned = {"name", "version", "created_at", "adapter_sha256", "files"}  # the registry writes these
    return {**{k: v for k, v in manifest.items() if k not in owned}, "note": note}
