"""deploy/: every Kubernetes manifest validates against the Kubernetes schemas (offline, kubernetes-validate),
the compose files against the compose schema (vendored by check-jsonschema), every `lorag ...` they run
parses with the real CLI, and the pieces agree with each other and with lorag's own settings."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema
from typer.testing import CliRunner

from cli import app
from core.models import cache_path, packaged
from core.settings import Settings, load_settings
from core.vllm_server import vllm_command

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s" / "base"
OVERLAYS = DEPLOY / "k8s" / "overlays"
COMPOSE_FILES = [DEPLOY / "compose.yaml", DEPLOY / "compose.cpu.yaml"]
KUBERNETES_VERSION = "1.30.0"
"""The oldest Kubernetes the manifests are for (CronJob `timeZone`, autoscaling/v2, policy/v1)."""


# --- loading ----------------------------------------------------------------------------------------


class ComposeLoader(yaml.SafeLoader):
    """YAML with compose's merge tags: `!reset` (drop the key) and `!override` (replace the value)."""


ComposeLoader.add_constructor("!reset", lambda loader, node: Reset())
ComposeLoader.add_constructor(
    "!override", lambda loader, node: Override(loader.construct_object(node, deep=True))
)


class Reset:
    pass


class Override:
    def __init__(self, value: Any) -> None:
        self.value = value


def load_compose(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=ComposeLoader)  # noqa: S506 - a SafeLoader subclass


def plain(value: Any) -> Any:
    """A compose file as a single file means it: `!reset` keys dropped, `!override` values as they are."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if not isinstance(v, Reset)}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return plain(value.value) if isinstance(value, Override) else value


def merge(base: Any, override: Any) -> Any:
    """Compose's merge for what these files use: mappings merge, `!reset` removes, the rest is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            if isinstance(value, Reset):
                merged.pop(key, None)
            elif isinstance(value, Override):
                merged[key] = plain(value.value)
            else:
                merged[key] = merge(base[key], value) if key in base else plain(value)
        return merged
    return plain(override)


INTERPOLATION = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def dotenv(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip("'")
    return values


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """`${VAR}`, `${VAR:-default}`, `${VAR:?error}` as compose expands them; a missing required one fails."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def expand(match: re.Match[str]) -> str:
        name, kind, arg = match.groups()
        if env.get(name):
            return env[name]
        assert kind != "?", f"${{{name}}} is required ({arg}) but not in deploy/.env.example"
        return arg if kind == "-" else ""

    return INTERPOLATION.sub(expand, value)


def compose_model(*paths: Path) -> dict[str, Any]:
    """The files merged and interpolated with deploy/.env.example, as `docker compose config` would."""
    model: dict[str, Any] = {}
    for path in paths:
        model = merge(model, load_compose(path))
    return interpolate(model, dotenv(DEPLOY / ".env.example"))


def kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    """Every object of every resource file the kustomization lists, as (file, object)."""
    docs = []
    for name in kustomization()["resources"]:
        docs += [(name, doc) for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]
    return docs


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in k8s_documents() if doc["kind"] == kind}


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if doc["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
        return doc["spec"]["template"]["spec"]
    return None


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(doc) or {}
    return spec.get("initContainers", []) + spec.get("containers", [])


def container(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in containers(doc) if c["name"] == name)


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def vllm_params() -> dict[str, str]:
    generator = next(g for g in kustomization()["configMapGenerator"] if g["name"] == "vllm-params")
    return dict(literal.split("=", 1) for literal in generator["literals"])


# --- Kubernetes -------------------------------------------------------------------------------------


def test_kustomization_names_every_file() -> None:
    """No manifest is left out of `kubectl apply -k`, and every file it names exists."""
    kustom = kustomization()
    named = set(kustom["resources"])
    named |= {f for g in kustom["configMapGenerator"] for f in g.get("files", [])}
    assert named == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    for generator in kustom["secretGenerator"]:
        for env_file in generator["envs"]:
            assert (K8S / f"{env_file}.example").is_file(), f"{env_file}.example documents the secret"


@pytest.mark.parametrize(
    "doc",
    [doc for _, doc in k8s_documents()],
    ids=[f"{f}:{d['kind']}/{d['metadata']['name']}" for f, d in k8s_documents()],
)
def test_manifest_validates_against_kubernetes_schema(doc: dict[str, Any]) -> None:
    # strict: unknown fields (a typo such as `readinesProbe`) fail too.
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@pytest.fixture(scope="module")
def kustomize() -> Iterator[Any]:
    """Render a kustomization (a copy of deploy/k8s with secrets.env from the example) with kubectl."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl (its built-in kustomize) is not installed: rendered output not checked")

    def render(directory: Path) -> list[dict[str, Any]]:
        out = subprocess.run(
            ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
        )
        assert out.returncode == 0, out.stderr
        return [doc for doc in yaml.safe_load_all(out.stdout) if doc]

    yield render


