"""Pairs → chunks, on the driver, in O(videos): each file's container header and index (a few ranged reads),
never its packets. Chunks start at RGB keyframes about `chunk.seconds` apart (from the index; at nominal times
when the container has none); actors seek to the keyframe at or before a chunk and drop earlier frames.

How a video was cut is recorded (`_plans/`): output files are keyed by frame range, so a re-run with other chunk
settings would otherwise leave two rows for one frame. A changed cut is refused per video (an error row) unless
`output.overwrite=true`, which deletes the video's old outputs before the new cut runs.
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import asdict, dataclass

from fusion.data.video import VideoError, VideoInfo, VideoReader
from jobs.config import RetryConfig
from jobs.manifest import Pair, Problem
from jobs.paths import ChunkKey, Layout, parse_chunk_file
from jobs.storage import with_retry, write_bytes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Chunk:
    video_id: str
    camera_id: str
    chunk_id: int
    rgb_uri: str
    ir_uri: str
    first: int  # first RGB frame index (inclusive)
    end: int  # last RGB frame index + 1
    fps: float  # RGB frame rate (frame i is at i / fps seconds from the stream start)
    start_time: str  # ISO 8601 of the video start
    date: str  # YYYY-MM-DD partition of the video start
    last: bool = False  # the video's last chunk: decoded to the stream's end (headers may undercount frames)

    @property
    def start_s(self) -> float:
        return self.first / self.fps

    @property
    def end_s(self) -> float:
        return self.end / self.fps

    @property
    def key(self) -> ChunkKey:
        return ChunkKey(self.camera_id, self.date, self.video_id, self.first, self.end)

    def row(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class VideoPlan:
    pair: Pair
    chunks: list[Chunk]
    warnings: list[Problem]
    record: dict  # what `_plans/` stores


def _probe(uri: str, storage_options: dict, retry: RetryConfig) -> VideoInfo:
    def read() -> VideoInfo:
        with VideoReader.open(uri, storage_options=storage_options) as r:
            return r.info()

    return with_retry(read, what=f"read header of {uri}", policy=retry)


def plan_pair(pair: Pair, seconds: float, storage_options: dict, retry: RetryConfig) -> VideoPlan:
    """Header of both files → keyframe-aligned chunks + warnings. Raises VideoError naming the bad file."""
    rgb = _probe(pair.rgb_uri, storage_options, retry)
    ir = _probe(pair.ir_uri, storage_options, retry)
    n = rgb.frames or round(rgb.duration_s * rgb.fps)
    if n <= 0:
        raise VideoError(f"{pair.rgb_uri}: the header declares no frames")
    step = max(round(seconds * rgb.fps), 1)
    keys = sorted({round(k * rgb.fps) for k in rgb.keyframes_s if 0 < round(k * rgb.fps) < n})
    bounds = [0]
    if keys:
        for k in keys:
            if k - bounds[-1] >= step:
                bounds.append(k)
    else:
        bounds += list(range(step, n, step))
    bounds.append(n)
    chunks = [Chunk(pair.video_id, pair.camera_id, i, pair.rgb_uri, pair.ir_uri, a, b, rgb.fps, pair.start_time,
                    pair.date, last=b == n) for i, (a, b) in enumerate(itertools.pairwise(bounds))]
    warnings = []
    period = 1 / rgb.fps

    def warn(kind: str, reason: str) -> None:
        warnings.append(Problem(pair.ir_uri, kind, reason, pair.video_id, pair.camera_id))

    if abs(rgb.fps - ir.fps) > 0.01:
        warn("FpsMismatch", f"RGB {rgb.fps:g} fps, IR {ir.fps:g} fps: only frames within the pairing tolerance "
             "pair; each chunk counts the RGB frames left without an IR partner")
    if abs(rgb.duration_s - ir.duration_s) > period:
        warn("DurationMismatch", f"RGB {rgb.duration_s:.2f} s, IR {ir.duration_s:.2f} s: frames past the shorter "
             "stream have no partner (counted per chunk)")
    if abs(rgb.start_s - ir.start_s) > period:
        warn("StartOffset", f"stream clocks start at RGB {rgb.start_s:.3f} s, IR {ir.start_s:.3f} s: frames are "
             "paired by time from each stream's own start")
    record = {"video_id": pair.video_id, "camera_id": pair.camera_id, "date": pair.date, "rgb_uri": pair.rgb_uri,
              "ir_uri": pair.ir_uri, "chunk_seconds": seconds, "fps": rgb.fps, "frames": n,
              "bounds": [[c.first, c.end] for c in chunks]}
    return VideoPlan(pair, chunks, warnings, record)


def reconcile(plan: VideoPlan, layout: Layout, fs, *, overwrite: bool, retry: RetryConfig) -> Problem | None:
    """Compare with the recorded cut of this video; record it, refuse it (a Problem), or replace old outputs.
    `layout` holds paths of the output file system `fs`."""
    path = layout.plan(plan.pair.camera_id, plan.pair.video_id)

    def read() -> dict | None:
        try:
            return json.loads(fs.cat_file(path))
        except FileNotFoundError:
            return None

    old = with_retry(read, what=f"read {path}", policy=retry)
    if old is not None and old.get("bounds") == plan.record["bounds"] and old.get("date") == plan.record["date"]:
        return None
    if old is not None and not overwrite:
        return Problem(plan.pair.rgb_uri, "PlanChanged",
                       f"outputs exist for another cut of this video (chunk.seconds={old.get('chunk_seconds')}, "
                       f"{len(old.get('bounds', []))} chunks, {old.get('frames')} frames; now "
                       f"chunk.seconds={plan.record['chunk_seconds']}, {len(plan.chunks)} chunks, "
                       f"{plan.record['frames']} frames): re-run with the earlier chunk settings, or with "
                       "output.overwrite=true to replace this video's outputs", plan.pair.video_id,
                       plan.pair.camera_id)
    if old is not None:
        removed = remove_video_outputs(layout, fs, old, retry)
        log.info("%s: cut changed; removed %d old output files", plan.pair.video_id, removed)
    data = (json.dumps(plan.record, indent=1) + "\n").encode()
    with_retry(lambda: write_bytes(fs, path, data), what=f"write {path}", policy=retry)
    return None


def remove_video_outputs(layout: Layout, fs, record: dict, retry: RetryConfig) -> int:
    """Delete every detections/frames file of the video the record describes (frames files first: a chunk whose
    marker is gone reads as not done even if the delete stops half-way)."""
    removed = 0
    for table in ("frames", "detections", "_overlap", "tracks", "track_links"):
        folder = layout.partition(table, record["camera_id"], record["date"])
        try:
            names = with_retry(lambda f=folder: fs.ls(f, detail=False), what=f"list {folder}", policy=retry)
        except FileNotFoundError:
            continue
        for p in names:
            name = p.rsplit("/", 1)[-1]
            parsed = parse_chunk_file(name)
            if (parsed and parsed[0] == record["video_id"]) or name == f"{record['video_id']}.parquet":
                with_retry(lambda q=p: fs.rm_file(q), what=f"delete {p}", policy=retry)
                removed += 1
    return removed
