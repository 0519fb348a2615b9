"""Paired RGB-IR datasets on disk or in object storage: LLVIP and YOLOFuse layouts, read and written.

LLVIP:    visible/{split}/*.jpg, infrared/{split}/*.jpg, Annotations/*.xml (Pascal VOC; IR is 3-channel JPEG)
YOLOFuse: images/[split/]*, imagesIR/[split/]*, labels/[split/]*.txt (YOLO cx cy w h, normalised, both modalities)

Pairs are matched by file stem, never by sorted position. Every defect (missing partner, duplicate stem,
unreadable image, label outside the image, unknown class) raises `DatasetError` naming the file; with
`skip_bad=True` the pair is dropped and listed in `PairedDataset.skipped` instead.
"""

from __future__ import annotations

import csv
import io
import posixpath
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import fsspec
import numpy as np

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
# VOC names → our class ids (0 person, 1 vehicle). Extend for your own data via `class_map=`.
DEFAULT_CLASS_MAP: Mapping[str, int] = {"person": 0, "people": 0, "pedestrian": 0, "vehicle": 1, "car": 1,
                                        "bus": 1, "truck": 1, "van": 1}


class DatasetError(ValueError):
    """A dataset file is missing, unreadable or inconsistent; the message names the file."""


@dataclass(frozen=True)
class Sample:
    stem: str
    rgb_uri: str
    ir_uri: str
    boxes: np.ndarray  # (N, 4) float32 xyxy in RGB pixels
    classes: np.ndarray  # (N,) int64
    slice: str = ""  # illumination slice when known (generated data writes slices.csv)


@dataclass
class PairedDataset:
    root: str
    samples: list[Sample]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    class_names: tuple[str, ...] = ()  # from data.yaml (YOLOFuse) or the class map's names of the ids present

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)


def read_image(fs: fsspec.AbstractFileSystem, path: str, *, gray: bool) -> np.ndarray:
    """Decode an image to BGR (H, W, 3) or gray (H, W) uint8; a 3-channel IR JPEG (LLVIP) becomes gray."""
    try:
        data = fs.cat_file(path)
    except (OSError, FileNotFoundError) as exc:
        raise DatasetError(f"{path}: cannot read ({exc})") from exc
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    if img is None:
        raise DatasetError(f"{path}: not a decodable image")
    return img


def image_size(fs: fsspec.AbstractFileSystem, path: str) -> tuple[int, int]:
    img = read_image(fs, path, gray=True)
    return img.shape[1], img.shape[0]


def _index(fs: fsspec.AbstractFileSystem, folder: str, exts: Sequence[str]) -> dict[str, str]:
    """stem → path for files in `folder`; a stem seen twice is a DatasetError (which file is the pair?)."""
    if not fs.isdir(folder):
        raise DatasetError(f"{folder}: folder not found")
    out: dict[str, str] = {}
    for path in sorted(fs.ls(folder, detail=False)):
        stem, ext = posixpath.splitext(posixpath.basename(path))
        if ext.lower() not in exts:
            continue
        if stem in out:
            raise DatasetError(f"{path}: duplicate stem {stem!r} (also {out[stem]})")
        out[stem] = path
    return out


class _Collector:
    def __init__(self, skip_bad: bool):
        self.skip_bad = skip_bad
        self.skipped: list[tuple[str, str]] = []

    def fail(self, file: str, reason: str) -> None:
        if not self.skip_bad:
            raise DatasetError(f"{file}: {reason}")
        self.skipped.append((file, reason))


def _pair(rgb: dict[str, str], ir: dict[str, str], col: _Collector) -> list[str]:
    for stem in sorted(set(rgb) - set(ir)):
        col.fail(rgb[stem], "no infrared partner with the same stem")
    for stem in sorted(set(ir) - set(rgb)):
        col.fail(ir[stem], "no visible partner with the same stem")
    return sorted(set(rgb) & set(ir))


def _check_boxes(boxes: np.ndarray, w: int, h: int, tol: float = 1.0) -> str | None:
    if len(boxes) == 0:
        return None
    if (boxes[:, 2] <= boxes[:, 0]).any() or (boxes[:, 3] <= boxes[:, 1]).any():
        return "a box has non-positive width or height"
    if (boxes[:, :2] < -tol).any() or (boxes[:, 2] > w + tol).any() or (boxes[:, 3] > h + tol).any():
        return f"a box lies outside the {w}x{h} image"
    return None


def _read_slices(fs, root: str) -> dict[str, str]:
    path = posixpath.join(root, "slices.csv")
    if not fs.exists(path):
        return {}
    with fs.open(path, "r") as f:
        return {row["stem"]: row["slice"] for row in csv.DictReader(f)}


