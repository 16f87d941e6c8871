"""The teacher `lorag train data from-docs` talks to: the configured endpoint, or a local vLLM started for it.

`training/` reaches the teacher only by URL. Here the CLI decides which URL: `teacher.url` if something
answers there (a running `lorag serve`, a vLLM, a hosted API); otherwise, when that URL is on this machine,
a managed vLLM serving the base model under the name `teacher.model` (one vLLM at a time on a small
machine), stopped when the run ends. The teacher's identity — what its cached replies are keyed on — stays
`model@<configured url>` either way, so an incremental re-run hits the cache whether it reused a server or
started one (a started server's port is random).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import typer

from core.settings import Settings
from training.docs import OpenAITeacher
from training.docs.errors import TeacherError
from training.docs.from_settings import teacher_identity

LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


def serves_model(url: str, model: str, api_key: str | None, timeout_s: float = 3.0) -> bool | None:
    """Whether `url` (an OpenAI base URL) lists `model`: None if nothing answers there at all."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.get(f"{url.rstrip('/')}/models", headers=headers, timeout=timeout_s)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        # Something answers but will not list models (a key it refuses, a server without /models):
        # let the first call say what is wrong rather than start a second server beside it.
        return True
    try:
        names = {entry.get("id") for entry in response.json().get("data", [])}
    except (ValueError, AttributeError):
        return True
    return model in names


def is_local(url: str) -> bool:
    """Whether `url` points at this machine."""
    return (urlsplit(url).hostname or "") in LOOPBACK


@contextlib.contextmanager
def open_cli_teacher(settings: Settings, echo: Callable[[str], None] = typer.echo) -> Iterator[OpenAITeacher]:
    """The teacher for this run; a local vLLM is started (and stopped afterwards) only if none answers."""
    config = settings.teacher
    try:
        key = config.api_key()
    except ValueError as exc:
        raise TeacherError(str(exc)) from None
    identity = teacher_identity(config)
    found = serves_model(config.url, config.model, key)
    if found is not None:
        if not found:
            raise TeacherError(
                f"the server at teacher.url {config.url} does not serve teacher.model {config.model!r}"
            )
        yield OpenAITeacher(config.url, config.model, key, config.timeout_s, identity=identity)
        return
    if not is_local(config.url):
        raise TeacherError(f"no answer from teacher.url {config.url}: is the endpoint up?")
    with _local_vllm(settings, echo) as (url, vllm_key):
        yield OpenAITeacher(url, config.model, vllm_key, config.timeout_s, identity=identity)


@contextlib.contextmanager
def _local_vllm(settings: Settings, echo: Callable[[str], None]) -> Iterator[tuple[str, str]]:
    """A vLLM serving the base model as `teacher.model`, without LoRA (it needs none): (base URL, key)."""
    from core.models import resolve_model
    from core.vllm_server import ManagedVLLM, VLLMStartError

    config = settings.vllm.model_copy(update={"enable_lora": False, "port": 0})
    model_path = resolve_model(settings.chat_model, settings.cache_dir)
    log = settings.home / "logs" / "teacher-vllm.log"
    echo(f"no teacher at {settings.teacher.url}: starting vLLM with {settings.chat_model} (log: {log})")
    vllm = ManagedVLLM(model_path, settings.teacher.model, config, log)
    vllm.start()
    try:
        try:
            vllm.wait_healthy()
        except VLLMStartError as exc:
            first = str(exc).splitlines()[0]
            raise TeacherError(f"the local teacher did not start: {first} (see {log})") from None
        yield f"{vllm.url}/v1", vllm.api_key
    finally:
        vllm.stop()
