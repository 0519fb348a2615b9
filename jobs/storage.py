"""Storage for the job: fsspec file systems, retries of transient errors, atomic Parquet writes.

Retry policy (`storage.*` in the job config): a read or write that fails with a transient error — connection
refused or reset, timeout, throttling, a 5xx from the object store — is tried again up to `attempts` times in
all, waiting backoff_s, 2*backoff_s, ... (capped at max_backoff_s). s3fs already retries a few times inside one
attempt (~2 s). Missing files, denied access and bad requests are not transient: they raise at once.
Writes are atomic: temp file + rename on file systems, one PUT on object stores (readers see all or nothing).
"""

from __future__ import annotations

import io
import logging
import posixpath
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from jobs.config import RetryConfig

log = logging.getLogger(__name__)
T = TypeVar("T")
_PERMANENT = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)


class StorageError(RuntimeError):
    """A storage operation failed (after retries, if the error was transient); the message names the URL."""


def filesystem(url: str, storage_options: dict | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    return fsspec.core.url_to_fs(url, **(storage_options or {}))


def is_transient(exc: BaseException) -> bool:
    """Connection, timeout and server-side errors are worth another try; a missing or forbidden object is not."""
    if isinstance(exc, _PERMANENT):
        return False
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    name = f"{type(exc).__module__}.{type(exc).__name__}"
    if name.startswith(("botocore.", "aiobotocore.", "aiohttp.")):  # EndpointConnectionError, ReadTimeout, ...
        return "Connection" in name or "Timeout" in name or "Read" in name
    if isinstance(exc, OSError):  # s3fs maps 5xx / SlowDown to OSError(errno, msg); 4xx to the types above
        text = str(exc)
        return any(s in text for s in ("503", "500", "502", "504", "SlowDown", "Connection", "Timeout", "reset"))
    return False


def with_retry(fn: Callable[[], T], *, what: str, policy: RetryConfig, sleep: Callable[[float], None] = time.sleep
               ) -> T:
    """Run `fn`, retrying transient storage errors per `policy`; `what` names the operation and URL in errors.
    Other exceptions propagate unchanged; a transient error that outlasts the policy becomes StorageError."""
    wait = policy.backoff_s
    for attempt in range(1, policy.attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc):
                raise  # not a storage hiccup: the caller's own error handling applies
            if attempt == policy.attempts:
                raise StorageError(f"{what}: {type(exc).__name__}: {exc} (after {attempt} attempts)") from exc
            log.warning("%s: %s: %s — retry %d/%d in %.1f s", what, type(exc).__name__, exc, attempt,
                        policy.attempts - 1, wait)
            sleep(wait)
            wait = min(wait * 2, policy.max_backoff_s)
    raise AssertionError("unreachable")


def parquet_bytes(tbl: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(tbl, buf, compression="zstd")
    return buf.getvalue()


def write_parquet(fs: fsspec.AbstractFileSystem, path: str, tbl: pa.Table) -> None:
    write_bytes(fs, path, parquet_bytes(tbl))


def write_bytes(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    if is_local(fs):
        fs.makedirs(posixpath.dirname(path), exist_ok=True)
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        fs.pipe_file(tmp, data)
        fs.mv(tmp, path)  # rename: readers see the whole file or none
    else:
        fs.pipe_file(path, data)  # one PUT: object stores publish whole objects atomically


def valid_parquet(fs: fsspec.AbstractFileSystem, path: str) -> bool:
    """A file exists and its footer reads (a crash mid-write leaves no file, but a foreign one may be corrupt).
    Transient errors propagate (the caller retries): "cannot tell" must not read as "not there"."""
    try:
        with fs.open(path, "rb") as f:
            pq.ParquetFile(f).metadata  # noqa: B018 - reading the footer is the check
        return True
    except (FileNotFoundError, pa.ArrowInvalid):
        return False
    except OSError as exc:
        if is_transient(exc):
            raise
        return False


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")
