"""End to end on a generated archive in S3 (moto): job → Parquet → query; same boxes as the Detector run
directly; resume writes nothing; bad inputs become error rows; `ray job submit` runs the same command."""

import io
import itertools
from pathlib import Path

import fsspec
import numpy as np
import pyarrow.parquet as pq
import pytest

from fusion.config import load_config
from fusion.data.generate import ArchiveSpec, write_archive
from fusion.data.video import VideoReader
from jobs.config import JobConfig
from jobs.detect import main as run_job
from jobs.query import connect
from trt.detector import Detector
from trt.runtime_onnx import OnnxRuntimeEngine

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def archive(s3_endpoint):
    url = "s3://fusedet/archive"
    write_archive(ArchiveSpec(out=url, clips=2, seconds=4.0, fps=25, seed=77, rgb_size=(320, 256), ir_size=(160, 128)))
    return url


def _cfg(s3_endpoint, archive, out, *overrides):
    so = {"endpoint_url": s3_endpoint}
    return load_config(JobConfig, ROOT / "configs" / "job.yaml", [
        f"input.archive={archive}", f"output.path={out}", f"input.storage_options={so}",
        f"output.storage_options={so}", "chunk.seconds=2", "engine.size=[320,256]", "engine.rgb_size=[320,256]",
        f"engine.fused_model={ROOT}/models/mid_n.onnx", f"engine.rgb_model={ROOT}/models/rgb_n.onnx",
        f"engine.ir_model={ROOT}/models/ir_n.onnx", "engine.threads=1",
        "cluster.actors=2", "cluster.gpus_per_actor=1", *overrides])


@pytest.fixture(scope="module")
def first_run(ray_cluster, s3_endpoint, archive):
    # tracking.processes=1: ByteTrack in a Ray actor beside each detector actor, as on GPU actors
    cfg = _cfg(s3_endpoint, archive, "s3://fusedet/out", "modality.mode=fused", "tracking.processes=1")
    return cfg, run_job(cfg)


def test_all_chunks_done_by_two_concurrent_gpu_pinned_actors(first_run):
    _, result = first_run
    assert result["chunks_total"] == 4 and result["chunks_done"] == 4 and not result["errors"]
    status = result["status"]
    pids = {s["pid"] for s in status}
    assert len(pids) == 2  # one actor per (logical) GPU
    spans = [(s["t_start"], s["t_end"], s["pid"]) for s in status]
    overlap = any(a0 < b1 and b0 < a1 for a0, a1, pa in spans for b0, b1, pb in spans if pa != pb)
    assert overlap, "the two actors never ran at the same time"
    assert sorted(sum(s["pid"] == p for s in status) for p in pids) == [2, 2]  # even distribution


def test_parquet_layout_schema_and_query(first_run, s3_endpoint):
    _, result = first_run
    fs = fsspec.filesystem("s3", endpoint_url=s3_endpoint)
    files = sorted(fs.find("fusedet/out/detections"))
    assert len(files) == 4 and all("/camera_id=cam0" in f and "/date=2026-06-01/" in f for f in files)
    t = pq.read_table(io.BytesIO(fs.cat_file(files[0])))
    from jobs import schema

    assert t.schema.equals(schema.DETECTIONS)
    assert t.column("frame_idx").to_pylist() == sorted(t.column("frame_idx").to_pylist())
    con = connect("s3://fusedet/out", {"endpoint_url": s3_endpoint})
    frames, = con.sql("SELECT count(*) FROM frames").fetchall()[0]
    assert frames == result["frames"] == 200
    n, = con.sql("SELECT count(*) FROM detections WHERE camera_id = 'cam00'").fetchall()[0]
    assert n > 0
    tracked, = con.sql("SELECT count(*) FROM detections WHERE track_id >= 0").fetchall()[0]
    assert tracked > n / 4  # the tracker actors gave ids back
    runs = con.sql("SELECT chunks_done FROM runs").fetchall()
    assert runs == [(4,)]


