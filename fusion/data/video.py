"""H.264 video in and out with PyAV, for paired RGB + IR files.

Writing: frames are encoded to a local temporary file (MP4 needs a seekable output for its index) and then
copied to any fsspec URL in one put. Reading: `VideoReader` opens a local path or an in-memory buffer, seeks
to the keyframe at or before `start` and yields `(timestamp_s, frame)` up to `end`; decode runs in FFmpeg's
own threads. IR is stored as the luma plane of yuv420p (portable to every player) and read back as gray.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import fsspec
import numpy as np


class VideoError(RuntimeError):
    """A video cannot be opened or decoded; the message names it."""


def write_video(url: str, frames: Iterable[np.ndarray], *, fps: int = 25, crf: int = 23,
                preset: str = "veryfast") -> int:
    """Encode `frames` ((H, W, 3) uint8 BGR, or (H, W) uint8 gray) to H.264 at `url`; returns the frame count.

    Timestamps are exact: frame i has pts i in time base 1/fps.
    """
    fd, tmp = tempfile.mkstemp(suffix=".mp4")
    os.close(fd)
    count = 0
    try:
        with av.open(tmp, mode="w") as container:
            stream = None
            for frame in frames:
                if stream is None:
                    h, w = frame.shape[:2]
                    stream = container.add_stream("libx264", rate=fps)
                    stream.width, stream.height = w, h
                    stream.pix_fmt = "yuv420p"
                    stream.time_base = Fraction(1, fps)
                    # A keyframe every 2 s and no scene-cut keyframes: RGB and IR then share chunk boundaries.
                    stream.options = {"crf": str(crf), "preset": preset, "g": str(2 * fps),
                                      "keyint_min": str(2 * fps), "sc_threshold": "0"}
                fmt = "gray" if frame.ndim == 2 else "bgr24"
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format=fmt)
                vf.pts = count
                vf.time_base = Fraction(1, fps)
                container.mux(stream.encode(vf))
                count += 1
            if stream is not None:
                container.mux(stream.encode(None))
        fs, path = fsspec.core.url_to_fs(url)
        parent = os.path.dirname(path)
        if parent:
            fs.makedirs(parent, exist_ok=True)
        fs.put_file(tmp, path)
    finally:
        os.unlink(tmp)
    return count


@dataclass(frozen=True)
class VideoInfo:
    frames: int
    fps: float
    width: int
    height: int
    duration_s: float
    keyframes_s: tuple[float, ...]


class VideoReader:
    """Decode one video from a path or an in-memory buffer (bytes from object storage)."""

    def __init__(self, source: str | Path | bytes | BinaryIO, *, name: str | None = None, gray: bool = False):
        self.name = name or (str(source) if isinstance(source, str | Path) else "<buffer>")
        self.gray = gray
        src = io.BytesIO(source) if isinstance(source, bytes) else source
        try:
            self._container = av.open(src if not isinstance(src, Path) else str(src), mode="r")
            self._stream = self._container.streams.video[0]
        except (av.error.FFmpegError, IndexError, OSError) as exc:
            raise VideoError(f"{self.name}: cannot open as video ({exc})") from exc
        self._stream.thread_type = "AUTO"

    _file: BinaryIO | None = None

    @classmethod
    def open(cls, url: str, *, storage_options: dict | None = None, gray: bool = False) -> VideoReader:
        """Open any fsspec URL (s3://, gs://, local); reads are ranged, only what decoding needs is fetched."""
        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
        try:
            f = fs.open(path, "rb")
        except FileNotFoundError as exc:
            raise VideoError(f"{url}: file not found") from exc
        try:
            reader = cls(f, name=url, gray=gray)
        except VideoError:
            f.close()
            raise
        reader._file = f
        return reader

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()
        if self._file is not None:
            self._file.close()

    @property
    def fps(self) -> float:
        return float(self._stream.average_rate or self._stream.guessed_rate or 25)

    def info(self) -> VideoInfo:
        """Frame count, size and keyframe times, from the packet index (no decoding)."""
        tb = self._stream.time_base
        keys, n, last = [], 0, 0.0
        self._container.seek(0, stream=self._stream)
        for packet in self._container.demux(self._stream):
            if packet.pts is None:
                continue
            n += 1
            t = float(packet.pts * tb)
            last = max(last, t)
            if packet.is_keyframe:
                keys.append(t)
        self._container.seek(0, stream=self._stream)
        cc = self._stream.codec_context
        return VideoInfo(frames=n, fps=self.fps, width=cc.width, height=cc.height,
                         duration_s=last + 1.0 / self.fps, keyframes_s=tuple(sorted(keys)))

    def frames(self, start: float = 0.0, end: float | None = None) -> Iterator[tuple[float, np.ndarray]]:
        """Yield (timestamp seconds, frame) for start <= t < end; BGR (H, W, 3) or gray (H, W) uint8."""
        tb = self._stream.time_base
        fmt = "gray" if self.gray else "bgr24"
        half = 0.5 / self.fps  # tolerate pts rounding at the window edges
        try:
            self._container.seek(int(start / tb) if start > 0 else 0, stream=self._stream, backward=True)
            for frame in self._container.decode(self._stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * tb)
                if t < start - half:
                    continue
                if end is not None and t >= end - half:
                    break
                yield t, frame.to_ndarray(format=fmt)
        except av.error.FFmpegError as exc:
            raise VideoError(f"{self.name}: decode failed ({exc})") from exc
