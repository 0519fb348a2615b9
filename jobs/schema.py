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
])
# One row per processed frame, with or without detections: "nothing found" differs from "not processed".
FRAMES = pa.schema([
    ("video_id", pa.string()), ("camera_id", pa.string()), ("chunk_id", pa.int32()), ("frame_idx", pa.int32()),
    ("timestamp", pa.timestamp("ms", tz="UTC")), ("modality", pa.string()), ("brightness", pa.float32()),
    ("detections", pa.int32()), ("run_id", pa.string()),
])
ERRORS = pa.schema([
    ("video_id", pa.string()), ("camera_id", pa.string()), ("chunk_id", pa.int32()), ("uri", pa.string()),
    ("error_type", pa.string()), ("reason", pa.string()), ("run_id", pa.string()),
])
# One row per chunk of a run: what happened, where (node, actor process), how long.
CHUNKS = pa.schema([
    ("video_id", pa.string()), ("camera_id", pa.string()), ("chunk_id", pa.int32()), ("status", pa.string()),
    ("frames", pa.int32()), ("detections", pa.int32()), ("seconds", pa.float64()), ("modes", pa.string()),
    ("node_id", pa.string()), ("pid", pa.int64()), ("run_id", pa.string()),
])
SUMMARY = pa.schema([
    ("run_id", pa.string()), ("started", pa.timestamp("ms", tz="UTC")), ("seconds", pa.float64()),
    ("chunks_total", pa.int32()), ("chunks_done", pa.int32()), ("chunks_skipped", pa.int32()),
    ("chunks_failed", pa.int32()), ("frames", pa.int64()), ("detections", pa.int64()), ("pairs_per_s", pa.float64()),
    ("actors", pa.int32()), ("backend", pa.string()), ("config", pa.string()),
])


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
        try:
            arrays.append(pa.array(columns[f.name], type=f.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
            raise SchemaError(f"column {f.name!r} cannot be {f.type}: {exc}") from exc
    return pa.Table.from_arrays(arrays, schema=schema)
