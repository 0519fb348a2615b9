"""Paired RGB + thermal scene model: an elevated street camera, what is on the street, and how it is lit.

A `Scene` is sampled once from a seed and rendered at any time `t` under any `Illumination`, so one scene gives a
still pair or a whole clip, with a day→night ramp if asked. It composes one module per concept: `camera` (a pinhole
3-8 m up, pitched 18-42° down), `street` (road, kerbs, pavements, crossings, façades; ray-cast per pixel for both
cameras), `population` (people alone and in groups, cyclists, moving and parked vehicles, street furniture,
confounders), `figures` (what each object looks like to both cameras) and `render` (light, sensors, optics).
Ground-truth boxes are in RGB pixels and cover the whole object, also where a nearer one hides part of it (as an
annotator would draw them). The IR camera sees the same world through its own resolution and a controllable
misalignment (shift + scale about the image centre), as real rigs do.

Why the confounders: a detector fed only RGB must not be enough (night, fog, glare, posters of people), nor one
fed only IR (warm non-targets: dogs, warm posts, heated cabinets, lit windows). That makes fusion measurably useful.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from fusion.data import figures, render
from fusion.data.camera import Camera
from fusion.data.population import Thing, populate
from fusion.data.prims import extent
from fusion.data.street import Background, Street, building_heights, cast, sample_street
from fusion.data.street import background as street_background
from fusion.data.street import thermal as street_thermal

CLASS_NAMES: tuple[str, ...] = ("person", "vehicle")
Slice = Literal["day", "dusk", "night", "fog", "clutter"]
SLICES: tuple[Slice, ...] = ("day", "dusk", "night", "fog", "clutter")

_LABEL: dict[str, int] = {"person": 0, "cyclist": 0, "vehicle": 1}
CONFOUNDERS = ("decoy_person", "warm_animal", "warm_post", "warm_box")  # shown in proportion to the clutter level


@dataclass(frozen=True)
class Illumination:
    """Continuous lighting state; slices are ranges of it."""

    light: float  # 1 = noon, 0.3 = dusk, 0.04 = night; scales RGB irradiance and sensor noise
    fog: float = 0.0  # 0..1 visibility loss in RGB (IR, long-wave, is barely affected)
    clutter: float = 0.2  # 0..1 density of IR-only warm objects and RGB-only decoys

    def __post_init__(self) -> None:
        for name in ("light", "fog", "clutter"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"Illumination.{name}={v} must be in [0, 1]")


def sample_illumination(slice_: Slice, rng: np.random.Generator) -> Illumination:
    if slice_ == "day":
        return Illumination(light=rng.uniform(0.8, 1.0), fog=0.0, clutter=rng.uniform(0.1, 0.4))
    if slice_ == "dusk":
        return Illumination(light=rng.uniform(0.18, 0.35), fog=rng.uniform(0.0, 0.15), clutter=rng.uniform(0.1, 0.4))
    if slice_ == "night":
        return Illumination(light=rng.uniform(0.02, 0.06), fog=0.0, clutter=rng.uniform(0.1, 0.4))
    if slice_ == "fog":
        return Illumination(light=rng.uniform(0.5, 0.9), fog=rng.uniform(0.6, 0.85), clutter=rng.uniform(0.1, 0.4))
    if slice_ == "clutter":
        return Illumination(light=rng.uniform(0.3, 1.0), fog=0.0, clutter=rng.uniform(0.8, 1.0))
    raise ValueError(f"unknown slice {slice_!r}; choose from {SLICES}")


@dataclass(frozen=True)
class SceneConfig:
    """Camera rig and population of a generated scene."""

    rgb_size: tuple[int, int] = (1280, 1024)  # (W, H) of the visible camera
    ir_size: tuple[int, int] = (640, 512)  # (W, H) of the thermal camera
    max_targets: int = 12  # persons + vehicles, at least 1
    ir_shift: float = 0.0  # max |IR misalignment| in IR pixels, per axis, drawn per scene
    ir_scale: float = 0.0  # max |relative IR scale error|, drawn per scene
    hfov: tuple[float, float] = (20.0, 66.0)  # range of the lens's horizontal field of view, degrees (tele..wide)

    def __post_init__(self) -> None:
        for name in ("rgb_size", "ir_size"):
            w, h = getattr(self, name)
            if w < 64 or h < 64:
                raise ValueError(f"SceneConfig.{name}={w}x{h} must be at least 64x64")
        if self.max_targets < 1:
            raise ValueError("SceneConfig.max_targets must be >= 1")
        if self.ir_shift < 0 or not 0 <= self.ir_scale < 0.5:
            raise ValueError("SceneConfig.ir_shift must be >= 0 and ir_scale in [0, 0.5)")
        lo, hi = self.hfov
        if not 5 <= lo <= hi <= 120:
            raise ValueError(f"SceneConfig.hfov={self.hfov}: a (narrowest, widest) field of view within 5..120 degrees")


@dataclass(frozen=True)
class Frame:
    rgb: np.ndarray  # (H, W, 3) uint8 BGR, RGB camera
    ir: np.ndarray  # (h, w) uint8, thermal camera
    boxes: np.ndarray  # (N, 4) float32 xyxy in RGB pixels
    classes: np.ndarray  # (N,) int64 indices into CLASS_NAMES
    illumination: Illumination
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (N,) object identity of each box
    # The CONFOUNDERS in view, never labelled, boxed by the labels' rule of what shows so an evaluation can count the
    # boxes a model puts on them: (M, 4) xyxy in RGB pixels (a poster by the person on it) and their kinds.
    confounders: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    confounder_kinds: tuple[str, ...] = ()


@dataclass
class Scene:
    config: SceneConfig
    camera: Camera
    street: Street
    things: list[Thing]
    ir_affine: tuple[float, float, float, float]  # RGB px → IR px: (sx, sy, tx, ty)
    background: Background = field(repr=False)
    ir_base: np.ndarray = field(repr=False)  # (h, w) float32 ambient temperature
    ir_sun: np.ndarray = field(repr=False)  # (h, w) float32 how much sunlight warms each IR pixel
    seed: int = 0

    @property
    def horizon(self) -> float:
        return self.camera.horizon

    def render(self, t: float, illumination: Illumination, rng: np.random.Generator) -> Frame:
        """Render both cameras at time `t` seconds; `rng` drives only sensor noise."""
        W, H = self.config.rgb_size
        drawn = []
        for th in self.things:
            if th.kind in CONFOUNDERS and th.presence >= illumination.clutter:
                continue
            th = th.at(t)
            u, _v, depth = self.camera.project(th.x, th.y, 0.0)
            if depth < 2.5 or not -0.6 * W < u < 1.6 * W:  # nothing right under the lens
                continue
            d = figures.drawing(th, self.camera, t)
            if d is not None and d.prims:
                drawn.append((th, d))
        drawn.sort(key=lambda td: -td[1].depth)  # painter's order: far first
        rgb, visible = render.render_rgb(self, drawn, illumination, rng)
        ir = render.render_ir(self, drawn, illumination, rng)
        boxes, classes, ids = _targets(drawn, visible, W, H)
        cboxes, kinds = _confounders(drawn, visible, W, H)
        return Frame(rgb=rgb, ir=ir, boxes=boxes, classes=classes, illumination=illumination, ids=ids,
                     confounders=cboxes, confounder_kinds=kinds)


MIN_SHOWN = 0.25  # an object is labelled when at least this much of it shows: not hidden, and inside the frame


def shown_enough(box_w, box_h, in_w, in_h, W: int, H: int):
    """Would an annotator label an object whose (box_w, box_h) box the (W, H) frame cuts to (in_w, in_h)? Yes when
    at least MIN_SHOWN of the box is inside (a person cut at the waist is still a person) or the part inside is
    large (4 % of the frame), and it is at least 3 x 6 px. Arithmetic only: the arguments may be floats, numpy
    arrays or torch tensors, so the scene's labels and both augmentations (CPU and GPU) cut by one rule."""
    inside = in_w * in_h
    return (((inside >= MIN_SHOWN * box_w * box_h) | (inside >= 0.04 * W * H)) & (in_w >= 3) & (in_h >= 6))


