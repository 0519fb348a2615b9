"""What each object looks like to both cameras, as filled shapes (fusion/data/prims.py) with an RGB albedo and a
thermal temperature each.

People are articulated (head ≈ 1/7.5 of the height, a torso with sloping shoulders, arms and legs that swing with the
gait, clothing folds, bags, a face toward the camera) and shaded as round bodies (darker, cooler edges around a lit
front: a real-photo detector found 36 % of flat-shaded people, 42 % of shaded ones; benchmarks/eval_realism.py);
upright objects (people, poles, trees) are drawn on a plane facing the camera at their foot point; vehicles are in
fusion/data/vehicles.py.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from fusion.data.camera import Camera
from fusion.data.prims import Drawing, Prim, extent
from fusion.data.vehicles import vehicle

if TYPE_CHECKING:
    from fusion.data.population import Thing

class Upright:
    """A plane through the foot point (x, y) facing the camera: (lateral m, height m) → RGB px."""

    def __init__(self, cam: Camera, x: float, y: float):
        r = math.hypot(x, y) or 1.0
        self.cam, self.x, self.y, self.ex, self.ey = cam, x, y, y / r, -x / r  # ex, ey: image-right direction
        self.depth = float(cam.project(x, y, 0.0)[2])
        self.scale = cam.scale_at(self.depth)

    def pt(self, lat: float, z: float) -> tuple[float, float]:
        u, v, _ = self.cam.project(self.x + lat * self.ex, self.y + lat * self.ey, z)
        return float(u), float(v)

    def poly(self, pts, rgb, ir, **kw) -> Prim:
        return Prim("poly", np.array([self.pt(a, z) for a, z in pts]), rgb, ir, **kw)

    def line(self, p, q, width_m: float, rgb, ir, **kw) -> Prim:
        return Prim("line", np.array([self.pt(*p), self.pt(*q)]), rgb, ir, width=width_m * self.scale, **kw)

    def ellipse(self, c, rx_m: float, rz_m: float, rgb, ir, **kw) -> Prim:
        u, v = self.pt(*c)
        _, v_top = self.pt(c[0], c[1] + rz_m)
        return Prim("ellipse", np.array([[u, v]]), rgb, ir, axes=(rx_m * self.scale, abs(v - v_top)), **kw)

    def facing(self, heading: float) -> tuple[float, float, float]:
        """(side 0..1: how side-on, sign: +1 moving to image right, toward: +1 walking at the camera)."""
        hx, hy = math.cos(heading), math.sin(heading)
        lat = hx * self.ex + hy * self.ey
        r = math.hypot(self.x, self.y) or 1.0
        return abs(lat), 1.0 if lat >= 0 else -1.0, -(hx * self.x + hy * self.y) / r


def person(th: Thing, cam: Camera, t: float) -> Drawing:
    up = Upright(cam, th.x, th.y)
    H = th.size[2]
    k = H / 1.75  # body proportions scale with height
    side, sgn, toward = up.facing(th.heading)
    walking = th.speed > 0.2
    gait = th.phase + (2 * math.pi * 0.62 * th.speed * t if walking else 0.0)  # ~0.9 strides/s at 1.4 m/s
    amp = 1.0 if walking else 0.08
    skin, top, bottom, hair = th.colors[0], th.colors[1], th.colors[2], th.colors[3]
    t_skin, t_top = th.temp, th.temp - th.warm
    t_bottom, t_hair = t_top - th.legs, th.temp - 0.33
    sh, hp = k * (0.2 - 0.11 * side), k * (0.14 - 0.07 * side)  # half-widths of shoulders / hips (m)
    leg_w, arm_w = 0.17 * k, 0.11 * k  # clothed limbs (thinner ones read as sticks to a real-photo detector)
    hip_z, knee_z, sh_z = 0.53 * H, 0.285 * H, 0.815 * H
    prims: list[Prim] = []

    def limb(p, q, width: float, rgb, ir: float) -> None:  # a round limb: darker, cooler edges around a lit core
        for f, shade, cool in ((1.0, 0.72, 0.04), (0.75, 0.87, 0.02), (0.45, 1.0, 0.0)):
            prims.append(up.line(p, q, width * f, tuple(c * shade for c in rgb), ir - cool, body=f == 1.0))

    def leg(lat0: float, phase: float) -> None:
        stride = amp * math.sin(phase) * 0.5 * H * 0.45 * side * sgn
        foot = (lat0 * (1 - side) + stride, 0.04 * H)
        knee = (lat0 * (1 - side) + stride * 0.55 + 0.03 * sgn * side, knee_z)
        limb((lat0, hip_z), knee, leg_w, bottom, t_bottom)
        limb(knee, foot, leg_w * 0.85, bottom, t_bottom)
        prims.append(up.ellipse((foot[0] + 0.06 * sgn * side, 0.03 * H), 0.1 * k * (0.6 + 0.4 * side), 0.035 * H,
                                (0.08, 0.08, 0.09), t_hair - 0.1, body=True))

    def arm(lat0: float, phase: float) -> None:
        fwd = -amp * math.sin(phase) * 0.28 * H * 0.5 * side * sgn
        elbow = (lat0 * 1.05 + fwd * 0.5, 0.63 * H)
        hand = (lat0 * 1.08 + fwd, 0.45 * H)
        limb((lat0, sh_z - 0.02 * H), elbow, arm_w, top, t_top)
        limb(elbow, hand, arm_w * 0.85, skin if th.style & 4 else top, t_top + 0.05)
        prims.append(up.ellipse(hand, 0.045 * k, 0.04 * H, skin, t_skin, body=True))

    bag = th.style & 3
    if bag == 2 and toward >= 0:  # backpack behind the body
        prims.append(up.poly([(-0.17 * k - 0.12 * sgn * side, 0.52 * H), (0.17 * k - 0.12 * sgn * side, 0.52 * H),
                              (0.17 * k - 0.12 * sgn * side, 0.8 * H), (-0.17 * k - 0.12 * sgn * side, 0.8 * H)],
                             th.colors[4], t_top - 0.3))
    far_first = [(-1, 0.0), (1, math.pi)] if sgn > 0 else [(1, math.pi), (-1, 0.0)]
    for s, ph in far_first:
        leg(s * hp, gait + ph)
    coat = 0.33 * H if th.style & 8 else hip_z - 0.02 * H
    nw = 0.06 * k  # half-width of the neck: the shoulders slope from it down to the arms
    right = [(sh, sh_z - 0.01 * H), (sh * 0.95, 0.7 * H), (hp * 1.08, 0.6 * H), (hp * 1.15, coat)]
    torso = [(-nw, 0.85 * H), (nw, 0.85 * H), *right, *[(-a, z) for a, z in reversed(right)]]
    for f, shade, cool in ((1.0, 0.72, 0.04), (0.8, 0.87, 0.02), (0.55, 1.0, 0.0)):  # a round body: lit front,
        prims.append(up.poly([(a * f, z) for a, z in torso], tuple(c * shade for c in top), t_top - cool,
                             body=f == 1.0))  # darker and cooler edges
    for s, ph in far_first:
        arm(s * sh, gait + ph + math.pi)  # an arm swings against the leg of its side
    for f in (0.62, 0.72):  # clothing folds: cooler creases visible in LWIR
        prims.append(up.line((-sh * 0.6, f * H), (sh * 0.5, (f - 0.03) * H), 0.02 * k,
                             tuple(c * 0.8 for c in top), t_top - 0.09))
    prims.append(up.line((0, sh_z), (0, 0.875 * H), 0.09 * k, skin, t_skin, body=True))  # neck
    head = (0.0, 0.933 * H)
    prims.append(up.ellipse(head, 0.085 * k, 0.0665 * H, skin, t_skin, body=True))
    if toward < 0:  # seen from behind: hair covers the head
        prims.append(up.ellipse(head, 0.087 * k, 0.064 * H, hair, t_hair, body=True))
    else:
        prims.append(up.ellipse((0.0, 0.955 * H), 0.085 * k, 0.045 * H, hair, t_hair, body=True))
        if side < 0.7:  # a face toward the camera: eyes and mouth, darker and cooler than the skin
            feature = tuple(c * 0.45 for c in skin)
            for e in (-0.032 * k, 0.032 * k):
                prims.append(up.ellipse((e, 0.935 * H), 0.013 * k, 0.007 * H, feature, t_skin - 0.05))
            prims.append(up.line((-0.025 * k, 0.9 * H), (0.025 * k, 0.9 * H), 0.011 * k, feature, t_skin - 0.03))
    if bag == 1:  # handbag in the near hand
        hx = sh * 1.08 * (-sgn if side > 0.3 else 1)
        prims.append(up.poly([(hx - 0.13 * k, 0.3 * H), (hx + 0.13 * k, 0.3 * H), (hx + 0.12 * k, 0.44 * H),
                              (hx - 0.12 * k, 0.44 * H)], th.colors[4], t_top - 0.35))
    elif bag == 3:  # shoulder bag at the hip
        prims.append(up.line((-sh * 0.8, sh_z), (hp * 1.2, 0.55 * H), 0.03 * k, th.colors[4], t_top - 0.3))
        prims.append(up.ellipse((hp * 1.3, 0.5 * H), 0.13 * k, 0.07 * H, th.colors[4], t_top - 0.35))
    return Drawing(prims, up.depth, extent(prims))


def cyclist(th: Thing, cam: Camera, t: float) -> Drawing:
    """A bicycle and its rider; the label box is the rider's (head to pedal)."""
    up = Upright(cam, th.x, th.y)
    side, sgn, _ = up.facing(th.heading)
    k = th.size[2] / 1.75
    L = 0.55 * side * sgn  # wheel offset along the travel direction, as seen
    skin, top, bottom, hair = th.colors[0], th.colors[1], th.colors[2], th.colors[3]
    t_top = th.temp - th.warm
    frame = (0.1, 0.1, 0.12) if th.style & 1 else (0.2, 0.25, 0.7)
    prims: list[Prim] = []
    for w in (-L, L):
        prims.append(Prim("ellipse", np.array([up.pt(w, 0.34)]), (0.05, 0.05, 0.05), 0.5,
                          axes=(max(0.34 * side, 0.04) * up.scale, abs(up.pt(w, 0.68)[1] - up.pt(w, 0.34)[1])),
                          width=max(0.05 * up.scale, 1.0)))
    for p, q in (((-L, 0.34), (0.0, 0.35)), ((0.0, 0.35), (-0.1 * sgn * side, 0.95)), ((0.0, 0.35), (L, 0.34)),
                 ((-0.1 * sgn * side, 0.9), (0.4 * sgn * side, 1.0)), ((0.4 * sgn * side, 1.0), (L, 0.34))):
        prims.append(up.line(p, q, 0.04, frame, 0.4))
    pedal = 0.17 * math.sin(th.phase + 2 * math.pi * 0.9 * t)
    hip, shoulder = (-0.1 * sgn * side, 0.98 * k), (0.22 * sgn * side, 1.45 * k)
    for s in (1, -1):
        foot = (s * pedal * side * sgn, 0.35 + s * pedal)
        knee = (0.2 * sgn * side + 0.1 * (1 - side) * s, 0.65 * k + 0.5 * s * pedal)
        prims.append(up.line(hip, knee, 0.14 * k, bottom, t_top - th.legs, body=True))
        prims.append(up.line(knee, foot, 0.12 * k, bottom, t_top - th.legs, body=True))
    prims.append(up.poly([(hip[0] - 0.14 * k, hip[1]), (hip[0] + 0.14 * k, hip[1]), (shoulder[0] + 0.18 * k,
                          shoulder[1]), (shoulder[0] - 0.18 * k, shoulder[1])], top, t_top, body=True))
    prims.append(up.line(shoulder, (0.4 * sgn * side, 1.0), 0.08 * k, top, t_top, body=True))
    head = (shoulder[0] + 0.06 * sgn * side, shoulder[1] + 0.17 * k)
    prims.append(up.ellipse(head, 0.085 * k, 0.11 * k, skin, th.temp, body=True))
    prims.append(up.ellipse((head[0], head[1] + 0.04 * k), 0.09 * k, 0.08 * k, hair, th.temp - 0.33, body=True))
    return Drawing(prims, up.depth, extent(prims))


