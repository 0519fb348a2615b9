"""Archive → pairs → chunk manifest (on the driver). Pairs come from a manifest file or a naming convention;
unpaired files are reported, never guessed. Chunks start at RGB keyframes, about `chunk.seconds` apart."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import logging
import posixpath
from dataclasses import asdict, dataclass

import pyarrow.parquet as pq

from fusion.data.video import VideoReader
from jobs.config import InputConfig
from jobs.storage import filesystem

log = logging.getLogger(__name__)
MANIFEST_COLUMNS = ("video_id", "camera_id", "rgb_uri", "ir_uri", "start_time")


class ManifestError(ValueError):
    """The archive's manifest is missing or malformed; the message names the file and the row/column."""


@dataclass(frozen=True)
class Pair:
    video_id: str
    camera_id: str
    rgb_uri: str  # full URL
    ir_uri: str
    start_time: str  # ISO 8601, UTC if no offset


@dataclass(frozen=True)
class Chunk:
    video_id: str
    camera_id: str
    chunk_id: int
    rgb_uri: str
    ir_uri: str
    start_s: float  # seconds from the start of the video
    end_s: float
    fps: float
    start_time: str  # ISO 8601 of the video start
    date: str  # YYYY-MM-DD partition of the video start

    def row(self) -> dict:
        return asdict(self)


def _join(root: str, uri: str) -> str:
    return uri if "://" in uri or uri.startswith("/") else posixpath.join(root.rstrip("/"), uri)


def list_pairs(cfg: InputConfig) -> tuple[list[Pair], list[tuple[str, str]]]:
    """→ (pairs, problems as (uri, reason))."""
    fs, base = filesystem(cfg.archive, cfg.storage_options)
    root = cfg.archive.rstrip("/")
    if cfg.manifest:
        return _from_manifest(root, _join(root, cfg.manifest), cfg.storage_options), []
    return _by_convention(fs, base, root, cfg)


def _from_manifest(root: str, url: str, storage_options: dict) -> list[Pair]:
    fs, path = filesystem(url, storage_options)
    try:
        data = fs.cat_file(path)
    except FileNotFoundError as exc:
        raise ManifestError(f"{url}: manifest not found") from exc
    if url.endswith(".parquet"):
        rows = pq.read_table(io.BytesIO(data)).to_pylist()
    else:
        rows = list(csv.DictReader(io.StringIO(data.decode())))
    if not rows:
        raise ManifestError(f"{url}: manifest has no rows")
    missing = [c for c in MANIFEST_COLUMNS if c not in rows[0]]
    if missing:
        raise ManifestError(f"{url}: missing column(s) {missing}; expected {list(MANIFEST_COLUMNS)}")
    pairs, seen = [], set()
    for i, r in enumerate(rows, start=2):  # line 1 is the header
        if r["video_id"] in seen:
            raise ManifestError(f"{url}: line {i}: duplicate video_id {r['video_id']!r}")
        seen.add(r["video_id"])
        try:
            dt.datetime.fromisoformat(str(r["start_time"]))
        except ValueError as exc:
            raise ManifestError(f"{url}: line {i}: start_time {r['start_time']!r} is not ISO 8601") from exc
        pairs.append(Pair(str(r["video_id"]), str(r["camera_id"]), _join(root, r["rgb_uri"]), _join(root, r["ir_uri"]),
                          str(r["start_time"])))
    return pairs


def _by_convention(fs, base: str, root: str, cfg: InputConfig) -> tuple[list[Pair], list[tuple[str, str]]]:
    files = [p for p in fs.find(base) if p.endswith((cfg.rgb_suffix, cfg.ir_suffix))]
    rgb = {p[: -len(cfg.rgb_suffix)]: p for p in files if p.endswith(cfg.rgb_suffix)}
    ir = {p[: -len(cfg.ir_suffix)]: p for p in files if p.endswith(cfg.ir_suffix)}
    proto = root.split("://", 1)[0] + "://" if "://" in root else ""
    problems = [(proto + rgb[k], "no IR partner") for k in sorted(set(rgb) - set(ir))]
    problems += [(proto + ir[k], "no RGB partner") for k in sorted(set(ir) - set(rgb))]
    pairs = []
    for key in sorted(set(rgb) & set(ir)):
        rel = posixpath.relpath(key, base)
        parts = rel.split("/")
        camera = parts[0] if len(parts) > 1 else "unknown"
        info = fs.info(rgb[key])
        modified = info.get("LastModified") or info.get("mtime") or 0  # no manifest: file time is the best start
        start = modified if isinstance(modified, dt.datetime) else dt.datetime.fromtimestamp(float(modified), dt.UTC)
        pairs.append(Pair(posixpath.basename(key), camera, proto + rgb[key], proto + ir[key], start.isoformat()))
    return pairs, problems


def chunk_pair(pair: Pair, seconds: float, storage_options: dict | None = None) -> list[Chunk]:
    """Split a pair into keyframe-aligned chunks (reads the RGB packet index only; no decoding)."""
    with VideoReader.open(pair.rgb_uri, storage_options=storage_options) as reader:
        info = reader.info()
    with VideoReader.open(pair.ir_uri, storage_options=storage_options) as reader:
        ir_info = reader.info()
    end = min(info.duration_s, ir_info.duration_s)
    starts = [0.0]
    for k in info.keyframes_s:
        if k - starts[-1] >= seconds - 1e-6 and k < end:
            starts.append(k)
    bounds = [*starts, end]
    t0 = dt.datetime.fromisoformat(pair.start_time)
    return [Chunk(pair.video_id, pair.camera_id, i, pair.rgb_uri, pair.ir_uri, a, b, info.fps, pair.start_time,
                  t0.date().isoformat()) for i, (a, b) in enumerate(itertools.pairwise(bounds))]
