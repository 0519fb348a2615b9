"""Training batches at GPU speed: decode once into a uint8 store, augment on the GPU.

    store = PairStore.build(source, size=(640, 512), root="data/cache", workers=16)   # once; memory-mapped after
    for batch in GpuBatches(store, batch=64, augment=AugmentConfig(), device="cuda", seed=0).epoch(3):
        loss = ...   # batch: rgb (B,3,H,W), ir (B,1,H,W) float in [0,1] + ultralytics targets

The store holds every pair letterboxed to the model size with the deployment's own `letterbox` (one preprocessing
everywhere) as uint8 — (N, 3, H, W) RGB and (N, 1, H, W) IR — plus labels in model pixels. Each step gathers a batch
of rows (page cache → pinned memory → one upload) and augments on the GPU what the CPU data loader did per image:
the same flip/zoom for both modalities (one affine grid), an extra IR shift/scale (rig misalignment), photometric
jitter per modality, then `fusion.data.appearance` (off by default); boxes go through the same affine and are
dropped when mostly cut off.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fusion.data.appearance import randomize_appearance, uniform
from fusion.data.letterbox import PAD, frames_to_tensors, letterbox
from fusion.data.pairs import AugmentConfig
from fusion.data.scene import shown_enough


def _prepare(args):
    source, i, size = args
    rgb, ir, boxes, classes, slice_ = source.raw(i)
    x, y, lb = letterbox(*frames_to_tensors([rgb], [ir]), size=size)
    lab = np.concatenate([classes[:, None].astype(np.float32), lb.to_model(boxes)], 1)
    return i, (x[0] * 255).round().byte().numpy(), (y[0] * 255).round().byte().numpy(), lab, slice_


class _Inline:
    """ProcessPoolExecutor's map, in this process (a single worker is not worth a process)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def map(self, fn, items, chunksize=1):
        return map(fn, items)


@dataclass
class PairStore:
    rgb: np.ndarray  # (N, 3, H, W) uint8, memory-mapped
    ir: np.ndarray  # (N, 1, H, W) uint8
    labels: np.ndarray  # (K, 5) class, x1, y1, x2, y2 in model pixels
    offsets: np.ndarray  # (N + 1,) rows of `labels` per pair
    slices: list[str]

    def __len__(self) -> int:
        return len(self.rgb)

    @classmethod
    def build(cls, source, *, size: tuple[int, int], root: str | Path, key: str, workers: int = 8) -> PairStore:
        """Decode and letterbox every pair of `source` (anything with `raw(i)` and `len()`) once; reuse after.
        `key` names the source (seeds, dataset root): a different source or size gets another store."""
        W, H = size
        name = hashlib.sha256(f"{key}|{len(source)}|{W}x{H}".encode()).hexdigest()[:16]
        base = Path(root) / f"pairs_{name}"
        done = base.with_suffix(".json")
        if not done.exists():
            base.parent.mkdir(parents=True, exist_ok=True)
            n = len(source)
            rgb = np.lib.format.open_memmap(base.with_suffix(".rgb.npy"), "w+", np.uint8, (n, 3, H, W))
            ir = np.lib.format.open_memmap(base.with_suffix(".ir.npy"), "w+", np.uint8, (n, 1, H, W))
            labels, slices = [np.zeros((0, 5), np.float32)] * n, [""] * n
            jobs = [(source, i, size) for i in range(n)]
            # Spawned workers: forking a process that already runs torch's thread pools can deadlock the children.
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) if workers > 1 else _Inline() as pool:
                for i, r, t, lab, s in pool.map(_prepare, jobs, chunksize=16):
                    rgb[i], ir[i], labels[i], slices[i] = r, t, lab, s
            rgb.flush()
            ir.flush()
            np.save(base.with_suffix(".labels.npy"), np.concatenate(labels).astype(np.float32))
            np.save(base.with_suffix(".offsets.npy"), np.cumsum([0] + [len(x) for x in labels]))
            done.write_text(json.dumps({"key": key, "n": n, "size": [W, H], "slices": slices}))
        meta = json.loads(done.read_text())
        return cls(np.load(base.with_suffix(".rgb.npy"), mmap_mode="r"), np.load(base.with_suffix(".ir.npy"),
                                                                                  mmap_mode="r"),
                   np.load(base.with_suffix(".labels.npy")), np.load(base.with_suffix(".offsets.npy")),
                   meta["slices"])


class GpuBatches:
    """Shuffled, augmented batches from a PairStore, assembled and augmented on `device`."""

    def __init__(self, store: PairStore, *, batch: int, augment: AugmentConfig, device: str | torch.device,
                 seed: int = 0):
        self.store, self.batch, self.aug, self.seed = store, batch, augment, seed
        self.device = torch.device(device)

    def __len__(self) -> int:
        return max(len(self.store) // self.batch, 1)

    def epoch(self, epoch: int) -> Iterator[dict]:
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.store))
        gen = torch.Generator(device=self.device).manual_seed(self.seed * 100_003 + epoch)
        for k in range(len(self)):
            idx = np.sort(order[k * self.batch:(k + 1) * self.batch])  # sorted: sequential reads of the memmap
            yield self._batch(idx, gen)

    def _batch(self, idx: np.ndarray, gen: torch.Generator) -> dict:
        s = self.store
        pin = self.device.type == "cuda"
        rgb = torch.from_numpy(s.rgb[idx]).pin_memory() if pin else torch.from_numpy(s.rgb[idx])
        ir = torch.from_numpy(s.ir[idx]).pin_memory() if pin else torch.from_numpy(s.ir[idx])
        rgb = rgb.to(self.device, non_blocking=True).float().div_(255)  # (B, 3, H, W)
        ir = ir.to(self.device, non_blocking=True).float().div_(255)  # (B, 1, H, W)
        labs = [s.labels[s.offsets[i]:s.offsets[i + 1]] for i in idx]
        lab = torch.from_numpy(np.concatenate(labs)).to(self.device)  # (K, 5)
        bidx = torch.repeat_interleave(torch.arange(len(idx), device=self.device),
                                       torch.tensor([len(x) for x in labs], device=self.device))
        if self.aug.enabled:
            rgb, ir, lab, bidx = augment(rgb, ir, lab, bidx, self.aug, gen)
        H, W = rgb.shape[-2:]
        x1, y1, x2, y2 = lab[:, 1], lab[:, 2], lab[:, 3], lab[:, 4]
        xywh = torch.stack([(x1 + x2) / 2 / W, (y1 + y2) / 2 / H, (x2 - x1) / W, (y2 - y1) / H], 1)
        return {"rgb": rgb, "ir": ir, "batch_idx": bidx.float(), "cls": lab[:, :1], "bboxes": xywh}


