"""Rasterise a `Scene` into an RGB frame and a thermal frame (OpenCV drawing on float32 canvases).

Each object kind is a list of parts in box-relative coordinates; every part has an RGB albedo and an IR
temperature, so one description drives both cameras and the two stay consistent (what is warm in IR has a
body in RGB, unless the kind is meant to be invisible there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from fusion.data.scene import Illumination, Scene, Thing

_SHIFT = 4  # cv2 fixed-point bits: sub-pixel placement so slow motion is smooth in video
_ONE = 1 << _SHIFT
Affine = tuple[float, float, float, float]  # x' = x*sx + tx, y' = y*sy + ty

# part: (shape, geometry in box units, rgb role, ir role). shape: "e" ellipse (cx, cy, rx, ry), "p" polygon.
_PERSON = [
    ("e", (0.5, 0.5, 0.26, 0.26), "bottom", "bottom"),  # hips
    ("p", ((0.28, 0.5), (0.48, 0.5), (0.46, 1.0), (0.3, 1.0)), "bottom", "bottom"),
    ("p", ((0.52, 0.5), (0.72, 0.5), (0.7, 1.0), (0.54, 1.0)), "bottom", "bottom"),
    ("e", (0.5, 0.33, 0.36, 0.19), "top", "top"),
    ("e", (0.14, 0.38, 0.11, 0.17), "top", "top"),
    ("e", (0.86, 0.38, 0.11, 0.17), "top", "top"),
    ("e", (0.5, 0.09, 0.19, 0.09), "skin", "skin"),
]
_VEHICLE = [
    ("p", ((0.0, 0.4), (1.0, 0.4), (1.0, 0.84), (0.0, 0.84)), "body", "body"),
    ("p", ((0.18, 0.42), (0.3, 0.06), (0.7, 0.06), (0.86, 0.42)), "body", "body"),
    ("p", ((0.25, 0.39), (0.34, 0.12), (0.66, 0.12), (0.77, 0.39)), "glass", "glass"),
    ("p", ((0.84, 0.46), (1.0, 0.46), (1.0, 0.8), (0.84, 0.8)), "body", "engine"),
    ("e", (0.22, 0.84, 0.1, 0.16), "tire", "tire"),
    ("e", (0.78, 0.84, 0.1, 0.16), "tire", "tire"),
    ("e", (0.97, 0.56, 0.03, 0.06), "lamp", "lamp"),
]
_ANIMAL = [("e", (0.45, 0.6, 0.4, 0.3), "body", "skin"), ("e", (0.88, 0.35, 0.12, 0.22), "body", "skin")]
_POST_IR = [("e", (0.5, 0.15, 0.5, 0.15), "none", "skin"),
            ("p", ((0.0, 0.15), (1.0, 0.15), (0.9, 1.0), (0.1, 1.0)), "none", "top")]
_POST_RGB = [("p", ((0.44, 0.0), (0.56, 0.0), (0.56, 1.0), (0.44, 1.0)), "body", "none")]
_BOX = [("p", ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)), "body", "top"),
        ("e", (0.3, 0.5, 0.15, 0.25), "body", "skin"), ("e", (0.75, 0.4, 0.1, 0.2), "body", "skin")]
_BILLBOARD = [("p", ((-0.08, -0.1), (1.08, -0.1), (1.08, 1.02), (-0.08, 1.02)), "board", "none")]

_SKIN = (0.45, 0.55, 0.75)
_RGB_ROLE = {"glass": (0.12, 0.11, 0.1), "tire": (0.04, 0.04, 0.04), "lamp": (0.85, 0.9, 0.95),
             "skin": _SKIN, "board": (0.8, 0.8, 0.78)}
_IR_ROLE = {"skin": 1.0, "top": 0.9, "bottom": 0.85, "body": 0.5, "glass": 0.3, "engine": 1.0, "tire": 0.85,
            "lamp": 0.7}


def _parts(kind: str, camera: str) -> list:
    if kind in ("person", "decoy_person"):
        return _PERSON
    if kind == "vehicle":
        return _VEHICLE
    if kind == "decoy_vehicle":
        return _BILLBOARD + _VEHICLE if camera == "rgb" else []
    if kind == "warm_animal":
        return _ANIMAL
    if kind == "warm_post":
        return _POST_RGB if camera == "rgb" else _POST_IR
    return _BOX


def _draw(img: np.ndarray, th: Thing, aff: Affine, camera: str) -> None:
    sx, sy, tx, ty = aff
    x1, y1, _, _ = th.box
    for shape, geo, rgb_role, ir_role in _parts(th.kind, camera):
        role = rgb_role if camera == "rgb" else ir_role
        if role == "none":
            continue
        if camera == "rgb":
            value = {"top": th.color, "bottom": th.color2, "body": th.color}.get(role) or _RGB_ROLE[role]
        else:
            if th.temp <= 0.0:
                continue  # decoys have ambient temperature: nothing to draw in IR
            value = th.temp * _IR_ROLE[role]

        def px(u: float, v: float) -> tuple[int, int]:
            u = 1.0 - u if th.facing < 0 else u
            return (int((x1 + u * th.w) * sx * _ONE + tx * _ONE), int((y1 + v * th.h) * sy * _ONE + ty * _ONE))

        if shape == "e":
            cx, cy, rx, ry = geo
            axes = (max(int(rx * th.w * sx * _ONE), 1), max(int(ry * th.h * sy * _ONE), 1))
            cv2.ellipse(img, px(cx, cy), axes, 0, 0, 360, value, -1, cv2.LINE_8, _SHIFT)
        else:
            pts = np.array([px(u, v) for u, v in geo], np.int32)
            cv2.fillPoly(img, [pts], value, cv2.LINE_8, _SHIFT)


def fractal_noise(h: int, w: int, rng: np.random.Generator, scales: tuple[int, ...] = (64, 16, 4)) -> np.ndarray:
    """(h, w) float32 noise in about [-1, 1]: octaves drawn at low resolution and upsampled (fast)."""
    out = np.zeros((h, w), np.float32)
    amp = 1.0
    for s in scales:
        small = rng.standard_normal((max(h // s, 2), max(w // s, 2)), dtype=np.float32)
        out += amp * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        amp *= 0.5
    return out / 1.75


def background_albedo(W: int, H: int, horizon: float, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) float32 BGR albedo: sky, skyline with windows, ground with a road and markings."""
    img = np.empty((H, W, 3), np.float32)
    hz = int(horizon)
    sky = np.linspace(0.75, 0.55, max(hz, 1), dtype=np.float32)[:, None, None]
    img[:hz] = sky * np.array([1.0, 0.9, 0.8], np.float32)
    ground = np.array(rng.choice([(0.35, 0.38, 0.36), (0.25, 0.42, 0.3), (0.4, 0.42, 0.45)]), np.float32)
    img[hz:] = ground
    x = 0
    while x < W:  # skyline
        bw, bh = int(rng.uniform(0.05, 0.15) * W), int(rng.uniform(0.05, 0.25) * H)
        shade = rng.uniform(0.25, 0.6)
        cv2.rectangle(img, (x, hz - bh), (x + bw, hz), (shade, shade * 0.95, shade * 0.9), -1)
        for wy in range(hz - bh + 6, hz - 6, 14):
            for wx in range(x + 4, x + bw - 6, 12):
                if rng.random() < 0.5:
                    cv2.rectangle(img, (wx, wy), (wx + 5, wy + 7), (0.15, 0.17, 0.2), -1)
        x += bw + int(rng.uniform(0, 0.05) * W)
    road_top = int(horizon + rng.uniform(0.15, 0.35) * (H - horizon))
    road_bot = min(H, road_top + int(rng.uniform(0.15, 0.3) * H))
    img[road_top:road_bot] = (0.22, 0.22, 0.23)
    for mx in range(int(rng.uniform(0, 60)), W, 120):
        y = (road_top + road_bot) // 2
        cv2.rectangle(img, (mx, y - 2), (mx + 50, y + 2), (0.85, 0.85, 0.8), -1)
    tex = fractal_noise(H, W, rng, (32, 8, 2))[..., None]
    img *= 1.0 + 0.25 * tex  # texture: compression and detection must not be trivial
    return np.clip(img, 0.0, 1.0)


