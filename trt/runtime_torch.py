"""PyTorch engine: eager fp32 (the baseline), or fp16 + channels_last + torch.compile with CUDA graphs.

For GPUs without a usable TensorRT (e.g. Hopper where only TensorRT-RTX is installed, which refuses compute
capability 9.0), `compile=True` is the fast path: mode="reduce-overhead" captures CUDA graphs per shape.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from fusion.checkpoint import load_checkpoint


class TorchEngine:
    name = "torch"

    def __init__(self, model: torch.nn.Module | str | Path, *, device: str = "cpu", precision: str = "fp32",
                 channels_last: bool = False, compile: bool = False, max_batch: int = 128):
        self.validated = None
        if not isinstance(model, torch.nn.Module):
            model, _, ckpt = load_checkpoint(model)
            self.validated = json.loads(ckpt["validated"]) if ckpt.get("validated") else None
        self.classes: tuple[str, ...] = tuple(getattr(model, "class_names", ()))  # set by build_model
        if precision not in ("fp32", "fp16"):
            raise ValueError(f"precision={precision!r}: torch engine supports fp32 and fp16")
        self.device = torch.device(device)
        self.precision = precision
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        model = model.eval().to(self.device, self.dtype, memory_format=self.memory_format)
        if compile:
            _static_anchors(model)
        self._eager = model
        self._shape: tuple = ()  # the input shapes whose anchors the heads hold
        self.model = torch.compile(model, mode="reduce-overhead", dynamic=False) if compile else model
        self.name = "torch-compile" if compile else "torch"
        self.input_size = None
        self.max_batch = max_batch
        self.fixed_batch = compile  # one captured CUDA graph: every call carries max_batch (callers pad)

    def _canonical(self, x: torch.Tensor) -> torch.Tensor:
        """A fresh tensor with the canonical strides of its shape and memory format. Tensors with a size-1 dimension
        (the IR input, (B, 1, H, W)) are "contiguous" under several stride patterns; a compiled graph guards on
        strides, so without this every new pattern would recompile it (seconds of work, holding the GIL)."""
        out = torch.empty(x.shape, dtype=self.dtype, device=self.device, memory_format=self.memory_format)
        return out.copy_(x)

    @torch.inference_mode()
    def __call__(self, rgb: torch.Tensor, ir: torch.Tensor) -> tuple[torch.Tensor, ...]:
        rgb, ir = self._canonical(rgb), self._canonical(ir)
        if self.model is not self._eager and (key := (tuple(rgb.shape), tuple(ir.shape))) != self._shape:
            self._eager(rgb, ir)  # heads compute their anchors for this shape outside the graph (see _static_anchors)
            self._shape = key
        out = self.model(rgb, ir)
        outs = out if isinstance(out, tuple) else (out,)
        # A copy either way: CUDA-graph outputs are overwritten by the next call (fp16 → float already copies).
        return tuple(o.float() if o.dtype != torch.float32 else o.clone() for o in outs)


def _static_anchors(model: torch.nn.Module) -> None:
    """Heads keep their anchors between calls of one input shape instead of rebuilding them every call.

    The checkpoints' heads are `dynamic` (anchors follow any input size, as the ONNX export needs), and ultralytics'
    `make_anchors` reads a stride tensor's value (`.item()`): under torch.compile that splits the model into four
    graphs with eager anchor code between them, every batch (measured on the H100: a quarter of the engine thread's
    time). Static heads rebuild anchors only when the shape changes, which the engine does eagerly before the
    compiled call, so the compiled model is one graph."""
    from ultralytics.nn.modules import Detect

    for m in model.modules():
        if isinstance(m, Detect):
            m.dynamic = False
