"""Start from the checkpoints users have: map an ultralytics YOLO11 / YOLOv8 detector into any fusedet model.

    report = load_pretrained(model, "yolo11n.pt", arch="mid")   # or fusion.train ... pretrained=yolo11n.pt
    print(report.text())

Each ultralytics layer index has a place in our Python-wired topology of the same family (same blocks, same
order): YOLO11 backbone layers 0-10, neck 13-22, Detect 23; YOLOv8 backbone 0-9, neck 12-21, Detect 22
(`model.family=yolov8`). Across families the CSP blocks have no counterpart, so only the strided convolutions,
SPPF and the box branch land. Every backbone of the model is filled — both streams of mid fusion, both detectors
of decision fusion. Besides `.pt` files, an ultralytics ONNX export is read (its Conv+BatchNorm pairs folded into
one biased convolution come back as the convolution and an identity BatchNorm; ONNX files run no code on load).
The IR stem takes the RGB stem averaged over its colour channels; the early-fusion 4-channel stem takes RGB +
that mean. Tensors whose shape differs for another reason (the class branch for another class count) stay newly
initialised, and the report lists them: loaded / reshaped / new, by module — nothing is skipped silently.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from fusion.checkpoint import CheckpointError
from fusion.models.build import ULTRALYTICS_BN_EPS

YOLO11 = {0: "stem.0", 1: "stem.1", 2: "stem.2", 3: "p3.0", 4: "p3.1", 5: "p4.0", 6: "p4.1", 7: "p5.0", 8: "p5.1",
          9: "p5.2", 10: "p5.3"}
YOLO11_NECK = {13: "td4", 16: "td3", 17: "down3", 19: "bu4", 20: "down4", 22: "bu5"}
YOLOV8 = {0: "stem.0", 1: "stem.1", 2: "stem.2", 3: "p3.0", 4: "p3.1", 5: "p4.0", 6: "p4.1", 7: "p5.0", 8: "p5.1",
          9: "p5.2"}
YOLOV8_NECK = {12: "td4", 15: "td3", 16: "down3", 18: "bu4", 19: "down4", 21: "bu5"}
STRIDED = {0: "stem.0", 1: "stem.1", 3: "p3.0", 5: "p4.0", 7: "p5.0", 9: "p5.2"}  # Convs and SPPF: both families
# (checkpoint family, model family) → (backbone layers, neck layers, Detect layer)
MAPS = {("yolo11", "yolo11"): (YOLO11, YOLO11_NECK, 23), ("yolov8", "yolov8"): (YOLOV8, YOLOV8_NECK, 22),
        ("yolov8", "yolo11"): (STRIDED, {16: "down3", 19: "down4"}, 22),
        ("yolo11", "yolov8"): (STRIDED, {17: "down3", 20: "down4"}, 23)}


@dataclass
class LoadReport:
    source: str
    family: str  # "yolo11" | "yolov8"
    loaded: Counter = field(default_factory=Counter)  # module → tensors copied as they are
    reshaped: Counter = field(default_factory=Counter)  # module → stem tensors adapted to 1 or 4 input channels
    new: Counter = field(default_factory=Counter)  # module → tensors left at their fresh initialisation
    mismatched: list[str] = field(default_factory=list)  # "ours ← theirs: shape a vs b", e.g. the class branch
    exact: bool = True  # False: the model was built without model.ultralytics_exact (see `text`)

    def text(self) -> str:
        mods = sorted(set(self.loaded) | set(self.reshaped) | set(self.new))
        lines = [f"pretrained {self.family} weights from {self.source}:",
                 f"  {'module':34} {'loaded':>7} {'reshaped':>9} {'new':>5}"]
        lines += [f"  {m:34} {self.loaded[m]:7d} {self.reshaped[m]:9d} {self.new[m]:5d}" for m in mods]
        lines.append(f"  total: {sum(self.loaded.values())} loaded, {sum(self.reshaped.values())} reshaped, "
                     f"{sum(self.new.values())} new")
        lines += [f"  not loaded (shape): {m}" for m in self.mismatched[:12]]
        if not self.exact:  # same tensors, slightly different function: BatchNorm eps 1e-5 and an unactivated SPPF
            lines.append("  note: the model was built without model.ultralytics_exact=true, so these layers do not "
                         "compute exactly what they computed in ultralytics (fusion.train sets it for pretrained=)")
        return "\n".join(lines)


def read_state(path: str | Path, *, trust: bool = False) -> tuple[dict[str, torch.Tensor], str]:
    """An ultralytics checkpoint → (state dict with keys 'model.<layer>.<...>', family).

    Loaded with weights_only=True where the file allows (a state dict); a pickled ultralytics model runs code from the
    file when loaded, so it needs `trust` (train config: pretrained_trust=true) and is refused otherwise.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"pretrained={path}: file not found")
    if path.suffix.lower() == ".onnx":
        return _family(_onnx_state(path), {})
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for a pickled model object (what ultralytics saves)
        if not trust:
            raise CheckpointError(
                f"pretrained={path}: this checkpoint holds a pickled ultralytics model, and loading it runs code from "
                "the file. If you trust where it came from, add pretrained_trust=true (ultralytics must be installed)"
            ) from exc
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    obj = ckpt.get("ema") or ckpt.get("model") if isinstance(ckpt, dict) else ckpt
    if isinstance(obj, nn.Module):
        state = obj.float().state_dict()
        kinds = {int(m.i): type(m).__name__ for m in getattr(obj, "model", []) if hasattr(m, "i")}
    elif isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state, kinds = obj, {}
    elif isinstance(ckpt, dict) and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        state, kinds = ckpt, {}
    else:
        raise CheckpointError(f"pretrained={path}: neither an ultralytics checkpoint nor a state dict")
    return _family({(k if k.startswith("model.") else f"model.{k}"): v for k, v in state.items()}, kinds)


