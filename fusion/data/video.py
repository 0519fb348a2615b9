"""H.264 video in and out with PyAV, for paired RGB + IR files.

Writing: frames are encoded to a local temporary file (MP4 needs a seekable output for its index) and then
copied to any fsspec URL in one put. Reading: `VideoReader` opens a local path or an in-memory buffer, seeks
to the keyframe at or before `start` and yields `(timestamp_s, frame)` up to `end`; decode runs in FFmpeg's
own threads. IR is stored as the luma plane of yuv420p (portable to every player) and read back as gray.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import fsspec
import numpy as np

log = logging.getLogger(__name__)

# x264's output depends on how many threads encode: fixed, so one seed renders the same bytes on every machine
# (left to FFmpeg it follows the core count; one core and two wrote different files here). 2 = the CI class.
ENCODER_THREADS = 2
# libavformat's AVFMT_NOTIMESTAMPS: raw elementary streams (.h264, .hevc, .mjpeg) whose frames carry no times
AVFMT_NOTIMESTAMPS = 0x0080


@functools.cache
def _x264_params() -> str:
    """x264's AVX-512 code wrote different bytes run to run for the same frames (AMD EPYC, PyAV 18.1's x264: in 8 of
    8 runs of 10 encodes of one clip pair with asm=AVX512, in 0 of 8 with asm=AVX2, whose bytes are those of a good
    AVX-512 run): on a CPU with AVX-512 the encoder is held to AVX2, which every such CPU has."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: no flags to read, x264 picks its own code
        return ""
    return "asm=AVX2" if re.search(r"\bavx512f\b", flags) else ""


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
                    options = {"crf": str(crf), "preset": preset, "g": str(2 * fps), "keyint_min": str(2 * fps),
                               "sc_threshold": "0"}
                    stream.options = options | ({"x264-params": _x264_params()} if _x264_params() else {})
                    stream.thread_count = ENCODER_THREADS
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
    """What the container header says (no packet is read): enough to plan chunks in O(videos)."""

    frames: int  # declared frame count (0 when the container does not say)
    fps: float
    width: int
    height: int
    duration_s: float
    keyframes_s: tuple[float, ...]  # from the container's index, relative to the stream start (empty: unknown)
    start_s: float = 0.0  # the stream's first timestamp (its own clock); frame times are relative to it


class VideoReader:
    """Decode one video from a path, an in-memory buffer or a seekable file object (bytes from object storage).

    Timestamps are seconds relative to the stream's own start, so an RGB and an IR file whose clocks start at
    different values still pair frame by frame.
    """

    def __init__(self, source: str | Path | bytes | BinaryIO, *, name: str | None = None, gray: bool = False,
                 threads: int = 0):
        self.name = name or (str(source) if isinstance(source, str | Path) else "<buffer>")
        self.gray = gray
        src = io.BytesIO(source) if isinstance(source, bytes) else source
        try:
            self._container = av.open(src if not isinstance(src, Path) else str(src), mode="r")
            self._stream = self._container.streams.video[0]
        except (av.error.FFmpegError, IndexError, OSError) as exc:
            raise VideoError(f"{self.name}: cannot open as video ({exc})") from exc
        fmt = self._container.format
        if fmt.flags & AVFMT_NOTIMESTAMPS:  # frames would all come without pts: nothing to pair RGB and IR by
            self._container.close()
            raise VideoError(f"{self.name}: a raw {fmt.name} stream without a container has no frame times to pair "
                             f"RGB and IR by; remux it first, e.g. ffmpeg -framerate 25 -i <file> -c copy <file>.mp4")
        self._stream.thread_type = "AUTO"
        if threads:
            self._stream.thread_count = threads
        st = self._stream.start_time
        self._t0 = float(st * self._stream.time_base) if st is not None else 0.0

    _file: BinaryIO | None = None

    @classmethod
    def open(cls, url: str, *, storage_options: dict | None = None, gray: bool = False, threads: int = 0
             ) -> VideoReader:
        """Open any fsspec URL (s3://, gs://, local); reads are ranged, only what decoding needs is fetched."""
        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
        try:
            f = fs.open(path, "rb")
        except FileNotFoundError as exc:
            raise VideoError(f"{url}: file not found") from exc
        try:
            reader = cls(f, name=url, gray=gray, threads=threads)
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
        """Frame count, size, duration and keyframe times from the header and index (no packet is read)."""
        s, tb = self._stream, self._stream.time_base
        entries = s.index_entries
        # Index timestamps are decode times; a closed GOP's keyframe keeps a constant pts - dts shift, so times
        # relative to the first entry are the keyframes' presentation times relative to the stream start.
        first = entries[0].timestamp if len(entries) else 0
        keys = sorted({round(float((e.timestamp - first) * tb), 6) for e in entries if e.is_keyframe})
        frames = int(s.frames or 0)
        if s.duration is not None:
            duration = float(s.duration * tb)
        elif self._container.duration is not None:
            duration = self._container.duration / 1e6
        else:
            duration = frames / self.fps
        cc = s.codec_context
        return VideoInfo(frames=frames, fps=self.fps, width=cc.width, height=cc.height, duration_s=duration,
                         keyframes_s=tuple(keys), start_s=self._t0)

    def frames(self, start: float = 0.0, end: float | None = None, *, keyframes_only: bool = False,
               fmt: str | None = None) -> Iterator[tuple[float, np.ndarray]]:
        """Yield (seconds from the stream start, frame) for start <= t < end.

        Frames are BGR (H, W, 3) or gray (H, W) uint8 unless `fmt` names another PyAV format (e.g. "rgb24").
        `keyframes_only` decodes nothing but keyframes (cheap look-back for the brightness policy).
        """
        tb = self._stream.time_base
        fmt = fmt or ("gray" if self.gray else "bgr24")
        half = 0.5 / self.fps  # tolerate pts rounding at the window edges
        cc = self._stream.codec_context
        cc.skip_frame = "NONKEY" if keyframes_only else "DEFAULT"
        yielded = False
        try:
            # Seek to the keyframe at or before `start`. Containers without an index (MPEG-TS) seek by bytes and may
            # land after it: then decode from the beginning rather than lose frames.
            for from_start in ((False, True) if start > 0 else (True,)):
                if from_start:
                    self._container.seek(0)
                else:
                    self._container.seek(int((start + self._t0) / tb), stream=self._stream, backward=True)
                first = True
                for frame in self._container.decode(self._stream):
                    if frame.pts is None:
                        continue
                    t = float(frame.pts * tb) - self._t0
                    if first and not from_start and t > start + half and not keyframes_only:
                        break  # overshot: retry from the start
                    first = False
                    if t < start - half:
                        continue
                    if end is not None and t >= end - half:
                        return
                    yielded = True
                    yield t, frame.to_ndarray(format=fmt)
                else:
                    return
        except av.error.FFmpegError as exc:
            if yielded:
                # A file cut short (an interrupted upload, a full disk) decodes up to the damage: keep those frames
                # and end the window; the caller compares the count with the plan and reports the pair as partial.
                log.warning("%s: decoding stopped at the first damaged packet (%s)", self.name, exc)
                return
            raise VideoError(f"{self.name}: decode failed ({exc})") from exc
        finally:
            cc.skip_frame = "DEFAULT"
