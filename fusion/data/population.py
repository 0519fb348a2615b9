"""Who and what is on the street: people alone and in groups (walking, standing, crossing, cycling), moving and
parked vehicles, street furniture, and the confounders that make one modality alone insufficient.

Positions are drawn where the camera sees the ground (a random pixel below the horizon, biased to the near half,
traced back to the street), so every scene is populated whatever the camera's height, pitch and heading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from fusion.data.camera import Camera
from fusion.data.street import PAVEMENT, ROAD, Street
from fusion.data.vehicles import vehicle as draw_vehicle

Kind = Literal["person", "cyclist", "vehicle", "lamp_post", "pole", "traffic_light", "bollard", "tree", "planter",
               "decoy_person", "warm_animal", "warm_post", "warm_box"]
Colour = tuple[float, float, float]

_SKIN = [(0.55, 0.65, 0.85), (0.42, 0.52, 0.72), (0.28, 0.36, 0.52), (0.16, 0.22, 0.34)]
_CLOTHES = [(0.08, 0.08, 0.09), (0.12, 0.12, 0.14), (0.25, 0.22, 0.2), (0.45, 0.3, 0.18), (0.2, 0.25, 0.45),
            (0.5, 0.5, 0.5), (0.75, 0.75, 0.72), (0.15, 0.2, 0.6), (0.2, 0.45, 0.25), (0.55, 0.35, 0.6),
            (0.3, 0.6, 0.8), (0.1, 0.15, 0.3)]
_TROUSERS = [(0.45, 0.3, 0.2), (0.08, 0.08, 0.09), (0.3, 0.3, 0.32), (0.35, 0.5, 0.6), (0.2, 0.2, 0.25)]
_HAIR = [(0.05, 0.05, 0.06), (0.1, 0.14, 0.22), (0.3, 0.5, 0.7), (0.55, 0.55, 0.58)]
_PAINT = [(0.85, 0.85, 0.85), (0.6, 0.6, 0.62), (0.08, 0.08, 0.09), (0.4, 0.2, 0.1), (0.15, 0.15, 0.7),
          (0.3, 0.3, 0.32), (0.6, 0.45, 0.2), (0.2, 0.35, 0.25)]


@dataclass
class Thing:
    """One object on the street, in world metres (see `fusion.data.camera`)."""

    kind: Kind
    x: float  # ground position
    y: float
    heading: float = 0.0  # radians in the world XY plane: direction of travel / long axis
    speed: float = 0.0  # m/s along `heading`
    size: tuple[float, float, float] = (1.0, 1.0, 1.0)  # length (lamp: arm, tree: canopy), width, height (m)
    colors: tuple[Colour, ...] = ((0.5, 0.5, 0.5),)  # BGR albedo per part role
    temp: float = 0.5  # IR: skin / surface temperature 0..1 (warm = bright)
    warm: float = 0.0  # vehicles: engine heat 0..1; people: how much cooler the clothes are than the skin
    legs: float = 0.04  # people: how much cooler the trousers are than the top (real LWIR legs are often dim)
    style: int = 0  # variant bits (people: bag 0-3, +4 short sleeves, +8 coat; vehicles: 0 car 1 SUV 2 van 3 bus)
    phase: float = 0.0  # gait / pedal / signal phase
    lights: float = 0.0  # self-luminous parts on (headlights, lamp heads, posters)
    presence: float = 0.0  # confounders are shown when presence < Illumination.clutter
    ident: int = -1  # identity within the scene (ground truth for tracking)

    def at(self, t: float) -> Thing:
        d = self.speed * t
        return replace(self, x=self.x + d * math.cos(self.heading), y=self.y + d * math.sin(self.heading))


def _pick(rng: np.random.Generator, options: list[Colour], jitter: float = 0.15) -> Colour:
    c = np.clip(np.asarray(options[int(rng.integers(len(options)))]) * rng.uniform(1 - jitter, 1 + jitter, 3), 0, 1)
    return tuple(float(v) for v in c)  # type: ignore[return-value]


def _spot(cam: Camera, st: Street, rng: np.random.Generator, want: tuple[int, ...]) -> tuple[float, float] | None:
    """A street point (a, b) in one of the `want` regions that the camera sees, within 60 m."""
    W, H = cam.size
    top = max(cam.horizon + 0.02 * H, 0.0)
    for _ in range(80):
        u = rng.uniform(-0.05 * W, 1.05 * W)
        v = top + (1.08 * H - top) * rng.random() ** 0.6  # favour the near half: people large and small
        g = cam.ground_point(u, v)
        if g is None or math.hypot(*g) > 60:
            continue
        a, b = st.to_street(*g)
        if int(st.region(np.array([a]), np.array([b]))[0]) in want:
            return a, b
    return None


def person(rng: np.random.Generator, x: float, y: float, heading: float, speed: float, kind: Kind = "person") -> Thing:
    height = float(np.clip(rng.normal(1.72, 0.09), 1.5, 1.95)) if rng.random() > 0.08 else rng.uniform(1.1, 1.45)
    colors = (_pick(rng, _SKIN, 0.08), _pick(rng, _CLOTHES), _pick(rng, _TROUSERS), _pick(rng, _HAIR, 0.1),
              _pick(rng, _CLOTHES[:6]))
    style = int(rng.choice([0, 1, 2, 3], p=[0.45, 0.2, 0.2, 0.15])) | (4 if rng.random() < 0.2 else 0) | (
        8 if rng.random() < 0.25 else 0)
    return Thing(kind, x, y, heading, speed, (0.5, 0.5, height), colors, temp=float(rng.uniform(0.9, 1.0)),
                 warm=float(rng.uniform(0.06, 0.2)), style=style, phase=float(rng.uniform(0, 2 * math.pi)),
                 legs=float(rng.uniform(0.02, 0.28)))


def _vehicle(rng: np.random.Generator, x: float, y: float, heading: float, speed: float, parked: bool) -> Thing:
    style = int(rng.choice([0, 1, 2, 3], p=[0.55, 0.22, 0.16, 0.07]))
    L, W = {0: (rng.uniform(3.9, 4.8), rng.uniform(1.7, 1.85)), 1: (rng.uniform(4.4, 4.9), rng.uniform(1.8, 1.95)),
            2: (rng.uniform(4.8, 5.6), rng.uniform(1.9, 2.05)), 3: (rng.uniform(10.5, 12.0), 2.5)}[style]
    warm = rng.uniform(0.0, 0.35) if parked else rng.uniform(0.6, 1.0)
    return Thing("vehicle", x, y, heading, speed, (float(L), float(W), 1.5), (_pick(rng, _PAINT),),
                 warm=float(warm), style=style, lights=0.0 if parked else 1.0)


MAX_VEHICLE_VIEW = 0.3  # the most of the view one vehicle's whole box may cover where it is placed


def _too_near(th: Thing, cam: Camera) -> bool:
    """A street camera is mounted to watch the street, not the roof of the car below it: a vehicle whose whole box
    would cover more than MAX_VEHICLE_VIEW of the frame is not placed. Labelled, such frames (a flat roof or side
    filling the view, about 12 % of stills before) taught the models that any large plain surface is a vehicle:
    frame-filling false boxes on pavement and walls."""
    d = draw_vehicle(th, cam, 0.0)
    if d is None or d.box is None:
        return True
    x1, y1, x2, y2 = d.box
    W, H = cam.size
    return (x2 - x1) * (y2 - y1) > MAX_VEHICLE_VIEW * W * H


def populate(cam: Camera, st: Street, max_targets: int, rng: np.random.Generator, speed: float) -> list[Thing]:
    things: list[Thing] = []
    n_targets = int(rng.integers(max(1, max_targets // 4), max_targets + 1))
    labelled, vehicles = 0, []

    def world(a: float, b: float) -> tuple[float, float]:
        x, y = st.to_world(a, b)
        return float(x), float(y)

    for _ in range(4 * max_targets):
        if labelled >= n_targets:
            break
        what = rng.choice(["group", "person", "crossing", "cyclist", "moving", "parked"],
                          p=[0.28, 0.3, 0.08, 0.06, 0.14, 0.14])
        if what in ("group", "person", "crossing"):
            spot = _spot(cam, st, rng, (ROAD,) if what == "crossing" else (PAVEMENT,))
            if spot is None and what != "crossing":  # no pavement in view: they cross the road instead
                what, spot = "crossing", _spot(cam, st, rng, (ROAD,))
            if spot is None:
                continue
            a, b = spot
            if what == "crossing":
                a = st.zebra_at + rng.uniform(-1.5, 1.5)
                heading = st.yaw + math.pi / 2 * rng.choice([-1, 1])
            else:
                heading = st.yaw + (0.0 if rng.random() < 0.5 else math.pi) + rng.normal(0, 0.15)
            walking = rng.random() < 0.75 or what == "crossing"
            v = rng.uniform(0.9, 1.7) * speed if walking else 0.0
            if not walking:
                heading = rng.uniform(0, 2 * math.pi)
            n = int(rng.integers(2, 5)) if what == "group" else 1
            n = min(n, n_targets - labelled)
            for k in range(n):  # group members side by side, a little staggered
                da, db = rng.uniform(-0.5, 0.5), (k - (n - 1) / 2) * rng.uniform(0.5, 0.75)
                if what == "crossing":
                    da, db = db, da
                x, y = world(a + da, b + db)
                things.append(person(rng, x, y, heading + rng.normal(0, 0.05), v))
                labelled += 1
        elif what == "cyclist":
            s = rng.choice([-1, 1])
            spot = _spot(cam, st, rng, (ROAD,))
            if spot is None:
                continue
            x, y = world(spot[0], s * (st.road / 2 - 0.9))
            things.append(person(rng, x, y, st.yaw + (0 if s < 0 else math.pi), rng.uniform(3, 6.5) * speed,
                                 kind="cyclist"))
            labelled += 1
        else:
            parked = what == "parked"
            s = rng.choice([-1, 1])
            b = s * (st.road / 2 - 1.15) if parked else s * st.road / 4
            heading = st.yaw + (0 if s < 0 else math.pi) + (rng.choice([0, math.pi]) if parked else 0.0)
            v = 0.0 if parked else rng.uniform(3, 11) * speed
            th = spot = None
            for _ in range(6):  # too near for a mounted camera: the vehicle stands farther down the road instead
                spot = _spot(cam, st, rng, (ROAD,))
                if spot is None:
                    break
                th = _vehicle(rng, *world(spot[0], b), heading, v, parked)
                if not _too_near(th, cam):
                    break
                th = None
            if th is None or spot is None:
                continue
            if any(abs(spot[0] - a2) < (th.size[0] + L2) / 2 + 0.8 and abs(b - b2) < 2.2 for a2, b2, L2 in vehicles):
                continue
            vehicles.append((spot[0], b, th.size[0]))
            things.append(th)
            labelled += 1
    things += _furniture(cam, st, rng, world)
    for _ in range(int(rng.integers(2, 7))):
        things += _confounder(cam, st, rng, world)
    for i, th in enumerate(things):
        th.ident = i
    return things


def _furniture(cam: Camera, st: Street, rng: np.random.Generator, world) -> list[Thing]:
    out: list[Thing] = []
    grey = _pick(rng, [(0.25, 0.25, 0.25), (0.2, 0.28, 0.2), (0.45, 0.45, 0.45)])
    for lp in st.lamps:  # lamp posts: the arm reaches over the road; its length as seen across the image
        x, y = world(lp.a, lp.post_b)
        hx, hy = world(lp.a, lp.b)
        r = math.hypot(x, y) or 1.0
        arm = (hx - x) * y / r - (hy - y) * x / r
        out.append(Thing("lamp_post", x, y, size=(arm, 0.16, lp.height), colors=(grey,),
                         temp=float(rng.uniform(0.3, 0.55)), lights=1.0))
    for s in (1, -1):
        if rng.random() < 0.55:  # a row of trees along one kerb
            for a in np.arange(rng.uniform(-40, -30), 90, rng.uniform(8, 14)):
                x, y = world(a, s * (st.road / 2 + 1.1))
                size = (rng.uniform(2.5, 4.5), rng.uniform(0.25, 0.4), rng.uniform(5, 8))
                colour = _pick(rng, [(0.12, 0.3, 0.15), (0.1, 0.22, 0.12), (0.15, 0.35, 0.3)])
                temp = rng.uniform(0.42, 0.62)
                depth = float(cam.project(x, y, 0.65 * size[2])[2])
                if depth < 2.0 or size[0] * cam.scale_at(depth) > 0.4 * cam.size[0]:
                    continue  # a camera is not mounted inside a tree: no canopy wider than 40 % of the view
                out.append(Thing("tree", x, y, size=size, colors=(colour,), temp=float(temp)))
        for k in range(int(rng.integers(0, 5))):  # bollards by the crossing
            x, y = world(st.zebra_at + (k - 2) * 1.6 + (2.6 if k >= 2 else -2.6), s * (st.road / 2 + 0.4))
            out.append(Thing("bollard", x, y, size=(0.15, 0.15, 0.9), colors=(grey,),
                             temp=float(rng.uniform(0.33, 0.5))))
        x, y = world(st.zebra_at + 2.6 * s, s * (st.road / 2 + 0.5))
        out.append(Thing("traffic_light", x, y, size=(0.0, 0.12, 3.3), colors=(grey,),
                         temp=float(rng.uniform(0.35, 0.5)),
                         phase=float(rng.uniform(0, 3))))
    for _ in range(int(rng.integers(0, 4))):
        spot = _spot(cam, st, rng, (PAVEMENT,))
        if spot is None:
            continue
        x, y = world(spot[0], math.copysign(st.road / 2 + 0.35, spot[1]))
        plate = _pick(rng, [(0.6, 0.3, 0.1), (0.1, 0.1, 0.7), (0.85, 0.85, 0.85), (0.1, 0.7, 0.85)])
        out.append(Thing("pole", x, y, size=(0.0, 0.08, rng.uniform(2.6, 3.3)), colors=(grey, plate),
                         temp=float(rng.uniform(0.3, 0.6))))
    for _ in range(int(rng.integers(0, 3))):
        spot = _spot(cam, st, rng, (PAVEMENT,))
        if spot is not None:
            x, y = world(*spot)
            out.append(Thing("planter", x, y, size=(1.2, 1.1, 0.6), colors=(_pick(rng, [(0.4, 0.42, 0.45)]),),
                             temp=float(rng.uniform(0.36, 0.46))))
    return out


def _confounder(cam: Camera, st: Street, rng: np.random.Generator, world) -> list[Thing]:
    """A thing one camera mistakes for a target: a poster of a person (RGB), a dog, a warm post or a warm cabinet
    (IR). Always sampled; shown in proportion to the illumination's clutter level."""
    spot = _spot(cam, st, rng, (PAVEMENT,))
    if spot is None:
        return []
    x, y = world(*spot)
    kind = rng.choice(["decoy_person", "warm_animal", "warm_post", "warm_box"])
    if kind == "decoy_person":
        th = person(rng, x, y, rng.uniform(0, 2 * math.pi), 0.0, kind="decoy_person")
        th.lights = 1.0
    elif kind == "warm_animal":
        th = Thing("warm_animal", x, y, rng.uniform(0, 2 * math.pi), rng.uniform(0, 0.8),
                   size=(0.9, 0.8, 0.6), colors=(_pick(rng, [(0.1, 0.15, 0.25), (0.3, 0.4, 0.5)]),),
                   temp=float(rng.uniform(0.75, 0.9)))
    elif kind == "warm_post":
        th = Thing("warm_post", x, y, size=(0.0, rng.uniform(0.2, 0.45), rng.uniform(1.2, 2.4)),
                   colors=((0.35, 0.35, 0.37),), temp=float(rng.uniform(0.65, 0.85)))
    else:
        th = Thing("warm_box", x, y, size=(0.0, rng.uniform(0.7, 1.2), rng.uniform(0.9, 1.5)),
                   colors=(_pick(rng, [(0.4, 0.45, 0.4), (0.45, 0.45, 0.45)]),), temp=float(rng.uniform(0.62, 0.85)))
    th.presence = float(rng.random())
    return [th]
