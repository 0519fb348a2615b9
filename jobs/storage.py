"""Parquet out to any fsspec URL: atomic (temp + rename on file systems, one PUT on object stores), zstd."""

from __future__ import annotations

import io
import posixpath
import uuid

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq


def filesystem(url: str, storage_options: dict | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    return fsspec.core.url_to_fs(url, **(storage_options or {}))


def write_parquet(fs: fsspec.AbstractFileSystem, path: str, tbl: pa.Table) -> None:
    buf = io.BytesIO()
    pq.write_table(tbl, buf, compression="zstd")
    data = buf.getvalue()
    parent = posixpath.dirname(path)
    if _is_local(fs):
        fs.makedirs(parent, exist_ok=True)
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        fs.pipe_file(tmp, data)
        fs.mv(tmp, path)  # rename: readers see the whole file or none
    else:
        fs.pipe_file(path, data)  # one PUT: object stores publish whole objects atomically


def valid_parquet(fs: fsspec.AbstractFileSystem, path: str) -> bool:
    """A file exists and its footer reads (a crash mid-write leaves no file, but a foreign one may be corrupt)."""
    try:
        with fs.open(path, "rb") as f:
            pq.ParquetFile(f).metadata  # noqa: B018 - reading the footer is the check
        return True
    except (FileNotFoundError, OSError, pa.ArrowInvalid):
        return False


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")
