"""Expose a `Scene` to both cameras: light, draw the objects far to near, then the sensors' own effects.

RGB: daylight (with its colour cast) plus street-lamp pools; lit windows, lamp heads and headlights emit and bloom;
auto-exposure compensates only partly (night frames stay dark, as real lit streets read 0.1-0.3), then shot, read
and rolling-shutter row noise, and fog that thickens with distance. Thermal: ambient temperatures (asphalt keeps
the day's heat, the sky is cold), the objects' temperatures, the soft optics and halo of an LWIR lens, fixed-pattern
and temporal noise, and automatic gain control that stretches each frame to its own range, as thermal cores do.
In both, body parts are shaded round (`paint_shaded`), not flat, and moving objects smear along their image motion
(`paint_moving`): over the exposure in RGB, which auto-exposure lengthens to 1/25 s at night, and over the
bolometer's thermal time constant in LWIR.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import cv2
import numpy as np

from fusion.data.prims import Drawing, Prim, extent

if TYPE_CHECKING:
    from fusion.data.population import Thing
    from fusion.data.scene import Illumination, Scene

_SHIFT = 4  # cv2 fixed-point bits: sub-pixel placement so slow motion is smooth in video
_ONE = 1 << _SHIFT
Affine = tuple[float, float, float, float]  # x' = x*sx + tx, y' = y*sy + ty
_IDENTITY: Affine = (1.0, 1.0, 0.0, 0.0)
_Q = 4  # glare and visibility are computed at 1/4 resolution
_RGB_ROUND = 0.45  # how much darker a body part is at its rim than on its axis (paint_shaded), RGB
_IR_ROUND = 0.1  # ... and in LWIR, as a fraction of its temperature
_BOLOMETER_S = 0.012  # thermal time constant of an uncooled microbolometer (8-14 ms): LWIR smears motion too


def paint(img: np.ndarray, q: Prim, value, aff: Affine = _IDENTITY) -> None:
    sx, sy, tx, ty = aff
    pts = np.round((q.pts * (sx, sy) + (tx, ty)) * _ONE).astype(np.int32)
    if q.shape == "poly":
        cv2.fillPoly(img, [pts], value, cv2.LINE_8, _SHIFT)
    elif q.shape == "line":
        cv2.line(img, tuple(pts[0]), tuple(pts[1]), value, max(1, round(q.width * sx)), cv2.LINE_8, _SHIFT)
    else:
        axes = (max(round(q.axes[0] * sx * _ONE), 1), max(round(q.axes[1] * sy * _ONE), 1))
        thick = max(1, round(q.width * sx)) if q.width > 0 else -1
        cv2.ellipse(img, tuple(pts[0]), axes, 0, 0, 360, value, thick, cv2.LINE_8, _SHIFT)


def paint_shaded(img: np.ndarray, q: Prim, value, aff: Affine, dark: float) -> None:
    """`paint`, with the prim's own volume: its value (the first 3 channels of a 4-channel canvas) falls by
    `dark` x d^2 towards its rim, d in 0..1 the distance from its axis (limbs: lines), its centre (heads: ellipses)
    or its midline row by row (torsos: polygons). In RGB that is light falling off round a body; in LWIR it is the
    lower emissivity at grazing angles, which gives real people their darker outline."""
    sx, sy, tx, ty = aff
    pts = q.pts * (sx, sy) + (tx, ty)  # (n, 2) image px
    pad = 2.0 + (q.width * sx if q.shape == "line" else 0.0) + (
        max(q.axes[0] * sx, q.axes[1] * sy) if q.shape == "ellipse" else 0.0)
    (x0, y0), (x1, y1) = np.floor(pts.min(0) - pad).astype(int), np.ceil(pts.max(0) + pad).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, img.shape[1]), min(y1, img.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    paint(mask, q, 1, (sx, sy, tx - x0, ty - y0))
    yy, xx = np.nonzero(mask)
    if not len(yy):
        return
    if q.shape == "line":
        (ax, ay), (bx, by) = pts - (x0, y0)
        n = np.hypot(bx - ax, by - ay) or 1.0
        d = np.abs((xx - ax) * (by - ay) - (yy - ay) * (bx - ax)) / n / (max(1, round(q.width * sx)) / 2)
    elif q.shape == "ellipse":
        cx, cy = pts[0] - (x0, y0)
        d = np.hypot((xx - cx) / max(q.axes[0] * sx, 0.5), (yy - cy) / max(q.axes[1] * sy, 0.5))
    else:
        rows = mask.astype(bool)
        left = rows.argmax(1)
        right = rows.shape[1] - 1 - rows[:, ::-1].argmax(1)
        mid, half = (left + right) / 2, np.maximum((right - left) / 2, 0.5)
        d = np.abs(xx - mid[yy]) / half[yy]
    shade = (1.0 - dark * np.clip(d, 0.0, 1.0) ** 2).astype(np.float32)  # (k,) per covered pixel
    region = img[y0:y1, x0:x1]
    v = np.asarray(value, np.float32)
    if img.ndim == 2:
        region[yy, xx] = v * shade
    else:
        region[yy, xx] = v
        region[yy, xx, :3] = v[:3] * shade[:, None]


def exposure_s(light: float) -> float:
    """RGB exposure time: auto-exposure lengthens it as the light falls, up to the frame time (1/25 s) at night."""
    return float(np.clip(0.004 / max(light, 1e-3), 0.001, 0.04))


def motion(scene: Scene, th: Thing, seconds: float, aff: Affine = _IDENTITY) -> tuple[float, float]:
    """(dx, dy) px under `aff`: how far `th` moves in the image during `seconds` centred on now (at mid-height)."""
    if th.speed <= 0:
        return 0.0, 0.0
    half = 0.5 * th.speed * seconds
    hx, hy, z = half * math.cos(th.heading), half * math.sin(th.heading), 0.5 * th.size[2]
    u0, v0, d0 = scene.camera.project(th.x - hx, th.y - hy, z)
    u1, v1, d1 = scene.camera.project(th.x + hx, th.y + hy, z)
    if min(d0, d1) < 1.0:  # passing under the lens: no meaningful image motion
        return 0.0, 0.0
    return float(u1 - u0) * aff[0], float(v1 - v0) * aff[1]


def paint_moving(img: np.ndarray, d: Drawing, move: tuple[float, float], aff: Affine,
                 draw: Callable[[], None]) -> None:
    """`draw()` the object `d`, smeared by `move` (dx, dy) px: what it paints is spread along its motion with a line
    kernel (the shutter is open all along it) and laid over what was there before, as a moving object is seen."""
    dx, dy = move
    if math.hypot(dx, dy) < 1.0:
        draw()
        return
    sx, sy, tx, ty = aff
    x1, y1, x2, y2 = extent(d.prims, labelled=False)
    pad_x, pad_y = abs(dx) / 2 + 3, abs(dy) / 2 + 3
    x0, y0 = max(int(x1 * sx + tx - pad_x), 0), max(int(y1 * sy + ty - pad_y), 0)
    x3, y3 = min(int(x2 * sx + tx + pad_x) + 1, img.shape[1]), min(int(y2 * sy + ty + pad_y) + 1, img.shape[0])
    if x3 <= x0 or y3 <= y0:
        draw()
        return
    before = img[y0:y3, x0:x3].copy()
    draw()
    after = img[y0:y3, x0:x3]
    changed = after != before
    mask = (changed.any(-1) if changed.ndim == 3 else changed).astype(np.float32)  # (h, w) what the object covers
    r = math.ceil(max(abs(dx), abs(dy)) / 2) + 1  # kernel half-size, px
    kernel = np.zeros((2 * r + 1, 2 * r + 1), np.uint8)
    cv2.line(kernel, (round((r - dx / 2) * _ONE), round((r - dy / 2) * _ONE)),
             (round((r + dx / 2) * _ONE), round((r + dy / 2) * _ONE)), 255, 1, cv2.LINE_8, _SHIFT)
    k = kernel.astype(np.float32) / max(float(kernel.sum()), 1.0)
    cover = cv2.filter2D(mask, -1, k, borderType=cv2.BORDER_CONSTANT)
    seen = cv2.filter2D(after * (mask[..., None] if after.ndim == 3 else mask), -1, k,
                        borderType=cv2.BORDER_CONSTANT)
    cover = cover[..., None] if after.ndim == 3 else cover
    # Where the smear does not reach, what was there stays exact (filter2D leaves ~1e-8 of round-off).
    after[...] = np.where(cover > 1e-4, before * (1.0 - cover) + seen, before)


def _cast(light: float) -> np.ndarray:
    """Daylight colour (BGR): warm at dusk, blue-grey at night."""
    dusk = float(np.clip(1.0 - abs(light - 0.3) / 0.25, 0.0, 1.0))
    night = float(np.clip((0.15 - light) / 0.15, 0.0, 1.0))
    return np.array([1.0 - 0.3 * dusk + 0.15 * night, 1.0 - 0.1 * dusk, 1.0 + 0.15 * dusk - 0.2 * night], np.float32)


def lamps_on(light: float) -> float:
    return float(np.clip((0.5 - light) / 0.35, 0.0, 1.0))


def render_rgb(scene: Scene, drawn: list[tuple[Thing, Drawing]], il: Illumination,
               rng: np.random.Generator) -> tuple[np.ndarray, list[float]]:
    """(H, W, 3) uint8 BGR, and for each drawn object the fraction of it left visible by nearer ones."""
    W, H = scene.config.rgb_size
    bg, st = scene.background, scene.street
    on, daylight = lamps_on(il.light), il.light * _cast(il.light)
    lamp_rgb = np.asarray(st.lamp_colour, np.float32) * on
    radiance = bg.albedo * (daylight + bg.lamp[..., None] * lamp_rgb) + bg.emission * on
    radiance[bg.sky] = bg.albedo[bg.sky] * daylight * 1.15 + 0.012
    canvas = np.dstack([radiance, bg.dist]).astype(np.float32)  # (H, W, 4): B, G, R, distance (for fog)
    glow = np.zeros((H // _Q, W // _Q), np.float32)
    ids = np.zeros((H // _Q, W // _Q), np.uint16)
    quarter = (1 / _Q, 1 / _Q, 0.0, 0.0)
    shutter = exposure_s(il.light)
    own_area = []
    for i, (th, d) in enumerate(drawn, start=1):
        a, b = st.to_street(th.x, th.y)
        irr = daylight + float(st.lamp_light(a, b, 1.0)) * lamp_rgb  # what lights the object (BGR)
        dist = float(np.hypot(th.x, th.y))

        def draw(i=i, d=d, irr=irr, dist=dist) -> None:
            for q in d.prims:
                if q.rgb is None:
                    continue
                col = np.asarray(q.rgb, np.float32) * irr
                if q.emit > 0:
                    col = col + np.asarray(q.rgb, np.float32) * q.emit * max(on, 0.25) * 1.5
                    paint(glow, q, q.emit * max(on, 0.25), quarter)
                if q.body:
                    paint_shaded(canvas, q, (*map(float, col), dist), _IDENTITY, _RGB_ROUND)
                else:
                    paint(canvas, q, (*map(float, col), dist))
                paint(ids, q, i, quarter)

        paint_moving(canvas, d, motion(scene, th, shutter), _IDENTITY, draw)
        own_area.append(_count(ids, d, i))
    # What is left of each object once the nearer ones are drawn over it: (pixels now) / (pixels when drawn).
    visible = [(_count(ids, d, i) / n) if n else 1.0
               for i, ((_, d), n) in enumerate(zip(drawn, own_area, strict=True), 1)]
    img = canvas[..., :3]
    for lp in st.lamps:  # lamp heads glare even when their posts are off-image
        x, y = st.to_world(lp.a, lp.b)
        u, v, depth = scene.camera.project(x, y, lp.height)
        if depth > 1.0 and -50 < u < W + 50 and -50 < v < H + 50:
            r = int(np.clip(0.2 * scene.camera.focal / depth / _Q, 1, 4))
            cv2.circle(glow, (int(u / _Q), int(v / _Q)), r, on, -1)
    glow += cv2.resize(bg.emission.mean(-1), (W // _Q, H // _Q), interpolation=cv2.INTER_AREA) * 0.15 * on
    # Auto-exposure compensates part of the darkness: gain ~ (target / mean radiance)^0.5, capped.
    mean = float(img[::8, ::8].mean())
    gain = float(np.clip((0.5 / max(mean, 1e-4)) ** 0.5, 0.6, 8.0))
    noise = rng.standard_normal((H, W, 3), dtype=np.float32)
    img = img + noise * (0.003 + 0.015 * np.sqrt(np.maximum(img, 0.0)))
    if on > 0:  # rolling-shutter row noise, visible once the gain is up
        img += rng.standard_normal((H, 1, 1), dtype=np.float32) * 0.002 * on
    img = img * gain
    halo = cv2.GaussianBlur(glow, (0, 0), sigmaX=max(W / 900, 0.8)) * 1.5
    halo += cv2.GaussianBlur(glow, (0, 0), sigmaX=max(W / 160, 1.0)) * 2.0
    img += cv2.resize(halo, (W, H), interpolation=cv2.INTER_LINEAR)[..., None] * np.array([0.8, 0.92, 1.0],
                                                                                           np.float32)
    if il.fog > 0:  # contrast lost with distance; the fog itself is lit by the day (or the lamps)
        f = il.fog * (1.0 - np.exp(-canvas[..., 3:4] / 12.0))
        img = img * (1.0 - f) + f * (0.8 * min(1.0, il.light * gain) + 0.1 * on)
    return (np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8), visible


def _count(ids: np.ndarray, d: Drawing, i: int) -> int:
    """Pixels (1/4 resolution) of object `i` inside its own extent."""
    pts = np.concatenate([q.pts for q in d.prims]) / _Q
    x1, y1 = np.clip(np.floor(pts.min(0)).astype(int) - 2, 0, None)
    x2, y2 = np.ceil(pts.max(0)).astype(int) + 3
    return int((ids[y1:y2, x1:x2] == i).sum())


def render_ir(scene: Scene, drawn: list[tuple[Thing, Drawing]], il: Illumination, rng: np.random.Generator
              ) -> np.ndarray:
    w, h = scene.config.ir_size
    img = scene.ir_base + (0.1 * il.light) * scene.ir_sun  # sun-warmed ground and walls by day
    for th, d in drawn:

        def draw(d=d) -> None:
            for q in d.prims:
                if q.ir is not None and q.body:
                    paint_shaded(img, q, float(q.ir), scene.ir_affine, _IR_ROUND)
                elif q.ir is not None:
                    paint(img, q, float(q.ir), scene.ir_affine)

        paint_moving(img, d, motion(scene, th, _BOLOMETER_S, scene.ir_affine), scene.ir_affine, draw)
    if il.fog > 0:  # long-wave IR is barely affected by fog: a little contrast lost
        img = img * (1.0 - 0.2 * il.fog) + (0.2 * il.fog) * float(img.mean())
    img = cv2.GaussianBlur(img, (0, 0), sigmaX=0.9)  # thermal optics are softer than visible ones
    img += 0.12 * cv2.GaussianBlur(np.maximum(img - 0.6, 0.0), (0, 0), sigmaX=max(w / 200, 1.0))  # halo
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    img -= 0.03 * r2.astype(np.float32)  # vignetting of the lens
    img += rng.standard_normal((1, w), dtype=np.float32) * 0.005  # column fixed-pattern noise
    img += rng.standard_normal((h, w), dtype=np.float32) * 0.012
    # Automatic gain control: stretch this frame's own range (never more than 1 / 0.35) to 8 bits.
    lo, hi = np.percentile(img[::4, ::4], (1.0, 99.7))
    hi = max(hi, lo + 0.35)
    img = (img - lo) / (hi - lo) * 0.9 + 0.04
    return (np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
