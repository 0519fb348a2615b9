"""Fault injection for the reliability suite: a TCP proxy in front of the S3 server that can go down (connections
refused or cut, as in an outage), and hostile input files (mid-stream resolution change, truncated index-first MP4,
streams with other rates, lengths and start times)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from fractions import Fraction

import av
import numpy as np


class FlakyProxy:
    """127.0.0.1:<port> → upstream. `down()` cuts every open connection and resets new ones until `up()`."""

    def __init__(self, upstream: str):
        host, port = upstream.rsplit("//", 1)[-1].split(":")
        self.upstream = (host, int(port))
        self._srv = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._srv.getsockname()[1]}"
        self._down = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.refused = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def down(self) -> None:
        self._down.set()
        with self._lock:
            for c in self._conns:
                _close(c)
            self._conns.clear()

    def up(self) -> None:
        self._down.clear()

    def outage(self, seconds: float, *, when: Callable[[], bool], timeout: float = 300.0) -> threading.Thread:
        """Go down once `when()` holds, and stay down for `seconds` counted from the first refused connection, so
        the outage always meets the job's traffic however slow the machine is."""

        def run():
            deadline = time.time() + timeout
            while not when() and time.time() < deadline:
                time.sleep(0.05)
            before = self.refused
            self.down()
            while self.refused == before and time.time() < deadline:
                time.sleep(0.01)
            time.sleep(seconds)
            self.up()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def _accept(self) -> None:
        while True:
            client, _ = self._srv.accept()
            if self._down.is_set():
                self.refused += 1
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                _close(client)  # RST: "connection reset by peer"
                continue
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def _pipe(a: socket.socket, b: socket.socket) -> None:
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    finally:
        _close(a)
        _close(b)


def _close(s: socket.socket) -> None:
    try:
        s.close()
    except OSError:
        pass


def _frames(n: int, w: int, h: int, gray: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (h, w) if gray else (h, w, 3), dtype=np.uint8)
    for i in range(n):
        yield np.roll(base, 3 * i, axis=1)


def write_raw(path: str, *, n: int, size: tuple[int, int], fps: int = 25, gray: bool = False, start_s: float = 0.0,
              fmt: str | None = None, options: dict | None = None, frames=None, times_s=None) -> str:
    """A test video: `n` moving-noise frames at `size` (W, H), first frame at `start_s` seconds; `times_s`: each
    frame's own time in seconds instead (a variable frame rate), stored on a millisecond clock."""
    with av.open(path, mode="w", format=fmt, options=options or {}) as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height = size
        s.pix_fmt = "yuv420p"
        s.time_base = Fraction(1, fps if times_s is None else 1000)
        if times_s is not None:  # the encoder's clock too, or frames closer than 1/fps collide in it
            s.codec_context.time_base = Fraction(1, 1000)
        s.options = {"g": str(2 * fps), "keyint_min": str(2 * fps), "sc_threshold": "0"}
        offset = round(start_s * fps)
        for i, f in enumerate(frames if frames is not None else _frames(n, *size, gray)):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="gray" if f.ndim == 2 else "bgr24")
            if times_s is not None:
                vf.pts, vf.time_base = round(times_s[i] * 1000), Fraction(1, 1000)
            else:
                vf.pts = offset + i
            c.mux(s.encode(vf))
        c.mux(s.encode(None))
    return path


def write_resolution_change(path: str, *, n: int, sizes: tuple[tuple[int, int], tuple[int, int]], fps: int = 25) -> str:
    """MPEG-TS whose picture size changes half-way (two segments, concatenated as TS allows)."""
    parts = []
    for k, size in enumerate(sizes):
        part = f"{path}.part{k}"
        with av.open(part, mode="w", format="mpegts") as c:
            s = c.add_stream("libx264", rate=fps)
            s.width, s.height = size
            s.pix_fmt = "yuv420p"
            s.time_base = Fraction(1, fps)
            s.options = {"bf": "0"}  # no reordering delay: the second segment's clock continues the first's
            for i, f in enumerate(_frames(n // 2, *size, False, seed=k)):
                vf = av.VideoFrame.from_ndarray(f, format="bgr24")
                vf.pts = k * (n // 2) + i
                c.mux(s.encode(vf))
            c.mux(s.encode(None))
        parts.append(part)
    with open(path, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                out.write(f.read())
            os.unlink(part)
    return path


def truncate(path: str, keep: float) -> str:
    """Cut a file to `keep` of its bytes (an index-first MP4 then declares frames that are not there)."""
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(int(size * keep))
    return path
