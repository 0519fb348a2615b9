"""The real-photo smoke test's scorer (`benchmarks/eval_real_photos.py`): each hand box is matched once, by class,
at IoU >= 0.5; everything else is a false box. The benchmark itself runs in the README test."""

import numpy as np

from benchmarks.eval_real_photos import score

GT = [("person", 0, 0, 10, 40), ("person", 50, 0, 60, 40), ("vehicle", 100, 100, 200, 150)]


def test_each_hand_box_is_found_once_and_by_its_class():
    det = np.array([[0, 0, 10, 40, 0.9, 0],  # person 1
                    [1, 0, 11, 40, 0.8, 0],  # person 1 again: a duplicate is a false box
                    [50, 10, 60, 40, 0.7, 0],  # person 2, 3/4 of its height
                    [100, 100, 200, 150, 0.9, 0],  # the vehicle boxed as a person: false
                    [300, 300, 310, 310, 0.5, 1]], np.float32)  # a vehicle where there is none
    r = score(det, GT, ("person", "vehicle"), (640, 512))
    assert r["person"] == {"true": 2, "found": 2, "false": 2, "height_ratio": 0.875}
    assert r["vehicle"] == {"true": 1, "found": 0, "false": 1, "height_ratio": None}


def test_nothing_found():
    r = score(np.zeros((0, 6), np.float32), GT, ("person", "vehicle"), (640, 512))
    assert r["person"]["found"] == 0 and r["person"]["false"] == 0 and r["person"]["true"] == 2