def _validated(fs, col: _Collector, stem: str, rgb: str, ir: str, boxes: np.ndarray, classes: np.ndarray,
               slices: dict[str, str], label_file: str) -> Sample | None:
    try:
        w, h = image_size(fs, rgb)
        image_size(fs, ir)
    except DatasetError as exc:
        col.fail(str(exc).split(":")[0], "not a decodable image")
        return None
    problem = _check_boxes(boxes, w, h)
    if problem:
        col.fail(label_file, problem)
        return None
    return Sample(stem, rgb, ir, boxes.astype(np.float32), classes.astype(np.int64), slices.get(stem, ""))


def read_llvip(root: str, *, split: str = "train", skip_bad: bool = False,
               class_map: Mapping[str, int] = DEFAULT_CLASS_MAP) -> PairedDataset:
    fs, base = fsspec.core.url_to_fs(root)
    col = _Collector(skip_bad)
    rgb = _index(fs, posixpath.join(base, "visible", split), IMAGE_EXTS)
    ir = _index(fs, posixpath.join(base, "infrared", split), IMAGE_EXTS)
    slices = _read_slices(fs, base)
    samples = []
    for stem in _pair(rgb, ir, col):
        xml = posixpath.join(base, "Annotations", stem + ".xml")
        try:
            boxes, classes = _parse_voc(fs, xml, class_map)
        except DatasetError as exc:
            col.fail(xml, str(exc).removeprefix(xml + ": "))
            continue
        s = _validated(fs, col, stem, rgb[stem], ir[stem], boxes, classes, slices, xml)
        if s:
            samples.append(s)
    present = max((int(c) for smp in samples for c in smp.classes), default=0)
    names = {i: n for n, i in reversed(list(class_map.items()))}  # the first name listed for an id names it
    return PairedDataset(root, samples, col.skipped, tuple(names.get(i, f"class{i}") for i in range(present + 1)))


