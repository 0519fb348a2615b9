"""The one small interface every runtime implements, so the Detector and the job never care which runs.

An engine maps input tensors `rgb` (B,3,H,W) and `ir` (B,1,H,W), float32 in [0,1] on `engine.device`, to its
output tensors (`pred` (B,4+nc,A), or `pred_rgb` + `pred_ir` for decision fusion) on the same device.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Engine(Protocol):
    name: str  # e.g. "onnxruntime", "tensorrt", "torch"
    precision: str  # "fp32" | "fp16" | "int8"
    device: torch.device
    input_size: tuple[int, int] | None  # (W, H) the engine needs, or None when any multiple of 32 works
    max_batch: int  # largest batch one call may carry

    def __call__(self, rgb: torch.Tensor, ir: torch.Tensor) -> tuple[torch.Tensor, ...]: ...


class EngineError(RuntimeError):
    """An engine cannot be loaded or run here; the message says why and names the file."""
