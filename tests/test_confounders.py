"""The things made to fool one camera (posters of people, warm posts, cabinets, dogs) are listed with every frame and
never labelled, and `benchmarks/eval_confounders.py` counts the false boxes a model puts on them."""

import json
from types import SimpleNamespace

import numpy as np
import torch

from benchmarks.eval_confounders import main, on_box, score
from fusion.data.scene import CONFOUNDERS, SceneConfig, render_pair

CFG = SceneConfig(rgb_size=(640, 512), ir_size=(320, 256))


def test_confounders_in_view_are_listed_inside_the_frame_and_never_labelled():
    frames = [render_pair(9000 + i, "clutter", CFG) for i in range(30)]
    kinds = [k for f in frames for k in f.confounder_kinds]
    assert set(kinds) == set(CONFOUNDERS)  # the clutter slice shows every kind
    for f in frames:
        c = f.confounders
        assert c.shape == (len(f.confounder_kinds), 4)
        assert (c[:, 0] >= 0).all() and (c[:, 1] >= 0).all() and (c[:, 2] <= 640).all() and (c[:, 3] <= 512).all()
        assert (c[:, 2] > c[:, 0]).all() and (c[:, 3] > c[:, 1]).all()
        for box in c:  # a poster's person is not a label
            assert not any(np.allclose(box, b) for b in f.boxes)
    posters = np.concatenate([f.confounders[[k == "decoy_person" for k in f.confounder_kinds]] for f in frames])
    whole = posters[(posters[:, 1] > 2) & (posters[:, 3] < 509)]
    assert len(whole) and np.median((whole[:, 3] - whole[:, 1]) / (whole[:, 2] - whole[:, 0])) > 1.5  # upright


def test_a_false_box_counts_on_the_confounder_it_mostly_covers():
    frame = SimpleNamespace(boxes=np.array([[0, 0, 10, 20]], np.float32), classes=np.array([0]),
                            confounders=np.array([[100, 100, 120, 150], [300, 300, 310, 330]], np.float32),
                            confounder_kinds=("decoy_person", "warm_post"))
    out = np.array([[0, 0, 10, 20, 0.9, 0],  # the labelled person: not false
                    [101, 102, 121, 149, 0.8, 0],  # on the poster
                    [290, 290, 330, 350, 0.7, 0],  # around the post: less than half of it on the post
                    [500, 500, 520, 540, 0.6, 0],  # on nothing
                    [100, 100, 120, 150, 0.1, 0]], np.float32)  # below the threshold
    false, on, boxed = score(out, frame, 0.25)
    assert false == 3 and on == {"decoy_person": 1} and boxed == {"decoy_person": 1}
    share = on_box(torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([[5.0, 0, 15, 10], [20.0, 20, 30, 30]]))
    torch.testing.assert_close(share, torch.tensor([[0.5, 0.0]]))


def test_the_benchmark_writes_each_engine_per_slice(tmp_path):
    out = tmp_path / "c.json"
    assert main(["n=3", "slices=[clutter]", "size=[320,256]", f"out={out}"]) == 0
    r = json.loads(out.read_text())["slices"]["clutter"]
    assert r["stills"] == 3 and r["in_view"]
    for m in ("fused", "rgb", "ir"):
        assert r[m]["false_per_still"] >= 0 and set(r[m]["boxed_share"]) == set(r["in_view"])
        assert all(0 <= v <= 1 for v in r[m]["boxed_share"].values())
