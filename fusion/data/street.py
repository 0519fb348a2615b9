"""A street seen by an elevated camera: layout, and the static background both cameras see (ray-cast per pixel).

Street coordinates: `a` metres along the main road, `b` metres across it (0 on its centre line). The camera is over
the near pavement; the main road, its kerbs and pavements, an optional cross street, a zebra crossing and façades
with windows and shopfronts are procedural functions of (a, b) or (a, z), evaluated where each pixel's ray lands.
Stripes are box-filtered by the pixel's footprint on the ground, so far tiles fade to their mean instead of aliasing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from fusion.data.camera import Camera

SKY, ROAD, KERB, PAVEMENT, FACADE, ROOF = range(6)  # region codes of `Background.region`


@dataclass(frozen=True)
class Lamp:
    a: float
    b: float  # where the head hangs (over the road edge)
    height: float
    post_b: float  # where the post stands


@dataclass(frozen=True)
class Street:
    yaw: float  # direction of the main road in the world XY plane
    cam_b: float  # the camera's own b (it is at a = 0)
    road: float  # main road width
    pavement: float  # pavement width on each side
    cross_at: float | None  # a of a cross street's centre line, or None
    cross_road: float
    zebra_at: float  # a of the zebra crossing's centre
    tile: float  # pavement tile size
    lamps: tuple[Lamp, ...]
    lamp_power: float
    lamp_colour: tuple[float, float, float]  # BGR of the street lamps' light
    seed: int

    @property
    def facade_b(self) -> float:
        return self.road / 2 + self.pavement

    def to_street(self, x, y):
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return x * c + y * s, -x * s + y * c + self.cam_b

    def to_world(self, a, b):
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        b = b - self.cam_b
        return a * c - b * s, a * s + b * c

    def in_cross(self, a, margin: float = 0.0):
        if self.cross_at is None:
            return np.zeros_like(np.asarray(a), bool)
        return np.abs(np.asarray(a) - self.cross_at) < self.cross_road / 2 + margin

    def region(self, a, b):
        """Ground region code at street points (arrays)."""
        a, b = np.asarray(a), np.abs(np.asarray(b))
        cross = self.in_cross(a)
        out = np.full(a.shape, ROOF, np.int8)
        out[(b < self.facade_b) | self.in_cross(a, self.pavement)] = PAVEMENT
        out[(b < self.road / 2 + 0.22) & ~cross] = KERB
        out[(b < self.road / 2) | cross] = ROAD
        return out

    def lamp_light(self, a, b, z=0.0):
        """Irradiance from the street lamps at street points (0.1-0.3 under a lamp; daylight is 1)."""
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        out = np.zeros(np.broadcast(a, b).shape, np.float32)
        for lp in self.lamps:
            dz = np.maximum(lp.height - z, 0.3)
            d2 = (a - lp.a) ** 2 + (b - lp.b) ** 2 + dz ** 2
            out += self.lamp_power * (0.35 + 0.65 * dz / np.sqrt(d2)) / d2  # cosine falloff, with some spill
        return out


def sample_street(cam: Camera, rng: np.random.Generator, seed: int) -> Street:
    road = float(rng.uniform(6.0, 11.0))
    pavement = float(rng.uniform(2.5, 5.5))
    view = rng.choice(["across", "diagonal", "along"], p=[0.35, 0.4, 0.25])
    yaw = {"across": rng.uniform(-0.3, 0.3), "diagonal": rng.uniform(0.45, 1.05),
           "along": rng.uniform(1.25, 1.5)}[view] * rng.choice([-1, 1])
    cam_b = -(road / 2 + pavement * rng.uniform(0.1, 0.9))
    cross_at = float(rng.uniform(-15, 35)) if rng.random() < 0.5 else None
    spacing, side = rng.uniform(16, 28), rng.choice([-1, 1, 0])
    lamps = []
    for k, a in enumerate(np.arange(rng.uniform(-60, -40), 120, spacing)):
        for s in ([1, -1] if side == 0 else [side * (-1) ** k]):
            post = s * (road / 2 + 0.5)
            lamps.append(Lamp(float(a), post - s * rng.uniform(0.8, 1.6), float(rng.uniform(5.5, 8.5)), post))
    colour = (0.35, 0.7, 1.0) if rng.random() < 0.45 else (0.9, 0.95, 0.95)  # sodium or LED
    return Street(yaw=float(yaw), cam_b=float(cam_b), road=road, pavement=pavement, cross_at=cross_at,
                  cross_road=float(rng.uniform(6, 9)), zebra_at=float(rng.uniform(-5, 25)),
                  tile=float(rng.choice([0.3, 0.4, 0.5, 0.6])), lamps=tuple(lamps),
                  lamp_power=float(rng.uniform(4, 10)), lamp_colour=colour, seed=seed)


def _stripe(x, period: float, width: float, footprint):
    """Box-filtered 0/1 stripe of `width` every `period` metres, at filter width `footprint` (m)."""
    hard = (np.mod(x, period) < width).astype(np.float32)
    f = np.clip(footprint / period, 0.0, 1.0).astype(np.float32)
    return hard * (1 - f) + (width / period) * f


@dataclass
class Hits:
    """Where each pixel's ray lands (arrays of the image's shape)."""

    region: np.ndarray  # int8 region code
    a: np.ndarray
    b: np.ndarray
    z: np.ndarray  # height on a façade, 0 on the ground
    dist: np.ndarray  # metres from the camera
    footprint: np.ndarray  # metres per pixel at the hit


def cast(cam: Camera, st: Street, u: np.ndarray, v: np.ndarray, heights) -> Hits:
    rx, ry, rz = cam.rays(u, v)
    ra, rb = st.to_street(rx, ry)
    rb = rb - st.cam_b  # a direction: no offset
    t_ground = np.where(rz < -1e-6, cam.height / np.maximum(-rz, 1e-6), np.inf)
    t = t_ground.copy()
    region = np.full(u.shape, SKY, np.int8)
    a = np.zeros(u.shape, u.dtype)
    b = np.zeros(u.shape, u.dtype)
    z = np.zeros(u.shape, u.dtype)
    facade = np.zeros(u.shape, bool)
    B = st.facade_b
    with np.errstate(divide="ignore", invalid="ignore"):
        for s in (1.0, -1.0):  # the main street's two façades (planes b = ±B)
            ts = (s * B - st.cam_b) / rb
            ah, zh = ts * ra, cam.height + ts * rz
            ok = (ts > 0) & (zh >= 0) & (zh <= heights(ah, s)) & ~st.in_cross(ah, st.pavement) & (ts < t)
            t, facade, a, b, z = (np.where(ok, ts, t), facade | ok, np.where(ok, ah, a), np.where(ok, s * B, b),
                                  np.where(ok, zh, z))
        if st.cross_at is not None:  # the cross street's façades (planes a = cross ± half width), beyond |b| > B
            for s in (1.0, -1.0):
                ap = st.cross_at + s * (st.cross_road / 2 + st.pavement)
                ts = ap / ra
                bh, zh = st.cam_b + ts * rb, cam.height + ts * rz
                ok = (ts > 0) & (np.abs(bh) > B) & (zh >= 0) & (zh <= heights(bh + 500.0 * s, s)) & (ts < t)
                t, facade, a, b, z = (np.where(ok, ts, t), facade | ok, np.where(ok, ap, a), np.where(ok, bh, b),
                                      np.where(ok, zh, z))
    ground = ~facade & np.isfinite(t) & (t < 400)
    tg = np.where(ground, t, 0.0)  # rays that never meet the ground have t = inf: inf * 0 warned on every render
    a = np.where(ground, tg * ra, a)
    b = np.where(ground, st.cam_b + tg * rb, b)
    region[ground] = st.region(a[ground], b[ground])
    region[facade] = FACADE
    norm = np.sqrt(rx * rx + ry * ry + rz * rz)
    dist = np.where(np.isfinite(t), t * norm, 1e4)
    graze = np.where(facade, np.abs(rb) / norm + 0.05, -rz / norm)
    footprint = dist / cam.focal / np.clip(graze, 0.05, 1.0)
    return Hits(region, a, b, z, dist, footprint)


def building_heights(st: Street, rng: np.random.Generator):
    """Façade height as a function of (a, side): segments of 7-20 m with 2-6 storeys."""
    edges = np.cumsum(rng.uniform(7, 20, 40)) - 150.0
    h = rng.choice([6.5, 9.8, 13.1, 16.4, 19.7], size=(2, 41))

    def heights(a, side):
        return h[0 if side > 0 else 1][np.searchsorted(edges, a)]
    return heights, edges


@dataclass
class Background:
    albedo: np.ndarray  # (H, W, 3) float32 BGR reflectance
    emission: np.ndarray  # (H, W, 3) float32 light emitted at night (lit windows, shopfronts)
    lamp: np.ndarray  # (H, W) float32 street-lamp irradiance
    dist: np.ndarray  # (H, W) float32 metres, for fog
    sky: np.ndarray  # (H, W) bool


def _palette(rng: np.random.Generator, choices) -> np.ndarray:
    return np.asarray(choices[int(rng.integers(len(choices)))], np.float32) * rng.uniform(0.85, 1.15)


_WALLS = [(0.62, 0.68, 0.72), (0.45, 0.5, 0.6), (0.3, 0.38, 0.55), (0.7, 0.72, 0.72), (0.5, 0.5, 0.5),
          (0.55, 0.62, 0.68), (0.35, 0.35, 0.38)]
_PAVING = [(0.46, 0.48, 0.5), (0.5, 0.56, 0.6), (0.38, 0.42, 0.55), (0.55, 0.55, 0.55)]


def _windows(a, z, edges, footprint, rng_seed: int):
    """(window mask 0..1, lit 0/1, shopfront 0/1) on façades at (a, z)."""
    seg = np.searchsorted(edges, a)
    bay = 2.4 + 0.8 * ((seg * 7919 + rng_seed) % 5) / 4  # window spacing per building
    upper = (z > 3.4) & (np.mod(z - 3.4, 3.3) > 1.0) & (np.mod(z - 3.4, 3.3) < 2.6)
    win = upper * _stripe(a + 0.3 * seg, bay, 0.55 * bay, footprint)
    shop = ((z > 0.4) & (z < 2.9)).astype(np.float32) * _stripe(a + 0.5 * seg, 6.0, 5.0, footprint)
    cell = (np.floor(a / bay) * 31 + np.floor((z - 3.4) / 3.3) * 17 + seg * 13 + rng_seed) % 10
    lit = (cell < 3).astype(np.float32)
    return win.astype(np.float32), lit, shop


def background(cam: Camera, st: Street, hits: Hits, edges, rng: np.random.Generator) -> Background:
    H, W = hits.region.shape
    reg, a, b, fp = hits.region, hits.a, hits.b, hits.footprint
    tex = 1.0 + 0.22 * _world_noise(a, b + hits.z, rng)
    asphalt = np.float32(rng.uniform(0.14, 0.24))
    albedo = np.empty((H, W, 3), np.float32)
    albedo[:] = np.array([0.75, 0.62, 0.5], np.float32)  # sky; lit by daylight only
    # Each region's albedo is computed on its own pixels only (masked assignment: a third of the time of np.where).
    road, kerb, pavement, roof, facade = (reg == c for c in (ROAD, KERB, PAVEMENT, ROOF, FACADE))
    ar, br, fr = a[road], b[road], fp[road]
    mark = np.maximum(_stripe(br + st.road / 2, 1.0, 0.5, fr) * (np.abs(ar - st.zebra_at) < 2.0),
                      _stripe(ar, 9.0, 3.0, fr) * (np.abs(br) < 0.08))  # zebra crossing, centre line
    mark = np.maximum(mark, (np.abs(np.abs(br) - st.road / 2 + 0.35) < 0.07) * (~st.in_cross(ar)))  # edge lines
    mark = mark * (np.abs(br) < st.road / 2)
    albedo[road] = (asphalt * tex[road] + 0.6 * mark)[:, None] * np.array([1.0, 1.0, 1.02], np.float32)
    albedo[kerb] = np.float32(0.5) * tex[kerb][:, None]
    ap, bp, fpp = a[pavement], b[pavement], fp[pavement]
    pave, grout = _palette(rng, _PAVING), np.maximum(_stripe(ap, st.tile, 0.025, fpp), _stripe(bp, st.tile, 0.025, fpp))
    albedo[pavement] = pave * (tex[pavement] * (1 - 0.3 * grout))[:, None]
    albedo[roof] = np.float32(0.25) * tex[roof][:, None]
    win, lit, shop = _windows(a, hits.z, edges, fp, st.seed % 1000)
    walls = np.stack([_palette(rng, _WALLS) for _ in range(len(edges) + 1)])
    af, pane = a[facade], np.maximum(win, shop)[facade][:, None]
    wall = walls[np.searchsorted(edges, af) % len(walls)] * tex[facade][:, None]
    glass = np.float32(0.1) + 0.1 * (hits.z[facade][:, None] / 20.0)
    albedo[facade] = wall * (1 - pane) + glass * pane
    emission = ((reg == FACADE) * (win * lit * 0.22 + shop * 0.3))[..., None] * np.array([0.45, 0.75, 1.0], np.float32)
    # Lamp light varies slowly: evaluated on every 4th pixel and interpolated (a third of the background's time).
    q = (slice(2, None, 4), slice(2, None, 4))
    lamp = st.lamp_light(a[q], b[q], hits.z[q])
    lamp = cv2.resize(lamp, (W, H), interpolation=cv2.INTER_LINEAR) * (reg != SKY)
    return Background(albedo=np.clip(albedo, 0, 1).astype(np.float32), emission=emission.astype(np.float32),
                      lamp=lamp, dist=hits.dist.astype(np.float32), sky=reg == SKY)


def thermal(st: Street, hits: Hits, edges, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(ambient temperature 0..1, sun-heating weight) at IR resolution: warm asphalt keeps the day's heat, the sky
    is cold, glass reflects the cold sky, some windows and shopfronts are heated."""
    reg, a, b = hits.region, hits.a, hits.b
    tex = _world_noise(a, b + hits.z, rng)
    base = np.full(reg.shape, rng.uniform(0.04, 0.1), np.float32)
    road_t, pave_t = rng.uniform(0.42, 0.52), rng.uniform(0.36, 0.45)
    base[reg == ROAD] = road_t
    base[reg == KERB] = pave_t - 0.03
    base[reg == PAVEMENT] = pave_t
    base[reg == ROOF] = 0.3
    win, lit, shop = _windows(a, hits.z, edges, hits.footprint, st.seed % 1000)
    wall_t = rng.uniform(0.3, 0.4)
    fac = wall_t * (1 - win) + win * (0.22 + 0.38 * lit) + shop * 0.12
    base = np.where(reg == FACADE, fac, base)
    base += 0.04 * tex * (reg != SKY)
    sun = np.where(reg == FACADE, 0.5, 1.0) * (reg != SKY)
    return base.astype(np.float32), sun.astype(np.float32)


def _world_noise(a, b, rng: np.random.Generator) -> np.ndarray:
    """Noise fixed to the street (stains, patches): two wrapping lattices (2 m, 0.25 m), bilinearly interpolated
    by cv2.remap (row = a / cell, column = b / cell)."""
    out = np.zeros(a.shape, np.float32)
    for cell, amp in ((2.0, 0.6), (0.25, 0.4)):
        grid = rng.standard_normal((256, 256)).astype(np.float32)
        rows = (np.nan_to_num(a / cell) % 256).astype(np.float32)
        cols = (np.nan_to_num(b / cell) % 256).astype(np.float32)
        out += amp * cv2.remap(grid, cols, rows, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    return np.clip(out, -2.0, 2.0) / 2.0
