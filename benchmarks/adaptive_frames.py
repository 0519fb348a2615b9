"""The frames `eval_adaptive.py` scores: generated day<->night clips (rendered, then run through each engine) or a
labelled folder of pairs, each frame with its brightness, light and every engine's matches against the ground truth.

    frames = cached_clips(spec, seed, clips, tmp)   # or run_pairs(spec) for `spec.val_data`
    frames[0] == {"clip": 0, "i": 0, "t": 0.0, "brightness": 0.41, "light": 0.9,
                  "rows": {"fused": (tp (N, 10) bool, score (N,), class (N,), target classes (T,)),
                           "rgb": ..., "ir": ...}}

Clips are rendered and scored in `spec.workers` processes and cached one file per clip (`spec.cache`), so a larger
set reuses a smaller one's clips and clips scored on another machine can be copied in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch

if TYPE_CHECKING:
    from benchmarks.eval_adaptive import EvalSpec

MODELS = {"fused": "mid_n", "rgb": "rgb_n", "ir": "ir_n"}  # engine → model file stem in `spec.models`


def detectors(spec: EvalSpec, threads: int = 0) -> dict:
    """engine → Detector of `spec.models` at score 0.001 (every box counts for mAP), NMS IoU 0.6 as the job's."""
    from trt.detector import Detector
    from trt.engine import EngineSpec, load_engine

    suffix = ".pt" if spec.backend == "torch" else ".onnx"
    if spec.backend == "torch" and threads:  # as ONNX Runtime's intra-op threads: one per worker process
        torch.set_num_threads(threads)
    return {m: Detector(load_engine(EngineSpec(backend=spec.backend, model=str(Path(spec.models) / f"{n}{suffix}"),
                                               size=spec.size, device=spec.device, threads=threads)),
                        size=spec.size, conf=0.001, iou=0.6) for m, n in MODELS.items()}


def match_rows(outs: dict[str, np.ndarray], boxes: torch.Tensor, cls: torch.Tensor) -> dict:
    """One frame's detections per engine ((N, 6) x1 y1 x2 y2 score class) → its matches, as `summarize` takes."""
    from fusion.evaluate import match

    rows = {}
    for m, out in outs.items():
        d = torch.from_numpy(out)
        rows[m] = (match(d, boxes, cls), d[:, 4].numpy(), d[:, 5].numpy(), cls.numpy())
    return rows


def run_pairs(spec: EvalSpec) -> list[dict]:
    """Frames of a labelled paired dataset (`val_data`), as run_clips gives them; runs of `group` consecutive pairs
    (sorted by name: the frames of one camera and time) stand in for clips."""
    from fusion.data.layouts import read_dataset
    from fusion.data.pairs import FolderPairs
    from jobs.modality import brightness

    ds = read_dataset(spec.val_data, split=spec.val_split)
    if not len(ds):
        raise FileNotFoundError(f"val_data={spec.val_data}: no labelled pairs in split {spec.val_split!r}")
    ds.samples.sort(key=lambda s: s.stem)
    pairs, dets = FolderPairs(ds), detectors(spec)
    frames = []
    for i in range(len(pairs)):
        rgb, ir, boxes, classes, _ = pairs.raw(i)
        outs = {m: d([rgb], [ir])[0] for m, d in dets.items()}
        rows = match_rows(outs, torch.from_numpy(boxes).float(), torch.from_numpy(classes))
        frames.append({"clip": i // spec.group, "i": i, "t": 0.0, "brightness": brightness(rgb).mean,
                       "light": float("nan"), "rows": rows})
    return frames


def run_clips(spec: EvalSpec, seed: int, ks: list[int], tmp: str) -> list[dict]:
    """Frames of generated clips `ks` of `seed`: brightness, light, and each engine's matches against the ground
    truth (`rows`: engine → (tp (N, 10) bool, score (N,), class (N,), target classes (T,)), what `summarize` takes).
    With `workers` > 1 the clips are rendered and scored in that many processes (one CPU thread each for
    ONNX Runtime or torch)."""
    return [f for _, part in clip_parts(spec, seed, ks, tmp) for f in part]


def clip_parts(spec: EvalSpec, seed: int, ks: list[int], tmp: str) -> Iterator[tuple[int, list[dict]]]:
    """(k, frames of clip k) for each of `ks` in order, each as soon as it and those before it are scored."""
    from fusion.parallel import spawn_map

    threads = 1 if spec.workers > 1 and len(ks) > 1 else 0
    yield from zip(ks, spawn_map(_clip_args, [(spec, seed, k, tmp, threads) for k in ks], workers=spec.workers),
                   strict=True)


def _clip_args(args: tuple) -> list[dict]:
    return _clip(*args)