def _parse_voc(fs, path: str, class_map: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    if not fs.exists(path):
        raise DatasetError(f"{path}: annotation file missing")
    try:
        tree = ET.fromstring(fs.cat_file(path))
    except ET.ParseError as exc:
        raise DatasetError(f"{path}: not valid XML ({exc})") from exc
    boxes, classes = [], []
    for obj in tree.iter("object"):
        name = (obj.findtext("name") or "").strip().lower()
        if name not in class_map:
            raise DatasetError(f"{path}: unknown class {name!r}; known: {sorted(class_map)}")
        bb = obj.find("bndbox")
        try:
            boxes.append([float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")])  # type: ignore[union-attr]
        except (AttributeError, TypeError, ValueError) as exc:
            raise DatasetError(f"{path}: object {name!r} has a malformed bndbox") from exc
        classes.append(class_map[name])
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(classes, np.int64)


def _yolofuse_dirs(fs, base: str, split: str) -> tuple[str, str, str]:
    dirs = [posixpath.join(base, d) for d in ("images", "imagesIR", "labels")]
    if split and fs.isdir(posixpath.join(dirs[0], split)):
        dirs = [posixpath.join(d, split) for d in dirs]
    return dirs[0], dirs[1], dirs[2]


def read_yolofuse(root: str, *, split: str = "", skip_bad: bool = False, num_classes: int = 2) -> PairedDataset:
    fs, base = fsspec.core.url_to_fs(root)
    col = _Collector(skip_bad)
    rgb_dir, ir_dir, lbl_dir = _yolofuse_dirs(fs, base, split)
    rgb, ir = _index(fs, rgb_dir, IMAGE_EXTS), _index(fs, ir_dir, IMAGE_EXTS)
    slices = _read_slices(fs, base)
    samples = []
    for stem in _pair(rgb, ir, col):
        txt = posixpath.join(lbl_dir, stem + ".txt")
        rows = np.zeros((0, 5), np.float64)
        if fs.exists(txt):  # a missing label file means "no objects", as in ultralytics
            try:
                rows = np.loadtxt(io.StringIO(fs.cat_file(txt).decode()), ndmin=2).reshape(-1, 5)
            except ValueError:
                col.fail(txt, "expected 5 numbers per line: class cx cy w h")
                continue
        if len(rows) and ((rows[:, 1:] < -1e-3).any() or (rows[:, 1:] > 1 + 1e-3).any()):
            col.fail(txt, "a label lies outside the image (normalised coordinates outside [0, 1])")
            continue
        if len(rows) and ((rows[:, 0] < 0) | (rows[:, 0] >= num_classes) | (rows[:, 0] % 1 != 0)).any():
            col.fail(txt, f"class id outside 0..{num_classes - 1}")
            continue
        try:
            w, h = image_size(fs, rgb[stem])
        except DatasetError:
            col.fail(rgb[stem], "not a decodable image")
            continue
        cx, cy, bw, bh = rows[:, 1] * w, rows[:, 2] * h, rows[:, 3] * w, rows[:, 4] * h
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
        s = _validated(fs, col, stem, rgb[stem], ir[stem], boxes, rows[:, 0], slices, txt)
        if s:
            samples.append(s)
    return PairedDataset(root, samples, col.skipped, _yaml_names(fs, base) or tuple(
        ("person", "vehicle")[:num_classes] if num_classes <= 2 else [f"class{i}" for i in range(num_classes)]))


def _yaml_names(fs, base: str) -> tuple[str, ...]:
    """Class names from an ultralytics-style data.yaml at the dataset root (`names:` list or {id: name})."""
    import yaml

    path = posixpath.join(base, "data.yaml")
    if not fs.exists(path):
        return ()
    names = (yaml.safe_load(fs.cat_file(path)) or {}).get("names", ())
    if isinstance(names, dict):
        return tuple(str(names[k]) for k in sorted(names))
    return tuple(str(n) for n in names)


def read_dataset(root: str, *, split: str = "train", skip_bad: bool = False) -> PairedDataset:
    """Detect the layout from the folders present."""
    fs, base = fsspec.core.url_to_fs(root)
    if fs.isdir(posixpath.join(base, "visible")):
        return read_llvip(root, split=split, skip_bad=skip_bad)
    if fs.isdir(posixpath.join(base, "imagesIR")):
        return read_yolofuse(root, split=split, skip_bad=skip_bad)
    raise DatasetError(f"{root}: neither an LLVIP (visible/, infrared/) nor a YOLOFuse (images/, imagesIR/) layout")


class DatasetWriter:
    """Write pairs in the LLVIP or YOLOFuse layout to any fsspec URL (JPEG for LLVIP, PNG for YOLOFuse)."""

    def __init__(self, root: str, layout: str, split: str, class_names: Sequence[str]):
        if layout not in ("llvip", "yolofuse"):
            raise ValueError(f"layout {layout!r}: choose 'llvip' or 'yolofuse'")
        self.fs, self.base = fsspec.core.url_to_fs(root)
        self.layout, self.split, self.class_names = layout, split, class_names
        self.slices: list[tuple[str, str]] = []

    def _put(self, path: str, data: bytes) -> None:
        self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
        self.fs.pipe_file(path, data)

    def add(self, stem: str, rgb: np.ndarray, ir: np.ndarray, boxes: np.ndarray, classes: np.ndarray,
            slice_: str = "") -> None:
        j = posixpath.join
        if self.layout == "llvip":
            ok1, rgb_b = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, 92])
            ok2, ir_b = cv2.imencode(".jpg", cv2.cvtColor(ir, cv2.COLOR_GRAY2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
            self._put(j(self.base, "visible", self.split, stem + ".jpg"), rgb_b.tobytes())
            self._put(j(self.base, "infrared", self.split, stem + ".jpg"), ir_b.tobytes())
            objs = "".join(
                f"<object><name>{self.class_names[c]}</name><bndbox><xmin>{b[0]:.1f}</xmin><ymin>{b[1]:.1f}</ymin>"
                f"<xmax>{b[2]:.1f}</xmax><ymax>{b[3]:.1f}</ymax></bndbox></object>"
                for b, c in zip(boxes, classes, strict=True))
            h, w = rgb.shape[:2]
            xml = f"<annotation><filename>{stem}.jpg</filename><size><width>{w}</width><height>{h}</height>" \
                  f"<depth>3</depth></size>{objs}</annotation>"
            self._put(j(self.base, "Annotations", stem + ".xml"), xml.encode())
        else:
            ok1, rgb_b = cv2.imencode(".png", rgb)
            ok2, ir_b = cv2.imencode(".png", ir)
            sub = [self.split] if self.split else []
            self._put(j(self.base, "images", *sub, stem + ".png"), rgb_b.tobytes())
            self._put(j(self.base, "imagesIR", *sub, stem + ".png"), ir_b.tobytes())
            h, w = rgb.shape[:2]
            lines = "".join(
                f"{c} {(b[0] + b[2]) / 2 / w:.6f} {(b[1] + b[3]) / 2 / h:.6f} {(b[2] - b[0]) / w:.6f} "
                f"{(b[3] - b[1]) / h:.6f}\n" for b, c in zip(boxes, classes, strict=True))
            self._put(j(self.base, "labels", *sub, stem + ".txt"), lines.encode())
        if not (ok1 and ok2):
            raise DatasetError(f"{stem}: image encoding failed")
        self.slices.append((stem, slice_))

    def close(self) -> None:
        """Write slices.csv (stem → illumination slice), merged with any already there, and (YOLOFuse) data.yaml
        with the class names."""
        if self.layout == "yolofuse":
            names = "".join(f"  {i}: {n}\n" for i, n in enumerate(self.class_names))
            self._put(posixpath.join(self.base, "data.yaml"), f"path: .\nnames:\n{names}".encode())
        path = posixpath.join(self.base, "slices.csv")
        rows = dict(_read_slices(self.fs, self.base))
        rows.update(self.slices)
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["stem", "slice"])
        w.writerows(sorted(rows.items()))
        self._put(path, buf.getvalue().encode())
