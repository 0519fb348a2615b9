"""Every output path of the job, and the rules for the ids that become path parts. Nothing else spells a path.

    <root>/detections/camera_id=<cam>/date=<YYYY-MM-DD>/<video_id>.<first>-<end>.parquet   one row per detection
    <root>/frames/camera_id=<cam>/date=<YYYY-MM-DD>/<video_id>.<first>-<end>.parquet       one row per frame
    <root>/tracks/camera_id=<cam>/date=<YYYY-MM-DD>/<video_id>.parquet       one row per track (after stitching)
    <root>/track_links/camera_id=<cam>/date=<YYYY-MM-DD>/<video_id>.parquet  chunk track id → video track id
    <root>/_overlap/camera_id=<cam>/date=<YYYY-MM-DD>/<video_id>.<first>-<end>.parquet  a chunk's look-back rows
    <root>/_plans/camera_id=<cam>/<video_id>.json       how the video was cut (chunk settings, frame ranges)
    <root>/_runs/run_id=<run_id>/{summary,chunks,errors}.parquet
    <root>/_runs/run_id=<run_id>/attempts/<video_id>.<first>-<end>     a chunk in progress (start count)

A chunk is keyed by its frame range [first, end) (8 digits each), never by its number: keys do not depend on
how many chunks came before. The frames file is written last: its presence marks the chunk complete.
Ids must be safe as one path segment and as a hive partition value: no separators, no `..`, no `=`, no control
characters, nothing a shell or DuckDB's hive parser would read differently.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import unicodedata
from dataclasses import dataclass

_FILE = re.compile(r"^(?P<video>.+)\.(?P<first>\d{8})-(?P<end>\d{8})\.parquet$")
_MAX_ID = 200


class IdError(ValueError):
    """A camera, video or run id cannot be used as a path part; the message names the field and the value."""


def validate_id(value: str, *, field: str) -> str:
    """Return `value` if it is a safe single path segment and hive value, else raise IdError naming `field`."""
    problem = ""
    if not value:
        problem = "is empty"
    elif len(value) > _MAX_ID:
        problem = f"is longer than {_MAX_ID} characters"
    elif value in (".", "..") or value.startswith("."):
        problem = "starts with '.'"
    elif any(c in value for c in "/\\=%*?[]{}'\"`$"):
        problem = "contains one of / \\ = % * ? [ ] { } ' \" ` $"
    elif any(unicodedata.category(c)[0] in "CZ" and c != " " for c in value) or value != value.strip():
        problem = "contains control or separator characters (or leading/trailing spaces)"
    if problem:
        raise IdError(f"{field} {value!r} {problem}")
    return value


def encode_relative(rel: str) -> str:
    """A relative path (naming mode: `a/b/dup`) → a unique, safe video id (`a~b~dup`); '~' itself is escaped, so
    two different paths never give the same id."""
    return "~".join(part.replace("~", "~~") for part in rel.split("/"))


def new_run_id(now: dt.datetime | None = None) -> str:
    """UTC time + 48 random bits: unique even for runs started in the same second."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(6)}"


@dataclass(frozen=True)
class ChunkKey:
    camera_id: str
    date: str  # YYYY-MM-DD of the video start
    video_id: str
    first: int  # first frame index (inclusive)
    end: int  # last frame index + 1

    @property
    def name(self) -> str:
        return f"{self.video_id}.{self.first:08d}-{self.end:08d}.parquet"


def parse_chunk_file(name: str) -> tuple[str, int, int] | None:
    """`<video>.<first>-<end>.parquet` → (video_id, first, end), or None for a name the job did not write."""
    m = _FILE.match(name)
    return (m["video"], int(m["first"]), int(m["end"])) if m else None


class Layout:
    """Output paths under one root (an fsspec path without protocol, or a local path)."""

    def __init__(self, root: str):
        self.root = root.rstrip("/")

    def partition(self, table: str, camera_id: str, date: str) -> str:
        return f"{self.root}/{table}/camera_id={camera_id}/date={date}"

    def detections(self, key: ChunkKey) -> str:
        return f"{self.partition('detections', key.camera_id, key.date)}/{key.name}"

    def frames(self, key: ChunkKey) -> str:
        return f"{self.partition('frames', key.camera_id, key.date)}/{key.name}"

    def overlap(self, key: ChunkKey) -> str:
        return f"{self.partition('_overlap', key.camera_id, key.date)}/{key.name}"

    def tracks(self, camera_id: str, date: str, video_id: str, table: str = "tracks") -> str:
        return f"{self.partition(table, camera_id, date)}/{video_id}.parquet"

    def plan(self, camera_id: str, video_id: str) -> str:
        return f"{self.root}/_plans/camera_id={camera_id}/{video_id}.json"

    def run(self, run_id: str, table: str) -> str:
        return f"{self.root}/_runs/run_id={run_id}/{table}.parquet"

    def attempt(self, run_id: str, key: ChunkKey) -> str:
        """A chunk's start counter in this run (removed when the chunk ends, kept when its actor dies)."""
        return f"{self.root}/_runs/run_id={run_id}/attempts/{key.name[:-len('.parquet')]}"

    def probe(self) -> str:
        return f"{self.root}/_runs/.write-check-{secrets.token_hex(8)}"