def _cut(box, W: int, H: int) -> tuple[float, float, float, float] | None:
    """`box` clipped to the (W, H) frame, or None where too little of it shows (`shown_enough`)."""
    x1, y1, x2, y2 = box
    cx1, cy1, cx2, cy2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(W)), min(y2, float(H))
    return (cx1, cy1, cx2, cy2) if shown_enough(x2 - x1, y2 - y1, cx2 - cx1, cy2 - cy1, W, H) else None


def _targets(drawn, visible: list[float], W: int, H: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Label boxes an annotator would draw: the whole body even when partly hidden, clipped to the frame, but not
    objects hidden behind nearer ones or cut by the frame edge beyond `shown_enough`."""
    boxes, classes, ids = [], [], []
    for (th, d), vis in zip(drawn, visible, strict=True):
        if th.kind not in _LABEL or d.box is None or vis < MIN_SHOWN or (cut := _cut(d.box, W, H)) is None:
            continue
        boxes.append(cut)
        classes.append(_LABEL[th.kind])
        ids.append(th.ident)
    return (np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(classes, np.int64),
            np.asarray(ids, np.int64))


def _confounders(drawn, visible: list[float], W: int, H: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """The confounders an annotator would see, by the labels' rule: a poster boxed by the person on it, the others
    by what is painted."""
    boxes, kinds = [], []
    for (th, d), vis in zip(drawn, visible, strict=True):
        if th.kind in CONFOUNDERS and vis >= MIN_SHOWN:
            cut = _cut(d.box if d.box is not None else extent(d.prims, labelled=False), W, H)
            if cut is not None:
                boxes.append(cut)
                kinds.append(th.kind)
    return np.asarray(boxes, np.float32).reshape(-1, 4), tuple(kinds)


def make_scene(seed: int, config: SceneConfig | None = None, *, speed: float = 1.0) -> Scene:
    """Sample a scene deterministically from `seed`. `speed` scales object motion (0 = static)."""
    cfg = config or SceneConfig()
    rng = np.random.default_rng(seed)
    W, H = cfg.rgb_size
    cam = Camera.sample(cfg.rgb_size, rng, hfov=cfg.hfov)
    street = sample_street(cam, rng, seed)
    heights, edges = building_heights(street, rng)
    v, u = np.mgrid[0:H, 0:W].astype(np.float32) + 0.5  # pixel centres, (H, W) each
    bg = street_background(cam, street, cast(cam, street, u, v, heights), edges, rng)
    w_ir, h_ir = cfg.ir_size
    scale = 1.0 + rng.uniform(-cfg.ir_scale, cfg.ir_scale)
    sx, sy = w_ir / W * scale, h_ir / H * scale
    tx = w_ir / 2 * (1 - scale) + rng.uniform(-cfg.ir_shift, cfg.ir_shift)
    ty = h_ir / 2 * (1 - scale) + rng.uniform(-cfg.ir_shift, cfg.ir_shift)
    vi, ui = np.mgrid[0:h_ir, 0:w_ir].astype(np.float32) + 0.5
    # The RGB pixel each IR pixel sees, cast into the street: thermal background at the IR camera's own resolution.
    ir_hits = cast(cam, street, (ui - np.float32(tx)) / np.float32(sx), (vi - np.float32(ty)) / np.float32(sy), heights)
    ir_base, ir_sun = street_thermal(street, ir_hits, edges, np.random.default_rng([seed, 3]))
    things = populate(cam, street, cfg.max_targets, rng, speed)
    return Scene(cfg, cam, street, things, (sx, sy, tx, ty), bg, ir_base, ir_sun, seed)


def generator_modules() -> dict[str, bytes]:
    """The source of every fusion.data module the scene generator imports, from this one on: name → bytes. Found by
    following the imports, so a module added to the renderer is covered without a list to keep up to date."""
    here, todo, found = Path(__file__).parent, ["scene"], {}
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found[name] = src = (here / f"{name}.py").read_bytes()
        for dotted, listed in re.findall(rb"^\s*from fusion\.data(\.\w+)? import ([\w, ]+)", src, re.M):
            todo += [dotted[1:].decode()] if dotted else [n.strip().decode() for n in listed.split(b",")]
    return found


@functools.cache  # the source does not change while a process runs
def generator_version() -> str:
    """A digest of the scene generator's source: caches of rendered pairs carry it (a changed scene re-renders)."""
    src = generator_modules()
    return hashlib.sha256(b"".join(src[m] for m in sorted(src))).hexdigest()[:10]


def scene_seed(dataset_seed: int, index: int) -> int:
    """Scene seed of sample `index` of dataset `dataset_seed`: datasets with different seeds never share scenes."""
    return dataset_seed * 1_000_000 + index


def render_pair(seed: int, slice_: Slice, config: SceneConfig | None = None) -> Frame:
    """One still pair from `seed` in illumination slice `slice_`, with the JPEG compression stills usually carry.

    A still is a moment of a moving street, as real footage is: people walk (stride poses) and movers smear over the
    exposure. Each mover is placed where `populate` put it at that moment, so a still keeps its sampled layout
    (a car at 11 m/s would otherwise drive out of view before t = 5 s)."""
    scene = make_scene(seed, config, speed=1.0)
    rng = np.random.default_rng([seed, 1])
    t = float(rng.uniform(0, 5))
    scene.things = [th.at(-t) for th in scene.things]
    f = scene.render(t, sample_illumination(slice_, rng), rng)
    q_rgb, q_ir = int(rng.integers(55, 95)), int(rng.integers(60, 95))
    rgb = cv2.imdecode(cv2.imencode(".jpg", f.rgb, [cv2.IMWRITE_JPEG_QUALITY, q_rgb])[1], cv2.IMREAD_COLOR)
    ir = cv2.imdecode(cv2.imencode(".jpg", f.ir, [cv2.IMWRITE_JPEG_QUALITY, q_ir])[1], cv2.IMREAD_GRAYSCALE)
    return replace(f, rgb=rgb, ir=ir)
