import pytest
import torch

from fusion.checkpoint import load_checkpoint
from trt.export import export_onnx


@pytest.fixture(scope="session")
def mid_model():
    return load_checkpoint("models/mid_n.pt")[0]


@pytest.fixture(scope="session")
def mid_onnx(tmp_path_factory, mid_model):
    """The shipped mid-fusion model exported at 320x256 with dynamic batch and H/W."""
    return export_onnx(mid_model, tmp_path_factory.mktemp("onnx") / "mid.onnx", size=(320, 256), dynamic_hw=True)


requires_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
