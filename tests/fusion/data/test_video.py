import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from fusion.config import ConfigError
from fusion.data.generate import ArchiveSpec, write_archive
from fusion.data.video import VideoError, VideoReader, write_video


def _frames(n, h, w, gray=False):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (h, w) if gray else (h, w, 3), dtype=np.uint8)
    for i in range(n):
        yield np.roll(base, 2 * i, axis=1)


def _mean_abs_diff(a, b) -> float:
    """Largest per-frame mean |difference| (0-255) between two decoded videos of the same length."""
    with VideoReader(a) as ra, VideoReader(b) as rb:
        fa, fb = [f for _, f in ra.frames()], [f for _, f in rb.frames()]
    assert len(fa) == len(fb), (a, b)
    return max(float(np.abs(x.astype(np.int16) - y).mean()) for x, y in zip(fa, fb, strict=True))


@pytest.mark.parametrize("gray", [False, True])
def test_round_trip_frame_count_timestamps_size(tmp_path, gray):
    path = str(tmp_path / "v.mp4")
    assert write_video(path, _frames(60, 96, 128, gray), fps=30) == 60
    with VideoReader(path, gray=gray) as r:
        info = r.info()
        frames = list(r.frames())
    assert info.frames == 60 and (info.width, info.height) == (128, 96) and info.fps == pytest.approx(30)
    assert len(frames) == 60
    np.testing.assert_allclose([t for t, _ in frames], np.arange(60) / 30, atol=1e-6)
    assert frames[0][1].shape == ((96, 128) if gray else (96, 128, 3))
    assert info.keyframes_s == (0.0,)  # one keyframe per 2 s, no scene-cut extras


def test_window_read_starts_and_ends_at_requested_times(tmp_path):
    path = str(tmp_path / "v.mp4")
    write_video(path, _frames(100, 64, 64), fps=25)
    with VideoReader(path) as r:
        window = list(r.frames(start=2.4, end=3.0))
    ts = [t for t, _ in window]
    assert ts[0] == pytest.approx(2.4) and ts[-1] == pytest.approx(2.96) and len(ts) == 15


def test_reader_from_bytes_matches_file(tmp_path):
    path = str(tmp_path / "v.mp4")
    write_video(path, _frames(10, 64, 64, gray=True), fps=25)
    a = [f for _, f in VideoReader(path, gray=True).frames()]
    b = [f for _, f in VideoReader(open(path, "rb").read(), gray=True).frames()]
    assert len(a) == len(b) == 10
    np.testing.assert_array_equal(a[3], b[3])