def test_boxes_equal_detector_on_the_same_decoded_frames(first_run, s3_endpoint):
    fs = fsspec.filesystem("s3", endpoint_url=s3_endpoint)
    vid = "cam01_20260601T181000"
    rgb = [f for _, f in VideoReader(fs.cat_file(f"fusedet/archive/cam01/2026-06-01/{vid}_rgb.mp4")).frames()]
    ir = [f for _, f in VideoReader(fs.cat_file(f"fusedet/archive/cam01/2026-06-01/{vid}_ir.mp4"), gray=True).frames()]
    direct = Detector(OnnxRuntimeEngine(ROOT / "models" / "mid_n.onnx"), size=(320, 256), conf=0.25, iou=0.6)(rgb, ir)
    con = connect("s3://fusedet/out", {"endpoint_url": s3_endpoint})
    rows = con.execute("SELECT frame_idx, x1, y1, x2, y2, score, class_id FROM detections WHERE video_id = ? "
                       "ORDER BY frame_idx, score DESC", [vid]).fetchall()
    assert len(rows) == sum(len(d) for d in direct) > 0
    for i, d in enumerate(direct):
        got = np.array([r[1:] for r in rows if r[0] == i], np.float32).reshape(-1, 6)
        want = d[np.argsort(-d[:, 4], kind="stable")]
        np.testing.assert_allclose(got[:, :4], want[:, :4], atol=1e-3)
        np.testing.assert_allclose(got[:, 4], want[:, 4], atol=1e-5)
        np.testing.assert_array_equal(got[:, 5], want[:, 5])


def test_rerun_writes_nothing(first_run, s3_endpoint):
    cfg, _ = first_run
    fs = fsspec.filesystem("s3", endpoint_url=s3_endpoint)
    fs.invalidate_cache()
    before = {p: fs.info(p)["LastModified"] for p in fs.find("fusedet/out/detections") + fs.find("fusedet/out/frames")}
    result = run_job(cfg)
    fs.invalidate_cache()
    after = {p: fs.info(p)["LastModified"] for p in fs.find("fusedet/out/detections") + fs.find("fusedet/out/frames")}
    assert result["chunks_skipped"] == 4 and result["chunks_done"] == 0
    assert before == after


def test_bad_inputs_become_error_rows_and_the_rest_is_processed(ray_cluster, s3_endpoint, archive, tmp_path):
    fs = fsspec.filesystem("s3", endpoint_url=s3_endpoint)
    fs.pipe_file("fusedet/bad/camX/broken_rgb.mp4", b"\x00" * 1000)
    fs.pipe_file("fusedet/bad/camX/broken_ir.mp4", b"\x00" * 1000)
    fs.pipe_file("fusedet/bad/camX/lonely_rgb.mp4", b"\x00" * 10)
    good = "cam00/2026-06-01/cam00_20260601T180000"
    fs.copy(f"fusedet/archive/{good}_rgb.mp4", "fusedet/bad/camY/good_rgb.mp4")
    fs.copy(f"fusedet/archive/{good}_ir.mp4", "fusedet/bad/camY/good_ir.mp4")
    cfg = _cfg(s3_endpoint, "s3://fusedet/bad", str(tmp_path / "out"), "input.manifest=", "cluster.actors=1",
               "modality.mode=fused")
    result = run_job(cfg)
    reasons = {e["uri"].rsplit("/", 1)[-1]: e["error_type"] for e in result["errors"]}
    assert reasons == {"broken_rgb.mp4": "VideoError", "lonely_rgb.mp4": "Unpaired"}
    assert result["chunks_done"] == 2 and result["frames"] == 100
    errs = pq.read_table(next((tmp_path / "out" / "_runs").glob("*/errors.parquet"))).to_pylist()
    assert {e["error_type"] for e in errs} == {"VideoError", "Unpaired"}


