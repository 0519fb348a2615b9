"""Tracks, not just boxes: ultralytics' ByteTrack inside each chunk, and a stitching pass that links the tracks of
consecutive chunks into one id per object per video.

Chunks overlap: a chunk that starts at frame F also decodes and detects [F - overlap, F) (written nowhere but in its
`_overlap` file), so its tracker is warm at F, and those frames are where its tracks meet the tracks the previous chunk
wrote for the same frames. Stitching matches them by mean IoU (Hungarian, scipy) and merges matched tracks
(union-find); a video's track id is the smallest chunk-scoped id of its chain, so ids are deterministic for a given
input and configuration. Chunk-scoped ids are `first_frame * 100_000 + ByteTrack id`: unique within a video.
"""

from __future__ import annotations

import types
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from scipy.optimize import linear_sum_assignment

from jobs.config import TrackingConfig

ID_STRIDE = 100_000  # chunk-scoped id = chunk first frame * ID_STRIDE + tracker id


class _Boxes:
    """The detections view ByteTrack reads: conf, cls, xywh, len() and boolean indexing."""

    def __init__(self, rows: np.ndarray):  # (N, 6) x1, y1, x2, y2, score, class
        self.rows = rows

    @property
    def conf(self) -> np.ndarray:
        return self.rows[:, 4]

    @property
    def cls(self) -> np.ndarray:
        return self.rows[:, 5]

    @property
    def xywh(self) -> np.ndarray:
        r = self.rows
        return np.stack([(r[:, 0] + r[:, 2]) / 2, (r[:, 1] + r[:, 3]) / 2, r[:, 2] - r[:, 0], r[:, 3] - r[:, 1]], 1)

    @property
    def xyxy(self) -> np.ndarray:
        return self.rows[:, :4]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx) -> _Boxes:
        return _Boxes(self.rows[idx])


def track_ids(frames: np.ndarray, rows: np.ndarray, *, n_frames: int, fps: float, cfg: TrackingConfig,
              id_base: int) -> np.ndarray:
    """Run ByteTrack over a chunk's frames in order.

    frames: (K,) index of each detection's frame in 0..n_frames-1 (frames without detections still advance the
    tracker); rows: (K, 6) x1, y1, x2, y2, score, class. → (K,) chunk-scoped track ids, -1 for detections no track
    took (too weak to start one).
    """
    from ultralytics.trackers.byte_tracker import BYTETracker

    args = types.SimpleNamespace(track_high_thresh=cfg.high, track_low_thresh=cfg.low, new_track_thresh=cfg.new,
                                 track_buffer=max(round(cfg.buffer_s * fps), 1), match_thresh=cfg.match,
                                 fuse_score=True)
    tracker = BYTETracker(args)
    out = np.full(len(rows), -1, np.int64)
    order = np.argsort(frames, kind="stable")
    starts = np.searchsorted(frames[order], np.arange(n_frames + 1))
    for f in range(n_frames):
        idx = order[starts[f]:starts[f + 1]]
        tracked = tracker.update(_Boxes(rows[idx].astype(np.float32)))  # (M, 8): box, id, score, cls, det index
        if len(tracked):
            ids = tracked[:, 4].astype(np.int64)
            if ids.max() >= ID_STRIDE:
                raise RuntimeError(f"more than {ID_STRIDE - 1} tracks in one chunk")
            out[idx[tracked[:, 7].astype(np.int64)]] = id_base + ids
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) × (M, 4) xyxy → (N, M) IoU."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter + 1e-9)


def link(prev: pa.Table, nxt: pa.Table, *, min_iou: float) -> list[tuple[int, int]]:
    """Tracks of two chunks seen in the same overlap frames → matched (prev id, next id) pairs.

    Both tables hold frame_idx, track_id, class_id, x1..y2 for the overlap frames only. Cost: 1 - mean IoU over the
    frames both tracks have a box in (same class only); pairs below `min_iou` are not linked.
    """
    p, n = prev.to_pandas(), nxt.to_pandas()
    p, n = p[p.track_id >= 0], n[n.track_id >= 0]
    if p.empty or n.empty:
        return []
    pid, nid = np.unique(p.track_id), np.unique(n.track_id)
    total = np.zeros((len(pid), len(nid)))
    count = np.zeros((len(pid), len(nid)))
    pi, ni = {t: i for i, t in enumerate(pid)}, {t: i for i, t in enumerate(nid)}
    for f, pf in p.groupby("frame_idx"):
        nf = n[n.frame_idx == f]
        if nf.empty:
            continue
        iou = _iou(pf[["x1", "y1", "x2", "y2"]].to_numpy(), nf[["x1", "y1", "x2", "y2"]].to_numpy())
        iou *= pf.class_id.to_numpy()[:, None] == nf.class_id.to_numpy()[None, :]
        rows, cols = [pi[t] for t in pf.track_id], [ni[t] for t in nf.track_id]
        np.add.at(total, (np.repeat(rows, len(cols)), np.tile(cols, len(rows))), iou.ravel())
        np.add.at(count, (np.repeat(rows, len(cols)), np.tile(cols, len(rows))), 1)
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    r, c = linear_sum_assignment(-mean)
    return [(int(pid[i]), int(nid[j])) for i, j in zip(r, c, strict=True) if mean[i, j] >= min_iou]


@dataclass
class _UnionFind:
    parent: dict[int, int]

    def find(self, x: int) -> int:
        while self.parent.setdefault(x, x) != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)  # the smallest id names the chain: deterministic


def stitch(chunk_ids: list[int], owned: pa.Table, overlaps: dict[int, pa.Table], *, min_iou: float
           ) -> dict[int, int]:
    """A video's chunks (their first frames, in order), its detections and each chunk's overlap rows → chunk-scoped
    id → video track id."""
    uf = _UnionFind({})
    ids = owned.column("track_id").to_numpy()
    for t in ids[ids >= 0]:
        uf.find(int(t))
    frames = owned.column("frame_idx").to_numpy()
    for first in chunk_ids:
        ov = overlaps.get(first)
        if ov is None or not ov.num_rows:
            continue
        lo, hi = int(ov.column("frame_idx").to_numpy().min()), first
        prev = owned.filter(pa.array((frames >= lo) & (frames < hi)))
        for a, b in link(prev, ov, min_iou=min_iou):
            uf.union(a, b)
    return {t: uf.find(t) for t in list(uf.parent)}


class TrackWorker:
    """ByteTrack for a GPU actor's chunks, in a process of its own: pure Python per frame, it held the GIL a third of
    the time in the actor and starved the engine thread (benchmarks/results/profiles/run2_actor_gil.txt)."""

    def ready(self) -> bool:
        import ultralytics.trackers.byte_tracker  # noqa: F401  (the import happens before the first chunk)

        return True

    def track(self, frames: np.ndarray, rows: np.ndarray, **kw) -> np.ndarray:
        return track_ids(frames, rows, **kw)
