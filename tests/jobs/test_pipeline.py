"""The actor's moving parts without Ray: pairing by time (with counts of what was dropped), the engine thread that
merges requests from concurrent chunks, and the batched NMS both use."""

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from fusion.data.decode import FrameBatch
from jobs.pipeline import BatchRunner, PairCounts, pair_frames

ROOT = Path(__file__).resolve().parents[2]


def _stream(times, shape=(3, 4, 4), batch=4, value=None):
    times = list(times)
    for i in range(0, len(times), batch):
        t = np.asarray(times[i:i + batch])
        data = torch.stack([torch.full(shape, round(x * 100) % 256 if value is None else value, dtype=torch.uint8)
                            for x in t])
        yield FrameBatch(t, data)


def _pair(rgb, ir, *, start=0.0, end=4.0, tol=0.02, size=8, fps=25):
    counts = PairCounts()
    pieces = list(pair_frames(rgb, ir, start=start, end=end, tol=tol, fps=fps, size=size, counts=counts))
    return pieces, counts


@pytest.mark.parametrize(("ir_times", "paired", "unpaired_rgb", "unpaired_ir"), [
    (np.arange(100) / 25, 100, 0, 0),  # same clock
    (np.arange(40) / 10, 40, 60, 0),  # IR at 10 fps: every IR frame pairs once, 60 RGB frames have no partner
    (np.arange(25, 100) / 25, 75, 25, 0),  # IR starts 1 s late (in the archive's own timeline)
    (np.arange(75) / 25, 75, 25, 0),  # IR 1 s shorter
    (np.arange(100) / 25 + 0.01, 100, 0, 0),  # a 10 ms skew is within half a frame
])
def test_pairing_counts_what_it_drops(ir_times, paired, unpaired_rgb, unpaired_ir):
    pieces, c = _pair(_stream(np.arange(100) / 25), _stream(ir_times, shape=(1, 2, 2)))
    assert (c.paired, c.unpaired_rgb, c.unpaired_ir, c.rgb) == (paired, unpaired_rgb, unpaired_ir, 100)
    assert sum(len(p.t) for p in pieces) == paired and all(len(p.t) <= 8 for p in pieces)
    for p in pieces:  # each RGB frame carries the IR frame nearest in time
        assert p.rgb.shape[1:] == (3, 4, 4) and p.ir.shape[1:] == (1, 2, 2)


def test_pieces_split_where_the_resolution_changes_and_repeated_timestamps_are_dropped():
    def rgb():
        yield from _stream(np.arange(10) / 25, shape=(3, 4, 4))
        yield from _stream([0.36], shape=(3, 4, 4))  # repeated timestamp
        yield from _stream(np.arange(10, 20) / 25, shape=(3, 6, 6))

    pieces, c = _pair(rgb(), _stream(np.arange(20) / 25, shape=(1, 2, 2)), size=32)
    assert [p.rgb.shape[-1] for p in pieces] == [4, 6] and c.paired == 20 and c.out_of_order == 1


def test_nv12_pieces_keep_their_layout_and_the_frames_size():
    nv12 = (FrameBatch(b.t, b.data, nv12=True) for b in _stream(np.arange(10) / 25, shape=(1, 6, 4)))
    pieces, c = _pair(nv12, _stream(np.arange(10) / 25, shape=(1, 2, 2)), size=4)
    assert c.paired == 10 and all(p.nv12 and p.size == (4, 4) for p in pieces)  # 6 NV12 rows: 4 of luma
    rgb_pieces, _ = _pair(_stream(np.arange(10) / 25, shape=(3, 4, 4)), _stream(np.arange(10) / 25, shape=(1, 2, 2)))
    assert not any(p.nv12 for p in rgb_pieces) and rgb_pieces[0].size == (4, 4)