@pytest.fixture
def k8s_copy(tmp_path: Path) -> Path:
    """deploy/k8s with base/secrets.env made from its example, as a user would."""
    copy = tmp_path / "k8s"
    shutil.copytree(K8S.parent, copy)
    shutil.copy(K8S / "secrets.env.example", copy / "base" / "secrets.env")
    return copy


def test_rendered_kustomization_validates(kustomize, k8s_copy: Path) -> None:  # type: ignore[no-untyped-def]
    docs = kustomize(k8s_copy / "base")
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        assert doc["kind"] == "Namespace" or doc["metadata"]["namespace"] == "lorag"
    kinds = {doc["kind"] for doc in docs}
    assert {"Secret", "ConfigMap", "CronJob", "HorizontalPodAutoscaler", "NetworkPolicy"} <= kinds
    assert gpus(docs) == ("1", "1")


def gpus(docs: list[dict[str, Any]]) -> tuple[str, str]:
    """The vLLM container's GPU (request, limit), after checking it is told the same tensor-parallel size."""
    vllm = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "vllm")
    server = container(vllm, "vllm")
    assert "--tensor-parallel-size=$(TENSOR_PARALLEL_SIZE)" in server["args"]
    params = next(
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("vllm-params")
    )
    assert server["envFrom"][0]["configMapRef"]["name"] == params["metadata"]["name"]
    resources = server["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == params["data"]["TENSOR_PARALLEL_SIZE"]
    return resources["requests"]["nvidia.com/gpu"], resources["limits"]["nvidia.com/gpu"]


def test_tensor_parallel_overlay_sets_the_gpu_count(kustomize, k8s_copy: Path) -> None:  # type: ignore[no-untyped-def]
    """The shipped overlay changes one value; vLLM gets the flag (from the ConfigMap) and as many GPUs."""
    docs = kustomize(k8s_copy / "overlays" / "tensor-parallel-2")
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    assert gpus(docs) == ("2", "2")


def test_vllm_runs_with_the_managed_servers_flags() -> None:
    """The flags lorag's own vLLM gets (LoRA, tool parser, ...) are given here too, from vllm-params."""
    server = container(by_kind("Deployment")["vllm"], "vllm")
    given = {arg.split("=", 1)[0] for arg in server["args"]}
    managed = {
        arg.split("=", 1)[0]
        for arg in vllm_command("m", "m", Settings().vllm, 8000, "k")
        if arg.startswith("--")
    }
    assert managed - {"--api-key"} <= given  # the key comes from VLLM_API_KEY (a Secret)
    assert env_of(server)["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert env_of(server)["VLLM_API_KEY"]["secretKeyRef"]["name"] == "lorag-secrets"
    referenced = set(re.findall(r"\$\((\w+)\)", " ".join(server["args"])))
    assert referenced <= set(vllm_params())


def test_vllm_params_match_the_gateway_settings() -> None:
    """What vLLM serves is what gateways and training expect: model name, packaged model path, LoRA rank."""
    settings = load_settings(K8S / "lorag.yaml")
    params = vllm_params()
    assert params["SERVED_MODEL_NAME"] == settings.chat_model
    model = packaged(settings.chat_model)
    assert model is not None and params["MODEL"] == str(cache_path(model, Path("/var/lib/lorag/cache")))
    assert int(params["MAX_LORA_RANK"]) == settings.vllm.max_lora_rank
    assert int(params["MAX_LORAS"]) == settings.vllm.max_loras
    assert int(params["MAX_MODEL_LEN"]) == settings.vllm.max_model_len


def test_retrain_recipe_loads() -> None:
    from training.recipe import load_config

    recipe = load_config(K8S / "retrain.yaml")
    assert recipe.base_model == load_settings(K8S / "lorag.yaml").chat_model
    assert recipe.lora_r <= int(vllm_params()["MAX_LORA_RANK"])


def test_every_lorag_environment_variable_is_a_setting() -> None:
    """A misspelt LORAG_* variable would be ignored silently: each one names a settings field."""
    names = {name for _, doc in k8s_documents() for c in containers(doc) for name in env_of(c)}
    names |= {n for s in compose_model(*COMPOSE_FILES)["services"].values() for n in s.get("environment", {})}
    names |= set(dotenv(K8S / "secrets.env.example"))
    for name in sorted(n for n in names if n.startswith("LORAG_") and n != "LORAG_CONFIG"):
        field = name.removeprefix("LORAG_").split("__")[0].lower()
        assert field in Settings.model_fields, f"{name}: no setting {field!r}"


def test_gateways_reach_vllm_through_the_service_and_every_replica_through_the_headless_one() -> None:
    services, deployments = by_kind("Service"), by_kind("Deployment")
    vllm_labels = deployments["vllm"]["spec"]["template"]["metadata"]["labels"]
    gateway_labels = deployments["gateway"]["spec"]["template"]["metadata"]["labels"]
    assert services["vllm"]["spec"]["selector"] == vllm_labels
    headless = services["vllm-replicas"]["spec"]
    assert headless["clusterIP"] == "None" and headless["selector"] == vllm_labels
    assert not headless.get("publishNotReadyAddresses")  # only replicas that can take a load
    env = env_of(container(deployments["gateway"], "gateway"))
    assert env["LORAG_VLLM_URL"] == "http://vllm:8000"
    assert env["LORAG_VLLM_REPLICAS"] == "http://vllm-replicas:8000"
    assert env["LORAG_VLLM_API_KEY"]["secretKeyRef"] == {"name": "lorag-secrets", "key": "VLLM_API_KEY"}
    # Only gateways, and the retrain job whose teacher is the served base model, may reach vLLM's port.
    (policy,) = by_kind("NetworkPolicy").values()
    assert policy["spec"]["podSelector"]["matchLabels"] == vllm_labels
    (rule,) = policy["spec"]["ingress"]
    retrain_labels = by_kind("CronJob")["lorag-retrain"]["spec"]["jobTemplate"]["spec"]["template"][
        "metadata"
    ]
    assert rule["from"] == [
        {"podSelector": {"matchLabels": gateway_labels}},
        {"podSelector": {"matchLabels": retrain_labels["labels"]}},
    ]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8000}]
    hpa = by_kind("HorizontalPodAutoscaler")["gateway"]["spec"]["scaleTargetRef"]
    assert (hpa["kind"], hpa["name"]) == ("Deployment", "gateway")


