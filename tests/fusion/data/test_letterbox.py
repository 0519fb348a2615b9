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


@pytest.mark.parametrize("size", [(1280, 1024), (1280, 720)])
def test_nv12_letterbox_matches_the_rgb_one_from_the_same_decode(tmp_path, size):
    """NVDEC can hand RGB over as NV12: converting after the downscale must give what FFmpeg's RGB gives."""
    import av
    import cv2

    from fusion.data.video import write_video
    from jobs.modality import brightness_batch

    rng = np.random.default_rng(3)
    w, h = size
    # smooth colour fields with sharp edges: chroma subsampling and the resize both matter
    frames = [cv2.resize(rng.integers(0, 256, (h // 32, w // 32, 3), dtype=np.uint8), size,
                         interpolation=cv2.INTER_NEAREST if k % 2 else cv2.INTER_CUBIC) for k in range(4)]
    write_video(str(tmp_path / "c.mp4"), frames, fps=25, crf=12)
    with av.open(str(tmp_path / "c.mp4")) as c:
        decoded = list(c.decode(video=0))
    rgb = torch.from_numpy(np.stack([f.to_ndarray(format="rgb24") for f in decoded])).permute(0, 3, 1, 2)
    nv12 = torch.from_numpy(np.stack([f.to_ndarray(format="nv12") for f in decoded])).unsqueeze(1)
    assert nv12.shape == (4, 1, h * 3 // 2, w)
    ir = torch.zeros((4, 1, h // 2, w // 2), dtype=torch.uint8)
    x, _, lb = letterbox(rgb, ir, size=(640, 512))
    x12, y12, lb12 = letterbox(nv12, ir, size=(640, 512), nv12=True)
    assert lb12 == lb and x12.shape == x.shape and y12.shape == (4, 1, 512, 640)
    diff = (x12 - x).abs() * 255
    # FFmpeg's own conversion truncates (its RGB is 1-1.7 levels darker than the exact BT.601 inverse) and
    # upsamples chroma its own way (these sharp colour edges: 2.1 levels in all; a street scene: 1.2; swapped
    # chroma planes or another matrix: tens)
    assert diff.mean() < 2.5 and ((x12 - x) * 255).mean(dim=(0, 2, 3)).abs().max() < 2.0, diff.mean()
    if lb.pad_y:
        assert torch.allclose(x12[:, :, : lb.pad_y], torch.tensor(114 / 255))  # bars stay the letterbox grey
    # brightness from the luma plane is the luminance of the RGB frames
    np.testing.assert_allclose(brightness_batch(nv12, nv12=True), brightness_batch(rgb), atol=0.01)


def test_nv12_letterbox_rejects_rgb_planes_and_odd_widths():
    ir = torch.zeros((1, 1, 32, 32), dtype=torch.uint8)
    with pytest.raises(ValueError, match="NV12"):
        letterbox(torch.zeros((1, 3, 64, 64), dtype=torch.uint8), ir, size=(64, 64), nv12=True)
    with pytest.raises(ValueError, match="odd width 63"):
        letterbox(torch.zeros((1, 1, 96, 63), dtype=torch.uint8), ir, size=(64, 64), nv12=True)


@pytest.mark.parametrize("channels_last", [True, False])
def test_cpu_rgb_resize_in_uint8_stays_within_one_level_of_fp32(channels_last):
    """The CPU path interpolates RGB as uint8 (8 × faster): within 1/255 of the fp32 resize, in either layout the
    decoders give (PyAV's (n, H, W, 3) buffers are channels-last views)."""
    import torch.nn.functional as F

    rng = np.random.default_rng(5)
    hwc = torch.from_numpy(rng.integers(0, 256, (2, 720, 1280, 3), dtype=np.uint8))
    rgb = hwc.permute(0, 3, 1, 2) if channels_last else hwc.permute(0, 3, 1, 2).contiguous()
    ir = torch.from_numpy(rng.integers(0, 256, (2, 1, 360, 640), dtype=np.uint8))
    x, y, lb = letterbox(rgb, ir, size=(640, 512))
    ref = F.interpolate(rgb.float() / 255, size=(360, 640), mode="bilinear", align_corners=False, antialias=True)
    content = x[:, :, lb.pad_y:lb.pad_y + 360]
    assert x.shape == (2, 3, 512, 640) and x.dtype == torch.float32
    assert ((content - ref).abs().max() * 255) <= 1.0 + 1e-4
    assert torch.allclose(x[:, :, :lb.pad_y], torch.tensor(114 / 255))
    assert torch.equal(y[:, :, lb.pad_y:lb.pad_y + 360], ir.float() / 255)  # IR at the content size: not resized
