import json

import numpy as np
import pytest
import torch

from fusion.evaluate import match, summarize
from fusion.train import main as train_main


def test_tiny_cpu_training_run_completes_and_resumes(tmp_path):
    out = tmp_path / "run"
    args = [f"out={out}", "epochs=1", "data.n_train=8", "data.n_val=4", "batch=4", "workers=0",
            "data.size=[160,128]", "model.arch=mid"]
    assert train_main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["history"]) == 1 and np.isfinite(metrics["history"][0]["loss"])
    assert (out / "last.pt").exists() and (out / "best.pt").exists()
    assert train_main([*args[:1], "epochs=2", *args[2:], "resume=true"]) == 0
    assert len(json.loads((out / "metrics.json").read_text())["history"]) == 2


def test_init_starts_from_a_checkpoint_of_the_same_model_and_refuses_another(tmp_path, capsys):
    from fusion.checkpoint import load_checkpoint

    args = ["epochs=1", "data.n_train=4", "data.n_val=0", "batch=4", "workers=0", "data.size=[160,128]",
            "lr=0.000000001"]
    init = "models/rgb_n.pt"
    assert train_main([f"out={tmp_path / 'a'}", *args, "model.arch=rgb", f"init={init}"]) == 0
    start, _, _ = load_checkpoint(init)
    tuned, _, _ = load_checkpoint(tmp_path / "a" / "last.pt")
    w0, w1 = dict(start.named_parameters()), dict(tuned.named_parameters())  # BN statistics move; weights barely
    assert all(torch.allclose(w0[k], w1[k], atol=1e-3) for k in w0)
    assert train_main([f"out={tmp_path / 'b'}", *args, "model.arch=mid", f"init={init}"]) == 2
    assert "init=models/rgb_n.pt: made for rgb/n" in capsys.readouterr().err


def test_bad_config_is_rejected_by_name(capsys):
    assert train_main(["data.size=[100,100]"]) == 2
    assert "multiples of 32" in capsys.readouterr().err
    assert train_main(["epocs=3"]) == 2
    assert "epocs" in capsys.readouterr().err


def test_perfect_detections_score_one_and_misses_score_less():
    boxes = torch.tensor([[10.0, 10, 50, 80], [100, 40, 180, 90]])
    classes = torch.tensor([0, 1])
    perfect = torch.cat([boxes, torch.tensor([[0.9], [0.8]]), classes[:, None].float()], 1)
    row = (match(perfect, boxes, classes), perfect[:, 4].numpy(), perfect[:, 5].numpy(), classes.numpy())
    assert summarize([row])["mAP50-95"] == pytest.approx(1.0, abs=0.01)  # 101-point AP tops out at 0.995
    shifted = perfect.clone()
    shifted[0, :4] += 8  # IoU drops: counts at 0.5 but not at 0.95
    row = (match(shifted, boxes, classes), shifted[:, 4].numpy(), shifted[:, 5].numpy(), classes.numpy())
    res = summarize([row])
    assert res["mAP50"] == pytest.approx(1.0, abs=0.01) and res["mAP50-95"] < 0.9


def test_operating_point_counts_recall_false_boxes_and_body_coverage():
    from fusion.evaluate import operating_point, summarize_operating_point

    boxes = torch.tensor([[10.0, 10, 30, 90], [100, 10, 120, 90], [200, 200, 300, 250]])  # 2 persons, 1 vehicle
    classes = torch.tensor([0, 0, 1])
    dets = torch.tensor([[10.0, 10, 30, 90, 0.9, 0],  # the whole first person
                         [100, 10, 120, 50, 0.8, 0],  # head-to-torso of the second: IoU 0.5 → matched, ratio 0.5
                         [400, 400, 450, 450, 0.7, 1],  # a vehicle where there is none
                         [200, 200, 300, 250, 0.1, 1]])  # the vehicle, under the threshold
    row = operating_point(dets, boxes, classes, conf=0.25, n=2, size=(640, 512))
    r = summarize_operating_point([row, np.zeros_like(row)], 0.25, ("person", "vehicle"))
    assert r["recall"] == {"person": 1.0, "vehicle": 0.0}
    assert r["false_per_frame"] == 0.5  # one false box over two frames
    assert r["person_height_ratio"] == 0.75  # (1.0 + 0.5) / 2: boxes cover three quarters of the bodies
    assert r["false_per_frame_by_cause"] == {"duplicate": 0.0, "misplaced": 0.0, "frame_filling": 0.0,
                                             "at_edge": 0.0, "background": 0.5}


def test_false_boxes_are_told_apart_by_cause():
    """The failures seen on real and generated footage, one of each: a second box on a found person, a
    head-to-torso box on a person nobody found whole, a frame-filling "vehicle", the legs of someone cut by the
    frame's edge, and a pole called a person."""
    from fusion.evaluate import FALSE_CAUSES, operating_point

    boxes = torch.tensor([[100.0, 100, 140, 260], [300, 100, 340, 260]])  # two persons, 160 px tall
    classes = torch.tensor([0, 0])
    dets = torch.tensor([[100.0, 100, 140, 260, 0.9, 0],  # finds the first person
                         [104, 96, 146, 250, 0.6, 0],  # a second box on it
                         [300, 100, 340, 160, 0.7, 0],  # head-to-torso of the second (IoU 0.375)
                         [20, 30, 620, 500, 0.4, 1],  # a vehicle filling the frame
                         [560, 0, 590, 60, 0.5, 0],  # legs below the top edge
                         [450, 200, 460, 300, 0.5, 0]])  # a pole
    row = operating_point(dets, boxes, classes, conf=0.25, n=2, size=(640, 512))
    assert row[4] == 5 and row[0] == 1  # five false boxes, one person found
    assert dict(zip(FALSE_CAUSES, row[6:].tolist(), strict=True)) == {
        "duplicate": 1, "misplaced": 1, "frame_filling": 1, "at_edge": 1, "background": 1}


def test_rendered_pair_cache_is_per_lens_band(tmp_path):
    """benchmarks/eval_lens.py renders one lens band at a time into one cache folder: a band must never read
    another band's renders (nor a new scene generator an old one's: the key carries its version)."""
    from fusion.data.pairs import SyntheticPairs

    wide = SyntheticPairs(n=3, seed=4, size=(160, 128), cache_dir=str(tmp_path), workers=1)
    tele = SyntheticPairs(n=3, seed=4, size=(160, 128), cache_dir=str(tmp_path), workers=1, hfov=(16.0, 26.0))
    assert len(list(tmp_path.glob("*.labels.npz"))) == 2
    for i in range(3):
        np.testing.assert_array_equal(tele.raw(i)[0], tele.render(i)[0])
    assert any(not np.array_equal(wide.raw(i)[0], tele.raw(i)[0]) for i in range(3))
