"""Torch datasets of paired frames with paired augmentation, and the batch format ultralytics' loss expects.

One sample: rgb (3,H,W) float [0,1], ir (1,H,W) float [0,1] resized onto the RGB grid, boxes (N,4) xyxy in
model-input pixels, classes (N,), slice name. Geometry is applied to both modalities together; photometric
jitter and appearance randomisation (`fusion.data.appearance`) to each on its own; an extra random IR shift/scale
teaches robustness to rig misalignment.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import fsspec
import numpy as np
import torch
from torch.utils.data import Dataset

from fusion.data.appearance import randomize_appearance
from fusion.data.layouts import PairedDataset, read_image
from fusion.data.letterbox import PAD, frames_to_tensors, letterbox
from fusion.data.scene import SLICES, SceneConfig, generator_version, render_pair, scene_seed, shown_enough
from fusion.parallel import spawn_map


@dataclass(frozen=True)
class AugmentConfig:
    enabled: bool = True  # off for evaluation
    flip: float = 0.5  # probability of a horizontal flip (both modalities)
    scale: float = 0.25  # random zoom in [1-scale, 1+scale] about a random centre (both modalities)
    rgb_gain: float = 0.3  # RGB brightness/contrast jitter amplitude
    ir_gain: float = 0.2  # IR gain/offset jitter amplitude
    ir_shift: float = 0.02  # extra IR misalignment, fraction of the image size
    ir_scale: float = 0.02  # extra IR relative scale error
    # Appearance randomisation (fusion.data.appearance), each image its own draw up to these amplitudes. Off by
    # default: fine-tuning the shipped models with `with_appearance()` found no gain on real photos (README).
    colour_mix: float = 0.0  # random 3x3 colour mix towards another balance / saturation (0 = off)
    grey: float = 0.0  # probability of a grey RGB frame
    texture: float = 0.0  # multiplicative multi-scale noise texture over the frame (IR: half of it)
    gamma: float = 0.0  # tone curve x ** g, g in [1/(1+gamma), 1+gamma]
    blur: float = 0.0  # Gaussian blur sigma in model pixels, on half the frames of each modality
    noise: float = 0.0  # sensor noise standard deviation
    drop_rgb: float = 0.0  # probability of a near-black RGB frame: the model must find objects in IR alone
    drop_ir: float = 0.0  # probability of a washed-out IR frame: RGB alone

    def __post_init__(self):
        for name in ("flip", "grey", "drop_rgb", "drop_ir"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"augment.{name}={getattr(self, name)}: a probability, 0..1")
        if self.drop_rgb + self.drop_ir > 1:
            raise ValueError("augment.drop_rgb + augment.drop_ir must not exceed 1")
        for name in ("scale", "rgb_gain", "ir_gain", "ir_shift", "ir_scale", "colour_mix", "texture", "gamma",
                     "blur", "noise"):
            if getattr(self, name) < 0:
                raise ValueError(f"augment.{name}={getattr(self, name)}: must be >= 0")

    @property
    def appearance(self) -> bool:
        return any(getattr(self, k) > 0 for k in _APPEARANCE)

    def with_appearance(self) -> AugmentConfig:
        """The amplitudes of the 2026-12-02 sim-to-real experiment (README, Models and training): on the command line
        augment.colour_mix=0.35 augment.grey=0.1 augment.texture=0.3 augment.gamma=0.5 augment.blur=1.5
        augment.noise=0.04 augment.drop_rgb=0.1 augment.drop_ir=0.05."""
        return replace(self, **_APPEARANCE)

    def without_appearance(self) -> AugmentConfig:
        return replace(self, **dict.fromkeys(_APPEARANCE, 0.0))


_APPEARANCE = {"colour_mix": 0.35, "grey": 0.1, "texture": 0.3, "gamma": 0.5, "blur": 1.5, "noise": 0.04,
               "drop_rgb": 0.1, "drop_ir": 0.05}


class SyntheticPairs(Dataset):
    """`n` generated pairs, rendered on demand from seeds (identical to `fusion.data.generate dataset`).

    With `cache_dir`, all pairs are rendered once (in parallel) into memory-mapped arrays that every
    DataLoader worker and every concurrent training process reads: epochs then cost no rendering.
    """

    def __init__(self, *, n: int, seed: int, size: tuple[int, int], slices: tuple[str, ...] = SLICES,
                 cache_dir: str = "", workers: int = 8, hfov: tuple[float, float] = SceneConfig.hfov):
        self.n, self.slices, self.seed = n, slices, seed
        self.cfg = SceneConfig(rgb_size=size, ir_size=(size[0] // 2, size[1] // 2), ir_shift=2.0, ir_scale=0.02,
                               hfov=hfov)
        self._cache_dir = cache_dir
        self._cache = _build_cache(self, Path(cache_dir), workers) if cache_dir else None

    def __getstate__(self) -> dict:
        # Spawned workers get the cache's path, not its arrays: pickling a memmap copies all of it (GBs per task).
        return {**self.__dict__, "_cache": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self._cache_dir and _cache_key(self, Path(self._cache_dir)).with_suffix(".labels.npz").exists():
            self._cache = _build_cache(self, Path(self._cache_dir), 1)  # done already: only reopens the memmaps

    def __len__(self) -> int:
        return self.n

    def render(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
        slice_ = self.slices[i % len(self.slices)]
        f = render_pair(scene_seed(self.seed, i), slice_, self.cfg)  # type: ignore[arg-type]
        return f.rgb, f.ir, f.boxes, f.classes, slice_

    def raw(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
        if self._cache is None:
            return self.render(i)
        rgb, ir, labels, offsets = self._cache
        lab = labels[offsets[i]:offsets[i + 1]]  # (N, 5): class, x1, y1, x2, y2
        return (np.asarray(rgb[i]), np.asarray(ir[i]), lab[:, 1:].astype(np.float32), lab[:, 0].astype(np.int64),
                self.slices[i % len(self.slices)])


def _render_for_cache(args):
    ds, i = args
    rgb, ir, boxes, classes, _ = ds.render(i)
    return i, rgb, ir, np.concatenate([classes[:, None].astype(np.float32), boxes], 1)


def _cache_key(ds: SyntheticPairs, root: Path) -> Path:
    """One cache per dataset, size, lens range and version of the scene generator (its modules' source): renders
    from before a scene change are never reused for the new scenes."""
    W, H = ds.cfg.rgb_size
    lens = "" if ds.cfg.hfov == SceneConfig.hfov else "_fov{:g}-{:g}".format(*ds.cfg.hfov)
    return root / f"synth_s{ds.seed}_n{ds.n}_{W}x{H}{lens}_g{generator_version()}"


def _build_cache(ds: SyntheticPairs, root: Path, workers: int):
    """Render every pair into <root>/<key>.{rgb,ir}.npy (+ labels); reuse them when present."""
    W, H = ds.cfg.rgb_size
    key = _cache_key(ds, root)
    done = key.with_suffix(".labels.npz")
    if not done.exists():
        root.mkdir(parents=True, exist_ok=True)
        w, h = ds.cfg.ir_size
        rgb = np.lib.format.open_memmap(key.with_suffix(".rgb.npy"), "w+", np.uint8, (ds.n, H, W, 3))
        ir = np.lib.format.open_memmap(key.with_suffix(".ir.npy"), "w+", np.uint8, (ds.n, h, w))
        labels: list[np.ndarray] = [np.zeros((0, 5), np.float32)] * ds.n
        for i, r, t, lab in spawn_map(_render_for_cache, [(ds, i) for i in range(ds.n)], workers=workers,
                                      chunksize=32):
            rgb[i], ir[i], labels[i] = r, t, lab
        rgb.flush()
        ir.flush()
        offsets = np.cumsum([0] + [len(x) for x in labels])
        tmp = key.with_suffix(".tmp.npz")
        np.savez(tmp, labels=np.concatenate(labels), offsets=offsets)
        tmp.replace(done)
    z = np.load(done)
    return (np.load(key.with_suffix(".rgb.npy"), mmap_mode="r"), np.load(key.with_suffix(".ir.npy"), mmap_mode="r"),
            z["labels"], z["offsets"])


class FolderPairs(Dataset):
    """Pairs from an LLVIP / YOLOFuse layout (see `fusion.data.layouts`)."""

    def __init__(self, dataset: PairedDataset):
        self.samples = dataset.samples
        self.fs = fsspec.core.url_to_fs(dataset.root)[0]

    def __len__(self) -> int:
        return len(self.samples)

    def raw(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
        s = self.samples[i]
        return (read_image(self.fs, s.rgb_uri, gray=False), read_image(self.fs, s.ir_uri, gray=True),
                s.boxes, s.classes, s.slice)


class TrainPairs(Dataset):
    """Letterbox to the model input size (W, H) with the deployment's own `letterbox`, augment, to tensors.

    Without augmentation the tensors are exactly what the deployed Detector feeds its engine (evaluation measures what
    runs); with it, the letterboxed frames are augmented as uint8 images.
    """

    def __init__(self, source: SyntheticPairs | FolderPairs, *, size: tuple[int, int], augment: AugmentConfig,
                 seed: int = 0):
        self.source, self.size, self.aug, self.seed = source, size, augment, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int):
        rgb, ir, boxes, classes, slice_ = self.source.raw(i)
        x, y, lb = letterbox(*frames_to_tensors([rgb], [ir]), size=self.size)  # (1,3,H,W), (1,1,H,W) in [0, 1]
        boxes = lb.to_model(boxes)
        if not self.aug.enabled:
            return x[0], y[0], torch.from_numpy(boxes).float(), torch.from_numpy(classes).long(), slice_
        rng = np.random.default_rng([self.seed, self.epoch, i])
        rgb = np.ascontiguousarray((x[0].permute(1, 2, 0).numpy()[..., ::-1] * 255).round().astype(np.uint8))  # BGR
        ir = (y[0, 0].numpy() * 255).round().astype(np.uint8)
        rgb, ir, boxes, classes = _augment(rgb, ir, boxes, classes, self.aug, rng)
        rgb_t = torch.from_numpy(np.ascontiguousarray(rgb[..., ::-1])).permute(2, 0, 1).float() / 255  # (3,H,W) RGB
        ir_t = torch.from_numpy(ir).unsqueeze(0).float() / 255  # (1, H, W)
        if self.aug.appearance:
            gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
            rgb_t, ir_t = (t[0] for t in randomize_appearance(rgb_t[None], ir_t[None], self.aug, gen))  # batch of 1
        return rgb_t, ir_t, torch.from_numpy(boxes).float(), torch.from_numpy(classes).long(), slice_


def _affine(img: np.ndarray, m: np.ndarray, size: tuple[int, int], *, pad: bool = False) -> np.ndarray:
    """Warp by the 2x3 `m`. `pad`: fill what the warp uncovers with the letterbox grey, as a zoom-out must (mirrored
    borders would show copies of people nobody labelled); else reflect (the IR's few pixels of misalignment)."""
    if pad:
        return cv2.warpAffine(img, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=(PAD, PAD, PAD))
    return cv2.warpAffine(img, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _augment(rgb, ir, boxes, classes, aug: AugmentConfig, rng: np.random.Generator):
    H, W = rgb.shape[:2]
    s = rng.uniform(1 - aug.scale, 1 + aug.scale)
    cx, cy = rng.uniform(0.3, 0.7) * W, rng.uniform(0.3, 0.7) * H
    m = np.array([[s, 0, (1 - s) * cx], [0, s, (1 - s) * cy]], np.float32)
    if rng.random() < aug.flip:
        m = np.array([[-1, 0, W], [0, 1, 0]], np.float32) @ np.vstack([m, [0, 0, 1]])
    rgb, ir = _affine(rgb, m, (W, H), pad=True), _affine(ir, m, (W, H), pad=True)
    if len(boxes):
        pts = np.stack([boxes[:, [0, 1]], boxes[:, [2, 1]], boxes[:, [0, 3]], boxes[:, [2, 3]]], 1)  # (N,4,2)
        pts = pts @ m[:, :2].T + m[:, 2]
        nb = np.concatenate([pts.min(1), pts.max(1)], 1)
        cut = np.clip(nb, 0, [W, H, W, H])
        keep = shown_enough(nb[:, 2] - nb[:, 0], nb[:, 3] - nb[:, 1], cut[:, 2] - cut[:, 0], cut[:, 3] - cut[:, 1],
                            W, H)
        nb = cut
        boxes, classes = nb[keep].astype(np.float32), classes[keep]
    # Misalignment: IR only, labels stay on the RGB grid (as in real rigs).
    ds = rng.uniform(-aug.ir_scale, aug.ir_scale)
    t = rng.uniform(-aug.ir_shift, aug.ir_shift, 2) * (W, H)
    mi = np.array([[1 + ds, 0, t[0] - ds * W / 2], [0, 1 + ds, t[1] - ds * H / 2]], np.float32)
    ir = _affine(ir, mi, (W, H))
    g = 1 + rng.uniform(-aug.rgb_gain, aug.rgb_gain, 3) * [1, 0.2, 0.2]  # brightness mostly, a little colour
    rgb = np.clip(rgb.astype(np.float32) * g[None, None, :] + rng.uniform(-20, 20) * aug.rgb_gain, 0, 255)
    ir = np.clip(ir.astype(np.float32) * (1 + rng.uniform(-aug.ir_gain, aug.ir_gain))
                 + rng.uniform(-15, 15) * aug.ir_gain, 0, 255)
    return rgb.astype(np.uint8), ir.astype(np.uint8), boxes, classes


def collate(batch):
    """Stack images; targets in ultralytics' format (batch_idx, cls, normalised xywh)."""
    rgb = torch.stack([b[0] for b in batch])  # (B, 3, H, W)
    ir = torch.stack([b[1] for b in batch])  # (B, 1, H, W)
    H, W = rgb.shape[-2:]
    idx, cls, xywh = [], [], []
    for i, (_, _, boxes, classes, _) in enumerate(batch):
        idx.append(torch.full((len(boxes),), i, dtype=torch.float32))
        cls.append(classes.float())
        xywh.append(torch.stack([(boxes[:, 0] + boxes[:, 2]) / 2 / W, (boxes[:, 1] + boxes[:, 3]) / 2 / H,
                                 (boxes[:, 2] - boxes[:, 0]) / W, (boxes[:, 3] - boxes[:, 1]) / H], 1))
    return {"rgb": rgb, "ir": ir, "batch_idx": torch.cat(idx), "cls": torch.cat(cls).view(-1, 1),
            "bboxes": torch.cat(xywh).view(-1, 4), "boxes": [b[2] for b in batch],
            "classes": [b[3] for b in batch], "slices": [b[4] for b in batch]}