def _family(state: dict[str, torch.Tensor], kinds: dict[int, str]) -> tuple[dict[str, torch.Tensor], str]:
    has_psa = kinds.get(10) == "C2PSA" or any(k.startswith("model.10.m.0.attn") for k in state)
    return state, "yolo11" if has_psa else "yolov8"


def _onnx_state(path: Path) -> dict[str, torch.Tensor]:
    """An ultralytics ONNX export → its weights as a checkpoint state dict ('model.<layer>.<...>').

    The export folds each Conv's BatchNorm into a biased convolution (`model.2.cv1.conv.{weight,bias}`); the bias
    comes back as an identity BatchNorm (weight 1, mean 0, variance 1 - eps for ultralytics' eps, which fusion.train
    gives models it starts from pretrained weights), so the network computes what the file computes.
    """
    import onnx
    from onnx import numpy_helper

    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:  # DecodeError and friends for a file that is not ONNX
        raise CheckpointError(f"pretrained={path}: not a readable ONNX file ({exc})") from exc
    state: dict[str, torch.Tensor] = {}
    for init in graph.initializer:
        if not init.name.startswith("model."):
            continue  # shape constants of the export, not weights
        value = torch.from_numpy(numpy_helper.to_array(init).copy()).float()
        if init.name.endswith(".conv.bias"):
            bn = init.name.removesuffix("conv.bias") + "bn."
            state |= {bn + "weight": torch.ones_like(value), bn + "bias": value,
                      bn + "running_mean": torch.zeros_like(value),
                      bn + "running_var": torch.full_like(value, 1.0 - ULTRALYTICS_BN_EPS)}
        else:
            state[init.name] = value
    if not any(k.endswith(".conv.weight") for k in state):
        raise CheckpointError(f"pretrained={path}: no ultralytics layer weights ('model.<i>...conv.weight') in this "
                              "ONNX file; export it with ultralytics (yolo export format=onnx)")
    return state


def _targets(model: nn.Module, arch: str) -> list[tuple[str, str, str]]:
    """(backbone prefix, neck prefix, head prefix) for each stream of `model` that a YOLO detector can fill."""
    if arch == "mid":
        streams = [("rgb_backbone", "neck", "head")]
        if getattr(model, "ir_backbone", None) is not None:
            streams.append(("ir_backbone", "", ""))
        return streams
    if arch == "decision":
        return [(f"{d}.backbone", f"{d}.neck", f"{d}.head") for d in ("rgb_detector", "ir_detector")]
    return [("backbone", "neck", "head")]


def load_pretrained(model: nn.Module, path: str | Path, *, arch: str, trust: bool = False) -> LoadReport:
    """Copy what fits of an ultralytics detector into `model` (in place); → the report."""
    state, family = read_state(path, trust=trust)
    backbone, neck, head_index = MAPS[family, getattr(model, "family", "yolo11")]
    ours = model.state_dict()
    report = LoadReport(str(path), family, exact=getattr(model, "ultralytics_exact", False))
    done: set[str] = set()
    layer = re.compile(r"^model\.(\d+)\.(.+)$")
    for key, value in state.items():
        m = layer.match(key)
        if not m or key.endswith("num_batches_tracked"):  # a counter, not a weight
            continue
        i, rest = int(m.group(1)), m.group(2)
        for bb, nk, hd in _targets(model, arch):
            prefix = (f"{bb}.{backbone[i]}" if i in backbone else f"{nk}.{neck[i]}" if i in neck and nk
                      else hd if i == head_index and hd else None)
            target = f"{prefix}.{rest}" if prefix else None
            if target is None or target not in ours:
                continue
            want = ours[target]
            if want.shape == value.shape:
                ours[target] = value.to(want.dtype)
                report.loaded[_module(target)] += 1
            elif i == 0 and rest == "conv.weight" and want.shape[0] == value.shape[0] and value.shape[1] == 3:
                mean = value.mean(1, keepdim=True)  # IR: one channel that sees what the colours saw together
                ours[target] = mean if want.shape[1] == 1 else torch.cat([value, mean], 1)
                report.reshaped[_module(target)] += 1
            else:
                report.mismatched.append(f"{target} ← {key}: {tuple(want.shape)} vs {tuple(value.shape)}")
                continue
            done.add(target)
    for k in ours:
        if k not in done and not k.endswith("num_batches_tracked"):
            report.new[_module(k)] += 1
    model.load_state_dict(ours)
    return report


def _module(key: str) -> str:
    """rgb_backbone.p3.1.m.0.cv1.conv.weight → rgb_backbone.p3 (the report's grouping)."""
    parts = key.split(".")
    depth = 3 if parts[0] in ("rgb_detector", "ir_detector") else 2
    return ".".join(parts[:depth])


def summary_by_part(report: LoadReport) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"loaded": 0, "reshaped": 0, "new": 0})
    for kind in ("loaded", "reshaped", "new"):
        for m, n in getattr(report, kind).items():
            out[m][kind] += n
    return dict(out)
