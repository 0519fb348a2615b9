"""INT8 calibration from the user's own data: an LLVIP-layout folder, sampled across brightness, letterboxed by
the deployment's letterbox, quantizes a graph on the CPU."""

import onnx
import pytest

from fusion.config import ConfigError
from fusion.data.generate import DatasetSpec, write_dataset
from trt.pipeline import PipelineConfig
from trt.precision import calibration_batches, folder_manifest, quantize_int8


@pytest.fixture(scope="module")
def llvip(tmp_path_factory):
    root = tmp_path_factory.mktemp("llvip")
    write_dataset(DatasetSpec(out=str(root), n=15, layout="llvip", seed=4, rgb_size=(320, 256),
                              ir_size=(320, 256), slices=("day", "night", "dusk"), workers=1))
    return str(root)


def test_folder_manifest_draws_evenly_from_brightness_bins_and_is_reproducible(llvip, tmp_path):
    m = folder_manifest(tmp_path / "cal.json", llvip, n=6, bins=3)
    assert m["kind"] == "folder" and len(m["items"]) == 6 and len({it["stem"] for it in m["items"]}) == 6
    assert m["brightness_bins"] == sorted(m["brightness_bins"])
    assert folder_manifest(tmp_path / "cal.json", llvip, n=6, bins=3) == m  # read back for the same parameters
    assert len(folder_manifest(tmp_path / "cal.json", llvip, n=3, bins=3)["items"]) == 3  # redrawn for others
    batches = list(calibration_batches(m, size=(320, 256)))
    assert len(batches) == 6 and batches[0]["rgb"].shape == (1, 3, 256, 320) and batches[0]["ir"].shape == (
        1, 1, 256, 320)


def test_int8_graph_from_folder_calibration(llvip, tmp_path, mid_onnx):
    m = folder_manifest(tmp_path / "cal.json", llvip, n=4, bins=2)
    out = quantize_int8(mid_onnx, tmp_path / "int8.onnx", manifest=m, size=(320, 256), method="minmax")
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_folder_calibration_needs_a_root():
    with pytest.raises(ConfigError, match="calib_root"):
        PipelineConfig(calib_source="folder")
