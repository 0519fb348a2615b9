"""One preprocessing: what evaluation feeds a model is exactly what the deployed Detector feeds its engine, for a
16:9 and a 5:4 pair (IR at its own resolution); boxes land where the letterbox puts the pixels."""

import numpy as np
import pytest
import torch

from fusion.data.letterbox import frames_to_tensors, geometry, letterbox
from fusion.data.pairs import AugmentConfig, TrainPairs


class _One:
    def __init__(self, rgb, ir, boxes):
        self.item = (rgb, ir, boxes, np.zeros(len(boxes), np.int64), "day")

    def __len__(self):
        return 1

    def raw(self, i):
        return self.item


class _Engine:
    """Records what the Detector hands an engine."""

    name, precision, device, input_size, max_batch, fixed_batch = "rec", "fp32", torch.device("cpu"), None, 4, False
    dtype, classes = torch.float32, ("person",)

    def __call__(self, rgb, ir):
        self.seen = (rgb.clone(), ir.clone())
        return (torch.zeros(len(rgb), 5, 10),)


@pytest.mark.parametrize(("rgb_size", "ir_size"), [((1280, 720), (640, 360)), ((1280, 1024), (640, 512)),
                                                   ((640, 512), (320, 240))])
def test_evaluation_and_deployment_feed_identical_tensors(rgb_size, ir_size):
    from trt.detector import Detector

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (rgb_size[1], rgb_size[0], 3), dtype=np.uint8)
    ir = rng.integers(0, 255, (ir_size[1], ir_size[0]), dtype=np.uint8)
    boxes = np.array([[100, 50, 300, 400]], np.float32)
    x_eval, y_eval, b_eval, _, _ = TrainPairs(_One(rgb, ir, boxes), size=(640, 512),
                                              augment=AugmentConfig(enabled=False))[0]
    engine = _Engine()
    Detector(engine, size=(640, 512))([rgb], [ir])
    x_dep, y_dep = engine.seen
    torch.testing.assert_close(x_eval, x_dep[0], rtol=0, atol=0)
    torch.testing.assert_close(y_eval, y_dep[0], rtol=0, atol=0)
    lb = geometry(rgb_size, (640, 512))
    np.testing.assert_allclose(b_eval.numpy(), lb.to_model(boxes), atol=1e-4)
    np.testing.assert_allclose(lb.to_source(lb.to_model(boxes)), boxes, atol=1e-3)
    if rgb_size == (1280, 720):  # 16:9 into 5:4: grey bars above and below, none at the sides
        assert (lb.pad_x, lb.pad_y) == (0, 76) and torch.allclose(x_eval[:, :70], torch.tensor(114 / 255))


def test_letterbox_rejects_unpaired_shapes_with_a_message():
    x, y = frames_to_tensors([np.zeros((64, 64, 3), np.uint8)], [np.zeros((32, 32), np.uint8)])
    with pytest.raises(ValueError, match="expected rgb"):
        letterbox(x, y[:, :, None], size=(64, 64))