def augment(rgb: torch.Tensor, ir: torch.Tensor, lab: torch.Tensor, bidx: torch.Tensor, aug: AugmentConfig,
            gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batched paired augmentation on the GPU. rgb (B,3,H,W), ir (B,1,H,W) in [0,1]; lab (K,5) class + xyxy (model
    px) with bidx (K,) its image. Geometry is one affine per image applied to both modalities (and the boxes)."""
    B, _, H, W = rgb.shape
    dev = rgb.device
    s = uniform(gen, B, 1 - aug.scale, 1 + aug.scale, dev)
    cx, cy = uniform(gen, B, 0.3, 0.7, dev) * W, uniform(gen, B, 0.3, 0.7, dev) * H
    flip = torch.rand(B, generator=gen, device=dev) < aug.flip
    # Forward map in pixels: p' = A p + t (zoom s about (cx, cy), then an optional flip x → W - x).
    a = torch.where(flip, -s, s)
    tx = torch.where(flip, W - (1 - s) * cx, (1 - s) * cx)
    ty = (1 - s) * cy
    rgb, ir = _warp(rgb, a, s, tx, ty, pad=PAD / 255), _warp(ir, a, s, tx, ty, pad=PAD / 255)
    # Extra IR misalignment (labels stay on the RGB grid, as in real rigs).
    ds = uniform(gen, B, -aug.ir_scale, aug.ir_scale, dev)
    ir = _warp(ir, 1 + ds, 1 + ds, uniform(gen, B, -aug.ir_shift, aug.ir_shift, dev) * W - ds * W / 2,
               uniform(gen, B, -aug.ir_shift, aug.ir_shift, dev) * H - ds * H / 2)
    # Photometric: brightness mostly, a little colour; IR gain and offset.
    g = 1 + uniform(gen, 3 * B, -aug.rgb_gain, aug.rgb_gain, dev).view(B, 3) * torch.tensor([1, 0.2, 0.2], device=dev)
    off = uniform(gen, B, -20, 20, dev) * aug.rgb_gain / 255
    rgb = (rgb * g[:, :, None, None] + off[:, None, None, None]).clamp_(0, 1)
    ig = 1 + uniform(gen, B, -aug.ir_gain, aug.ir_gain, dev)
    io = uniform(gen, B, -15, 15, dev) * aug.ir_gain / 255
    ir = (ir * ig[:, None, None, None] + io[:, None, None, None]).clamp_(0, 1)
    rgb, ir = randomize_appearance(rgb, ir, aug, gen)
    if len(lab):
        ab, sb, txb, tyb = a[bidx], s[bidx], tx[bidx], ty[bidx]
        xs = torch.stack([lab[:, 1], lab[:, 3]], 1) * ab[:, None] + txb[:, None]  # (K, 2)
        ys = torch.stack([lab[:, 2], lab[:, 4]], 1) * sb[:, None] + tyb[:, None]
        box = torch.stack([xs.min(1).values, ys.min(1).values, xs.max(1).values, ys.max(1).values], 1)
        cut = torch.stack([box[:, 0].clamp(0, W), box[:, 1].clamp(0, H), box[:, 2].clamp(0, W),
                           box[:, 3].clamp(0, H)], 1)
        keep = shown_enough(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1], cut[:, 2] - cut[:, 0], cut[:, 3] - cut[:, 1],
                            W, H)
        box = cut
        lab, bidx = torch.cat([lab[keep, :1], box[keep]], 1), bidx[keep]
    return rgb, ir, lab, bidx


def _warp(x: torch.Tensor, ax: torch.Tensor, ay: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor, *,
          pad: float | None = None) -> torch.Tensor:
    """Apply p' = diag(ax, ay) p + t (pixels, per image) by sampling at the inverse map. Uncovered borders: `pad`
    (a zoom-out: mirrored borders would show copies of people nobody labelled) or, with None, reflected."""
    B, _, H, W = x.shape
    # Inverse map in normalised coordinates u = 2p/W - 1: p = (p' - t) / a.
    theta = torch.zeros(B, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = 1 / ax
    theta[:, 1, 1] = 1 / ay
    theta[:, 0, 2] = ((1 - ax) - 2 * tx / W) / ax  # u = u'/a + ((1 - a) - 2t/W)/a, from p = (p' - t)/a
    theta[:, 1, 2] = ((1 - ay) - 2 * ty / H) / ay
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    if pad is None:
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return F.grid_sample(x - pad, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + pad
