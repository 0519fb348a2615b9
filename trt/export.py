"""Checkpoint → ONNX with two named inputs (`rgb`, `ir`), box decoding in the graph, NMS outside.

    python -m trt.export models/mid_n.pt out=build/mid_n.onnx [dynamic_hw=true opset=17]

The graph: rgb (B,3,H,W) float32 [0,1], ir (B,1,H,W) float32 [0,1] → pred (B, 4+nc, A) = xywh in input
pixels + class probabilities (decision fusion: pred_rgb and pred_ir). Batch is always dynamic; H and W can
be (multiples of 32). The result is simplified with onnxslim and must pass onnx.checker.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import onnx
import onnxslim
import torch

from fusion.config import ConfigError, cli_main, parse_args

log = logging.getLogger(__name__)
INPUTS = ("rgb", "ir")


class ExportError(RuntimeError):
    """Export produced an invalid graph; the message says which check failed."""


@dataclass(frozen=True)
class ExportConfig:
    out: str = ""  # .onnx path ("" = next to the checkpoint)
    size: tuple[int, int] = (640, 512)  # (W, H) traced at; fixed unless dynamic_hw
    dynamic_hw: bool = False  # dynamic H/W (multiples of 32); batch is always dynamic
    opset: int = 17
    simplify: bool = True  # onnxslim
    fp16_storage: bool = False  # store fp32 weights as fp16 + Cast: half the file, output rel. error ~1e-4

    def __post_init__(self) -> None:
        if self.opset < 17:
            raise ConfigError(f"export.opset={self.opset}: need >= 17")
        if any(v % 32 for v in self.size):
            raise ConfigError(f"export.size={self.size}: multiples of 32")


def output_names(model: torch.nn.Module) -> tuple[str, ...]:
    from fusion.models.detectors import DecisionFusion

    inner = getattr(model, "model", model)  # precision wrappers hold the detector as .model
    return ("pred_rgb", "pred_ir") if isinstance(inner, DecisionFusion) else ("pred",)


def input_names(model: torch.nn.Module) -> tuple[str, ...]:
    """Graph inputs: single-modality models take only their own (the engine then copies half the bytes)."""
    from fusion.models.detectors import SingleStream

    inner = getattr(model, "model", model)
    if isinstance(inner, SingleStream) and inner.inputs in INPUTS:
        return (inner.inputs,)
    return INPUTS


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def export_onnx(model: torch.nn.Module, path: str | Path, *, size: tuple[int, int] = (640, 512),
                dynamic_hw: bool = False, opset: int = 17, simplify: bool = True, fp16_storage: bool = False,
                metadata: dict[str, str] | None = None) -> Path:
    """Export `model` (eval, float32, CPU) to `path`; returns the path."""
    model = model.eval().cpu()
    w, h = size
    rgb, ir = torch.rand(1, 3, h, w), torch.rand(1, 1, h, w)
    outputs = output_names(model)
    axes = {0: "batch", 2: "height", 3: "width"} if dynamic_hw else {0: "batch"}
    dynamic = {name: axes for name in INPUTS} | {name: {0: "batch", 2: "anchors"} for name in outputs}
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, (rgb, ir), buf, input_names=list(INPUTS), output_names=list(outputs),
                          dynamic_axes=dynamic, opset_version=opset, do_constant_folding=True, dynamo=False)
    graph = onnx.load_from_string(buf.getvalue())
    if simplify:
        graph = onnxslim.slim(graph)
        # onnxslim leaves repeated shape annotations in value_info (2 per tensor in a fixed-shape export, 10 on
        # average in the shipped dynamic H/W ones, some with wrong symbolic expressions: 2.3 MB of mid_n's 11.5 MB).
        # value_info is an optional cache that ONNX Runtime and TensorRT infer again: drop it.
        del graph.graph.value_info[:]
    if fp16_storage:
        from trt.precision import fp16_storage as to_fp16_storage

        graph = to_fp16_storage(graph)
    inner = getattr(model, "model", model)  # precision wrappers hold the detector as .model
    names = getattr(inner, "class_names", None)
    meta = ({"fusedet.class_names": json.dumps(list(names))} if names else {}) | (metadata or {})
    for k, v in meta.items():
        set_metadata(graph, k, v)
    try:
        onnx.checker.check_model(graph, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"{path}: onnx.checker rejected the exported graph: {exc}") from exc
    names = [i.name for i in graph.graph.input]
    if names != list(input_names(model)):
        raise ExportError(f"{path}: inputs are {names}, expected {list(input_names(model))}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(graph, str(path))
    return path


def export_checkpoint(checkpoint: str | Path, cfg: ExportConfig, *, half: bool = False) -> Path:
    """Checkpoint → ONNX carrying its model config, checkpoint hash, input size and precision as metadata.
    `half`: an FP16 graph with explicit fp32 I/O (see `trt.precision.HalfIO`)."""
    from fusion.checkpoint import load_checkpoint
    from fusion.config import to_dict
    from trt.precision import HalfIO

    model, mcfg, ckpt = load_checkpoint(checkpoint)
    out = Path(cfg.out) if cfg.out else Path(checkpoint).with_suffix(".onnx")
    meta = {"fusedet.model_config": json.dumps(to_dict(mcfg)), "fusedet.checkpoint_sha256": sha256(checkpoint),
            "fusedet.input_size": json.dumps(list(cfg.size)), "fusedet.precision": "fp16" if half else "fp32"}
    if ckpt.get("validated"):
        meta["fusedet.validated"] = ckpt["validated"]  # accuracy per brightness bin travels with the model
    return export_onnx(HalfIO(model) if half else model, out, size=cfg.size, dynamic_hw=cfg.dynamic_hw,
                       opset=cfg.opset, simplify=cfg.simplify, fp16_storage=cfg.fp16_storage, metadata=meta)


def read_metadata(path: str | Path) -> dict[str, object]:
    """The fusedet metadata an exported ONNX carries (model config, input size)."""
    m = onnx.load(str(path), load_external_data=False)
    props = {p.key: p.value for p in m.metadata_props}
    out: dict[str, object] = {}
    if "fusedet.model_config" in props:
        out["model_config"] = json.loads(props["fusedet.model_config"])
    if "fusedet.input_size" in props:
        out["input_size"] = tuple(json.loads(props["fusedet.input_size"]))
    out["precision"] = props.get("fusedet.precision", "fp32")
    out["validated"] = json.loads(props["fusedet.validated"]) if "fusedet.validated" in props else None
    out["classes"] = tuple(json.loads(props["fusedet.class_names"]) if "fusedet.class_names" in props
                           else out.get("model_config", {}).get("class_names", ()))
    out["outputs"] = tuple(o.name for o in m.graph.output)
    return out


def set_metadata(model: onnx.ModelProto, key: str, value: str) -> None:
    for p in model.metadata_props:
        if p.key == key:
            p.value = value
            return
    model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))


def main(argv: list[str] | None = None) -> int:
    def run(args: list[str]) -> int:
        (ckpt,), cfg = parse_args(ExportConfig, args, positional=1)
        print(f"wrote {export_checkpoint(ckpt, cfg)}")
        return 0

    from fusion.checkpoint import CheckpointError

    return cli_main(run, argv, doc=__doc__, config=ExportConfig, errors=(CheckpointError, ExportError))

if __name__ == "__main__":
    sys.exit(main())