def test_a_variable_frame_rate_keeps_one_frame_per_output_index():
    # 30 fps for 1 s, then 10 fps for 2 s, in a file whose header says 17.75 fps (its average): faster than the
    # nominal rate, two frames would share a frame_idx (the tables' key); the later one is dropped and counted.
    times = np.r_[np.arange(30) / 30, 1 + np.arange(20) / 10]
    fps = 50 / 2.817
    pieces, c = _pair(_stream(times), _stream(times, shape=(1, 2, 2)), tol=0.5 / fps, fps=fps, size=64)
    kept = np.concatenate([p.t for p in pieces])
    idx = np.rint(kept * fps)
    assert len(set(idx)) == len(idx) == c.paired and c.out_of_order == len(times) - c.paired > 0
    assert set(np.rint(times * fps)) == set(idx)  # every index the stream has is kept once


class _Echo:
    """A stand-in engine that tags each frame's single detection with the frame's mean value."""

    name, precision, device, input_size, max_batch, fixed_batch = "echo", "fp32", torch.device("cpu"), None, 8, True
    dtype, classes = torch.float32, ("person", "vehicle")

    def __init__(self):
        self.calls = []

    def __call__(self, rgb, ir):
        self.calls.append(len(rgb))
        b, _, h, w = rgb.shape
        pred = torch.zeros(b, 6, 1)
        pred[:, 0:4, 0] = torch.tensor([w / 2, h / 2, 4.0, 4.0])
        pred[:, 4, 0] = rgb.mean((1, 2, 3)) * 0.5 + 0.5  # score encodes the frame
        return (pred,)


