"""Decode backends behind one small interface: PyAV on the CPU, NVDEC on the GPU (PyNvVideoCodec).

    dec = open_decoder(url, backend="nvdec", gray=False, device=torch.device("cuda:0"))
    for batch in dec.read(start_s, end_s, batch=32):   # FrameBatch: t (n,) seconds, data (n, C, H, W) uint8
        ...

`data` is RGB (n, 3, H, W) or IR (n, 1, H, W) uint8: in pinned host memory for PyAV (when a GPU will take it),
on the GPU for NVDEC. NVDEC can also hand RGB over as NV12 (`nv12=True`: data (n, 1, H * 3/2, W), the luma plane
over the interleaved half-resolution chroma, `FrameBatch.nv12` set): colour is then converted after the letterbox
downscale (`fusion.data.letterbox`), on a quarter of the pixels, instead of at full resolution by the library.
Times are seconds relative to the stream's own start. A batch never mixes resolutions: a stream whose size
changes mid-way yields a new batch at the change. PyNvVideoCodec needs an NVIDIA driver, so it
is imported only when the NVDEC backend is asked for (optional extra `fusedet[nvdec]`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

import fsspec
import numpy as np
import torch

from fusion.data.video import VideoError, VideoReader

log = logging.getLogger(__name__)
Backend = Literal["pyav", "nvdec"]


@dataclass(frozen=True)
class FrameBatch:
    t: np.ndarray  # (n,) float64 seconds from the stream start
    data: torch.Tensor  # (n, 3, H, W) RGB or (n, 1, H, W) IR, uint8; NV12 RGB: (n, 1, H * 3/2, W)
    nv12: bool = False


class Decoder(Protocol):
    backend: str
    uri: str

    def read(self, start: float, end: float | None, *, batch: int) -> Iterator[FrameBatch]: ...

    def close(self) -> None: ...


def nvdec_available() -> str:
    """'' when NVDEC can be used here, else the reason it cannot."""
    if not torch.cuda.is_available():
        return "no CUDA GPU visible"
    try:
        import PyNvVideoCodec  # noqa: F401
    except Exception as exc:  # ImportError, or the library's own RuntimeError when the driver lacks NVDEC
        return f"PyNvVideoCodec does not load ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
    return ""


def resolve_backend(requested: Literal["auto", "pyav", "nvdec"], device: torch.device) -> tuple[Backend, str]:
    """→ (backend, why). `auto` takes NVDEC where the device is a GPU and the library loads, else PyAV."""
    if requested == "pyav":
        return "pyav", "decode.backend=pyav"
    reason = nvdec_available() if device.type == "cuda" else "the engine runs on the CPU"
    if requested == "nvdec":
        if reason:
            raise VideoError(f"decode.backend=nvdec: {reason}")
        return "nvdec", "decode.backend=nvdec"
    return ("nvdec", "auto: GPU with NVDEC") if not reason else ("pyav", f"auto: {reason}")


def open_decoder(uri: str, *, backend: Backend, gray: bool, device: torch.device,
                 storage_options: dict | None = None, threads: int = 0, pool: NvdecPool | None = None,
                 nv12: bool = False) -> Decoder:
    """A decoder for `uri`; NVDEC decoders come from `pool` (re-pointed at the new file, with the pool's `nv12`)
    when one is given. `nv12`: NVDEC RGB as NV12 (PyAV always gives RGB planes)."""
    if backend == "nvdec":
        if pool is not None:
            return pool.open(uri, gray=gray, storage_options=storage_options)
        return NvdecDecoder(uri, gray=gray, device=device, storage_options=storage_options, nv12=nv12)
    return PyAVDecoder(uri, gray=gray, pin=device.type == "cuda", storage_options=storage_options, threads=threads)


class PyAVDecoder:
    """CPU decode with FFmpeg's threads; frames land in (pinned) host batches ready for one non-blocking upload."""

    backend = "pyav"

    def __init__(self, uri: str, *, gray: bool, pin: bool, storage_options: dict | None, threads: int = 0):
        self.uri, self.gray, self.pin = uri, gray, pin
        self.reader = VideoReader.open(uri, storage_options=storage_options, gray=gray, threads=threads)

    def read(self, start: float, end: float | None, *, batch: int) -> Iterator[FrameBatch]:
        """Frames with start <= t < end (end None: to the stream's end)."""
        fmt = "gray" if self.gray else "rgb24"
        ts: list[float] = []
        frames: list[np.ndarray] = []
        for t, f in self.reader.frames(start, end, fmt=fmt):
            if frames and (len(frames) == batch or f.shape != frames[0].shape):
                yield self._batch(ts, frames)
                ts, frames = [], []
            ts.append(t)
            frames.append(f)
        if frames:
            yield self._batch(ts, frames)

    def _batch(self, ts: list[float], frames: list[np.ndarray]) -> FrameBatch:
        h, w = frames[0].shape[:2]
        c = 1 if self.gray else 3
        buf = torch.empty((len(frames), h, w, c), dtype=torch.uint8, pin_memory=self.pin)
        buf.numpy()[:] = np.stack(frames).reshape(len(frames), h, w, c)
        return FrameBatch(np.asarray(ts), buf.permute(0, 3, 1, 2))  # (n, C, H, W) view: no copy

    def close(self) -> None:
        self.reader.close()


def decode_stream(device: torch.device, *, high_priority: bool) -> torch.cuda.Stream:
    """A CUDA stream for the decode side (NVDEC sessions, chunk threads). High priority: their small kernels (colour
    conversion, stacking, letterbox), which every decoder waits for, start as soon as an SM is free instead of
    queueing behind the engine's batches. Beside the engine, decoding ran 1,975 instead of 1,865 pairs/s
    (benchmarks/results/probe_contention_h200.json)."""
    lo, hi = torch.cuda.Stream.priority_range()  # (0, -k): lower numbers run first
    return torch.cuda.Stream(device, priority=hi if high_priority else lo)


class NvdecDecoder:
    """GPU decode with NVDEC. RGB comes as planar RGB from the library's own conversion kernel, or as NV12
    (`nv12`); IR as the luma plane of NV12, expanded from video range (16-235) to full range like FFmpeg's gray
    output."""

    backend = "nvdec"

    def __init__(self, uri: str, *, gray: bool, device: torch.device, storage_options: dict | None,
                 pool: NvdecPool | None = None, high_priority: bool = True, nv12: bool = False):
        import PyNvVideoCodec as nvc

        self.gray, self.device, self.pool = gray, device, pool
        self.nv12 = nv12 and not gray
        # The session's own (non-blocking) stream. The library's default is the legacy default stream, which
        # serialises with everything torch runs there: on the H100 every decoder waited behind the engine's batches.
        self.stream = decode_stream(device, high_priority=high_priority)
        self.dec = None
        self._file = None
        self._color = nvc.OutputColorType.NATIVE if gray or self.nv12 else nvc.OutputColorType.RGBP
        self.point_at(uri, storage_options)

    def point_at(self, uri: str, storage_options: dict | None) -> None:
        """Open `uri`: a new NVDEC session the first time, the same session re-pointed afterwards (creating a
        session costs far more than decoding a chunk)."""
        import PyNvVideoCodec as nvc

        self.uri = uri
        fs, path = fsspec.core.url_to_fs(uri, **(storage_options or {}))
        local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
        try:
            if local and not os.path.exists(path):
                raise FileNotFoundError(path)
            if self.dec is not None and local:
                self.dec.reconfigure_decoder(path)
            else:
                self._file = None if local else fs.open(path, "rb")  # object storage: ranged reads on demand
                # One cached decoder per session: the library's default keeps four (GPU memory for nothing here).
                self.dec = nvc.SimpleDecoder(path if local else self._file, gpu_id=self.device.index or 0,
                                             cuda_stream=self.stream.cuda_stream, use_device_memory=True,
                                             output_color_type=self._color, decoder_cache_size=1)
            meta = self.dec.get_stream_metadata()
        except Exception as exc:  # the library raises its own exception types (PyNvVCException, RuntimeError)
            self.dec = None
            self._release_file()
            raise VideoError(f"{uri}: NVDEC cannot open it ({type(exc).__name__}: {exc})") from exc
        self.fps = float(meta.average_fps or 25.0)
        self.height = int(meta.height)
        self.frames = len(self.dec)

    def read(self, start: float, end: float | None, *, batch: int) -> Iterator[FrameBatch]:
        first = max(0, round(start * self.fps))
        stop = self.frames if end is None else min(self.frames, round(end * self.fps))
        if first >= stop:
            return
        reader = torch.cuda.current_stream(self.device)  # the caller's stream, where frames are used
        try:
            self.stream.wait_stream(reader)  # whatever the caller still reads of this session's surfaces
            self.dec.seek_to_index(first)  # decodes from the keyframe at or before `first`
            i = first
            while i < stop:
                self.stream.wait_stream(reader)  # the previous batch is copied before its surfaces are reused
                got = self.dec.get_batch_frames(min(batch, stop - i))
                reader.wait_stream(self.stream)  # ...and this batch is converted before the caller reads it
                if not got:
                    break  # truncated stream: fewer frames than the header declares (the caller counts)
                # The decoder reuses its surfaces on the next call: stack (a device copy) before asking again.
                planes = _planes(got, reader)  # (3, H, W) RGBP, or (H * 3/2, W) NV12
                if self.gray:
                    y = torch.stack([p[: self.height] for p in planes]).unsqueeze(1).float()  # (n, 1, H, W)
                    data = ((y - 16) * (255 / 219)).round_().clamp_(0, 255).to(torch.uint8)
                elif self.nv12:
                    data = torch.stack([_nv12(p, self.height) for p in planes]).unsqueeze(1)  # (n, 1, H*3/2, W)
                else:
                    data = torch.stack(planes)  # (n, 3, H, W)
                yield FrameBatch(np.arange(i, i + len(got)) / self.fps, data, nv12=self.nv12)
                i += len(got)
        except VideoError:
            raise
        except Exception as exc:
            raise VideoError(f"{self.uri}: NVDEC decode failed near frame {first} ({type(exc).__name__}: {exc})"
                             ) from exc

    def _release_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def close(self) -> None:
        self._release_file()
        if self.pool is not None and self.dec is not None:
            self.pool.release(self)
        else:
            self.dec = None


def _nv12(plane: torch.Tensor, height: int) -> torch.Tensor:
    """One NATIVE surface (rows, W) → (H + ceil(H/2), W): luma rows then chroma rows, without any alignment rows
    the decoder may keep below either plane (luma takes two thirds of the surface)."""
    luma_rows = plane.shape[0] * 2 // 3
    if luma_rows == height:
        return plane
    return torch.cat([plane[:height], plane[luma_rows:luma_rows + (height + 1) // 2]])


def _planes(frames: list, reader: torch.cuda.Stream) -> list[torch.Tensor]:
    """Decoded frames → CUDA tensor views, ordered after the decoder's work on `reader` (the DLPack stream
    argument). One `__dlpack__(stream=)` call per frame: `torch.from_dlpack(frame)` first tries the DLPack 1.0
    signature, which PyNvVideoCodec 2.2 rejects with a TypeError that pybind builds while holding the GIL; that
    failed call was a fifth of all GIL time in the H100 actor profile (benchmarks/results/profiles/run4_actor_gil.txt,
    torch/utils/dlpack.py:186)."""
    ptr = reader.cuda_stream or 1  # DLPack: 1 names the legacy default stream, 0 is not allowed
    try:
        return [torch.from_dlpack(f.__dlpack__(stream=ptr)) for f in frames]
    except TypeError:  # another library version: let torch negotiate the signature
        return [torch.from_dlpack(f) for f in frames]


class NvdecPool:
    """Idle NVDEC sessions of one actor, re-pointed at the next file instead of being created anew (a thread takes
    one, decodes its chunk, gives it back). Object-storage sources get their own session: re-pointing takes a path."""

    def __init__(self, device: torch.device, *, high_priority: bool = True, nv12: bool = False):
        self.device, self.high_priority, self.nv12 = device, high_priority, nv12
        self._idle: dict[bool, list[NvdecDecoder]] = {False: [], True: []}
        self._lock = threading.Lock()

    def open(self, uri: str, *, gray: bool, storage_options: dict | None) -> NvdecDecoder:
        with self._lock:
            dec = self._idle[gray].pop() if self._idle[gray] else None
        if dec is None:
            return NvdecDecoder(uri, gray=gray, device=self.device, storage_options=storage_options, pool=self,
                                high_priority=self.high_priority, nv12=self.nv12)
        try:
            dec.point_at(uri, storage_options)
        except VideoError:
            raise  # the session is dropped with the bad file
        return dec

    def release(self, dec: NvdecDecoder) -> None:
        with self._lock:
            self._idle[dec.gray].append(dec)