@dataclass(frozen=True)
class Clip:
    """One rendered clip: `rgb` [(t, (H, W, 3) uint8 BGR: the colour camera, as decoded)], `ir` [(h, w) uint8], `gt`
    its ground-truth rows (frame_idx, object_id, class_id, x1, y1, x2, y2 in RGB pixels, light), `light_from` the
    light at its first frame."""

    rgb: list[tuple[float, np.ndarray]]
    ir: list[np.ndarray]
    gt: pd.DataFrame
    light_from: float

    def targets(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame i's boxes (T, 4) and classes (T,); T may be 0."""
        g = self.gt[self.gt.frame_idx == i]
        boxes = torch.tensor(g[["x1", "y1", "x2", "y2"]].to_numpy(np.float32))
        return boxes, torch.tensor(g.class_id.to_numpy(np.int64))


def render_clip(spec: EvalSpec, seed: int, k: int, tmp: str) -> Clip:
    """Clip `k` of `seed`: day→night for even k, night→day for odd (`spec.seconds`, `spec.fps`, RGB `spec.size`, IR
    320x256), written under `tmp` and decoded back, as every engine sees it."""
    from fusion.data.generate import write_clip
    from fusion.data.scene import Illumination, SceneConfig
    from fusion.data.video import VideoReader

    day, night = Illumination(0.9), Illumination(0.02)
    lf, lt = (day, night) if k % 2 == 0 else (night, day)
    p = {x: f"{tmp}/s{seed}c{k}_{x}" for x in ("rgb.mp4", "ir.mp4", "gt.parquet")}
    write_clip(rgb_url=p["rgb.mp4"], ir_url=p["ir.mp4"], gt_url=p["gt.parquet"], seed=seed + k,
               seconds=spec.seconds, fps=spec.fps, config=SceneConfig(rgb_size=spec.size, ir_size=(320, 256)),
               light_from=lf, light_to=lt)
    return Clip(rgb=list(VideoReader(p["rgb.mp4"]).frames()),
                ir=[f for _, f in VideoReader(p["ir.mp4"], gray=True).frames()],
                gt=pq.read_table(p["gt.parquet"]).to_pandas(), light_from=lf.light)


def detect_clip(dets: dict, clip: Clip) -> dict[str, list[np.ndarray]]:
    """engine → per frame (N, 6) x1 y1 x2 y2 score class."""
    # 32 frames per call: one call over the whole clip held ~10 GB per process (letterboxed fp32 tensors)
    return {m: [o for j in range(0, len(clip.rgb), 32)
                for o in d([f for _, f in clip.rgb[j:j + 32]], clip.ir[j:j + 32])] for m, d in dets.items()}


def _clip(spec: EvalSpec, seed: int, k: int, tmp: str, threads: int) -> list[dict]:
    """Clip `k` of `seed` (`render_clip`), scored by every engine, as run_clips describes."""
    from jobs.modality import brightness

    dets = detectors(spec, threads)
    clip = render_clip(spec, seed, k, tmp)
    outs = detect_clip(dets, clip)
    frames: list[dict] = []
    for i, (t, img) in enumerate(clip.rgb):
        g = clip.gt[clip.gt.frame_idx == i]
        light = float(g.light.iloc[0]) if len(g) else (clip.light_from if i == 0 else frames[-1]["light"])
        rows = match_rows({m: o[i] for m, o in outs.items()}, *clip.targets(i))
        frames.append({"clip": k, "i": i, "t": t, "brightness": brightness(img).mean, "light": light,
                       "rows": rows})
    return frames


def cached_clips(spec: EvalSpec, seed: int, clips: int, tmp: str) -> list[dict]:
    """run_clips of clips 0..clips-1, through `spec.cache` when set, one file per clip: the key is the clip's own
    seed and direction (clip k of seed s is clip k - j of seed s + j for even j), its spec and the engines' models
    (ONNX graphs or checkpoint weights; metadata aside, since stamping rewrites it). So a larger set reuses a smaller
    one's clips, and clips scored on other machines can be copied in."""
    if not spec.cache:
        return run_clips(spec, seed, list(range(clips)), tmp)
    import hashlib

    import onnx

    h = hashlib.sha256(repr((spec.seconds, spec.fps, spec.size)).encode())
    for n in MODELS.values():
        if spec.backend == "torch":  # the weights (the checkpoint's other keys change when it is stamped)
            h.update(b"torch")
            for k, v in torch.load(Path(spec.models) / f"{n}.pt", map_location="cpu", weights_only=True)[
                    "model"].items():
                h.update(k.encode() + v.numpy().tobytes())
        else:
            h.update(onnx.load(str(Path(spec.models) / f"{n}.onnx")).graph.SerializeToString())
    path = {k: Path(spec.cache).with_suffix(f".{seed + k}.{k % 2}.{h.hexdigest()[:12]}.pt") for k in range(clips)}
    missing = [k for k in range(clips) if not path[k].exists()]
    fresh: dict[int, list[dict]] = {}
    # each clip is kept as it comes: a run cut short (a device call's time limit) keeps the clips it finished
    for k, part in clip_parts(spec, seed, missing, tmp) if missing else ():
        path[k].parent.mkdir(parents=True, exist_ok=True)
        torch.save(part, path[k])
        fresh[k] = part
    return [f | {"clip": k} for k in range(clips)
            for f in (fresh[k] if k in fresh else torch.load(path[k], weights_only=False))]
