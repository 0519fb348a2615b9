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
