"""Accuracy-aware adaptive modality: validate every engine per brightness bin, stamp the models, then measure the
policy the job derives from those figures against always-fused / always-RGB / always-IR on other clips.

    .venv/bin/python benchmarks/eval_adaptive.py [stamp=true clips=4 seconds=10]
    → benchmarks/results/adaptive.json, docs/adaptive_timeline.png; with stamp=true the shipped models carry the
      validated figures (checkpoint key `validated`, ONNX metadata `fusedet.validated`)
    .venv/bin/python benchmarks/eval_adaptive.py val_data=<LLVIP or YOLOFuse folder> clips=0 stamp=true \
        models=<folder with mid_n, rgb_n, ir_n .pt + .onnx> out=<json>
    → the same validation on your own labelled pairs (your cameras), stamped into your copies of the models

1. Validation clips (seed `val_seed`, day↔night ramps): each engine (fused, RGB-only, IR-only; ONNX Runtime on CPU,
   or `backend=torch device=cuda`) runs on every frame; frames are binned by the job's brightness measure and mAP50
   per bin per engine comes from ultralytics' matching and AP. Frames of one clip are far from independent, so each
   cheaper engine's loss bound against fused is the 95th percentile of a paired bootstrap over the bin's clips.
2. `jobs.routing.build_routes` turns those figures into routes (a cheaper engine only where that bound is within
   `max_loss`), trusting generated clips (`modality.trust_generated=true`); `job_default_routes`: the job's defaults.
3. Test clips (seed `seed`, never used to validate): the job's ModePolicy with those routes picks an engine per
   frame; accuracy per slice, per brightness bin and per clip, and GPU time (frames per engine × the H100 per-pair
   engine time of `trt.bench`, batch 32, fp16 + CUDA graphs; bench_h100_*.json), against the fixed modes.

The scored frames (rendering, scoring, the per-clip cache) come from `adaptive_frames.py`; what one clip's engines
find and miss, frame by frame: `explain_clip.py`.
"""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.adaptive_frames import MODELS, cached_clips, run_pairs  # noqa: E402  (needs ROOT on sys.path)


@dataclass(frozen=True)
class EvalSpec:
    clips: int = 4  # test clips, alternating day→night and night→day
    val_clips: int = 0  # validation clips (0: as many as test clips)
    seconds: float = 10.0
    fps: int = 25
    seed: int = 4242  # test clips
    val_seed: int = 5151  # validation clips (stamped into the models)
    size: tuple[int, int] = (640, 512)
    edges: tuple[float, ...] = (0.0, 0.06, 0.1, 0.14, 0.2, 0.28, 1.0)  # brightness bins
    max_loss: float = 0.005  # as the job's modality.max_loss default
    min_frames: tuple[int, ...] = (300, 50)  # routes with the job's default (first) and with a lax setting
    stamp: bool = False  # write the validated figures into <models>/{mid,rgb,ir}_n.{pt,onnx}
    models: str = "models"  # the folder of the three models (checkpoint + ONNX each) to validate and stamp
    val_data: str = ""  # a labelled LLVIP / YOLOFuse folder (your own cameras) to validate on instead of clips
    val_split: str = "test"  # val_data's split (LLVIP: visible/<split>; YOLOFuse: images/<split>, "" = none)
    group: int = 100  # val_data: this many consecutive pairs (sorted by name) count as one clip in the bootstrap
    cache: str = ""  # path prefix of per-clip .pt files of per-frame matches, reused when clip, spec and models match
    resamples: int = 400  # bootstrap resamples of the validation clips per bin
    min_clips: int = 3  # clips a bin needs before its loss bound means anything (else the bin stays fused)
    out: str = "benchmarks/results/adaptive.json"
    plot: str = "docs/adaptive_timeline.png"
    workers: int = 1  # clips rendered and scored at once, one process each (the figures do not depend on it)
    # torch runs the .pt beside each .onnx: with device=cuda a GPU scores the clips
    backend: Literal["onnxruntime", "torch"] = "onnxruntime"
    device: str = "cpu"  # torch's device; the cache key holds the backend and the weights, not the device

    def __post_init__(self) -> None:
        from fusion.config import ConfigError

        if not self.val_data and not (self.val_clips or self.clips):
            raise ConfigError("eval_adaptive: nothing to validate on: set clips, val_clips or val_data")
        if self.group < 1 or self.resamples < 1 or self.workers < 1 or self.clips < 0 or self.val_clips < 0:
            raise ConfigError("eval_adaptive: group, resamples, workers >= 1 and clips, val_clips >= 0")


def gpu_ms_per_pair() -> dict[str, float]:
    rows = json.loads((ROOT / "benchmarks/results/bench_h100_mid_n.json").read_text())["rows"]
    rows += json.loads((ROOT / "benchmarks/results/bench_h100_single.json").read_text())["rows"]

    def pick(model: str) -> float:
        r = next(r for r in rows if r["model"] == model and r["size"] == [640, 512] and r["backend"] ==
                 "torch-compile" and r["batch"] == 32)
        return r["p50_ms"] / 32

    return {m: pick(name) for m, name in MODELS.items()}