def test_runner_merges_concurrent_requests_into_full_padded_batches_and_routes_results_back():
    from trt.detector import Detector

    engine = _Echo()
    runner = BatchRunner({"fused": Detector(engine, size=(32, 32))}, batch=8, wait_s=0.05)
    warm = len(engine.calls)  # compiled engines are warmed up (graphs captured) before the first chunk
    results = {}

    def chunk(k):
        x = torch.full((3, 3, 32, 32), k / 10)
        results[k] = runner.submit("fused", x, torch.zeros(3, 1, 32, 32)).result()

    threads = [threading.Thread(target=chunk, args=(k,)) for k in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    runner.close()
    for k, rows in results.items():
        assert rows[:, 0].tolist() == [0, 1, 2]  # frame indices local to the request
        np.testing.assert_allclose(rows[:, 5], k / 20 + 0.5, atol=1e-6)
    assert all(n == 8 for n in engine.calls)  # always the fixed batch (warm-up included): CUDA graphs replay
    assert warm >= 1 and len(engine.calls) - warm <= 2  # 12 frames of 4 chunks in two batches, not four


def test_runner_splits_requests_so_waiting_frames_fill_every_batch():
    from trt.detector import Detector

    engine = _Echo()
    runner = BatchRunner({"fused": Detector(engine, size=(32, 32))}, batch=8, wait_s=0.2)
    warm = len(engine.calls)
    # 4 requests of 5 frames, queued together (the runner waits 0.2 s for a full batch): whole requests would run
    # 5 frames a batch, 4 batches padded to 8; split, 20 frames fill 8 + 8 and the last batch has 4.
    frames = [torch.arange(5 * k, 5 * k + 5, dtype=torch.float32).view(5, 1, 1, 1).expand(5, 3, 32, 32) / 40
              for k in range(4)]
    futures = [runner.submit("fused", x, torch.zeros(5, 1, 32, 32)) for x in frames]
    results = [f.result(timeout=30) for f in futures]
    runner.close()
    assert len(engine.calls) - warm == 3
    for k, rows in enumerate(results):  # every frame's detection back in its own request, in frame order
        assert rows[:, 0].tolist() == [0, 1, 2, 3, 4]
        np.testing.assert_allclose(rows[:, 5], (np.arange(5 * k, 5 * k + 5) / 40) * 0.5 + 0.5, atol=1e-6)


def test_a_split_request_fails_once_when_its_second_batch_fails():
    from trt.detector import Detector

    class FailsSecond(_Echo):
        def __call__(self, rgb, ir):
            if len(self.calls) == self.warm + 1:  # the second batch after warm-up
                self.calls.append(len(rgb))
                raise RuntimeError("CUDA error: out of memory")
            return super().__call__(rgb, ir)

    engine = FailsSecond()
    engine.warm = 10**6
    runner = BatchRunner({"fused": Detector(engine, size=(32, 32))}, batch=8, wait_s=0.2)
    engine.warm = len(engine.calls)
    first = runner.submit("fused", torch.zeros(5, 3, 32, 32), torch.zeros(5, 1, 32, 32))
    split = runner.submit("fused", torch.zeros(6, 3, 32, 32), torch.zeros(6, 1, 32, 32))  # 3 + 3 frames
    assert len(first.result(timeout=30)) == 5
    with pytest.raises(RuntimeError, match="out of memory"):
        split.result(timeout=30)
    after = runner.submit("fused", torch.zeros(2, 3, 32, 32), torch.zeros(2, 1, 32, 32))
    assert len(after.result(timeout=30)) == 2  # the runner goes on
    runner.close()


def test_runner_failure_fails_only_the_requests_in_that_batch():
    from trt.detector import Detector

    class Boom(_Echo):
        def __call__(self, rgb, ir):
            if rgb.max() > 0.5:
                raise RuntimeError("CUDA error: out of memory")
            return super().__call__(rgb, ir)

    runner = BatchRunner({"fused": Detector(Boom(), size=(32, 32))}, batch=8, wait_s=0)
    bad = runner.submit("fused", torch.ones(2, 3, 32, 32), torch.zeros(2, 1, 32, 32))
    with pytest.raises(RuntimeError, match="out of memory"):
        bad.result()
    good = runner.submit("fused", torch.zeros(2, 3, 32, 32), torch.zeros(2, 1, 32, 32))
    assert len(good.result()) == 2
    runner.close()


def test_batched_nms_equals_ultralytics_per_image_nms():
    from ultralytics.utils.nms import non_max_suppression

    from fusion.models.postprocess import nms

    g = torch.Generator().manual_seed(0)
    for max_det in (300, 5):
        xy, wh = torch.rand(4, 2, 800, generator=g) * 600, torch.rand(4, 2, 800, generator=g) * 80 + 4
        pred = torch.cat([xy, wh, torch.rand(4, 3, 800, generator=g) ** 3], 1)
        want = non_max_suppression(pred, conf_thres=0.25, iou_thres=0.6, max_det=max_det)
        got = nms(pred, conf=0.25, iou=0.6, max_det=max_det)
        for a, b in zip(want, got, strict=True):
            torch.testing.assert_close(a, b)


def test_a_decoder_whose_partner_failed_to_open_is_closed(tmp_path):
    """One stream of a pair fails to open (missing IR file): the other decoder goes back (an NVDEC session to its
    pool), and the chunk fails naming the missing file."""
    from concurrent.futures import ThreadPoolExecutor

    from jobs.actor import ChunkDetector, ChunkFailed
    from jobs.plan import Chunk

    closed = []

    class Dec:
        def close(self):
            closed.append(True)

    def fake_open(uri, gray):
        if gray:
            raise ChunkFailed("VideoError", uri, "file not found")
        return Dec()

    actor = ChunkDetector.__new__(ChunkDetector)  # only the opening step: no engines
    actor._io, actor._open = ThreadPoolExecutor(2), fake_open
    chunk = Chunk(video_id="v", camera_id="c", chunk_id=0, rgb_uri=str(tmp_path / "v_rgb.mp4"),
                  ir_uri=str(tmp_path / "v_ir.mp4"), first=0, end=25, fps=25.0, start_time="2026-06-01T18:00:00",
                  date="2026-06-01", last=True)
    with pytest.raises(ChunkFailed, match=r"v_ir\.mp4"):
        actor._open_pair(chunk)
    assert closed == [True]
