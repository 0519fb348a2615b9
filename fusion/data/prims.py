"""The vocabulary every drawn object is made of: filled shapes in RGB pixels, each with an RGB albedo and a thermal
temperature, so one description drives both images and they stay consistent (fusion/data/render.py paints them)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Colour = tuple[float, float, float]


@dataclass(frozen=True)
class Prim:
    shape: str  # "poly" (pts (n, 2)), "line" (pts (2, 2), width px), "ellipse" (pts (1, 2) centre, axes px)
    pts: np.ndarray
    rgb: Colour | None  # BGR albedo 0..1; None: not seen by the RGB camera
    ir: float | None  # temperature 0..1; None: at ambient, not seen by the thermal camera
    width: float = 0.0  # line thickness, px
    axes: tuple[float, float] = (0.0, 0.0)  # ellipse half-axes, px
    emit: float = 0.0  # self-luminous (lamps, lights): drawn at this radiance and added to the glare
    body: bool = False  # part of the labelled extent


@dataclass
class Drawing:
    prims: list[Prim]
    depth: float  # metres along the optical axis, for the painter's order
    box: tuple[float, float, float, float] | None  # label box (RGB px) of labelled kinds



def extent(prims: list[Prim], *, labelled: bool = True) -> tuple[float, float, float, float]:
    """(x1, y1, x2, y2) px around the prims: the labelled ones (the label box), or all of them (what is painted)."""
    xs, ys = [], []
    for q in prims:
        if labelled and not q.body:
            continue
        pad = q.width / 2
        ax, ay = q.axes
        xs += [q.pts[:, 0].min() - pad - ax, q.pts[:, 0].max() + pad + ax]
        ys += [q.pts[:, 1].min() - pad - ay, q.pts[:, 1].max() + pad + ay]
    return float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys))
