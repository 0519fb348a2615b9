"""Which TensorRT is installed: full `tensorrt` (10.x / 11.x) or `tensorrt_rtx` (TensorRT for RTX).

Both expose the same subset we use (Builder, OnnxParser, Runtime, execute_async_v3). TensorRT-RTX's builder
and ONNX parser also run on a machine with no GPU (engines built for an explicit compute capability); its
runtime refuses compute capability 9.0 (Hopper).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


class TensorRTUnavailable(ImportError):
    """Neither `tensorrt` nor `tensorrt_rtx_bindings` can be imported."""


@dataclass(frozen=True)
class Flavour:
    name: str  # "tensorrt" | "tensorrt_rtx"
    version: str
    module: ModuleType

    @property
    def tag(self) -> str:
        return f"{'trt' if self.name == 'tensorrt' else 'trtrtx'}{self.version}"


def load_tensorrt() -> Flavour:
    for name, module_name in (("tensorrt", "tensorrt"), ("tensorrt_rtx", "tensorrt_rtx_bindings")):
        try:
            mod = importlib.import_module(module_name)
        except ImportError:
            continue
        return Flavour(name, str(getattr(mod, "__version__", "unknown")), mod)
    raise TensorRTUnavailable("no TensorRT: pip install tensorrt (NVIDIA index) or "
                              "tensorrt-rtx-cu13-libs tensorrt-rtx-cu13-bindings")


def tensorrt_available() -> bool:
    try:
        load_tensorrt()
    except TensorRTUnavailable:
        return False
    return True


def runtime_usable(device) -> str:
    """'' when a TensorRT runtime here can execute on `device` (a torch CUDA device), else the reason it cannot."""
    import torch

    if device.type != "cuda" or not torch.cuda.is_available():
        return "no CUDA GPU"
    try:
        flavour = load_tensorrt()
    except TensorRTUnavailable as exc:
        return str(exc)
    major, minor = torch.cuda.get_device_capability(device)
    if flavour.name == "tensorrt_rtx" and major == 9:
        return f"TensorRT-RTX {flavour.version} refuses compute capability {major}.{minor} (Hopper)"
    return ""
