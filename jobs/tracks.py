"""The stitching pass, one task per video after its chunks ran: chunk tracks → video tracks (table `tracks`, one row
per object) and the map from chunk-scoped ids to video ids (table `track_links`). Runs as Ray tasks next to the
data when Ray is up (the driver reads nothing), else in the calling process."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fusion.config import from_dict, to_dict
from jobs import schema
from jobs.config import JobConfig
from jobs.paths import Layout, parse_chunk_file
from jobs.storage import filesystem, parquet_bytes, with_retry, write_bytes
from jobs.tracking import stitch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoRef:
    camera_id: str
    date: str
    video_id: str


def _read_chunks(fs, folder: str, video_id: str, retry) -> dict[int, pa.Table]:
    """first frame → table, for the video's chunk files in `folder`."""
    try:
        names = with_retry(lambda: fs.ls(folder, detail=False), what=f"list {folder}", policy=retry)
    except FileNotFoundError:
        return {}
    out = {}
    for p in names:
        key = parse_chunk_file(p.rsplit("/", 1)[-1])
        if key and key[0] == video_id:
            out[key[1]] = pq.read_table(pa.BufferReader(with_retry(lambda q=p: fs.cat_file(q), what=f"read {p}",
                                                                   policy=retry)))
    return out


def summarize(det: pa.Table, links: dict[int, int], run_id: str) -> pa.Table:
    """Detections with chunk-scoped ids + the id map → one row per video track."""
    df = det.select(["video_id", "camera_id", "frame_idx", "timestamp", "class_id", "class_name", "score", "x1",
                     "y1", "x2", "y2", "track_id", "chunk_id"]).to_pandas()
    df = df[df.track_id >= 0]
    if df.empty:
        return schema.table(schema.TRACKS, {f.name: [] for f in schema.TRACKS})
    df["track"] = df.track_id.map(lambda t: links.get(int(t), int(t)))
    df["cx"], df["cy"] = (df.x1 + df.x2) / 2, (df.y1 + df.y2) / 2
    rows = []
    for tid, g in df.sort_values(["track", "frame_idx"]).groupby("track", sort=True):
        cls = g.class_id.mode().iloc[0]
        step = np.hypot(np.diff(g.cx.to_numpy()), np.diff(g.cy.to_numpy()))
        rows.append({"video_id": g.video_id.iloc[0], "camera_id": g.camera_id.iloc[0], "track_id": int(tid),
                     "class_id": int(cls), "class_name": g.class_name[g.class_id == cls].iloc[0],
                     "first_seen": g.timestamp.min(), "last_seen": g.timestamp.max(),
                     "frames": int(g.frame_idx.nunique()), "mean_score": float(g.score.mean()),
                     "path_px": float(step.sum()), "chunks": int(g.chunk_id.nunique()), "run_id": run_id})
    return schema.rows_table(schema.TRACKS, rows)


def stitch_video(cfg: dict, run_id: str, ref: VideoRef) -> dict:
    """Read the video's detections and overlaps, link tracks across chunks, write its tracks and links files."""
    job = from_dict(JobConfig, cfg, where="job")
    fs, base = filesystem(job.output.path, job.output.storage_options)
    layout = Layout(base)
    retry = job.storage
    owned = _read_chunks(fs, layout.partition("detections", ref.camera_id, ref.date), ref.video_id, retry)
    overlaps = _read_chunks(fs, layout.partition("_overlap", ref.camera_id, ref.date), ref.video_id, retry)
    if not owned:
        return {"video_id": ref.video_id, "tracks": 0}
    det = pa.concat_tables([owned[k] for k in sorted(owned)]).combine_chunks()
    det = det.take(pa.array(np.argsort(det.column("frame_idx").to_numpy(), kind="stable")))
    links = stitch(sorted(owned), det, overlaps, min_iou=job.tracking.stitch_iou)
    tracks = summarize(det, links, run_id)
    link_rows = schema.table(schema.TRACK_LINKS, {"video_id": [ref.video_id] * len(links),
                                                  "chunk_track_id": list(links), "track_id": list(links.values())})
    for table, data in (("track_links", link_rows), ("tracks", tracks)):
        path = layout.tracks(ref.camera_id, ref.date, ref.video_id, table)
        blob = parquet_bytes(data)
        with_retry(lambda p=path, b=blob: write_bytes(fs, p, b), what=f"write {path}", policy=retry)
    return {"video_id": ref.video_id, "tracks": tracks.num_rows}


def stitch_all(cfg: JobConfig, run_id: str, videos: list[VideoRef]) -> list[dict]:
    """Stitch every video (Ray tasks when Ray is up); → error rows for videos that could not be stitched."""
    plain = to_dict(cfg)
    errors = []
    try:
        import ray

        use_ray = ray.is_initialized()
    except ImportError:
        use_ray = False
    if use_ray:
        task = ray.remote(num_cpus=0.5, max_retries=2)(stitch_video)
        refs = {v: task.remote(plain, run_id, v) for v in videos}
        for v, r in refs.items():
            try:
                ray.get(r)
            except Exception as exc:  # a task's exception: this video's tracks are missing, the run goes on
                errors.append(_error(v, exc, run_id))
        return errors
    for v in videos:
        try:
            stitch_video(plain, run_id, v)
        except Exception as exc:
            errors.append(_error(v, exc, run_id))
    return errors


def _error(v: VideoRef, exc: BaseException, run_id: str) -> dict:
    log.warning("stitching %s failed: %s", v.video_id, exc)
    reason = f"tracks not linked across chunks ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    return schema.error_row(uri=v.video_id, error_type="StitchError", reason=reason, run_id=run_id,
                            video_id=v.video_id, camera_id=v.camera_id)
