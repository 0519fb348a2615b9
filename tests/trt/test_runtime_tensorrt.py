"""TensorRT runtime on a GPU. Skipped (never faked) where no TensorRT runtime can execute: no GPU, no TensorRT,
or TensorRT-RTX on a compute capability it refuses (9.0)."""

import numpy as np
import pytest
import torch

from trt.build import BuildSpec, compute_capability, engine_for
from trt.detector import Detector
from trt.runtime_onnx import OnnxRuntimeEngine
from trt.tensorrt_api import load_tensorrt, tensorrt_available


def _runtime_usable() -> bool:
    if not (torch.cuda.is_available() and tensorrt_available()):
        return False
    return not (load_tensorrt().name == "tensorrt_rtx" and compute_capability() == "SM90")


pytestmark = [pytest.mark.gpu, pytest.mark.tensorrt,
              pytest.mark.skipif(not _runtime_usable(), reason="no TensorRT runtime usable on this machine")]


@pytest.fixture(scope="module")
def engine_path(mid_onnx, tmp_path_factory):
    return engine_for(mid_onnx, BuildSpec(batch=(1, 4, 8), size=(320, 256)), cache_dir=tmp_path_factory.mktemp("e"))


def test_tensorrt_matches_onnxruntime(engine_path, mid_onnx):
    from trt.runtime_tensorrt import TensorRTEngine

    rng = np.random.default_rng(0)
    rgb = [rng.integers(0, 255, (256, 320, 3), dtype=np.uint8) for _ in range(3)]
    ir = [rng.integers(0, 255, (256, 320), dtype=np.uint8) for _ in range(3)]
    x = torch.rand(3, 3, 256, 320)
    y = torch.rand(3, 1, 256, 320)
    ref = OnnxRuntimeEngine(mid_onnx)(x, y)[0]
    for graph in (False, True):
        out = TensorRTEngine(engine_path, cuda_graph=graph)(x.cuda(), y.cuda())[0].cpu()
        assert torch.linalg.norm(out - ref) / torch.linalg.norm(ref) < 1e-2
    assert len(Detector(TensorRTEngine(engine_path))(rgb, ir)) == 3


def test_profiler_table(engine_path):
    from trt.runtime_tensorrt import TensorRTEngine

    eng = TensorRTEngine(engine_path, profile=True)
    eng(torch.rand(1, 3, 256, 320, device="cuda"), torch.rand(1, 1, 256, 320, device="cuda"))
    torch.cuda.synchronize()
    assert "layer" in eng.profile_table() and len(eng.profiler.totals) > 10
