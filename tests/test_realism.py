"""The realism probe's own parts (`benchmarks/eval_realism.py`, `benchmarks/real_detector.py`): the TF.js weight
reader and the real detector's wrapper, on small files made here (the real detector is a 144 MB npm download and a
TensorFlow conversion, which the test suite does not make)."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from benchmarks.eval_realism import RealDetector
from benchmarks.real_detector import read_weights


def _manifest(tmp_path, weights, data: bytes):
    (tmp_path / "group1-shard1of1.bin").write_bytes(data)
    return {"weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": weights}]}


def test_weights_are_read_in_manifest_order_and_dequantised(tmp_path):
    a = np.arange(6, dtype=np.float32)
    q = np.array([0, 128, 255], np.uint8)  # uint8-quantised: value = q * scale + min
    m = _manifest(tmp_path, [{"name": "a", "shape": [2, 3], "dtype": "float32"},
                             {"name": "q", "shape": [3], "dtype": "float32",
                              "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}},
                             {"name": "i", "shape": [], "dtype": "int32"}],
                  a.tobytes() + q.tobytes() + np.int32(7).tobytes())
    w = read_weights(m, tmp_path)
    assert w["a"].shape == (2, 3) and w["a"][1, 2] == 5.0
    np.testing.assert_allclose(w["q"], [-1.0, 63.0, 126.5])
    assert w["q"].dtype == np.float32 and int(w["i"]) == 7


def test_a_weight_file_of_the_wrong_size_is_refused(tmp_path):
    m = _manifest(tmp_path, [{"name": "a", "shape": [4], "dtype": "float32"}], np.zeros(5, np.float32).tobytes())
    with pytest.raises(ValueError, match=r"group1-shard1of1\.bin.*20 bytes, the manifest describes 16"):
        read_weights(m, tmp_path)


def _fixed_detector(path, rows):
    """An ONNX with the real detector's interface, (1, 64, 64, 3) → (1, K, 6), returning `rows` whatever it sees."""
    out = numpy_helper.from_array(np.array([rows], np.float32), "dets")
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["d"], value=out), helper.make_node("Identity", ["d"], ["detections"])],
        "fixed",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 64, 64, 3])],
        [helper.make_tensor_value_info("detections", TensorProto.FLOAT, [1, len(rows), 6])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_real_detector_maps_coco_to_our_classes_and_scales_to_the_image(tmp_path):
    _fixed_detector(tmp_path / "d.onnx", [[8, 16, 32, 64, 0.9, 0],  # person
                                          [0, 0, 64, 32, 0.8, 7],  # truck → vehicle
                                          [0, 0, 10, 10, 0.9, 9],  # traffic light: not ours, left out
                                          [0, 0, 10, 10, 0.2, 0]])  # below conf
    det = RealDetector(str(tmp_path / "d.onnx"), conf=0.3)(np.zeros((128, 320, 3), np.uint8))  # (H, W) = 128, 320
    np.testing.assert_allclose(det, [[40, 32, 160, 128, 0.9, 0], [0, 0, 320, 64, 0.8, 1]], rtol=1e-6)


def test_missing_detector_names_the_key(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"detector=.*nope\.onnx.*real_detector\.py"):
        RealDetector(str(tmp_path / "nope.onnx"), conf=0.3)