def test_adaptive_modality_column_is_the_policy_on_the_validated_routes(ray_cluster, s3_endpoint, tmp_path):
    from fusion.data.generate import write_clip
    from fusion.data.scene import Illumination, SceneConfig
    from jobs.actor import ChunkDetector
    from jobs.config import ModalityConfig
    from jobs.modality import ModePolicy, brightness
    from jobs.plan import Chunk

    paths = {k: str(tmp_path / f"v_{k}") for k in ("rgb.mp4", "ir.mp4", "gt.parquet")}
    write_clip(rgb_url=paths["rgb.mp4"], ir_url=paths["ir.mp4"], gt_url=paths["gt.parquet"], seed=5, seconds=8,
               fps=25, config=SceneConfig(rgb_size=(320, 256), ir_size=(160, 128)),
               light_from=Illumination(0.9), light_to=Illumination(0.02))
    cfg = _cfg(s3_endpoint, str(tmp_path), str(tmp_path / "out"), "tracking.enabled=false")
    actor = ChunkDetector(cfg=__import__("fusion.config", fromlist=["to_dict"]).to_dict(cfg), run_id="t")
    chunk = Chunk("v", "camA", 0, paths["rgb.mp4"], paths["ir.mp4"], 0, 200, 25.0, "2026-06-01T20:00:00",
                  "2026-06-01")
    status = actor.process(chunk)
    assert status["status"] == "done" and status["frames"] == 200
    frames = pq.read_table(next((tmp_path / "out" / "frames").rglob("*.parquet"))).to_pylist()
    modes = [f["modality"] for f in frames]
    # The column is exactly the job's policy, on the routes the models' validated figures give, replayed here.
    policy = ModePolicy(ModalityConfig(), actor.routes)
    expect = []
    for t, img in VideoReader(paths["rgb.mp4"]).frames():
        b = brightness(img)
        expect.append((policy.update(t, b.mean), round(b.mean, 5)))
    assert [(f["modality"], round(f["brightness"], 5)) for f in frames] == expect
    assert set(modes) <= set(actor.routes.modes) and set(modes) <= set(actor.detectors)
    switches = [i for i in range(1, len(modes)) if modes[i] != modes[i - 1]]
    assert all(b - a >= 2.0 * 25 for a, b in itertools.pairwise(switches))  # no flicker

    # A later chunk's policy starts from the keyframes of its look-back window, where the routes differ by
    # brightness; where one engine serves every brightness the look-back is skipped (nothing it could change).
    from jobs.routing import Routes

    m, start = ModalityConfig(), 6.0
    window = (start - (m.min_dwell_s + 3 * m.smoothing_s), start)
    actor.routes = Routes((0.0, 0.3, 1.0), ("ir", "rgb"), ("test", "test"))
    warmed, replay = ModePolicy(m, actor.routes), ModePolicy(m, actor.routes)
    actor._warm_policy(chunk, warmed, start)
    keys = list(VideoReader(paths["rgb.mp4"]).frames(*window, keyframes_only=True))
    assert keys and all(window[0] - 0.02 <= t < start for t, _ in keys)
    for t, img in keys:
        replay.update(t, brightness(img).mean)
    assert warmed.mode == replay.mode and warmed.smoothed == pytest.approx(replay.smoothed, abs=1e-6)
    actor.routes = Routes((0.0, 1.0), ("fused",), ("test",))
    skipped = ModePolicy(m, actor.routes)
    actor._warm_policy(chunk, skipped, start)
    assert skipped.smoothed is None


def test_query_cli_canned_plots_and_render(first_run, s3_endpoint, tmp_path, capsys, monkeypatch):
    import s3fs

    from jobs.query import CANNED
    from jobs.query import main as query_main
    from jobs.render import main as render_main

    monkeypatch.delenv("AWS_ENDPOINT_URL")  # the query must reach S3 through its own storage options
    s3fs.S3FileSystem.clear_instance_cache()
    so = "storage_options={endpoint_url: " + s3_endpoint + "}"
    for name in CANNED:
        assert query_main(["s3://fusedet/out", f"canned={name}", so]) == 0
    assert "person" in capsys.readouterr().out
    assert query_main(["s3://fusedet/out", "SELECT count(*) AS n FROM frames WHERE frame_idx >= 0", so]) == 0
    assert "200" in capsys.readouterr().out
    assert query_main(["s3://fusedet/out", "SELECT nope FROM frames", so]) == 2  # a SQL error is a message
    assert query_main(["s3://fusedet/out", f"plot={tmp_path / 'plots'}", so]) == 0
    assert {p.name for p in (tmp_path / "plots").iterdir()} == {"detections_over_time.png", "modality_timeline.png"}
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    s3fs.S3FileSystem.clear_instance_cache()
    clip = tmp_path / "clip.mp4"
    assert render_main(["s3://fusedet/out", "cam00_20260601T180000", "start=1", "end=2", f"out={clip}"]) == 0
    with VideoReader(str(clip)) as r:
        info = r.info()
    assert info.frames == 25 and info.width == 640  # RGB | IR side by side at 320 px each
    assert render_main(["s3://fusedet/out", "no_such_video"]) == 2


def test_a_dead_tracker_actor_is_replaced_and_its_chunk_still_tracked(ray_cluster, s3_endpoint, archive):
    import ray

    from fusion.config import to_dict
    from jobs.actor import ChunkDetector
    from jobs.detect import plan

    cfg = _cfg(s3_endpoint, archive, "s3://fusedet/out-tracker", "modality.mode=fused", "tracking.processes=1")
    chunks, _, _ = plan(cfg, "t")
    actor = ChunkDetector(cfg=to_dict(cfg), run_id="t")
    dead = actor._trackers[0]
    ray.kill(dead)
    try:
        assert [actor.process(c)["status"] for c in chunks[:2]] == ["done", "done"]
        assert actor._trackers[0] != dead  # replaced: the second chunk went to the new one
    finally:
        actor.close()
    fs = fsspec.filesystem("s3", endpoint_url=s3_endpoint)
    files = fs.find("fusedet/out-tracker/detections")
    ids = np.concatenate([pq.read_table(io.BytesIO(fs.cat_file(f))).column("track_id").to_numpy() for f in files])
    assert len(files) == 2 and (ids >= 0).mean() > 0.25  # both chunks tracked: the first here, the second there
