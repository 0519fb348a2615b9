import numpy as np
import pytest
import torch

from fusion.data.letterbox import letterbox
from fusion.data.scene import SceneConfig, render_pair
from trt.detector import Detector
from trt.runtime_onnx import OnnxRuntimeEngine
from trt.runtime_torch import TorchEngine

from .conftest import requires_gpu


@pytest.fixture(scope="module")
def frames():
    cfg = SceneConfig(rgb_size=(800, 640), ir_size=(400, 320), ir_shift=2.0, ir_scale=0.02)  # IR has its own size
    return [render_pair(7_000_000 + i, s, cfg) for i, s in enumerate(["day", "night", "fog", "clutter"])]


def _same(a: list[np.ndarray], b: list[np.ndarray], atol: float = 0.5) -> None:
    assert [len(x) for x in a] == [len(x) for x in b]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x[:, :4], y[:, :4], atol=atol)
        np.testing.assert_allclose(x[:, 4], y[:, 4], atol=1e-3)
        np.testing.assert_array_equal(x[:, 5], y[:, 5])


def test_golden_onnxruntime_vs_torch(frames, mid_onnx):
    rgb, ir = [f.rgb for f in frames], [f.ir for f in frames]
    a = Detector(OnnxRuntimeEngine(mid_onnx), size=(320, 256))(rgb, ir)
    b = Detector(TorchEngine("models/mid_n.pt"), size=(320, 256))(rgb, ir)
    _same(a, b)


def test_detections_are_in_original_rgb_pixels_and_find_the_targets(frames, mid_onnx):
    det = Detector(OnnxRuntimeEngine(mid_onnx), size=(640, 512), conf=0.4)
    out = det([f.rgb for f in frames], [f.ir for f in frames])
    from ultralytics.utils.metrics import box_iou

    hits = total = 0
    for f, d in zip(frames, out, strict=True):
        assert (d[:, [0, 2]] <= 800).all() and (d[:, [1, 3]] <= 640).all() and (d[:, :4] >= 0).all()
        if len(f.boxes):
            iou = box_iou(torch.from_numpy(f.boxes), torch.from_numpy(d[:, :4])) if len(d) else torch.zeros(1, 1)
            hits += int((iou.max(1).values > 0.5).sum())
            total += len(f.boxes)
    assert hits / total > 0.8


def test_letterbox_keeps_aspect_and_accepts_tensors():
    rgb = torch.randint(0, 255, (2, 3, 480, 640), dtype=torch.uint8)
    ir = torch.randint(0, 255, (2, 1, 240, 320), dtype=torch.uint8)
    x, y, lb = letterbox(rgb, ir, size=(640, 512))
    assert x.shape == (2, 3, 512, 640) and y.shape == (2, 1, 512, 640)
    assert lb.scale == 1.0 and lb.pad_y == 16 and lb.pad_x == 0
    back = lb.to_source(torch.tensor([[0.0, 16.0, 640.0, 496.0]]))
    torch.testing.assert_close(back, torch.tensor([[0.0, 0.0, 640.0, 480.0]]))


def test_mismatched_pair_counts_are_rejected(mid_onnx):
    det = Detector(OnnxRuntimeEngine(mid_onnx), size=(320, 256))
    with pytest.raises(ValueError, match="pairs must match"):
        det([np.zeros((64, 64, 3), np.uint8)], [])


@requires_gpu
@pytest.mark.gpu
def test_torch_gpu_fp16_matches_cpu(frames):
    rgb, ir = [f.rgb for f in frames], [f.ir for f in frames]
    a = Detector(TorchEngine("models/mid_n.pt"), size=(640, 512))(rgb, ir)
    b = Detector(TorchEngine("models/mid_n.pt", device="cuda", precision="fp16", channels_last=True),
                 size=(640, 512))(rgb, ir)
    from ultralytics.utils.metrics import box_iou

    # fp16 may reorder near-equal scores and move borderline detections: match confident ones by IoU instead.
    for x, y in zip(a, b, strict=True):
        x = x[x[:, 4] > 0.5]
        assert len(y) >= len(x)
        iou = box_iou(torch.from_numpy(x[:, :4]), torch.from_numpy(y[:, :4])).numpy()
        best = iou.argmax(1)
        assert (iou.max(1) > 0.9).all()  # measured on an H100: worst box IoU 0.925 (fp16 vs fp32)
        np.testing.assert_array_equal(x[:, 5], y[best, 5])
        np.testing.assert_allclose(x[:, 4], y[best, 4], atol=0.02)


def test_compiled_model_is_one_graph():
    """The compiled torch engine is one graph per input shape: with the exported (dynamic) heads, anchor code
    between graphs ran eagerly on every batch (a quarter of the engine thread on the H100)."""
    from fusion.checkpoint import load_checkpoint
    from trt.runtime_torch import _static_anchors

    model = load_checkpoint("models/mid_n.pt")[0].eval()
    x, y = torch.rand(2, 3, 128, 160), torch.rand(2, 1, 128, 160)
    with torch.inference_mode():
        _static_anchors(model)
        model(x, y)  # what TorchEngine does once per input shape
        torch.compile(model, backend="eager", fullgraph=True)(x, y)  # fullgraph: a graph break raises