def _map(frames: list[dict], pick) -> dict:
    from fusion.evaluate import summarize

    rows = [f["rows"][pick(f)] for f in frames]
    return summarize(rows) | {"frames": len(frames)} if rows else {"mAP50": float("nan"), "frames": 0}


def _mAP50(rows: list) -> float:
    from fusion.evaluate import summarize

    return summarize(rows)["mAP50"] if rows else float("nan")


def loss_bound(frames: list[dict], engine: str, *, resamples: int, seed: int) -> float:
    """95th percentile of mAP50(fused) − mAP50(engine) over a paired bootstrap of the clips in `frames`."""
    clips = sorted({f["clip"] for f in frames})
    by_clip = {k: [f for f in frames if f["clip"] == k] for k in clips}
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(resamples):
        take = [f for k in rng.choice(clips, len(clips)) for f in by_clip[k]]
        fused, other = _mAP50([f["rows"]["fused"] for f in take]), _mAP50([f["rows"][engine] for f in take])
        if fused == fused and other == other:
            losses.append(fused - other)
    return float(np.quantile(losses, 0.95)) if losses else float("nan")


def by_bin(frames: list[dict], edges: tuple[float, ...]) -> list[list[dict]]:
    """The frames in each brightness bin [edges[b], edges[b + 1]), as the job's routes bin them."""
    return [[f for f in frames if lo <= f["brightness"] < hi] for lo, hi in itertools.pairwise(edges)]


def validate(frames: list[dict], spec: EvalSpec) -> dict[str, dict]:
    """Per engine: mAP50, frames and clips per brightness bin (the `validated` metadata); for the cheaper engines
    also `loss_upper`, the bootstrap bound of their loss against fused (NaN: fewer than `min_clips` clips)."""
    out = {m: {"edges": list(spec.edges), "mAP50": [], "frames": [], "clips": []} for m in MODELS}
    for b, sel in enumerate(by_bin(frames, spec.edges)):
        n_clips = len({f["clip"] for f in sel})
        for m in MODELS:
            acc = _mAP50([f["rows"][m] for f in sel])
            out[m]["mAP50"].append(round(acc, 4) if acc == acc else float("nan"))
            out[m]["frames"].append(len(sel))
            out[m]["clips"].append(n_clips)
            if m != "fused":
                bound = loss_bound(sel, m, resamples=spec.resamples, seed=b) if n_clips >= spec.min_clips \
                    else float("nan")
                out[m].setdefault("loss_upper", []).append(round(bound, 4) if bound == bound else float("nan"))
    return out


def stamp(validated: dict[str, dict], models: str) -> None:
    """Write each engine's figures into its checkpoint and ONNX (metadata travels to engines and the job)."""
    import onnx

    from trt.export import set_metadata

    for m, name in MODELS.items():
        blob = json.dumps(validated[m])
        ckpt_path = Path(models) / f"{name}.pt"
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        ckpt["validated"] = blob
        torch.save(ckpt, ckpt_path)
        model = onnx.load(str(Path(models) / f"{name}.onnx"))
        set_metadata(model, "fusedet.validated", blob)
        onnx.save(model, str(Path(models) / f"{name}.onnx"))


