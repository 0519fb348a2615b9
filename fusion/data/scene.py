"""Paired RGB + thermal scene model: what is in the world, where it moves, and how it is lit.

A `Scene` is sampled once from a seed (layout, textures, objects with trajectories) and rendered at any time
`t` under any `Illumination`, so one scene gives a still pair or a whole clip, with a day→night ramp if asked.
Ground-truth boxes are in RGB pixel coordinates. The IR camera sees the same world through its own
resolution and a controllable misalignment (shift + scale about the image centre), as real rigs do.

Why the confounders: a detector fed only RGB must not be enough (night, fog, glare, painted decoys), nor one
fed only IR (warm non-targets: animals, vents, heated boxes). That is what makes fusion measurably useful.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from fusion.data import render

CLASS_NAMES: tuple[str, ...] = ("person", "vehicle")
Slice = Literal["day", "dusk", "night", "fog", "clutter"]
SLICES: tuple[Slice, ...] = ("day", "dusk", "night", "fog", "clutter")

Kind = Literal["person", "vehicle", "decoy_person", "decoy_vehicle", "warm_animal", "warm_post", "warm_box"]
_LABEL: dict[str, int] = {"person": 0, "vehicle": 1}


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
    max_targets: int = 8  # persons + vehicles, at least 1
    ir_shift: float = 0.0  # max |IR misalignment| in IR pixels, per axis, drawn per scene
    ir_scale: float = 0.0  # max |relative IR scale error|, drawn per scene

    def __post_init__(self) -> None:
        for name in ("rgb_size", "ir_size"):
            w, h = getattr(self, name)
            if w < 64 or h < 64:
                raise ValueError(f"SceneConfig.{name}={w}x{h} must be at least 64x64")
        if self.max_targets < 1:
            raise ValueError("SceneConfig.max_targets must be >= 1")
        if self.ir_shift < 0 or not 0 <= self.ir_scale < 0.5:
            raise ValueError("SceneConfig.ir_shift must be >= 0 and ir_scale in [0, 0.5)")


@dataclass
class Thing:
    """One object, in RGB pixels: box centre x, foot y, width, height; velocity in px/s."""

    kind: Kind
    cx: float
    foot: float
    w: float
    h: float
    vx: float = 0.0
    vy: float = 0.0
    color: tuple[float, float, float] = (0.5, 0.5, 0.5)  # BGR albedo 0..1
    color2: tuple[float, float, float] = (0.3, 0.3, 0.3)
    temp: float = 0.8  # IR intensity 0..1 (warm = bright)
    facing: int = 1  # +1 right, -1 left (vehicles: where the headlights are)
    presence: float = 0.0  # confounders are shown when presence < Illumination.clutter
    ident: int = -1  # identity within the scene (ground truth for tracking)

    def at(self, t: float) -> Thing:
        return Thing(**{**self.__dict__, "cx": self.cx + self.vx * t, "foot": self.foot + self.vy * t})

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (self.cx - self.w / 2, self.foot - self.h, self.cx + self.w / 2, self.foot)


@dataclass(frozen=True)
class Frame:
    rgb: np.ndarray  # (H, W, 3) uint8 BGR, RGB camera
    ir: np.ndarray  # (h, w) uint8, thermal camera
    boxes: np.ndarray  # (N, 4) float32 xyxy in RGB pixels
    classes: np.ndarray  # (N,) int64 indices into CLASS_NAMES
    illumination: Illumination
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (N,) object identity of each box


@dataclass
class Scene:
    config: SceneConfig
    horizon: float  # y of the horizon in RGB pixels
    things: list[Thing]
    lamps: list[tuple[float, float]]  # street-lamp heads, RGB pixels
    ir_affine: tuple[float, float, float, float]  # RGB px → IR px: (sx, sy, tx, ty)
    rgb_albedo: np.ndarray = field(repr=False)  # (H, W, 3) float32
    ir_base: np.ndarray = field(repr=False)  # (h, w) float32 ambient temperature pattern
    seed: int = 0

    def render(self, t: float, illumination: Illumination, rng: np.random.Generator) -> Frame:
        """Render both cameras at time `t` seconds; `rng` drives only sensor noise."""
        W, H = self.config.rgb_size
        things = sorted((th.at(t) for th in self.things), key=lambda th: th.foot)  # far first
        things = [th for th in things if th.box[2] > 0 and th.box[0] < W and th.foot > self.horizon]
        visible = [th for th in things if _clutter_visible(th, illumination)]
        rgb = render.render_rgb(self, visible, illumination, rng)
        ir = render.render_ir(self, visible, illumination, rng)
        boxes, classes, ids = _targets(visible, W, H)
        return Frame(rgb=rgb, ir=ir, boxes=boxes, classes=classes, illumination=illumination, ids=ids)


def _clutter_visible(th: Thing, illumination: Illumination) -> bool:
    """Clutter objects are present in proportion to the clutter level (stable per object across frames)."""
    if th.kind in _LABEL:
        return True
    return th.presence < illumination.clutter


def _targets(things: list[Thing], W: int, H: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    boxes, classes, ids = [], [], []
    for th in things:
        if th.kind not in _LABEL:
            continue
        x1, y1, x2, y2 = th.box
        cx1, cy1, cx2, cy2 = max(x1, 0.0), max(y1, 0.0), min(x2, W - 1.0), min(y2, H - 1.0)
        if cx2 - cx1 < 4 or cy2 - cy1 < 4:
            continue
        if (cx2 - cx1) * (cy2 - cy1) < 0.4 * (x2 - x1) * (y2 - y1):
            continue  # mostly out of frame: an annotator would not label it either
        boxes.append((cx1, cy1, cx2, cy2))
        classes.append(_LABEL[th.kind])
        ids.append(th.ident)
    return (np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(classes, np.int64),
            np.asarray(ids, np.int64))


def _palette(rng: np.random.Generator) -> tuple[float, float, float]:
    return tuple(float(c) for c in rng.uniform(0.08, 0.9, 3))  # type: ignore[return-value]


def _person(kind: Kind, cx: float, foot: float, h: float, rng: np.random.Generator, speed: float) -> Thing:
    vx = rng.choice([-1, 1]) * rng.uniform(0.2, 1.0) * speed * h
    temp = rng.uniform(0.78, 0.95) if kind == "person" else 0.0
    return Thing(kind, cx, foot, w=h * rng.uniform(0.34, 0.44), h=h, vx=vx, color=_palette(rng),
                 color2=_palette(rng), temp=temp)


def _vehicle(kind: Kind, cx: float, foot: float, h: float, rng: np.random.Generator, speed: float) -> Thing:
    facing = int(rng.choice([-1, 1]))
    vx = facing * rng.uniform(1.0, 4.0) * speed * h if rng.random() < 0.7 else 0.0
    temp = rng.uniform(0.75, 0.95) if kind == "vehicle" else 0.0
    return Thing(kind, cx, foot, w=h * rng.uniform(1.8, 2.6), h=h, vx=vx, color=_palette(rng),
                 color2=(0.12, 0.12, 0.14), temp=temp, facing=facing)


def _depth_height(foot: float, horizon: float, H: float, near: float, far: float) -> float:
    depth = (foot - horizon) / (H - horizon)  # 0 at the horizon, 1 at the bottom edge
    return H * (far + (near - far) * depth)


def make_scene(seed: int, config: SceneConfig | None = None, *, speed: float = 1.0) -> Scene:
    """Sample a scene deterministically from `seed`. `speed` scales object motion (0 = static)."""
    cfg = config or SceneConfig()
    rng = np.random.default_rng(seed)
    W, H = cfg.rgb_size
    horizon = H * rng.uniform(0.28, 0.42)
    things: list[Thing] = []

    def foot_y() -> float:
        return rng.uniform(horizon + 0.08 * H, H * 1.02)

    n_targets = int(rng.integers(1, cfg.max_targets + 1))
    for _ in range(n_targets):
        foot = foot_y()
        cx = rng.uniform(0.02 * W, 0.98 * W)
        if rng.random() < 0.6:
            things.append(_person("person", cx, foot, _depth_height(foot, horizon, H, 0.36, 0.05), rng, speed))
        else:
            things.append(_vehicle("vehicle", cx, foot, _depth_height(foot, horizon, H, 0.26, 0.035), rng, speed))
    # Confounders: always sampled, shown according to the illumination's clutter level.
    for _ in range(int(rng.integers(2, 7))):
        foot, cx = foot_y(), rng.uniform(0, W)
        ph = _depth_height(foot, horizon, H, 0.36, 0.05)
        kind = rng.choice(["decoy_person", "decoy_vehicle", "warm_animal", "warm_post", "warm_box"])
        if kind == "decoy_person":
            th = _person("decoy_person", cx, foot, ph, rng, 0.0)
        elif kind == "decoy_vehicle":
            th = _vehicle("decoy_vehicle", cx, foot, ph * 0.72, rng, 0.0)
            th.vx = 0.0
        elif kind == "warm_animal":
            th = Thing("warm_animal", cx, foot, w=ph * 0.6, h=ph * 0.35, vx=rng.uniform(-0.3, 0.3) * ph * speed,
                       temp=rng.uniform(0.7, 0.9))
        elif kind == "warm_post":
            th = Thing("warm_post", cx, foot, w=ph * rng.uniform(0.25, 0.4), h=ph * rng.uniform(0.8, 1.1),
                       color=(0.35, 0.35, 0.37), temp=rng.uniform(0.7, 0.9))
        else:
            th = Thing("warm_box", cx, foot, w=ph * rng.uniform(0.8, 1.5), h=ph * rng.uniform(0.35, 0.6),
                       color=(0.4, 0.4, 0.4), temp=rng.uniform(0.65, 0.85))
        th.presence = float(rng.random())
        things.append(th)

    lamps = [(rng.uniform(0, W), horizon + rng.uniform(-0.15, 0.1) * H) for _ in range(int(rng.integers(0, 4)))]
    w_ir, h_ir = cfg.ir_size
    scale = 1.0 + rng.uniform(-cfg.ir_scale, cfg.ir_scale)
    sx, sy = w_ir / W * scale, h_ir / H * scale
    tx = w_ir / 2 * (1 - scale) + rng.uniform(-cfg.ir_shift, cfg.ir_shift)
    ty = h_ir / 2 * (1 - scale) + rng.uniform(-cfg.ir_shift, cfg.ir_shift)
    for i, th in enumerate(things):
        th.ident = i
    albedo = render.background_albedo(W, H, horizon, rng)
    ir_base = render.background_thermal(w_ir, h_ir, horizon * sy + ty, rng)
    return Scene(cfg, horizon, things, lamps, (sx, sy, tx, ty), albedo, ir_base, seed)


def scene_seed(dataset_seed: int, index: int) -> int:
    """Scene seed of sample `index` of dataset `dataset_seed`: datasets with different seeds never share scenes."""
    return dataset_seed * 1_000_000 + index


def render_pair(seed: int, slice_: Slice, config: SceneConfig | None = None) -> Frame:
    """One still pair from `seed` in illumination slice `slice_`."""
    scene = make_scene(seed, config, speed=0.0)
    rng = np.random.default_rng([seed, 1])
    return scene.render(0.0, sample_illumination(slice_, rng), rng)
