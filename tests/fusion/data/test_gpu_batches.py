"""GPU-side training batches (run here on the CPU device): the store holds the deployment's letterbox, and the
batched augmentation moves boxes exactly as it moves the pixels, for both modalities."""

import numpy as np
import torch

from fusion.data.gpu_batches import GpuBatches, PairStore, augment
from fusion.data.letterbox import frames_to_tensors, letterbox
from fusion.data.pairs import AugmentConfig


class _Source:
    def __init__(self, n=6):
        self.n = n

    def __len__(self):
        return self.n

    def raw(self, i):
        rgb = np.full((360, 640, 3), 20, np.uint8)
        ir = np.full((180, 320), 20, np.uint8)
        x1, y1 = 100 + 40 * i, 80
        rgb[y1:y1 + 120, x1:x1 + 60] = 250  # a bright person-sized block, also warm in IR
        ir[y1 // 2:(y1 + 120) // 2, x1 // 2:(x1 + 60) // 2] = 250
        return rgb, ir, np.array([[x1, y1, x1 + 60, y1 + 120]], np.float32), np.array([0]), "day"


def _bright_box(img, near):  # (H, W) → xyxy of the bright pixels within 12 px of `near` (borders reflect content)
    x1, y1, x2, y2 = np.add(near, (-12, -12, 12, 12)).clip(0, None).astype(int)
    ys, xs = np.nonzero(img[y1:y2, x1:x2] > 0.5)
    return np.array([xs.min() + x1, ys.min() + y1, xs.max() + 1 + x1, ys.max() + 1 + y1], np.float32)


def test_store_is_the_deployment_letterbox(tmp_path):
    src = _Source()
    store = PairStore.build(src, size=(320, 256), root=tmp_path, key="t", workers=1)
    again = PairStore.build(src, size=(320, 256), root=tmp_path, key="t", workers=1)  # reused, not rebuilt
    assert len(store) == len(again) == 6 and store.rgb.shape == (6, 3, 256, 320)
    x, _, lb = letterbox(*frames_to_tensors(*[[v] for v in src.raw(2)[:2]]), size=(320, 256))
    np.testing.assert_array_equal(store.rgb[2], (x[0] * 255).round().byte().numpy())
    np.testing.assert_allclose(store.labels[store.offsets[2]:store.offsets[3], 1:], lb.to_model(src.raw(2)[2]))


def test_augmented_boxes_follow_the_pixels_in_both_modalities(tmp_path):
    store = PairStore.build(_Source(), size=(320, 256), root=tmp_path, key="t", workers=1)
    aug = AugmentConfig(flip=0.5, scale=0.25, rgb_gain=0.0, ir_gain=0.0, ir_shift=0.0, ir_scale=0.0)
    gen = torch.Generator().manual_seed(3)
    rgb = torch.from_numpy(store.rgb[:]).float() / 255
    ir = torch.from_numpy(store.ir[:]).float() / 255
    lab = torch.from_numpy(store.labels)
    bidx = torch.arange(6)
    r2, i2, lab2, b2 = augment(rgb, ir, lab, bidx, aug, gen)
    assert r2.shape == rgb.shape and i2.shape == ir.shape
    for k, b in zip(b2.tolist(), lab2[:, 1:].numpy(), strict=True):
        np.testing.assert_allclose(_bright_box(r2[k, 0].numpy(), b), b, atol=2.5)
        np.testing.assert_allclose(_bright_box(i2[k, 0].numpy(), b), b, atol=2.5)


def test_batches_carry_ultralytics_targets(tmp_path):
    store = PairStore.build(_Source(), size=(320, 256), root=tmp_path, key="t", workers=1)
    batches = list(GpuBatches(store, batch=4, augment=AugmentConfig(), device="cpu", seed=1).epoch(0))
    assert len(batches) == 1
    b = batches[0]
    assert b["rgb"].shape == (4, 3, 256, 320) and b["ir"].shape == (4, 1, 256, 320)
    assert b["bboxes"].shape[1] == 4 and len(b["cls"]) == len(b["batch_idx"]) <= 4
    assert (b["bboxes"] >= 0).all() and (b["bboxes"] <= 1).all()


class _EdgeSource(_Source):
    def raw(self, i):  # a warm person-sized block 4 px from the left edge: a mirrored border would copy it
        rgb = np.full((256, 320, 3), 20, np.uint8)
        ir = np.full((128, 160), 20, np.uint8)
        rgb[60:180, 4:40] = 250
        ir[30:90, 2:20] = 250
        return rgb, ir, np.array([[4, 60, 40, 180]], np.float32), np.array([0]), "day"


def _bright_outside_labels(img: np.ndarray, boxes: np.ndarray) -> int:
    """Pixels > 0.5 of an (H, W) image in [0, 1] outside every box (grown by 2 px)."""
    bright = img > 0.5
    for x1, y1, x2, y2 in boxes.round().astype(int):
        bright[max(y1 - 2, 0):y2 + 2, max(x1 - 2, 0):x2 + 2] = False
    return int(bright.sum())


def _check_edge_frame(img: np.ndarray, boxes: np.ndarray, scale: float) -> None:
    """A labelled block: nothing bright elsewhere (a mirrored border would copy it). An unlabelled one: the zoom cut
    it, and less than a quarter of it (36 x 120 px, zoomed by <= scale) shows."""
    if len(boxes):
        assert _bright_outside_labels(img, boxes) == 0
    else:
        assert (img > 0.5).sum() < 0.25 * 36 * 120 * scale**2


def test_zoom_out_pads_with_grey_and_both_augmentations_cut_labels_by_one_rule(tmp_path):
    """Zoomed-out frames show the letterbox grey where the image ends, not mirrored copies of people nobody
    labelled; a block cut by the frame keeps its label while >= 25 % of it shows (scene.shown_enough), on the CPU
    path (TrainPairs) and the GPU one (gpu_batches.augment) alike."""
    from fusion.data.pairs import TrainPairs
    from fusion.data.scene import shown_enough

    aug = AugmentConfig(flip=0.0, scale=0.25, rgb_gain=0.0, ir_gain=0.0, ir_shift=0.0, ir_scale=0.0)
    store = PairStore.build(_EdgeSource(32), size=(320, 256), root=tmp_path, key="edge", workers=1)
    rgb = torch.from_numpy(store.rgb[:]).float() / 255
    ir = torch.from_numpy(store.ir[:]).float() / 255
    r2, i2, lab2, b2 = augment(rgb, ir, torch.from_numpy(store.labels), torch.arange(32), aug,
                               torch.Generator().manual_seed(0))
    cpu = TrainPairs(_EdgeSource(32), size=(320, 256), augment=aug)
    grey, labelled = 0, 0
    for k in range(32):
        c_rgb, c_ir, c_boxes, _, _ = cpu[k]
        for img_rgb, img_ir, boxes in ((r2[k], i2[k], lab2[b2 == k, 1:]), (c_rgb, c_ir, c_boxes)):
            _check_edge_frame(img_rgb[0].numpy(), boxes.numpy(), 1.25)
            _check_edge_frame(img_ir[0].numpy(), boxes.numpy(), 1.25)
            grey += int(abs(float(img_rgb[0, 128, 0]) - 114 / 255) < 0.01)
            labelled += len(boxes)
    assert grey > 4 and labelled > 16  # zooms uncovered the left edge, and most frames kept the block
    # The rule itself: a person cut at the waist is labelled, a sliver of one is not, in any array type.
    assert shown_enough(40.0, 120.0, 40.0, 60.0, 320, 256) and not shown_enough(40.0, 120.0, 40.0, 20.0, 320, 256)
    w = np.array([60.0, 20.0])
    np.testing.assert_array_equal(shown_enough(40.0, 120.0, 40.0, w, 320, 256),
                                  shown_enough(40.0, 120.0, 40.0, torch.from_numpy(w), 320, 256).numpy())
