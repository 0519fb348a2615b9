"""Which engine may run at which brightness: decided from the models' own validated accuracy, never assumed.

Each model can carry `validated` metadata (checkpoint / ONNX / engine sidecar): brightness bin edges and its mAP50
and frame count per bin on a held-out set, stamped by `benchmarks/eval_adaptive.py`; a cheaper engine's metadata
also holds `loss_upper`, a bootstrap bound (95th percentile, resampling validation clips) of its mAP50 loss against
the fused model in each bin. For every bin the route is the cheaper single-modality engine (RGB-only, IR-only) whose
bound there is within `max_loss`; else fused. The point estimate alone is not enough: one clip's frames are far from
independent, and with the bound missing a bin equal on 8 validation clips lost 0.8 pt on 8 others. A bin without
enough validation frames, a bound (too few clips), or a model without the metadata, routes to fused: the adaptive
mode never trades accuracy it has not measured. A bound holds only against the fused model it was measured beside:
one stamping run writes the same `run` id into all three models, and a cheaper engine from another run (or stamped
before run ids existed) is not routed to; swapping or retraining one model makes the job say so and run fused.
Figures measured on generated scenes (`generated` in the metadata; missing counts as generated) route only with
`trust_generated`: accuracy on rendered streets is not accuracy on a camera's footage.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Routes:
    edges: tuple[float, ...]  # bin edges (len = bins + 1), brightness 0..1
    modes: tuple[str, ...]  # engine per bin
    reasons: tuple[str, ...]  # why, per bin (for the run log and the report)

    def mode_at(self, brightness: float) -> str:
        i = int(np.clip(np.searchsorted(self.edges, brightness, side="right") - 1, 0, len(self.modes) - 1))
        return self.modes[i]

    @property
    def only_fused(self) -> bool:
        return set(self.modes) == {"fused"}

    @property
    def one_engine(self) -> bool:
        """Every brightness goes to the same engine: no policy state can change a frame's engine."""
        return len(set(self.modes)) == 1

    def text(self) -> str:
        return "; ".join(f"[{a:.2f}, {b:.2f}): {m} ({r})" for a, b, m, r in
                         zip(self.edges[:-1], self.edges[1:], self.modes, self.reasons, strict=True))


FUSED_ONLY = Routes((0.0, 1.0), ("fused",), ("no validated alternative",))


def validation_run(validated: dict[str, dict], *, source: str, generated: bool) -> dict[str, dict]:
    """The engines' figures (mode → metadata) as one validation run: where they came from, and one `run` id for
    all, which `build_routes` requires a cheaper engine to share with the fused model."""
    run = hashlib.sha256(json.dumps([validated, source], sort_keys=True).encode()).hexdigest()[:16]
    return {m: v | {"generated": generated, "source": source, "run": run} for m, v in validated.items()}


def _fmt(loss: float) -> str:
    """A loss in mAP50, 3 places; a bound just below zero (the cheaper engine is better) reads 0.000, not -0.000."""
    return f"{round(loss, 3) + 0.0:.3f}"


def build_routes(validated: dict[str, dict | None], *, max_loss: float, min_frames: int,
                 trust_generated: bool = False) -> Routes:
    """validated: mode → metadata {"edges": [...], "mAP50": [...], "frames": [...], "loss_upper": [...],
    "generated": bool, "run": str} or None (fused carries no `loss_upper`)."""
    fused = validated.get("fused")
    if not fused:
        return Routes((0.0, 1.0), ("fused",), ("the fused model carries no validated accuracy per brightness",))
    edges = tuple(float(e) for e in fused["edges"])
    modes, reasons = [], []
    for b in range(len(edges) - 1):
        f_acc, f_n = fused["mAP50"][b], fused["frames"][b]
        best, best_acc, why = "fused", -1.0, f"fused mAP50 {f_acc:.3f}: no cheaper engine within max_loss"
        held = ""  # a cheaper engine proven on generated scenes only, not trusted
        unpaired = ""  # a cheaper engine whose bound was measured beside another fused model
        if f_n < min_frames or f_acc != f_acc:  # NaN: no targets in this bin
            modes.append("fused")
            reasons.append(f"{f_n} validation frames: too few to trust")
            continue
        for m in ("ir", "rgb"):
            v = validated.get(m)
            if not v or tuple(float(e) for e in v["edges"]) != edges:
                continue
            if not fused.get("run") or v.get("run") != fused.get("run"):
                unpaired = (f"fused mAP50 {f_acc:.3f}: {m}'s figures were not validated beside this fused model "
                            "(run ids differ or are missing): re-stamp the three models together")
                continue
            acc, n = v["mAP50"][b], v["frames"][b]
            bound = v.get("loss_upper", [float("nan")] * (len(edges) - 1))[b]
            proven = n >= min_frames and acc == acc and bound <= max_loss
            if proven and v.get("generated", True) and not trust_generated:
                held = (f"fused mAP50 {f_acc:.3f}: {m} {acc:.3f}, loss <= {_fmt(bound)}, but measured on generated "
                        "scenes only (modality.trust_generated=true routes by them)")
            elif proven and acc > best_acc:
                best, best_acc, why = m, acc, f"{m} mAP50 {acc:.3f} vs fused {f_acc:.3f}, loss <= {_fmt(bound)}"
            elif n >= min_frames and acc == acc and acc >= f_acc - max_loss and best == "fused":
                why = (f"fused mAP50 {f_acc:.3f}: {m} {acc:.3f} is close, but its loss bound is "
                       + (_fmt(bound) if bound == bound else "unmeasured"))
        modes.append(best)
        reasons.append((held or unpaired) if (held or unpaired) and best == "fused" else why)
    return Routes(edges, tuple(modes), tuple(reasons))
