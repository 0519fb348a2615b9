"""Every output column, its name and dtype, in one place. Builders validate what they are given."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa

DETECTIONS = pa.schema([
    ("video_id", pa.string()), ("camera_id", pa.string()), ("chunk_id", pa.int32()), ("frame_idx", pa.int32()),
    ("timestamp", pa.timestamp("ms", tz="UTC")), ("class_id", pa.int16()), ("class_name", pa.string()),
    ("score", pa.float32()), ("x1", pa.float32()), ("y1", pa.float32()), ("x2", pa.float32()), ("y2", pa.float32()),
    ("img_w", pa.int32()), ("img_h", pa.int32()), ("modality", pa.string()), ("brightness", pa.float32()),
    ("model_id", pa.string()), ("precision", pa.string()), ("run_id", pa.string()),
    # the chunk-scoped track (first_frame * 100000 + tracker id; -1: no track); the `detections` view of jobs.query
    # replaces it with the video-wide id the stitching pass found (table track_links)
    ("track_id", pa.int64()),
])
# Per chunk, the detections of the frames it ran before its own (the overlap with the previous chunk): where
# tracks of consecutive chunks are linked. Never counted as the chunk's output.
OVERLAP = pa.schema([
    ("video_id", pa.string()), ("frame_idx", pa.int32()), ("track_id", pa.int64()), ("class_id", pa.int16()),
    ("score", pa.float32()), ("x1", pa.float32()), ("y1", pa.float32()), ("x2", pa.float32()), ("y2", pa.float32()),
])
# One row per object track of a video (after stitching across chunks).
TRACKS = pa.schema([
    ("video_id", pa.string()), ("camera_id", pa.string()), ("track_id", pa.int64()), ("class_id", pa.int16()),
    ("class_name", pa.string()), ("first_seen", pa.timestamp("ms", tz="UTC")),
    ("last_seen", pa.timestamp("ms", tz="UTC")), ("frames", pa.int32()), ("mean_score", pa.float32()),
    ("path_px", pa.float32()), ("chunks", pa.int32()), ("run_id", pa.string()),
])
TRACK_LINKS = pa.schema([
    ("video_id", pa.string()), ("chunk_track_id", pa.int64()), ("track_id", pa.int64()),
])
# One row per processed frame, with or without detections: "nothing found" differs from "not processed".
FRAMES = pa.schema([
    ("video_id", pa.string()), ("camera_id", pa.string()), ("chunk_id", pa.int32()), ("frame_idx", pa.int32()),
    ("timestamp", pa.timestamp("ms", tz="UTC")), ("modality", pa.string()), ("brightness", pa.float32()),
    ("detections", pa.int32()), ("run_id", pa.string()),
])
# Bad inputs and chunk problems. severity "error": something was not processed; "warning": processed, but the
# operator should know (an IR stream that starts late, a duration mismatch).
ERRORS = pa.schema([
    ("video_id", pa.string()), ("camera_id", pa.string()), ("chunk_id", pa.int32()), ("uri", pa.string()),
    ("error_type", pa.string()), ("severity", pa.string()), ("reason", pa.string()), ("run_id", pa.string()),
])
# One row per chunk of a run (the status row an actor returns): what happened, where, how long.
# status: done | partial (some frames had no partner or a stream ended early: counts say how many) | skipped
# (complete output already there) | failed (nothing written for it; error_type/reason say why, uri which file).
CHUNKS = pa.schema([
    ("video_id", pa.string()), ("camera_id", pa.string()), ("chunk_id", pa.int32()), ("first_frame", pa.int32()),
    ("end_frame", pa.int32()), ("status", pa.string()), ("frames", pa.int32()), ("frames_expected", pa.int32()),
    ("rgb_frames", pa.int32()), ("ir_frames", pa.int32()), ("unpaired_rgb", pa.int32()), ("unpaired_ir", pa.int32()),
    ("detections", pa.int32()), ("seconds", pa.float64()),
    # where the chunk's time went: waiting for decoded frames, waiting for the engine thread, writing Parquet;
    # and the actor's engine thread so far (busy seconds, batches): a built-in profile of the pipeline
    ("decode_s", pa.float64()), ("engine_wait_s", pa.float64()), ("write_s", pa.float64()),
    ("engine_busy_s", pa.float64()), ("engine_batches", pa.int64()), ("modes", pa.string()), ("decoder", pa.string()),
    ("error_type", pa.string()), ("reason", pa.string()), ("uri", pa.string()),
    ("node_id", pa.string()), ("pid", pa.int64()), ("t_start", pa.float64()), ("t_end", pa.float64()),
    ("run_id", pa.string()),
])
SUMMARY = pa.schema([
    ("run_id", pa.string()), ("started", pa.timestamp("ms", tz="UTC")), ("seconds", pa.float64()),
    ("plan_seconds", pa.float64()), ("chunks_total", pa.int32()), ("chunks_done", pa.int32()),
    ("chunks_partial", pa.int32()), ("chunks_skipped", pa.int32()), ("chunks_failed", pa.int32()),
    ("videos_failed", pa.int32()), ("frames", pa.int64()), ("detections", pa.int64()), ("pairs_per_s", pa.float64()),
    ("actors", pa.int32()), ("backend", pa.string()), ("interrupted", pa.bool_()), ("config", pa.string()),
    ("routes", pa.string()),  # JSON: brightness bin edges, the engine each bin routes to, and why
])
SEVERITIES = ("error", "warning")


def error_row(*, uri: str, error_type: str, reason: str, run_id: str, video_id: str = "", camera_id: str = "",
              chunk_id: int = -1, severity: str = "error") -> dict:
    """The one place an errors-table row is built."""
    if severity not in SEVERITIES:
        raise SchemaError(f"severity {severity!r}: expected one of {SEVERITIES}")
    return {"video_id": video_id, "camera_id": camera_id, "chunk_id": chunk_id, "uri": uri, "error_type": error_type,
            "severity": severity, "reason": reason[:2000], "run_id": run_id}


class SchemaError(ValueError):
    """Columns do not match a schema; the message names the field and the problem."""


def table(schema: pa.Schema, columns: Mapping[str, Sequence | np.ndarray]) -> pa.Table:
    """Build a table of `schema` from columns; every field must be present with the same length."""
    missing = [f.name for f in schema if f.name not in columns]
    extra = sorted(set(columns) - set(schema.names))
    if missing or extra:
        raise SchemaError(f"columns: missing {missing}, unexpected {extra}")
    lengths = {name: len(columns[name]) for name in schema.names}
    if len(set(lengths.values())) > 1:
        raise SchemaError(f"columns have different lengths: {lengths}")
    arrays = []
    for f in schema:
        col = columns[f.name]
        try:
            arrays.append(col.cast(f.type) if isinstance(col, pa.Array) else pa.array(col, type=f.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
            raise SchemaError(f"column {f.name!r} cannot be {f.type}: {exc}") from exc
    return pa.Table.from_arrays(arrays, schema=schema)


def rows_table(schema: pa.Schema, rows: Sequence[Mapping]) -> pa.Table:
    """Row dicts → a table of `schema` (every row must carry every field)."""
    return table(schema, {f.name: [r[f.name] for r in rows] for f in schema})
