"""A managed local vLLM OpenAI server: a child process bound to loopback, keyed, stopped with us.

The gateway's embedded default, the benchmarks, the end-to-end tests and a local teacher for training data
all start vLLM through `ManagedVLLM`.

It is started as `python -m vllm.entrypoints.openai.api_server` (the CPU package has no working `vllm`
console script); the gateway itself never imports vllm.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from core.processes import die_with_parent, free_port, poll_health
from core.settings import VLLMSettings


class VLLMStartError(RuntimeError):
    """The managed server exited or did not become healthy in time."""


def vllm_command(
    model_path: str, served_name: str, config: VLLMSettings, port: int, api_key: str
) -> list[str]:
    """The argv of the managed server."""
    return [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", model_path,
        "--served-model-name", served_name,
        "--host", config.host,
        "--port", str(port),
        # One token: a generated key may start with "-" (url-safe base64), which argparse would take for
        # an option ("--api-key: expected at least one argument", seen in CI once in ~64 starts).
        f"--api-key={api_key}",
        "--dtype", config.dtype,
        "--max-model-len", str(config.max_model_len),
        *(["--enable-lora", "--max-loras", str(config.max_loras),
           "--max-lora-rank", str(config.max_lora_rank)] if config.enable_lora else []),
        "--disable-uvicorn-access-log",
        *(["--enable-auto-tool-choice", "--tool-call-parser", config.tool_call_parser]
          if config.tool_call_parser else []),
        *config.extra_args,
    ]  # fmt: skip


def vllm_environment(config: VLLMSettings) -> dict[str, str]:
    """The child's environment: CPU KV cache size and runtime adapter loading (hub settings inherited)."""
    env = dict(os.environ)
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(config.kv_cache_gib))
    env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
    return env


def start_failure(what: str, log_tail: str, log_path: Path) -> str:
    """A start-up error whose first line names the cause: the log's last non-blank line (argparse's
    `error:` line, a traceback's exception), then the tail for whoever reads further.

    One-line CLI errors show only the first lines of a message, and the tail starts with vLLM's usage
    text, so without this the actual error never reached the user.
    """
    lines = [line.strip() for line in log_tail.splitlines() if line.strip()]
    cause = f": {lines[-1]}" if lines else ""
    return f"{what}{cause} (log: {log_path})\n{log_tail}".rstrip("\n")


class ManagedVLLM:
    """Starts, health-checks and stops one local vLLM server."""

    def __init__(
        self,
        model_path: str,
        served_name: str,
        config: VLLMSettings,
        log_path: Path,
        api_key: str | None = None,
    ) -> None:
        self.model_path = model_path
        self.served_name = served_name
        self.config = config
        self.log_path = log_path
        self.api_key = api_key or secrets.token_urlsafe(24)
        """By default fresh each start and shared only with the gateway, so nothing else can call vLLM."""
        self.port = config.port or free_port(config.host)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    def start(self) -> None:
        """Launch the server (returns at once; see `wait_healthy`)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = vllm_command(self.model_path, self.served_name, self.config, self.port, self.api_key)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                env=vllm_environment(self.config),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )

    def wait_healthy(self, timeout_s: float | None = None) -> None:
        """Block until `/health` answers 200; raise with the log's tail if the server dies or times out."""
        timeout_s = timeout_s or self.config.startup_timeout_s
        if self._process is None:
            raise VLLMStartError("vLLM was not started")
        outcome = poll_health(self.url, self._process, timeout_s)
        if outcome == "exited":
            raise VLLMStartError(start_failure("vLLM exited during start-up", self.log_tail(), self.log_path))
        if outcome == "timeout":
            self.stop()
            tail = self.log_tail()
            raise VLLMStartError(
                start_failure(f"vLLM not healthy after {timeout_s:.0f} s", tail, self.log_path)
            )

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def exit_code(self) -> int | None:
        """The server's exit status if it has died (None while it runs or before it started)."""
        return self._process.poll() if self._process is not None else None

    def restart(self) -> None:
        """Start a fresh server on the same port and key after the old one died; blocks until healthy."""
        process, self._process = self._process, None
        if process is not None:
            # The API server may be gone while its engine process still holds the port and memory.
            self._signal_group(process, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        self.start()
        self.wait_healthy()

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM the server's process group (it has an engine child), SIGKILL after `grace_s`."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        self._signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self._signal_group(process, signal.SIGKILL)
            process.wait(timeout=10)

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the server's log, for error messages."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    @staticmethod
    def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
