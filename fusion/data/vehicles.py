"""Vehicles as both cameras see them: a side profile per style (car, SUV, van, bus) extruded across the width, so an
elevated camera sees the roof, bonnet and raked glass shaded by how much they face up, and one side with windows,
pillars, a lit shoulder, a dark sill, arches, tyres and rims; bumpers, plates and lamps on the end it faces; a contact
shadow under it. Warm bonnet, tyres and exhaust, cool glass in LWIR. The details that made a real-photo detector see
them are measured by benchmarks/eval_realism.py."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from fusion.data.camera import Camera
from fusion.data.prims import Drawing, Prim

if TYPE_CHECKING:
    from fusion.data.population import Thing

# Side profiles of each vehicle style, rear bottom → over the top → front bottom: (along, as a fraction of L; height,
# m; half-width, as a fraction of W/2; what the surface from this point to the next is: "body" paint, "glass", None
# for the closing underside). Extruded across the width, each segment is a surface (tailgate, boot lid, rear window,
# roof, windscreen, bonnet, nose) shaded by how much it faces up, with roofs narrower than the body (tumblehome):
# a COCO detector found no vehicle drawn as upright stacked boxes (benchmarks/eval_realism.py).
_PROFILES = {
    0: ((-0.5, 0.3, 1.0, "body"), (-0.5, 0.76, 1.0, "body"), (-0.46, 0.88, 0.97, "body"), (-0.3, 0.93, 0.95, "glass"),
        (-0.16, 1.4, 0.8, "body"), (0.1, 1.42, 0.8, "glass"), (0.28, 0.96, 0.95, "body"), (0.46, 0.84, 0.97, "body"),
        (0.5, 0.7, 1.0, "body"), (0.5, 0.3, 1.0, None)),  # car
    1: ((-0.5, 0.35, 1.0, "body"), (-0.5, 1.05, 1.0, "glass"), (-0.47, 1.68, 0.88, "body"),
        (0.16, 1.72, 0.88, "glass"), (0.3, 1.12, 0.97, "body"), (0.47, 1.02, 0.98, "body"), (0.5, 0.85, 1.0, "body"),
        (0.5, 0.35, 1.0, None)),  # SUV
    2: ((-0.5, 0.3, 1.0, "body"), (-0.5, 2.05, 1.0, "body"), (-0.48, 2.15, 0.97, "body"), (0.28, 2.15, 0.97, "glass"),
        (0.4, 1.3, 1.0, "body"), (0.48, 1.12, 1.0, "body"), (0.5, 0.95, 1.0, "body"), (0.5, 0.3, 1.0, None)),  # van
    3: ((-0.5, 0.35, 1.0, "body"), (-0.5, 2.0, 1.0, "glass"), (-0.5, 2.7, 1.0, "body"), (-0.49, 3.0, 0.98, "body"),
        (0.49, 3.0, 0.98, "body"), (0.5, 2.7, 1.0, "glass"), (0.5, 1.2, 1.0, "body"), (0.5, 0.35, 1.0, None)),  # bus
}
# Side windows of each style: (rear bottom, rear top, front top, front bottom) as (along fraction, height m), and the
# pillars between them (along fractions); the belt line (m) under the windows, where the lit shoulder ends.
_WINDOWS = {
    0: (((-0.28, 0.98), (-0.16, 1.35), (0.08, 1.37), (0.25, 1.0)), (-0.03,), 0.95),
    1: (((-0.46, 1.12), (-0.45, 1.62), (0.15, 1.65), (0.27, 1.15)), (-0.17, 0.04), 1.08),
    2: (((0.2, 1.32), (0.2, 1.98), (0.29, 1.98), (0.37, 1.34)), (), 1.2),
    3: (((-0.45, 1.3), (-0.45, 2.55), (0.44, 2.55), (0.44, 1.3)), (-0.31, -0.17, -0.03, 0.11, 0.25, 0.39), 1.25),
}
_GLASS = (0.13, 0.11, 0.1)
_SKY = (0.42, 0.38, 0.34)  # what glass facing up reflects (BGR)
_TYRE, _RIM, _BUMPER = (0.04, 0.04, 0.045), (0.45, 0.45, 0.47), (0.1, 0.1, 0.11)
_PLATE = {True: (0.92, 0.92, 0.9), False: (0.15, 0.8, 0.9)}  # front: white, back: yellow (BGR)


def vehicle(th: Thing, cam: Camera, t: float) -> Drawing | None:
    L, Wd, _ = th.size
    c, s = math.cos(th.heading), math.sin(th.heading)
    cam_pos = np.array([0.0, 0.0, cam.height])

    def world(al, ac, z):  # along (m, + forward), across (m, + left), height (m) → world point (3,)
        return np.array([th.x + al * c - ac * s, th.y + al * s + ac * c, z])

    def proj(pts) -> np.ndarray | None:  # world points (n, 3) → pixels (n, 2); None when one is behind the camera
        p = np.array(pts)
        u, v, d = cam.project(p[:, 0], p[:, 1], p[:, 2])
        return None if (d < 0.5).any() else np.stack([u, v], 1)

    def ring(centre: Callable[[float, float], np.ndarray], n: int) -> np.ndarray | None:
        return proj([centre(math.cos(a), math.sin(a)) for a in np.linspace(0, 2 * math.pi, n, endpoint=False)])

    def faces_camera(normal, centre) -> bool:
        return float(np.dot(normal, cam_pos - centre)) > 0

    paint, t_body = th.colors[0], 0.4 + 0.06 * th.warm
    profile, (window, pillars, belt) = _PROFILES[th.style], _WINDOWS[th.style]
    prims: list[Prim] = []
    shadow = proj([world(al * L * 0.5, ac * Wd * 0.53, 0.0) for al, ac in ((1, 1), (-1, 1), (-1, -1), (1, -1))])
    if shadow is not None:  # the dark ground under the vehicle, which anchors it to the road (RGB only)
        prims.append(Prim("poly", shadow, (0.03, 0.03, 0.035), None))
    faces: list[tuple[float, list[Prim]]] = []  # (distance to the camera, shapes): painted far to near
    corners: list[np.ndarray] = []
    for (a0, z0, w0, role), (a1, z1, w1, _) in itertools.pairwise(profile):
        if role is None:
            continue
        q = [world(a0 * L, w0 * Wd / 2, z0), world(a1 * L, w1 * Wd / 2, z1), world(a1 * L, -w1 * Wd / 2, z1),
             world(a0 * L, -w0 * Wd / 2, z0)]
        along, up = (a1 - a0) * L, z1 - z0  # the segment's direction in the side plane (clockwise) → outward normal
        n_al, n_z = -up, along
        norm = math.hypot(n_al, n_z) or 1.0
        n_al, n_z = n_al / norm, n_z / norm
        centre = sum(q) / 4
        if not faces_camera(np.array([n_al * c, n_al * s, n_z]), centre):
            continue
        pts = proj(q)
        if pts is None:
            return None
        corners.append(pts)
        shade = 0.6 + 0.4 * max(n_z, 0.0)  # lit from above: roof and bonnet brightest, ends darkest
        if role == "glass":  # dark glass that reflects more sky the more it faces up
            m = 0.1 + 0.3 * max(n_z, 0.0)
            face = [Prim("poly", pts, tuple((1 - m) * g + m * r for g, r in zip(_GLASS, _SKY, strict=True)), 0.2)]
        else:
            hot = a0 >= 0.25 and a1 >= 0.25 and z0 < belt + 0.3  # the bonnet and nose over the engine
            face = [Prim("poly", pts, tuple(p * shade for p in paint), t_body + (0.35 * th.warm if hot else 0.0))]
        if a0 == a1 and abs(a0) == 0.5 and min(z0, z1) < 0.5:  # the lowest end face: lamps, plates
            face += _end(th, world, proj, ring, front=a0 > 0, top=max(z0, z1), t_body=t_body)
        faces.append((float(np.linalg.norm(centre - cam_pos)), face))
    for sign in (1, -1):  # the side facing the camera: the profile itself, windows, shoulder, wheels
        normal = np.array([-s * sign, c * sign, 0.0])
        if not faces_camera(normal, world(0.0, sign * Wd / 2, belt)):
            continue
        side = proj([world(a * L, sign * w * Wd / 2, z) for a, z, w, _ in profile])
        if side is None:
            return None
        corners.append(side)
        face = [Prim("poly", side, tuple(p * 0.78 for p in paint), t_body)]
        face += _side(th, world, proj, ring, sign=sign, window=window, pillars=pillars, belt=belt, t_body=t_body,
                      corners=corners)
        faces.append((float(np.linalg.norm(world(0.0, sign * Wd / 2, belt) - cam_pos)), face))
    if not corners:
        return None
    for _, face in sorted(faces, key=lambda f: -f[0]):
        prims += face
    allp = np.concatenate(corners)
    depth = float(cam.project(th.x, th.y, 0.0)[2])
    return Drawing(prims, depth, (float(allp[:, 0].min()), float(allp[:, 1].min()), float(allp[:, 0].max()),
                                  float(allp[:, 1].max())))


def _side(th: Thing, world, proj, ring, *, sign: int, window, pillars, belt: float, t_body: float,
          corners: list) -> list[Prim]:
    """What is on the side facing the camera: a lit shoulder under the belt line, a darker sill, side windows (upper
    half reflecting the sky) with pillars in the paint colour, and wheels (dark arches, tyres, rims)."""
    L, Wd, _ = th.size
    paint, out = th.colors[0], []
    sc = sign * Wd / 2 * 1.005  # just outside the side, so it is drawn on it
    low, high = -0.49 * L, 0.49 * L

    def band(z0: float, z1: float, shade: float, add: float) -> None:
        pts = proj([world(a, sc, z) for a, z in ((low, z0), (high, z0), (high, z1), (low, z1))])
        if pts is not None:
            out.append(Prim("poly", pts, tuple(min(1.0, p * 0.78 * shade + add) for p in paint), t_body))

    band(belt - 0.22, belt, 1.35, 0.06)  # the shoulder catches the light
    band(0.3, 0.42, 0.6, 0.0)  # the sill in shadow
    top_w = 0.9 if th.style in (0, 1) else 1.0  # windows lean in with the roof
    win = proj([world(a * L, sc * top_w, z) for a, z in window])
    if win is not None:
        out.append(Prim("poly", win, _GLASS, 0.2))
        mid = (win[:2] + win[:1:-1]) / 2  # corners bottom, top, top, bottom: the upper half reflects the sky
        out.append(Prim("poly", np.concatenate([mid[:1], win[1:3], mid[1:]]),
                        tuple(0.5 * g + 0.5 * r for g, r in zip(_GLASS, _SKY, strict=True)), 0.15))
    z_lo, z_hi = window[0][1], window[1][1]
    for a in pillars:
        pil = proj([world(a * L + d, sc * top_w, z) for d, z in ((-0.04 * L, z_lo), (0.04 * L, z_lo),
                                                                 (0.03 * L, z_hi), (-0.03 * L, z_hi))])
        if pil is not None:
            out.append(Prim("poly", pil, tuple(p * 0.7 for p in paint), t_body))
    axles = (-0.33 * L, 0.33 * L) if th.style != 3 else (-0.3 * L, 0.28 * L)
    for al in axles:  # wheels: arches, tyres and rims, circles in the side plane
        arch = proj([world(al + 0.42 * math.cos(a), sc, 0.33 + 0.42 * math.sin(a)) for a in np.linspace(0, math.pi, 9)])
        if arch is not None:
            out.append(Prim("poly", arch, (0.02, 0.02, 0.02), t_body))
        for r, col, temp in ((0.33, _TYRE, 0.45 + 0.4 * th.warm), (0.19, _RIM, 0.5 + 0.4 * th.warm)):
            pw = ring(lambda x, y, al=al, r=r: world(al + r * x, sc * 1.005, 0.33 + r * y), 14)
            if pw is not None:
                out.append(Prim("poly", pw, col, temp))
                corners.append(pw)
    return out


def _end(th: Thing, world, proj, ring, *, front: bool, top: float, t_body: float) -> list[Prim]:
    """The front or back face: bumper, number plate, head or tail lamps (self-luminous when driving), exhaust."""
    L, Wd, _ = th.size
    end, w, out = (0.5 if front else -0.5) * L * 1.005, Wd / 2, []
    bumper = proj([world(end, ac, z) for ac, z in ((w, 0.3), (-w, 0.3), (-w, 0.44), (w, 0.44))])
    if bumper is not None:
        out.append(Prim("poly", bumper, _BUMPER, t_body))
    plate = proj([world(end * 1.002, ac, z) for ac, z in ((0.26, 0.46), (-0.26, 0.46), (-0.26, 0.58), (0.26, 0.58))])
    if plate is not None:
        out.append(Prim("poly", plate, _PLATE[front], t_body))
    lamp_z = min(top - 0.1, 0.75)
    for ac in (-0.36 * Wd, 0.36 * Wd):
        pl = ring(lambda x, y, ac=ac: world(end, ac + 0.1 * x, lamp_z + 0.07 * y), 8)
        if pl is not None:
            out.append(Prim("poly", pl, (0.9, 0.95, 1.0) if front else (0.1, 0.1, 0.85), 0.55,
                            emit=th.lights * (1.0 if front else 0.35)))
    if not front and th.warm > 0.3:  # exhaust: the hottest spot of a running car
        pe = ring(lambda x, y: world(end * 1.01, 0.3 * Wd + 0.06 * x, 0.3 + 0.06 * y), 8)
        if pe is not None:
            out.append(Prim("poly", pe, (0.05, 0.05, 0.05), 0.55 + 0.45 * th.warm))
    return out