def main(argv: list[str] | None = None) -> int:
    from fusion.config import cli_main, parse_args
    from jobs.config import ModalityConfig
    from jobs.modality import ModePolicy
    from jobs.routing import build_routes, validation_run

    def run(args: list[str]) -> int:
        _, spec = parse_args(EvalSpec, args)
        gpu = gpu_ms_per_pair()
        with tempfile.TemporaryDirectory() as tmp:
            val = run_pairs(spec) if spec.val_data else cached_clips(spec, spec.val_seed, spec.val_clips or spec.clips,
                                                                     tmp)
            generated = not spec.val_data
            what = (f"{len(val)} pairs of {spec.val_data} (split {spec.val_split!r}, groups of {spec.group})"
                    if spec.val_data else f"{spec.val_clips or spec.clips} clips of {spec.seconds:g} s, seed "
                                          f"{spec.val_seed}")
            validated = validation_run(validate(val, spec), generated=generated,
                                       source=f"benchmarks/eval_adaptive.py: {what}, {spec.size[0]}x{spec.size[1]}, "
                                              f"conf 0.001, {spec.resamples} clip resamples")
            # On generated validation this evaluation trusts it (modality.trust_generated=true): what it measures
            # is the routing on generated test clips. The job by default does not (`job_default_routes`).
            routes = {n: build_routes(validated, max_loss=spec.max_loss, min_frames=n, trust_generated=True)
                      for n in spec.min_frames}
            default = ModalityConfig()
            job_default = build_routes(validated, max_loss=default.max_loss, min_frames=default.min_frames)
            test = cached_clips(spec, spec.seed, spec.clips, tmp) if spec.clips else []
        if spec.stamp:
            stamp(validated, spec.models)
        for n, r in routes.items():
            print(f"routes (min_frames={n}{', trusting generated scenes' if generated else ''}):", r.text())
        print("routes (the job's defaults):", job_default.text())

        def as_dict(r):
            return {"edges": list(r.edges), "modes": list(r.modes), "why": list(r.reasons)}

        summary = {"spec": asdict(spec), "validated": validated,
                   "routes": {n: as_dict(r) for n, r in routes.items()}, "job_default_routes": as_dict(job_default)}
        if not test:  # validation (and stamping) only
            Path(spec.out).write_text(json.dumps(summary, indent=1, default=float) + "\n")
            return 0
        choices = {}
        trusting = ", trust_generated" if generated else ""
        for n, r in [*routes.items(), ("default", job_default)]:  # the job's own policy, per clip in time order
            policy = default if n == "default" else ModalityConfig(max_loss=spec.max_loss, min_frames=n)
            for k in range(spec.clips):
                p = ModePolicy(policy, r)
                for f in (f for f in test if f["clip"] == k):
                    f[f"adaptive{n}"] = p.update(f["t"], f["brightness"])
            name = "adaptive, the job's defaults" if n == "default" else f"adaptive, min_frames={n}{trusting}"
            choices[name] = lambda f, n=n: f[f"adaptive{n}"]
        choices |= {"always fused": lambda f: "fused", "always rgb": lambda f: "rgb", "always ir": lambda f: "ir"}
        result = summary | {"gpu_ms_per_pair_h100": gpu, "policies": {},
                            "test_by_bin": validate(test, spec)}  # the same figures on the test clips: did they hold?
        nb = len(spec.edges) - 1  # per bin, then per test clip: where a route lost what the overall figure hides
        groups = by_bin(test, spec.edges) + [[f for f in test if f["clip"] == k] for k in range(spec.clips)]
        for name, pick in choices.items():
            res = {sl: _map([f for f in test if sl == "overall" or _slice(f["light"]) == sl], pick)
                   for sl in ("overall", "day", "dusk", "night")}
            counts = {m: sum(pick(f) == m for f in test) for m in MODELS}
            by = [round(_mAP50([f["rows"][pick(f)] for f in g]), 4) for g in groups]  # NaN: no targets
            res |= {"frames_per_engine": counts, "gpu_ms": sum(counts[m] * gpu[m] for m in counts),
                    "mAP50_by_bin": by[:nb], "mAP50_by_clip": by[nb:]}
            result["policies"][name] = res
        base = result["policies"]["always fused"]
        for res in result["policies"].values():
            res["gpu_saving_vs_fused"] = 1 - res["gpu_ms"] / base["gpu_ms"]
            res["mAP50_loss_pt_vs_fused"] = 100 * (base["overall"]["mAP50"] - res["overall"]["mAP50"])
        Path(spec.out).write_text(json.dumps(result, indent=1, default=float) + "\n")
        lax = spec.min_frames[-1]
        _plot(test, spec, routes[lax], f"adaptive{lax}")
        print(f"{'policy':40} {'mAP50':>6} {'day':>6} {'dusk':>6} {'night':>6} {'GPU ms':>7} {'saving':>7} "
              f"{'loss pt':>7}")
        for name, r in result["policies"].items():
            print(f"{name:40} {r['overall']['mAP50']:6.3f} {r['day']['mAP50']:6.3f} {r['dusk']['mAP50']:6.3f} "
                  f"{r['night']['mAP50']:6.3f} {r['gpu_ms']:7.1f} {100 * r['gpu_saving_vs_fused']:6.1f}% "
                  f"{r['mAP50_loss_pt_vs_fused']:7.2f}")
        return 0

    from fusion.data.layouts import DatasetError

    return cli_main(run, argv, doc=__doc__, config=EvalSpec, errors=(DatasetError,))


def _slice(light: float) -> str:
    return "day" if light >= 0.5 else ("dusk" if light >= 0.1 else "night")


def _plot(frames: list[dict], spec: EvalSpec, routes, key: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # the test clip whose frames the routes split most evenly between engines (the most telling timeline)
    share = {k: sum(f[key] != "fused" for f in frames if f["clip"] == k) for k in range(spec.clips)}
    best = min(share, key=lambda k: abs(share[k] - spec.seconds * spec.fps / 2))
    clip = [f for f in frames if f["clip"] == best]
    t = np.array([f["t"] for f in clip])
    fig, ax = plt.subplots(figsize=(9, 3))
    ax.plot(t, [f["brightness"] for f in clip], color="black", lw=1, label="brightness")
    colours = {"rgb": "tab:orange", "fused": "tab:green", "ir": "tab:purple"}
    for m, c in colours.items():
        sel = [f for f in clip if f[key] == m]
        ax.scatter([f["t"] for f in sel], [f["brightness"] for f in sel], s=8, color=c, label=f"engine {m}")
    for e, a, b in zip(routes.edges[1:-1], routes.modes[:-1], routes.modes[1:], strict=True):
        if a != b:
            ax.axhline(e, color="grey", ls="--", lw=1, label=f"{a} → {b}")
    ax.set(xlabel="seconds", ylabel="brightness", title=f"routes ({key}) on test clip {best}")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(spec.plot, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