def test_only_jobs_write_the_shared_volume() -> None:
    for _, doc in k8s_documents():
        for c in containers(doc):
            for mount in c.get("volumeMounts", []):
                if mount["name"] == "lorag-home":
                    writer = doc["kind"] in ("Job", "CronJob")
                    where = f"{doc['metadata']['name']}/{c['name']}"
                    assert mount.get("readOnly", False) is not writer, where


def test_schedules() -> None:
    cronjobs = by_kind("CronJob")
    assert cronjobs["lorag-index-refresh"]["spec"]["schedule"] == "*/15 * * * *"
    assert cronjobs["lorag-retrain"]["spec"]["schedule"] == "0 2 1 1,4,7,10 *"  # each quarter's first day
    for job in cronjobs.values():
        assert job["spec"]["concurrencyPolicy"] == "Forbid"
    retrain = container(cronjobs["lorag-retrain"], "retrain")
    assert retrain["resources"]["limits"]["nvidia.com/gpu"] == "1"
    # It regenerates from documents, with the served base model as its teacher (key: vLLM's).
    assert retrain["command"][retrain["command"].index("--docs") + 1] == "/var/lib/lorag/docs"
    env = env_of(retrain)
    assert env["LORAG_TEACHER__URL"] == "http://vllm:8000/v1"
    assert env["LORAG_TEACHER__MODEL"]["configMapKeyRef"] == {
        "name": "vllm-params",
        "key": "SERVED_MODEL_NAME",
    }
    assert env["LORAG_TEACHER__API_KEY_ENV"] == "TEACHER_API_KEY"
    assert env["TEACHER_API_KEY"]["secretKeyRef"] == {"name": "lorag-secrets", "key": "VLLM_API_KEY"}


