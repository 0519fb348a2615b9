import posixpath

import cv2
import numpy as np
import pytest

from fusion.data.generate import DatasetSpec, write_dataset
from fusion.data.layouts import DatasetError, read_dataset, read_llvip, read_yolofuse
from fusion.data.scene import SceneConfig, render_pair


@pytest.fixture(scope="module", params=["llvip", "yolofuse"])
def dataset(request, tmp_path_factory):
    root = str(tmp_path_factory.mktemp(request.param))
    write_dataset(DatasetSpec(out=root, n=6, layout=request.param, rgb_size=(160, 128), ir_size=(80, 64),
                              workers=1, seed=3))
    return request.param, root


def _fresh_copy(src: str, dst) -> str:
    import shutil

    shutil.copytree(src, dst)
    return str(dst)


def test_round_trip_reproduces_generated_boxes(dataset):
    _layout, root = dataset
    ds = read_dataset(root)
    assert len(ds) == 6 and not ds.skipped
    for s in ds:
        seed = int(s.stem.split("_")[-1]) + 3 * 1_000_000
        f = render_pair(seed, s.slice, SceneConfig(rgb_size=(160, 128), ir_size=(80, 64), ir_shift=3.0,
                                                    ir_scale=0.02))
        np.testing.assert_allclose(s.boxes, f.boxes, atol=0.1)
        np.testing.assert_array_equal(s.classes, f.classes)
        assert s.slice in ("day", "dusk", "night", "fog", "clutter")


def test_llvip_ir_three_channel_jpeg_is_read_as_one_channel(tmp_path):
    import fsspec

    from fusion.data.layouts import read_image

    write_dataset(DatasetSpec(out=str(tmp_path), n=1, layout="llvip", rgb_size=(96, 80), ir_size=(96, 80),
                              workers=1))
    s = read_llvip(str(tmp_path)).samples[0]
    raw = cv2.imread(s.ir_uri, cv2.IMREAD_UNCHANGED)
    assert raw.ndim == 3  # stored the LLVIP way
    assert read_image(fsspec.filesystem("file"), s.ir_uri, gray=True).ndim == 2


def _break(layout: str, root: str, case: str) -> str:
    """Damage a copy of the dataset; returns the file name the error must mention."""
    if layout == "llvip":
        rgb_dir, ir_dir = posixpath.join(root, "visible/train"), posixpath.join(root, "infrared/train")
    else:
        rgb_dir, ir_dir = posixpath.join(root, "images/train"), posixpath.join(root, "imagesIR/train")
    import os

    stem, ext = os.path.splitext(sorted(os.listdir(rgb_dir))[0])
    if case == "missing_partner":
        os.remove(posixpath.join(ir_dir, stem + ext))
        return stem + ext
    if case == "duplicate_stem":
        other = ".png" if ext == ".jpg" else ".jpg"
        cv2.imwrite(posixpath.join(rgb_dir, stem + other), np.zeros((8, 8, 3), np.uint8))
        return stem
    if case == "unreadable":
        with open(posixpath.join(ir_dir, stem + ext), "wb") as f:
            f.write(b"not an image")
        return stem + ext
    if case == "label_outside":
        if layout == "llvip":
            path = posixpath.join(root, "Annotations", stem + ".xml")
            text = open(path).read()
            text = text.replace("</annotation>", "<object><name>person</name><bndbox><xmin>10</xmin><ymin>10</ymin>"
                                "<xmax>900</xmax><ymax>20</ymax></bndbox></object></annotation>")
            open(path, "w").write(text)
            return stem + ".xml"
        path = posixpath.join(root, "labels/train", stem + ".txt")
        with open(path, "a") as f:
            f.write("0 1.2 0.5 0.1 0.1\n")
        return stem + ".txt"
    if case == "unknown_class":
        if layout == "llvip":
            path = posixpath.join(root, "Annotations", stem + ".xml")
            open(path, "w").write(open(path).read().replace("</annotation>", "<object><name>bicycle</name>"
                                  "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox>"
                                  "</object></annotation>"))
            return stem + ".xml"
        with open(posixpath.join(root, "labels/train", stem + ".txt"), "a") as f:
            f.write("7 0.5 0.5 0.1 0.1\n")
        return stem + ".txt"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["missing_partner", "duplicate_stem", "unreadable", "label_outside",
                                  "unknown_class"])
def test_bad_input_names_the_file_or_is_skipped_and_listed(dataset, tmp_path, case):
    layout, root = dataset
    copy = _fresh_copy(root, tmp_path / "copy")
    culprit = _break(layout, copy, case)
    reader = read_llvip if layout == "llvip" else read_yolofuse
    kwargs = {"split": "train"}
    with pytest.raises(DatasetError, match=culprit.replace(".", r"\.")):
        reader(copy, **kwargs)
    if case == "duplicate_stem":
        return  # ambiguous pairing is never skippable: the user must remove one file
    ds = reader(copy, skip_bad=True, **kwargs)
    assert len(ds) == 5
    assert len(ds.skipped) == 1 and culprit in ds.skipped[0][0]


def test_not_a_dataset(tmp_path):
    with pytest.raises(DatasetError, match="neither an LLVIP"):
        read_dataset(str(tmp_path))
