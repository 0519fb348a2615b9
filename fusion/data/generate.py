"""Generate paired RGB-IR data: a still-image dataset (LLVIP or YOLOFuse layout) or a paired-video archive.

    python -m fusion.data.generate dataset out=data/synth layout=yolofuse n=1000 seed=0
    python -m fusion.data.generate archive out=s3://bucket/archive clips=4 seconds=8
    python -m fusion.data.generate preview out=docs/slices.png

Both write to any fsspec URL. Seeds are disjoint by design: sample i of a dataset uses scene seed
`seed * 1_000_000 + i`, so a held-out set (another `seed`) never repeats a training scene.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import math
import posixpath
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fusion.config import ConfigError, cli_main, parse_args
from fusion.data.layouts import DatasetWriter
from fusion.data.scene import (
    CLASS_NAMES,
    SLICES,
    Illumination,
    SceneConfig,
    make_scene,
    render_pair,
    sample_illumination,
    scene_seed,
)
from fusion.data.video import write_video
from fusion.parallel import spawn_map

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetSpec:
    out: str  # fsspec URL of the dataset root
    n: int = 1000  # number of pairs
    layout: Literal["llvip", "yolofuse"] = "yolofuse"
    split: str = "train"  # LLVIP: train|test sub-folder; YOLOFuse: optional sub-folder ("" = none)
    seed: int = 0  # dataset seed; scene i uses seed * 1_000_000 + i
    slices: tuple[str, ...] = SLICES  # illumination slices, assigned round-robin
    rgb_size: tuple[int, int] = (640, 512)  # (W, H)
    ir_size: tuple[int, int] = (640, 512)  # (W, H)
    ir_shift: float = 3.0  # max IR misalignment, IR pixels
    ir_scale: float = 0.02  # max relative IR scale error
    workers: int = 2  # processes

    def __post_init__(self) -> None:
        if self.n < 1 or self.workers < 1:
            raise ConfigError("dataset: n and workers must be >= 1")
        bad = [s for s in self.slices if s not in SLICES]
        if bad or not self.slices:
            raise ConfigError(f"dataset.slices: {bad or 'empty'} not in {list(SLICES)}")
        if self.seed < 0 or self.seed >= 2000:
            raise ConfigError("dataset.seed must be in [0, 2000)")

    def scene_config(self) -> SceneConfig:
        return SceneConfig(rgb_size=self.rgb_size, ir_size=self.ir_size, ir_shift=self.ir_shift,
                           ir_scale=self.ir_scale)


def _render_one(args: tuple[DatasetSpec, int]):
    spec, i = args
    slice_ = spec.slices[i % len(spec.slices)]
    frame = render_pair(scene_seed(spec.seed, i), slice_, spec.scene_config())  # type: ignore[arg-type]
    return f"{slice_}_{spec.seed:04d}_{i:06d}", frame, slice_


def write_dataset(spec: DatasetSpec) -> int:
    writer = DatasetWriter(spec.out, spec.layout, spec.split, CLASS_NAMES)
    jobs = [(spec, i) for i in range(spec.n)]
    for stem, frame, slice_ in spawn_map(_render_one, jobs, workers=spec.workers, chunksize=16):
        writer.add(stem, frame.rgb, frame.ir, frame.boxes, frame.classes, slice_)
    writer.close()
    return spec.n


@dataclass(frozen=True)
class ArchiveSpec:
    out: str  # fsspec URL of the archive root
    clips: int = 4  # paired clips
    seconds: float = 8.0  # clip length
    fps: int = 25
    cameras: int = 2  # clips are spread over this many camera ids
    seed: int = 1000
    rgb_size: tuple[int, int] = (640, 512)  # (W, H)
    ir_size: tuple[int, int] = (320, 256)  # (W, H): thermal cameras have fewer pixels
    schedule: Literal["mixed", "transition"] = "mixed"  # mixed: a slice per clip; transition: day↔night ramps
    start: str = "2026-06-01T18:00:00"  # first clip's wall-clock start (ISO 8601)
    workers: int = 2  # processes rendering clips at once (1 = in this process)

    def __post_init__(self) -> None:
        if self.clips < 1 or self.seconds <= 0 or self.fps < 1 or self.cameras < 1 or self.workers < 1:
            raise ConfigError("archive: clips, seconds, fps, cameras and workers must be positive")
        try:
            dt.datetime.fromisoformat(self.start)
        except ValueError as exc:
            raise ConfigError(f"archive.start: {self.start!r} is not ISO 8601") from exc


def _clip_lighting(spec: ArchiveSpec, k: int, rng: np.random.Generator) -> tuple[Illumination, Illumination]:
    if spec.schedule == "transition":
        day, night = Illumination(0.9, 0.0, 0.3), Illumination(0.03, 0.0, 0.3)
        return (day, night) if k % 2 == 0 else (night, day)
    il = sample_illumination(SLICES[k % len(SLICES)], rng)
    return il, il


# A clip's ground truth: one row per object per frame, boxes in the RGB frame's pixels.
GROUND_TRUTH = pa.schema([
    ("frame_idx", pa.int64()), ("timestamp", pa.float64()), ("class_id", pa.int64()), ("object_id", pa.int64()),
    ("x1", pa.float64()), ("y1", pa.float64()), ("x2", pa.float64()), ("y2", pa.float64()),
    ("light", pa.float64()),
])


def write_clip(*, rgb_url: str, ir_url: str, gt_url: str, seed: int, seconds: float, fps: int,
               config: SceneConfig, light_from: Illumination, light_to: Illumination) -> int:
    """Render one paired clip with ground truth; lighting goes from `light_from` to `light_to` (light in log space,
    fog and clutter linearly)."""
    scene = make_scene(seed, config)
    rng = np.random.default_rng([seed, 2])
    n = round(seconds * fps)
    keys = GROUND_TRUTH.names
    gt: dict[str, list] = {k: [] for k in keys}
    frames = []
    for i in range(n):
        a = i / max(n - 1, 1)
        # Illuminance changes geometrically at dusk/dawn (orders of magnitude), so interpolate it in log space.
        light = math.exp((1 - a) * math.log(max(light_from.light, 1e-3)) + a * math.log(max(light_to.light, 1e-3)))
        il = Illumination(light=min(light, 1.0),
                          fog=(1 - a) * light_from.fog + a * light_to.fog,
                          clutter=(1 - a) * light_from.clutter + a * light_to.clutter)
        f = scene.render(i / fps, il, rng)
        frames.append((f.rgb, f.ir))
        for b, c, o in zip(f.boxes, f.classes, f.ids, strict=True):
            for key, v in zip(keys, (i, i / fps, int(c), int(o), *map(float, b), il.light), strict=True):
                gt[key].append(v)
    write_video(rgb_url, (r for r, _ in frames), fps=fps)
    write_video(ir_url, (ir for _, ir in frames), fps=fps)
    buf = io.BytesIO()
    pq.write_table(pa.table(gt, schema=GROUND_TRUTH), buf)  # typed even for a clip without objects
    fs, path = fsspec.core.url_to_fs(gt_url)
    fs.pipe_file(path, buf.getvalue())
    return n


def _write_clip_kw(kw: dict) -> int:
    return write_clip(**kw)


def write_archive(spec: ArchiveSpec) -> str:
    """Write paired clips under `<out>/<camera_id>/<date>/` plus `<out>/manifest.csv`; returns the manifest URL."""
    fs, base = fsspec.core.url_to_fs(spec.out)
    rng = np.random.default_rng(spec.seed)
    cfg = SceneConfig(rgb_size=spec.rgb_size, ir_size=spec.ir_size, ir_shift=2.0, ir_scale=0.02)
    t0 = dt.datetime.fromisoformat(spec.start)
    rows = ["video_id,camera_id,rgb_uri,ir_uri,start_time"]
    prefix = spec.out.rstrip("/")
    clips, vids = [], []
    for k in range(spec.clips):  # lighting is drawn here, in clip order: the archive is the same for any `workers`
        cam = f"cam{k % spec.cameras:02d}"
        start = t0 + dt.timedelta(minutes=10 * k)
        vid = f"{cam}_{start:%Y%m%dT%H%M%S}"
        rel = posixpath.join(cam, f"{start:%Y-%m-%d}")
        urls = {x: f"{prefix}/{rel}/{vid}_{x}" for x in ("rgb.mp4", "ir.mp4", "gt.parquet")}
        lf, lt = _clip_lighting(spec, k, rng)
        clips.append({"rgb_url": urls["rgb.mp4"], "ir_url": urls["ir.mp4"], "gt_url": urls["gt.parquet"],
                      "seed": spec.seed * 1_000 + k, "seconds": spec.seconds, "fps": spec.fps, "config": cfg,
                      "light_from": lf, "light_to": lt})
        vids.append(vid)
        rows.append(f"{vid},{cam},{rel}/{vid}_rgb.mp4,{rel}/{vid}_ir.mp4,{start.isoformat()}")
    for k, _n in enumerate(spawn_map(_write_clip_kw, clips, workers=spec.workers)):
        log.info("wrote clip %s (%d/%d)", vids[k], k + 1, spec.clips)
    manifest = posixpath.join(base, "manifest.csv")
    fs.pipe_file(manifest, ("\n".join(rows) + "\n").encode())
    return f"{prefix}/manifest.csv"


@dataclass(frozen=True)
class PreviewSpec:
    out: str = "docs/slices.png"  # PNG: one row per slice, RGB with boxes | IR
    seed: int = 1999  # a seed outside the training range
    width: int = 400  # thumbnail width per image (keeps the committed PNG small)

    def __post_init__(self) -> None:
        if self.width < 64:
            raise ConfigError("preview.width must be >= 64")


def write_preview(spec: PreviewSpec) -> str:
    import cv2

    rows = []
    for k, slice_ in enumerate(SLICES):
        f = render_pair(scene_seed(spec.seed, k), slice_, SceneConfig(ir_shift=3.0, ir_scale=0.02))
        rgb = f.rgb.copy()
        for (x1, y1, x2, y2), c in zip(f.boxes.astype(int), f.classes, strict=True):
            cv2.rectangle(rgb, (x1, y1), (x2, y2), (0, 255, 0) if c == 0 else (0, 170, 255), 3)
        h = spec.width * rgb.shape[0] // rgb.shape[1]
        ir = cv2.cvtColor(cv2.resize(f.ir, (spec.width, h), interpolation=cv2.INTER_AREA), cv2.COLOR_GRAY2BGR)
        row = np.hstack([cv2.resize(rgb, (spec.width, h), interpolation=cv2.INTER_AREA), ir])
        cv2.putText(row, slice_, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
        rows.append(row)
    _ok, png = cv2.imencode(".png", np.vstack(rows), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    fs, path = fsspec.core.url_to_fs(spec.out)
    fs.makedirs(posixpath.dirname(path) or ".", exist_ok=True)
    fs.pipe_file(path, png.tobytes())
    return spec.out


def main(argv: Sequence[str] | None = None) -> int:
    def run(args: list[str]) -> int:
        what = args.pop(0) if args else ""
        specs = {"dataset": DatasetSpec, "archive": ArchiveSpec, "preview": PreviewSpec}
        if what not in specs:
            raise ConfigError("first argument: dataset, archive or preview")
        _, spec = parse_args(specs[what], args, config_file=True)
        check_writable(spec.out)  # before minutes of rendering, not after
        if isinstance(spec, DatasetSpec):
            print(f"wrote {write_dataset(spec)} pairs to {spec.out} ({spec.layout} layout)")
        elif isinstance(spec, PreviewSpec):
            print(f"wrote {write_preview(spec)}")
        else:
            print(f"wrote archive; manifest: {write_archive(spec)}")
        return 0

    return cli_main(run, argv, doc=__doc__, config={"dataset": DatasetSpec, "archive": ArchiveSpec,
                                                     "preview": PreviewSpec})


def check_writable(url: str) -> None:
    """Write and delete a tiny object next to `url` (credentials, bucket, permissions); ConfigError naming it."""
    import uuid

    try:
        fs, path = fsspec.core.url_to_fs(url)
        folder = path if not posixpath.splitext(path)[1] else posixpath.dirname(path) or "."
        probe = f"{folder}/.write-check-{uuid.uuid4().hex}"
        fs.makedirs(folder, exist_ok=True)
        fs.pipe_file(probe, b"")
        fs.rm_file(probe)
    except Exception as exc:  # fsspec back-ends raise their own types (NoCredentialsError, ClientError, OSError)
        raise ConfigError(f"out={url}: cannot write there ({type(exc).__name__}: {str(exc).splitlines()[0]})"
                          ) from exc

if __name__ == "__main__":
    sys.exit(main())