# --- compose ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose_schema() -> dict[str, Any]:
    return get_builtin_schema("vendor.compose-spec")


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_file_validates(path: Path, compose_schema: dict[str, Any]) -> None:
    jsonschema.validate(plain(load_compose(path)), compose_schema)


@pytest.mark.parametrize("files", [COMPOSE_FILES[:1], COMPOSE_FILES], ids=["gpu", "cpu"])
def test_compose_model_validates(files: list[Path], compose_schema: dict[str, Any]) -> None:
    """Merged and interpolated (with deploy/.env.example, which must give every required variable)."""
    model = compose_model(*files)
    jsonschema.validate(model, compose_schema)
    services = model["services"]
    assert set(services) == {"setup", "vllm", "gateway", "refresh"}
    gpu = services["vllm"].get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices")
    assert bool(gpu) is (len(files) == 1)  # the GPU is reserved in the base file, dropped on CPU


def test_compose_agrees_with_lorag() -> None:
    services = compose_model(*COMPOSE_FILES[:1])["services"]
    vllm, gateway = services["vllm"], services["gateway"]
    flags = dict(arg.split("=", 1) if "=" in arg else (arg, "") for arg in vllm["command"])
    managed = {
        arg.split("=", 1)[0]
        for arg in vllm_command("m", "m", Settings().vllm, 8000, "k")
        if arg.startswith("--")
    }
    assert managed - {"--api-key"} <= set(flags)
    assert vllm["environment"]["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    chat_model = gateway["environment"]["LORAG_CHAT_MODEL"]
    assert flags["--served-model-name"] == chat_model
    model = packaged(chat_model)
    assert model is not None
    assert flags["--model"] == str(cache_path(model, Path(gateway["environment"]["LORAG_CACHE_DIR"])))
    assert "http://vllm:8000" in gateway["command"]
    assert gateway["environment"]["LORAG_VLLM_API_KEY"] == vllm["environment"]["VLLM_API_KEY"]
    assert "ports" not in vllm  # only the gateway talks to vLLM
    for name, service in services.items():
        for volume in service.get("volumes", []):
            if volume.startswith("lorag-home:"):
                assert volume.endswith(":ro") is (name not in ("setup", "refresh")), name


# --- the commands they run --------------------------------------------------------------------------


def lorag_commands(argv: list[str]) -> list[list[str]]:
    """The `lorag ...` command lines in one container command: direct, or inside `sh -c SCRIPT`."""
    if not argv:
        return []
    if Path(argv[0]).name == "lorag":
        return [argv]
    if Path(argv[0]).name in ("sh", "bash") and "-c" in argv:
        script = argv[argv.index("-c") + 1]
        lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        commands, current = [], []
        for token in [*lexer, ";"]:
            if token and set(token) <= set(";&|"):
                commands.append(current)
                current = []
            else:
                current.append(token)
        return [c for words in commands for c in lorag_commands(words)]
    return []


def manifest_commands() -> list[tuple[str, list[str]]]:
    found = []
    for _, doc in k8s_documents():
        for c in containers(doc):
            argv = [*c.get("command", []), *c.get("args", [])]
            found += [(f"k8s {doc['metadata']['name']}/{c['name']}", cmd) for cmd in lorag_commands(argv)]
    for path in COMPOSE_FILES:
        for name, service in (plain(load_compose(path)).get("services") or {}).items():
            argv = [*(service.get("entrypoint") or []), *(service.get("command") or [])]
            found += [(f"{path.name} {name}", cmd) for cmd in lorag_commands(argv)]
    return found


def test_commands_are_found() -> None:
    """The extraction sees the commands the deployment depends on (so the next test is not vacuous)."""
    seen = {" ".join(cmd[1:3]) for _, cmd in manifest_commands()}
    assert {"serve --host", "index refresh", "demo prepare", "retrain --config"} <= seen


@pytest.mark.parametrize("where,argv", manifest_commands(), ids=lambda v: v if isinstance(v, str) else None)
def test_command_exists_in_the_cli(where: str, argv: list[str]) -> None:
    """Each command line parses with the real CLI: its subcommands and options exist (`--help` stops
    before anything runs; options are parsed first, so an unknown one still fails)."""
    result = CliRunner().invoke(app, [*argv[1:], "--help"])
    assert result.exit_code == 0, f"{where}: `{shlex.join(argv)}` -> {result.output}"
