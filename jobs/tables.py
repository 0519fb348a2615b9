"""A chunk's results → its output tables (detections, one row per frame, the overlap rows), built column-wise: Arrow
does the per-row work, so the chunk thread holds the GIL briefly while other chunks decode."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from jobs import schema
from jobs.modality import MODES
from jobs.plan import Chunk

MODE_INDEX = {m: i for i, m in enumerate(MODES)}


@dataclass
class ChunkFrames:
    """What a chunk's frames gave, in frame order (the overlap with the previous chunk first, when tracking)."""

    times: np.ndarray  # (n,) seconds from the stream start
    bright: np.ndarray  # (n,) float32 brightness
    modes: list[str]  # (n,) engine chosen per frame
    sizes: list[tuple[int, int]]  # (n,) source (W, H) per frame
    flat: np.ndarray  # (K, 7) frame index, x1, y1, x2, y2 (source px), score, class; by frame then score
    track: np.ndarray | None = field(default=None)  # (K,) chunk-scoped track id, -1 for none


def build(chunk: Chunk, r: ChunkFrames, *, run_id: str, classes: tuple[str, ...], models: dict[str, str],
          precisions: dict[str, str]) -> tuple[pa.Table, pa.Table, pa.Table | None]:
    """→ (detections, frames, overlap or None). Frames before the chunk's first frame are overlap: they go to the
    overlap table only (never counted as this chunk's output)."""
    owned = r.times >= chunk.start_s - 0.5 / chunk.fps
    det_frame = r.flat[:, 0].astype(np.int64)
    track = r.track if r.track is not None else np.full(len(r.flat), -1, np.int64)
    keep = owned[det_frame] if len(det_frame) else np.zeros(0, bool)
    overlap = None
    if chunk.first > 0 and (~owned).any():
        ov = r.flat[~keep]
        overlap = schema.table(schema.OVERLAP, {
            "video_id": pa.array([chunk.video_id] * len(ov), pa.string()),
            "frame_idx": np.rint(r.times[det_frame[~keep]] * chunk.fps).astype(np.int32), "track_id": track[~keep],
            "class_id": ov[:, 6].astype(np.int16), "score": ov[:, 5], "x1": ov[:, 1], "y1": ov[:, 2],
            "x2": ov[:, 3], "y2": ov[:, 4]})
    remap = np.cumsum(owned) - 1  # frame index → index among the chunk's own frames
    flat = r.flat[keep].copy()
    flat[:, 0] = remap[det_frame[keep]]
    idx = np.nonzero(owned)[0]
    det, frames = _tables(chunk, r.times[idx], r.bright[idx], [r.modes[i] for i in idx], [r.sizes[i] for i in idx],
                          flat, track[keep], run_id=run_id, classes=classes, models=models, precisions=precisions)
    return det, frames, overlap


def _tables(chunk: Chunk, times: np.ndarray, bright: np.ndarray, modes: list[str], sizes: list[tuple[int, int]],
            flat: np.ndarray, track: np.ndarray, *, run_id: str, classes: tuple[str, ...], models: dict[str, str],
            precisions: dict[str, str]) -> tuple[pa.Table, pa.Table]:
    t0 = dt.datetime.fromisoformat(chunk.start_time)
    t0 = (t0 if t0.tzinfo else t0.replace(tzinfo=dt.UTC)).astimezone(dt.UTC).replace(tzinfo=None)
    n = len(times)
    stamps = np.datetime64(t0, "ms") + np.rint(times * 1000).astype("timedelta64[ms]")
    mode_idx = np.array([MODE_INDEX[m] for m in modes], np.int8)
    per_frame = {"video_id": pa.array([chunk.video_id] * n, pa.string()),
                 "camera_id": pa.array([chunk.camera_id] * n, pa.string()),
                 "chunk_id": np.full(n, chunk.chunk_id, np.int32),
                 "frame_idx": np.rint(times * chunk.fps).astype(np.int32), "timestamp": stamps,
                 "modality": pa.array(MODES).take(pa.array(mode_idx)), "brightness": bright.astype(np.float32),
                 "run_id": pa.array([run_id] * n, pa.string())}
    rows = flat[:, 0].astype(np.int64)  # detection → its frame
    cls = flat[:, 6].astype(np.int16)
    size = np.asarray(sizes, np.int32).reshape(-1, 2)
    model_ids = pa.array([models.get(m, "") for m in MODES])
    precision = pa.array([precisions.get(m, "") for m in MODES])
    frames = schema.table(schema.FRAMES, per_frame | {"detections": np.bincount(rows, minlength=n)})
    det = frames.select(list(per_frame)).take(pa.array(rows))
    det_cols = {k: det.column(k).combine_chunks() for k in per_frame} | {
        "class_id": cls, "class_name": pa.array(classes).take(pa.array(cls)), "score": flat[:, 5],
        "x1": flat[:, 1], "y1": flat[:, 2], "x2": flat[:, 3], "y2": flat[:, 4], "img_w": size[rows, 0],
        "img_h": size[rows, 1], "model_id": model_ids.take(pa.array(mode_idx[rows])),
        "precision": precision.take(pa.array(mode_idx[rows])), "track_id": track}
    return schema.table(schema.DETECTIONS, det_cols), frames
