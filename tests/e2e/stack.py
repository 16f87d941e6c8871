"""What the end-to-end tests share besides fixtures: the measurements report, the `lorag` command and its
environment, and the running gateway's description. Starting and stopping children is `core.processes`."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPORT: dict[str, str] = {}
LORAG = str(Path(sys.executable).parent / "lorag")
START_TIMEOUT_S = 900


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
