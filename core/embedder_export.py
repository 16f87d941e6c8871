"""Export a sentence-transformers model for ONNX Runtime or OpenVINO, once, into its own directory.

The files follow sentence-transformers' layout (`onnx/model.onnx`, `openvino/openvino_model.xml`), so the
same directory also loads with `SentenceTransformer(path, backend=...)` where optimum is installed. lorag
does not go through optimum: every optimum-onnx release pins transformers < 4.58 and optimum-intel pins
transformers < 5.6 and pulls torchvision, which lorag's transformers 5.x / CPU torch cannot live beside.

Only the transformer runs in the exported file; pooling and normalisation stay in numpy
(`retrieval/exported.py`), so the models supported are Transformer + Pooling (mean or CLS) [+ Normalize].
"""

from __future__ import annotations

import inspect
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.embedder_spec import Backend, Quantization

EXPORT_FILES: dict[tuple[Backend, Quantization], str] = {
    ("onnx", "none"): "onnx/model.onnx",
    ("onnx", "int8"): "onnx/model_qint8.onnx",
    ("openvino", "none"): "openvino/openvino_model.xml",
    ("openvino", "int8"): "openvino/openvino_model_qint8.xml",
}
SUPPORTED_MODULES = {"Transformer", "Pooling", "Normalize"}
POOLING_MODES = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}
OUTPUT = "last_hidden_state"


class ExportError(RuntimeError):
    """The model cannot be exported for the backend (unsupported modules, missing packages)."""


def exported_file(model_dir: Path, backend: Backend, quantization: Quantization) -> Path:
    """Where the exported model for `backend` lives inside the model's directory."""
    return model_dir / EXPORT_FILES[(backend, quantization)]


def ensure_exported(
    model_dir: Path, backend: Backend, quantization: Quantization, log: Callable[[str], None] = print
) -> Path:
    """The exported file for `backend`, made now if missing (the fp32 ONNX file first: all start from it)."""
    target = exported_file(model_dir, backend, quantization)
    if target.exists():
        return target
    pooling_mode(model_dir)  # refuse unsupported architectures before the slow part
    onnx = exported_file(model_dir, "onnx", "none")
    if not onnx.exists():
        log(f"{model_dir.name}: exporting to ONNX")
        _atomic(onnx, lambda tmp: export_onnx(model_dir, tmp))
    if target == onnx:
        return target
    log(f"{model_dir.name}: preparing the {backend}{'-int8' if quantization == 'int8' else ''} model")
    if backend == "onnx":
        _atomic(target, lambda tmp: quantize_onnx(onnx, tmp))
    else:
        _atomic(target, lambda tmp: export_openvino(onnx, tmp, int8=quantization == "int8"))
    return target


def pooling_mode(model_dir: Path) -> str:
    """`mean` or `cls`, from the model's sentence-transformers modules; an `ExportError` for others."""
    modules_file = model_dir / "modules.json"
    if not modules_file.is_file():
        raise ExportError(f"{model_dir} is not a sentence-transformers model (no modules.json)")
    modules = json.loads(modules_file.read_text())
    kinds = {module["type"].rsplit(".", 1)[-1]: module for module in modules}
    unsupported = set(kinds) - SUPPORTED_MODULES
    if unsupported or "Pooling" not in kinds:
        raise ExportError(
            f"{model_dir.name}: only Transformer + Pooling [+ Normalize] models run on onnx/openvino, this "
            f"one has {sorted(kinds)}: use the torch backend (`@torch`)"
        )
    config = json.loads((model_dir / kinds["Pooling"]["path"] / "config.json").read_text())
    if isinstance(config.get("pooling_mode"), str):  # sentence-transformers >= 6 writes the mode by name
        modes = [config["pooling_mode"]] if config["pooling_mode"] in POOLING_MODES.values() else []
    else:
        modes = [mode for key, mode in POOLING_MODES.items() if config.get(key)]
        modes += [
            key
            for key, on in config.items()
            if key.startswith("pooling_mode") and on and key not in POOLING_MODES
        ]
    if len(modes) != 1 or modes[0] not in POOLING_MODES.values():
        raise ExportError(
            f"{model_dir.name}: pooling {config} is not supported (mean or CLS only): use `@torch`"
        )
    return modes[0]


def export_onnx(model_dir: Path, dest: Path) -> None:
    """The transformer as one fp32 ONNX graph, inputs as the tokenizer names them, dynamic batch and length.

    The TorchScript exporter is used on purpose: the graph it writes is the one ONNX Runtime's fusions
    (Attention, SkipLayerNorm) recognise; the torch.export-based one ran slower than torch itself here.
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    # Eager attention traces to plain ops; SDPA's kernel choice is not an ONNX concept.
    model = AutoModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    accepted = inspect.signature(model.forward).parameters
    names = [name for name in tokenizer.model_input_names if name in accepted]
    sample = tokenizer(
        ["an example", "a somewhat longer example sentence"], padding=True, return_tensors="pt"
    )
    axes = {name: {0: "batch", 1: "sequence"} for name in [*names, OUTPUT]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings that say nothing about this model
        torch.onnx.export(
            _hidden_states(model, names),
            tuple(sample[name] for name in names),
            str(dest),
            input_names=names,
            output_names=[OUTPUT],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )


def quantize_onnx(source: Path, dest: Path) -> None:
    """int8 weights, activations quantised on the fly, per output channel.

    Per-tensor scales (ONNX Runtime's default) cost MiniLM too much: cosine to torch fell to 0.89 on some
    PubMedQA chunks, against >= 0.985 per channel. Only matrix products with a constant (weight) operand
    are quantised; attention's activation-by-activation products stay fp32.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        source,
        dest,
        weight_type=QuantType.QInt8,
        per_channel=True,
        extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def export_openvino(source: Path, dest: Path, *, int8: bool) -> None:
    """OpenVINO IR from the ONNX file, fp32 weights (or int8-compressed ones, asymmetric, per channel)."""
    import openvino as ov

    model = ov.Core().read_model(str(source))
    if int8:
        try:
            import nncf
        except ImportError as exc:
            raise ExportError("openvino-int8 needs nncf: pip install nncf") from exc
        model = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
    ov.save_model(model, str(dest), compress_to_fp16=False)


def _atomic(target: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary name and rename, so that a reader never sees half a file (an IR's `.bin`
    is renamed before its `.xml`, which is what loaders look for)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}.tmp{os.getpid()}{target.suffix}")
    try:
        write(tmp)
        if tmp.with_suffix(".bin").exists() and target.suffix == ".xml":
            os.replace(tmp.with_suffix(".bin"), target.with_suffix(".bin"))
        os.replace(tmp, target)
    finally:
        for leftover in (tmp, tmp.with_suffix(".bin")):
            leftover.unlink(missing_ok=True)


def _hidden_states(model: Any, names: list[str]) -> Any:
    """The model as a module with positional inputs and one tensor output, which the exporter needs."""
    import torch

    class HiddenStates(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(names, inputs, strict=True))).last_hidden_state

    return HiddenStates().eval()
