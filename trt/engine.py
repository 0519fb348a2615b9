"""The one small interface every runtime implements, and the one description that says which engine runs.

An engine maps input tensors `rgb` (B,3,H,W) and `ir` (B,1,H,W), float in [0,1] on `engine.device`, to its output
tensors (`pred` (B,4+nc,A), or `pred_rgb` + `pred_ir` for decision fusion) on the same device. An engine that
replays CUDA graphs has `fixed_batch`: callers pad every batch to `max_batch` so one captured graph serves all.

`EngineSpec` is the single description (artifact, precision, (W, H), max batch, compile / CUDA graphs, device) used
by the job, `trt.bench` and the Detector; `load_engine(spec)` turns it into a runtime.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import torch

log = logging.getLogger(__name__)
BackendName = Literal["auto", "onnxruntime", "tensorrt", "torch"]


@runtime_checkable
class Engine(Protocol):
    name: str  # e.g. "onnxruntime", "tensorrt", "torch", "torch-compile"
    precision: str  # "fp32" | "fp16" | "int8"
    device: torch.device
    input_size: tuple[int, int] | None  # (W, H) the engine needs, or None when any multiple of 32 works
    max_batch: int  # largest batch one call may carry
    fixed_batch: bool  # True: every call must carry exactly max_batch (CUDA graph replay)
    dtype: torch.dtype  # what the engine wants its inputs in (callers preprocess straight into it)
    classes: tuple[str, ...]  # class names, from the model (checkpoint config / ONNX metadata / engine sidecar)
    validated: dict | None  # accuracy per brightness bin, when stamped (see jobs.routing); None otherwise

    def __call__(self, rgb: torch.Tensor, ir: torch.Tensor) -> tuple[torch.Tensor, ...]: ...


class EngineError(RuntimeError):
    """An engine cannot be loaded or run here; the message says why and names the file."""


@dataclass(frozen=True)
class EngineSpec:
    backend: BackendName  # auto: tensorrt where a TensorRT runtime accepts this GPU, torch on other GPUs, else ORT
    model: str  # .onnx for onnxruntime / tensorrt, .pt for torch; the other suffix is found beside it
    precision: Literal["fp32", "fp16", "int8"] = "fp32"  # fp16 = an fp16 graph (ONNX/TensorRT) or fp16 torch
    size: tuple[int, int] = (640, 512)  # model input (W, H)
    max_batch: int = 32
    compile: bool = False  # torch: torch.compile(mode="reduce-overhead"), CUDA graphs; tensorrt: CUDA graph replay
    device: str = "cpu"
    threads: int = 0  # onnxruntime intra-op threads (0 = its default)
    cache_dir: str = ""  # tensorrt: engine and runtime cache folder ("" = ~/.cache/fusedet/engines)

    def resolved(self) -> EngineSpec:
        """`auto` → the fastest backend that works here."""
        if self.backend != "auto":
            return self
        if not self.device.startswith("cuda"):
            return replace(self, backend="onnxruntime")
        from trt.tensorrt_api import runtime_usable

        why = runtime_usable(torch.device(self.device))
        if not why:
            return replace(self, backend="tensorrt")
        log.info("engine.backend=auto: torch (%s)", why)
        return replace(self, backend="torch")


def sibling(model: str, suffix: str) -> Path:
    """models/mid_n.onnx → models/mid_n.pt (and back): one model name, one file per backend."""
    return Path(model).with_suffix(suffix)


def load_engine(spec: EngineSpec) -> Engine:
    spec = spec.resolved()
    if spec.backend == "onnxruntime":
        from trt.runtime_onnx import OnnxRuntimeEngine

        if spec.precision == "fp16" and spec.device == "cpu":
            raise EngineError(f"{spec.model}: engine.precision=fp16 needs a GPU backend (ONNX Runtime on the CPU "
                              "runs fp32 and int8 graphs)")
        return OnnxRuntimeEngine(sibling(spec.model, ".onnx"), device=spec.device, threads=spec.threads,
                                 max_batch=spec.max_batch, expect_precision=spec.precision)
    if spec.backend == "torch":
        from trt.runtime_torch import TorchEngine

        if spec.precision == "int8":
            raise EngineError(f"{spec.model}: the torch engine runs fp32 or fp16; int8 needs tensorrt or onnxruntime")
        return TorchEngine(sibling(spec.model, ".pt"), device=spec.device, precision=spec.precision,
                           channels_last=spec.device.startswith("cuda"), compile=spec.compile,
                           max_batch=spec.max_batch)
    from trt.build import DEFAULT_CACHE, BuildSpec, engine_for, graph_for_precision
    from trt.runtime_tensorrt import TensorRTEngine

    cache = Path(spec.cache_dir or DEFAULT_CACHE)
    onnx = graph_for_precision(spec.model, spec.precision, cache_dir=cache)
    build = BuildSpec(batch=(1, spec.max_batch, spec.max_batch), size=spec.size)
    return TensorRTEngine(engine_for(onnx, build, cache_dir=cache), device=spec.device, cuda_graph=spec.compile,
                          runtime_cache_dir=cache)