def background_thermal(w: int, h: int, horizon: float, rng: np.random.Generator) -> np.ndarray:
    """(h, w) float32 ambient temperature: cold sky, ground with slow thermal texture and warm windows."""
    img = np.full((h, w), 0.1, np.float32)
    hz = int(np.clip(horizon, 0, h))
    img[hz:] = 0.3
    img += 0.06 * fractal_noise(h, w, rng, (32, 8))
    for _ in range(int(rng.integers(0, 8))):  # heated windows / vents on the skyline: hot but not targets
        x, y = int(rng.uniform(0, w)), int(hz - rng.uniform(2, 0.15 * h))
        cv2.rectangle(img, (x, y), (x + int(rng.uniform(3, 10)), y + int(rng.uniform(3, 8))),
                      float(rng.uniform(0.5, 0.8)), -1)
    return img


def _row_depth(n: int, horizon: float) -> np.ndarray:
    rows = np.arange(n, dtype=np.float32)
    return np.clip((rows - horizon) / max(n - horizon, 1.0), 0.0, 1.0)[:, None]


def render_rgb(scene: Scene, things: list[Thing], il: Illumination, rng: np.random.Generator) -> np.ndarray:
    W, H = scene.config.rgb_size
    img = scene.rgb_albedo.copy()
    for th in things:
        _draw(img, th, (1.0, 1.0, 0.0, 0.0), "rgb")
    # Irradiance with a colour cast: warm at dusk, blue-grey at night.
    dusk = float(np.clip(1.0 - abs(il.light - 0.3) / 0.25, 0.0, 1.0))
    night = float(np.clip((0.15 - il.light) / 0.15, 0.0, 1.0))
    cast = np.array([1.0 - 0.3 * dusk + 0.15 * night, 1.0 - 0.1 * dusk, 1.0 + 0.15 * dusk - 0.2 * night], np.float32)
    signal = img * (il.light * cast)
    # Auto-exposure compensates only partly (gain ~ 1/sqrt(light), capped): dusk looks darker than noon, night
    # much darker and noisy, as real cameras do; sensor noise (read + shot) is amplified with the gain.
    gain = float(min((0.9 / max(il.light, 1e-3)) ** 0.5, 6.0))
    noise = rng.standard_normal((H, W, 3), dtype=np.float32)
    signal += noise * (0.004 + 0.02 * np.sqrt(signal))
    img = signal * gain
    dark = float(np.clip((0.6 - il.light) / 0.5, 0.0, 1.0))
    if dark > 0:  # street lamps and headlights: saturating glare that hides what is near them
        glow = np.zeros((H // 4, W // 4), np.float32)
        for lx, ly in scene.lamps:
            cv2.circle(glow, (int(lx / 4), int(ly / 4)), max(2, W // 200), 1.0, -1)
        for th in things:
            if th.kind == "vehicle":
                fx = th.cx + th.facing * th.w * 0.47
                cv2.circle(glow, (int(fx / 4), int((th.foot - 0.44 * th.h) / 4)), max(1, int(th.h / 20)), 1.0, -1)
        glow = cv2.GaussianBlur(glow, (0, 0), sigmaX=max(W / 250, 1.0))
        glow = cv2.resize(glow * (4.0 * dark), (W, H), interpolation=cv2.INTER_LINEAR)
        img += glow[..., None] * np.array([0.75, 0.92, 1.0], np.float32)
    if il.fog > 0:  # farther rows (near the horizon) lose more contrast
        f = il.fog * (1.0 - 0.45 * _row_depth(H, scene.horizon))[..., None]
        img = img * (1.0 - f) + f * (0.75 * min(1.0, il.light * gain))
    return (np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


def render_ir(scene: Scene, things: list[Thing], il: Illumination, rng: np.random.Generator) -> np.ndarray:
    w, h = scene.config.ir_size
    _sx, sy, _tx, ty = scene.ir_affine
    img = scene.ir_base.copy()
    img += (0.14 * il.light) * (_row_depth(h, scene.horizon * sy + ty) > 0)  # sun-warmed ground by day
    for th in things:
        _draw(img, th, scene.ir_affine, "ir")
    if il.fog > 0:
        img = img * (1.0 - 0.2 * il.fog) + (0.2 * il.fog) * float(img.mean())
    img = cv2.GaussianBlur(img, (0, 0), sigmaX=0.8)  # thermal optics are softer than visible ones
    img += rng.standard_normal((1, w), dtype=np.float32) * 0.012  # column fixed-pattern noise
    img += rng.standard_normal((h, w), dtype=np.float32) * 0.015
    return (np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
