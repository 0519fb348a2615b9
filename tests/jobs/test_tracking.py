"""Tracking: ByteTrack ids inside a chunk, links across chunk boundaries, and on generated footage a walking person
who crosses chunk boundaries keeps one id in the output."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from jobs.config import TrackingConfig
from jobs.tracking import ID_STRIDE, link, stitch, track_ids

ROOT = Path(__file__).resolve().parents[2]


def _walker(frames, x0, dx, cls=0, y=100):
    return [[x0 + dx * f, y, x0 + dx * f + 40, y + 90, 0.9, cls] for f in frames]


def test_bytetrack_gives_each_moving_object_one_id_and_weak_boxes_none():
    frames = np.repeat(np.arange(40), 3)
    rows = []
    for f in range(40):
        rows += _walker([f], 50, 4) + _walker([f], 400, -3, cls=1) + [[10, 10, 20, 20, 0.05, 0]]
    ids = track_ids(frames, np.array(rows, np.float32), n_frames=40, fps=25, cfg=TrackingConfig(),
                    id_base=7 * ID_STRIDE)
    a, b, weak = ids[0::3], ids[1::3], ids[2::3]
    assert len(set(a)) == 1 and len(set(b)) == 1 and a[0] != b[0] and a[0] // ID_STRIDE == 7
    assert (weak == -1).all()


def _table(frames, ids, rows):
    r = np.array(rows, np.float32)
    return pa.table({"frame_idx": pa.array(frames, pa.int32()), "track_id": pa.array(ids, pa.int64()),
                     "class_id": pa.array(r[:, 5].astype(np.int16)), "x1": r[:, 0], "y1": r[:, 1], "x2": r[:, 2],
                     "y2": r[:, 3], "score": r[:, 4], "video_id": ["v"] * len(frames)})


def test_link_matches_tracks_of_two_chunks_in_their_overlap_by_iou_and_class():
    f = list(range(20, 25))
    prev = _table(f * 2, [101] * 5 + [102] * 5, _walker(f, 0, 3) + _walker(f, 300, 0, cls=1))
    nxt = _table(f * 2, [201] * 5 + [202] * 5, _walker(f, 300, 0, cls=1) + _walker(f, 1, 3))  # ids swapped order
    assert sorted(link(prev, nxt, min_iou=0.5)) == [(101, 202), (102, 201)]
    far = _table(f, [301] * 5, _walker(f, 600, 0))
    assert link(prev, far, min_iou=0.5) == []  # nothing overlaps: two objects, two ids


def test_stitch_chains_ids_over_three_chunks_deterministically():
    # chunk 0: frames 0-9 (id 1), chunk 1: 10-19 (id 10*S+1), chunk 2: 20-29 (id 20*S+1); overlaps of 3 frames
    S = ID_STRIDE
    owned = _table(list(range(30)), [1] * 10 + [10 * S + 1] * 10 + [20 * S + 1] * 10, _walker(range(30), 0, 2))
    overlaps = {10: _table([7, 8, 9], [10 * S + 1] * 3, _walker([7, 8, 9], 0, 2)),
                20: _table([17, 18, 19], [20 * S + 1] * 3, _walker([17, 18, 19], 0, 2))}
    links = stitch([0, 10, 20], owned, overlaps, min_iou=0.5)
    assert links == {1: 1, 10 * S + 1: 1, 20 * S + 1: 1}


@pytest.fixture(scope="module")
def tracked_output(tmp_path_factory):
    """A 6 s clip cut in 1 s chunks, run through the real actor code and the stitching pass (no Ray)."""
    from fusion.config import load_config, to_dict
    from fusion.data.generate import write_clip
    from fusion.data.scene import Illumination, SceneConfig
    from jobs.actor import ChunkDetector
    from jobs.config import JobConfig
    from jobs.detect import plan
    from jobs.tracks import VideoRef, stitch_all

    root = tmp_path_factory.mktemp("trk")
    (root / "a" / "camT").mkdir(parents=True)
    # A wide lens keeps this seed's street busy: objects that cross all three chunks (tele views can be near-empty)
    write_clip(rgb_url=str(root / "a/camT/v_rgb.mp4"), ir_url=str(root / "a/camT/v_ir.mp4"),
               gt_url=str(root / "a/v_gt.parquet"), seed=11, seconds=6, fps=25,
               config=SceneConfig(rgb_size=(640, 512), ir_size=(320, 256), hfov=(40.0, 66.0)),
               light_from=Illumination(0.8),
               light_to=Illumination(0.8))
    cfg = load_config(JobConfig, ROOT / "configs" / "job.yaml", [
        f"input.archive={root}/a", "input.manifest=", f"output.path={root}/out", "chunk.seconds=1",
        "modality.mode=fused", f"engine.fused_model={ROOT}/models/mid_n.onnx", "tracking.overlap_s=0.5"])
    chunks, _errors, _ = plan(cfg, "t")
    assert len(chunks) == 3  # keyframes every 2 s: 1 s chunks snap to 2 s
    actor = ChunkDetector(cfg=to_dict(cfg), run_id="t")
    assert {actor.process(c)["status"] for c in chunks} == {"done"}
    actor.close()
    assert stitch_all(cfg, "t", [VideoRef("camT", chunks[0].date, chunks[0].video_id)]) == []
    return root


def test_an_object_crossing_chunk_boundaries_keeps_one_id(tracked_output):
    import pyarrow.parquet as pq
    import torch
    from torchvision.ops import box_iou

    from jobs.query import connect

    gt = pq.read_table(tracked_output / "a" / "v_gt.parquet").to_pandas()
    con = connect(str(tracked_output / "out"))
    det = con.sql("SELECT frame_idx, track_id, x1, y1, x2, y2 FROM detections ORDER BY frame_idx").df()
    ids_per_object = {}
    for f, g in gt.groupby("frame_idx"):
        d = det[det.frame_idx == f]
        if d.empty:
            continue
        iou = box_iou(torch.tensor(g[["x1", "y1", "x2", "y2"]].to_numpy()),
                      torch.tensor(d[["x1", "y1", "x2", "y2"]].to_numpy(), dtype=torch.float64))
        best = iou.max(1)
        for obj, ok, j in zip(g.object_id, best.values.tolist(), best.indices.tolist(), strict=True):
            if ok > 0.5:
                ids_per_object.setdefault(obj, []).append(int(d.track_id.iloc[j]))
    long_lived = {o: ids for o, ids in ids_per_object.items() if len(ids) >= 100}  # seen in all three chunks
    assert long_lived, "no object was detected through the clip: nothing was tested"
    for obj, ids in long_lived.items():
        main = max(set(ids), key=ids.count)
        assert ids.count(main) / len(ids) >= 0.9 and main >= 0, (obj, sorted(set(ids)))
    tracks = con.sql("SELECT count(*), max(chunks) FROM tracks").fetchall()[0]
    assert tracks[1] == 3  # a track spans the three chunks
