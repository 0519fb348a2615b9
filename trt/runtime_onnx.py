"""ONNX Runtime engine: CPU (the embedded default) or the CUDA provider when it is installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from trt.engine import EngineError
from trt.export import read_metadata


class OnnxRuntimeEngine:
    name = "onnxruntime"

    fixed_batch = False
    dtype = torch.float32

    def __init__(self, path: str | Path, *, device: str = "cpu", threads: int = 0, max_batch: int = 32,
                 expect_precision: str = ""):
        self.path = Path(path)
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise EngineError(f"{path}: onnxruntime has no CUDA provider here (pip install onnxruntime-gpu)")
            providers.insert(0, "CUDAExecutionProvider")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
            # Spinning threads burn the cores that decoding and the other actors on the machine need.
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=providers)
        except Exception as exc:  # ORT raises its own exception types per failure (Fail, InvalidGraph, NoSuchFile)
            raise EngineError(f"{path}: onnxruntime cannot load it ({exc})") from exc
        meta = read_metadata(path)
        self.precision = str(meta["precision"])
        if expect_precision and expect_precision != self.precision:
            raise EngineError(f"{path}: engine.precision={expect_precision} but this graph is {self.precision} "
                              "(python -m trt.pipeline writes fp16 and int8 graphs)")
        self.classes = tuple(meta["classes"])
        self.validated = meta["validated"]
        self.outputs = tuple(o.name for o in self.session.get_outputs())
        self.inputs = tuple(i.name for i in self.session.get_inputs())  # single-modality graphs take one
        shape = self.session.get_inputs()[0].shape  # [batch, 3, H, W]; H/W are strings when dynamic
        self.input_size = (shape[3], shape[2]) if all(isinstance(v, int) for v in shape[2:]) else None
        self.device = torch.device("cpu")  # outputs come back to host memory
        self.max_batch = max_batch

    def __call__(self, rgb: torch.Tensor, ir: torch.Tensor) -> tuple[torch.Tensor, ...]:
        tensors = {"rgb": rgb, "ir": ir}
        feeds = {n: np.ascontiguousarray(tensors[n].detach().cpu().numpy(), np.float32) for n in self.inputs}
        return tuple(torch.from_numpy(o) for o in self.session.run(list(self.outputs), feeds))
