"""Archive → pairs (on the driver). Pairs come from a manifest file or a naming convention; unpaired files, bad ids
and bad rows are reported as error rows (naming the file or the manifest line), never guessed or dropped."""

from __future__ import annotations

import csv
import datetime as dt
import io
import posixpath
from dataclasses import dataclass

import pyarrow.parquet as pq

from jobs.config import InputConfig, RetryConfig
from jobs.paths import IdError, encode_relative, validate_id
from jobs.storage import filesystem, with_retry

MANIFEST_COLUMNS = ("video_id", "camera_id", "rgb_uri", "ir_uri", "start_time")


class ManifestError(ValueError):
    """The archive or its manifest is missing or malformed as a whole; the message names the file."""


@dataclass(frozen=True)
class Pair:
    video_id: str
    camera_id: str
    rgb_uri: str  # full URL
    ir_uri: str
    start_time: str  # ISO 8601, UTC if no offset
    source: str = ""  # where the pair came from, for messages: "manifest.csv line 7" or the RGB file

    @property
    def date(self) -> str:
        return start_datetime(self.start_time).date().isoformat()


@dataclass(frozen=True)
class Problem:
    uri: str
    error_type: str
    reason: str
    video_id: str = ""
    camera_id: str = ""


def start_datetime(value: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(value)
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _join(root: str, uri: str) -> str:
    return uri if "://" in uri or uri.startswith("/") else posixpath.join(root.rstrip("/"), uri)


def list_pairs(cfg: InputConfig, retry: RetryConfig) -> tuple[list[Pair], list[Problem]]:
    """→ (pairs, problems). Raises ManifestError when there is nothing to read at all."""
    fs, base = filesystem(cfg.archive, cfg.storage_options)
    root = cfg.archive.rstrip("/")
    if cfg.manifest:
        url = _join(root, cfg.manifest)
        return _from_manifest(root, url, cfg.storage_options, retry)
    if not with_retry(lambda: fs.isdir(base), what=f"list {cfg.archive}", policy=retry):
        raise ManifestError(f"input.archive={cfg.archive}: no such folder (naming mode: input.manifest is empty)")
    files = with_retry(lambda: fs.find(base), what=f"list {cfg.archive}", policy=retry)
    return _by_convention(fs, files, base, root, cfg, retry)


def _from_manifest(root: str, url: str, storage_options: dict, retry: RetryConfig) -> tuple[list[Pair], list[Problem]]:
    fs, path = filesystem(url, storage_options)
    try:
        data = with_retry(lambda: fs.cat_file(path), what=f"read {url}", policy=retry)
    except FileNotFoundError as exc:
        raise ManifestError(f"{url}: manifest not found") from exc
    try:
        rows = (pq.read_table(io.BytesIO(data)).to_pylist() if url.endswith(".parquet")
                else list(csv.DictReader(io.StringIO(data.decode("utf-8-sig")))))
    except Exception as exc:  # a corrupt Parquet or non-UTF-8 CSV: the whole file is unreadable
        raise ManifestError(f"{url}: cannot read the manifest ({type(exc).__name__}: {exc})") from exc
    if not rows:
        raise ManifestError(f"{url}: manifest has no rows")
    missing = [c for c in MANIFEST_COLUMNS if c not in rows[0]]
    if missing:
        raise ManifestError(f"{url}: missing column(s) {missing}; expected {list(MANIFEST_COLUMNS)}")
    pairs: list[Pair] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for i, r in enumerate(rows, start=2):  # line 1 is the header
        where = f"{url} line {i}"
        vid, cam = str(r["video_id"] or ""), str(r["camera_id"] or "")
        try:
            validate_id(vid, field="video_id")
            validate_id(cam, field="camera_id")
            start_datetime(str(r["start_time"]))
            if not r["rgb_uri"] or not r["ir_uri"]:
                raise ValueError("rgb_uri and ir_uri must both be given")
        except (IdError, ValueError, TypeError) as exc:
            problems.append(Problem(where, "BadManifestRow", str(exc), vid if len(vid) < 200 else "", ""))
            continue
        if vid in seen:
            problems.append(Problem(where, "BadManifestRow", f"duplicate video_id {vid!r} (first at line "
                                    f"{seen[vid]}): only the first is processed", vid, cam))
            continue
        seen[vid] = i
        pairs.append(Pair(vid, cam, _join(root, str(r["rgb_uri"])), _join(root, str(r["ir_uri"])),
                          str(r["start_time"]), where))
    return pairs, problems


def _by_convention(fs, files: list[str], base: str, root: str, cfg: InputConfig, retry: RetryConfig
                   ) -> tuple[list[Pair], list[Problem]]:
    files = [p for p in files if p.endswith((cfg.rgb_suffix, cfg.ir_suffix))]
    if not files:
        raise ManifestError(f"input.archive={cfg.archive}: no *{cfg.rgb_suffix} / *{cfg.ir_suffix} files found")
    rgb = {p[: -len(cfg.rgb_suffix)]: p for p in files if p.endswith(cfg.rgb_suffix)}
    ir = {p[: -len(cfg.ir_suffix)]: p for p in files if p.endswith(cfg.ir_suffix)}
    proto = root.split("://", 1)[0] + "://" if "://" in root else ""
    problems = [Problem(proto + rgb[k], "Unpaired", "no IR partner") for k in sorted(set(rgb) - set(ir))]
    problems += [Problem(proto + ir[k], "Unpaired", "no RGB partner") for k in sorted(set(ir) - set(rgb))]
    pairs = []
    for key in sorted(set(rgb) & set(ir)):
        parts = posixpath.relpath(key, base).split("/")
        # <camera>/<any/sub/folders>/<name>: the id keeps the whole relative path, so names repeated in other
        # folders stay distinct videos.
        camera = parts[0] if len(parts) > 1 else "unknown"
        rel = "/".join(parts[1:]) if len(parts) > 1 else parts[0]
        uri = proto + rgb[key]
        try:
            video = validate_id(encode_relative(rel), field="video_id")
            validate_id(camera, field="camera_id (first folder)")
        except IdError as exc:
            problems.append(Problem(uri, "BadId", str(exc)))
            continue
        info = with_retry(lambda k=key: fs.info(rgb[k]), what=f"stat {uri}", policy=retry)
        modified = info.get("LastModified") or info.get("mtime") or 0  # no manifest: file time is the best start
        start = modified if isinstance(modified, dt.datetime) else dt.datetime.fromtimestamp(float(modified), dt.UTC)
        pairs.append(Pair(video, camera, uri, proto + ir[key], start.isoformat(), uri))
    return pairs, problems