# Foliage clumps of a tree canopy: (lateral, height offset, relative size, shade); far and dark ones first.
_CANOPY = ((0.0, 0.0, 1.0, 0.8), (-0.45, -0.08, 0.6, 0.9), (0.5, -0.05, 0.55, 1.0), (-0.2, 0.12, 0.55, 1.15),
           (0.3, 0.15, 0.45, 1.25), (0.05, -0.15, 0.5, 1.05))


def furniture(th: Thing, cam: Camera, t: float) -> Drawing:
    """Unlabelled things on the pavement: lamp posts, poles, signs, traffic lights, bollards, trees, planters, and
    the confounders (a poster of a person, a dog, a warm cabinet, a warm post)."""
    up = Upright(cam, th.x, th.y)
    h, w = th.size[2], th.size[1]
    col, temp = th.colors[0], th.temp
    p: list[Prim] = []
    if th.kind in ("lamp_post", "pole", "warm_post", "traffic_light"):
        p.append(up.line((0, 0), (0, h), w, col, temp))
        if th.kind == "lamp_post":
            arm = th.size[0]
            p.append(up.line((0, h), (arm, h + 0.2), w * 0.6, col, temp))
            p.append(up.ellipse((arm, h + 0.1), 0.3, 0.12, (0.9, 0.95, 1.0), 0.9, emit=th.lights))
        elif th.kind == "pole":
            p.append(up.poly([(-0.3, h - 0.7), (0.3, h - 0.7), (0.3, h - 0.1), (-0.3, h - 0.1)], th.colors[1],
                             temp - 0.05))
        elif th.kind == "traffic_light":
            p.append(up.poly([(-0.17, h - 0.95), (0.17, h - 0.95), (0.17, h), (-0.17, h)], (0.08, 0.08, 0.08),
                             temp + 0.1))
            lit = int(th.phase * 3 + t / 8.0) % 3
            for i, c in enumerate([(0.1, 0.1, 0.95), (0.1, 0.7, 0.95), (0.4, 0.9, 0.2)]):
                z = h - 0.17 - 0.3 * i
                p.append(up.ellipse((0, z), 0.1, 0.1, c if i == lit else tuple(x * 0.25 for x in c), temp + 0.2,
                                    emit=1.0 if i == lit else 0.0))
    elif th.kind == "bollard":
        p.append(up.poly([(-w / 2, 0), (w / 2, 0), (w / 2, h), (-w / 2, h)], col, temp))
    elif th.kind == "tree":
        p.append(up.line((0, 0), (0, h * 0.5), w, (0.12, 0.18, 0.24), temp))
        r = th.size[0] / 2  # canopy: overlapping clumps of foliage in three shades, fixed per tree
        for k, (dx, dz, f, shade) in enumerate(_CANOPY):
            lat = dx * r + 0.15 * r * math.sin(7.1 * k + th.x)
            p.append(up.ellipse((lat, h * (0.65 + dz)), f * r, f * h * 0.3, tuple(c * shade for c in col),
                                temp - 0.15 - 0.04 * (shade - 1.0)))
    elif th.kind in ("planter", "warm_box"):
        p.append(up.poly([(-w / 2, 0), (w / 2, 0), (w / 2, h), (-w / 2, h)], col, temp))
        if th.kind == "planter":
            p.append(up.ellipse((0, h + 0.25), w * 0.45, 0.35, (0.12, 0.4, 0.15), temp - 0.08))
        else:  # vents hotter than the cabinet
            p.append(up.poly([(-w / 3, h * 0.6), (w / 3, h * 0.6), (w / 3, h * 0.8), (-w / 3, h * 0.8)],
                             tuple(x * 0.7 for x in col), min(temp + 0.15, 1.0)))
    elif th.kind == "warm_animal":
        p.append(up.ellipse((0, 0.4 * h), 0.35 * w, 0.25 * h, col, temp))
        p.append(up.ellipse((0.4 * w, 0.75 * h), 0.12 * w, 0.18 * h, col, temp))
        p.append(up.line((-0.2 * w, 0.3 * h), (-0.2 * w, 0), 0.06, col, temp))
        p.append(up.line((0.2 * w, 0.3 * h), (0.2 * w, 0), 0.06, col, temp))
    box = None
    if th.kind == "decoy_person":  # a backlit poster with a life-size person: RGB only, ambient in IR
        p.append(up.poly([(-0.65, 0.2), (0.65, 0.2), (0.65, 2.2), (-0.65, 2.2)], (0.85, 0.85, 0.82), None,
                         emit=0.3 * th.lights))
        fake = person(th, cam, 0.0)
        p.extend(Prim(q.shape, q.pts, q.rgb, None, q.width, q.axes) for q in fake.prims)
        box = fake.box  # never a label (not a labelled kind): where a model fooled by the poster would box it
    return Drawing(p, up.depth, box)


def drawing(th: Thing, cam: Camera, t: float) -> Drawing | None:
    if th.kind == "person":
        return person(th, cam, t)
    if th.kind == "cyclist":
        return cyclist(th, cam, t)
    if th.kind == "vehicle":
        return vehicle(th, cam, t)
    return furniture(th, cam, t)