def test_garbage_is_a_video_error_naming_the_source(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(VideoError, match=r"bad\.mp4"):
        VideoReader(str(bad))


def test_a_raw_stream_without_a_container_is_a_video_error_saying_so(tmp_path):
    import av

    raw = tmp_path / "cam1.h264"
    with av.open(str(raw), mode="w", format="h264") as c:  # an Annex-B elementary stream: frames have no times
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for _ in range(5):
            c.mux(s.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")))
        c.mux(s.encode(None))
    with pytest.raises(VideoError, match=r"cam1\.h264: a raw h264 stream .* remux"):
        VideoReader.open(str(raw))


def test_archive_pairs_have_same_frame_count_and_timestamps(tmp_path):
    manifest = write_archive(ArchiveSpec(out=str(tmp_path), clips=2, seconds=2.0, fps=25, seed=5))
    rows = list(csv.DictReader(open(manifest)))
    assert [r["camera_id"] for r in rows] == ["cam00", "cam01"]
    for row in rows:
        with VideoReader(str(tmp_path / row["rgb_uri"])) as rgb, VideoReader(str(tmp_path / row["ir_uri"]),
                                                                              gray=True) as ir:
            ti, tr = rgb.info(), ir.info()
            assert ti.frames == tr.frames == 50
            assert (ti.width, ti.height) == (640, 512) and (tr.width, tr.height) == (320, 256)
            assert ti.keyframes_s == tr.keyframes_s
            t_rgb = [t for t, _ in rgb.frames()]
            t_ir = [t for t, _ in ir.frames()]
            assert t_rgb == t_ir
        gt = pq.read_table(str(tmp_path / row["rgb_uri"]).replace("_rgb.mp4", "_gt.parquet")).to_pydict()
        assert max(gt["frame_idx"]) <= 49 and set(gt["class_id"]) <= {0, 1}


def test_archive_is_the_same_rendered_in_parallel_or_in_one_process(tmp_path):
    spec = dict(clips=3, seconds=0.4, fps=10, seed=9, rgb_size=(160, 128), ir_size=(80, 64), schedule="transition")
    write_archive(ArchiveSpec(out=str(tmp_path / "one"), workers=1, **spec))
    write_archive(ArchiveSpec(out=str(tmp_path / "two"), workers=2, **spec))
    one = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    assert len(one) == 3 * 3 + 1
    for rel in one:  # every file the same bytes, videos too (write_video: fixed x264 threads, no AVX-512 code)
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes(), rel
    write_archive(ArchiveSpec(out=str(tmp_path / "other"), workers=1, **{**spec, "seed": 10}))
    rel = next(r for r in one if r.name.endswith("_rgb.mp4"))
    assert _mean_abs_diff(tmp_path / "one" / rel, tmp_path / "other" / rel) > 10.0
    with pytest.raises(ConfigError, match="workers"):
        ArchiveSpec(out=str(tmp_path), workers=0)


def test_ground_truth_is_typed_for_a_clip_without_objects(tmp_path):
    """A clip whose street stays empty (seed 56 at this size) still writes numeric columns: readers that convert
    them (evaluation, SQL) must not meet null-typed columns."""
    from fusion.data.generate import GROUND_TRUTH, write_clip
    from fusion.data.scene import Illumination, SceneConfig

    for seed, rows in ((56, 0), (4, 1)):
        gt = tmp_path / f"{seed}_gt.parquet"
        write_clip(rgb_url=str(tmp_path / f"{seed}_rgb.mp4"), ir_url=str(tmp_path / f"{seed}_ir.mp4"),
                   gt_url=str(gt), seed=seed, seconds=0.2, fps=5,
                   config=SceneConfig(rgb_size=(160, 128), ir_size=(80, 64)),
                   light_from=Illumination(0.9), light_to=Illumination(0.9))
        table = pq.read_table(gt)
        assert (table.num_rows == 0) == (rows == 0), (seed, table.num_rows)  # the precondition: empty or not
        assert table.schema == GROUND_TRUTH
        assert table.to_pandas()[["x1", "y1", "x2", "y2"]].to_numpy().dtype == np.float64


_ENCODE = """
import sys, hashlib, tempfile
import numpy as np, torch  # loaded as in every test and worker: it changed how often x264's AVX-512 code varied
from fusion.data.scene import Illumination, SceneConfig, make_scene
from fusion.data.video import write_video
scene, rng = make_scene(21, SceneConfig(rgb_size=(160, 128), ir_size=(320, 256))), np.random.default_rng(0)
frames = [scene.render(i / 5, Illumination(0.02 + 0.3 * i), rng) for i in range(3)]
out = []
with tempfile.TemporaryDirectory() as t:
    for _ in range(4):
        for kind in ("rgb", "ir"):
            write_video(f"{t}/v.mp4", [getattr(f, kind) for f in frames], fps=5)
            out.append(hashlib.sha256(open(f"{t}/v.mp4", "rb").read()).hexdigest())
print(" ".join(out))
"""


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to compare with one")
def test_a_clip_encodes_to_the_same_bytes_every_time_and_on_any_number_of_cores():
    """A seed renders the same clip on any machine: x264 writes other bytes with another thread count (FFmpeg's
    default is the core count), and its AVX-512 code wrote different bytes run to run (write_video holds it to AVX2
    on such a CPU; this one, an AMD EPYC, has AVX-512)."""
    run = [sys.executable, "-c", _ENCODE]
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    all_cores = subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout.split()
    one_core = subprocess.run(["taskset", "-c", "0", *run], env=env, capture_output=True, text=True,
                              check=True).stdout.split()
    assert len(set(all_cores[0::2])) == 1 and len(set(all_cores[1::2])) == 1  # rgb, ir: each encode the same
    assert all_cores == one_core
