import itertools
from dataclasses import replace

import numpy as np
import pytest
import torch

from fusion.config import ConfigError
from jobs.config import ModalityConfig
from jobs.modality import ModePolicy, brightness
from jobs.routing import build_routes

EDGES = [0.0, 0.1, 0.2, 0.3, 1.0]
CFG = ModalityConfig(hysteresis=0.02, min_dwell_s=2.0, smoothing_s=0.0)


def meta(acc, frames=200, bound=None, run="r1"):
    """Validated figures of one stamping run; `bound`: the loss bounds of a cheaper engine (default: its point loss
    + 0.0005)."""
    fused = [0.90, 0.95, 0.97, 0.98]
    m = {"edges": EDGES, "mAP50": acc, "frames": [frames] * len(acc), "generated": False,  # your own labelled pairs
         "run": run}
    if acc != fused:
        m["loss_upper"] = bound if bound is not None else [f - a + 0.0005 for f, a in zip(fused, acc, strict=True)]
    return m


# night, dusk, dim day, day: IR as good as fused at night, RGB in the two brightest bins
VALIDATED = {"fused": meta([0.90, 0.95, 0.97, 0.98]), "ir": meta([0.899, 0.80, 0.70, 0.60]),
             "rgb": meta([0.40, 0.90, 0.966, 0.985])}
ROUTES = build_routes(VALIDATED, max_loss=0.005, min_frames=50)


def run(policy: ModePolicy, values, fps=25, t0=0.0):
    return [policy.update(t0 + i / fps, v) for i, v in enumerate(values)]


def test_routes_take_a_cheaper_engine_only_within_max_loss():
    assert ROUTES.modes == ("ir", "fused", "rgb", "rgb")
    assert "0.899" in ROUTES.reasons[0] and "no cheaper engine" in ROUTES.reasons[1]


@pytest.mark.parametrize(("validated", "why"), [
    ({"fused": None, **{k: v for k, v in VALIDATED.items() if k != "fused"}}, "fused model carries no"),
    ({"fused": VALIDATED["fused"], "rgb": None, "ir": None}, "no cheaper engine"),
    ({k: meta(v["mAP50"], frames=10) for k, v in VALIDATED.items()}, "too few"),
])
def test_without_validated_figures_everything_stays_fused(validated, why):
    routes = build_routes(validated, max_loss=0.005, min_frames=50)
    assert routes.only_fused and why in " ".join(routes.reasons)


@pytest.mark.parametrize(("bound", "why"), [([0.02, 0.2, 0.2, 0.2], "loss bound is 0.020"),
                                            (None, "loss bound is unmeasured")])
def test_a_cheaper_engine_equal_on_average_but_not_surely_is_not_chosen(bound, why):
    """IR's point estimate at night is within max_loss, but its bootstrap bound (clips resampled) is not, or the
    model carries no bound at all (stamped before bounds existed): fused."""
    ir = meta([0.899, 0.80, 0.70, 0.60], bound=bound or [0.0] * 4)
    if bound is None:
        del ir["loss_upper"]
    routes = build_routes({**VALIDATED, "ir": ir}, max_loss=0.005, min_frames=50)
    assert routes.modes[0] == "fused" and why in routes.reasons[0]
    assert routes.modes[2:] == ("rgb", "rgb")  # the other bins keep their proven route


def test_a_bound_just_below_zero_reads_zero():
    """A cheaper engine better than fused on every resample has a bound below zero: the reason says 0.000."""
    ir = meta([0.9001, 0.80, 0.70, 0.60], bound=[-0.0001, 0.2, 0.2, 0.2])
    routes = build_routes({**VALIDATED, "ir": ir}, max_loss=0.005, min_frames=50)
    assert routes.modes[0] == "ir" and "loss <= 0.000" in routes.reasons[0] and "-0.000" not in routes.reasons[0]


@pytest.mark.parametrize("run", ["r0", None])
def test_a_cheaper_engine_validated_beside_another_fused_model_is_not_chosen(run):
    """Retrain or swap one model and keep the others' stamps: RGB's bound was measured against a fused model that is
    no longer the one running (another run id, or stamps older than run ids), so it proves nothing: fused."""
    rgb = meta([0.40, 0.90, 0.966, 0.985], run=run)
    routes = build_routes({**VALIDATED, "rgb": rgb}, max_loss=0.005, min_frames=50)
    assert routes.modes == ("ir", "fused", "fused", "fused")  # IR, stamped with fused, keeps its proven bin
    assert "rgb's figures were not validated beside this fused model" in routes.reasons[3]
    fused_old = {**VALIDATED, "fused": {k: v for k, v in VALIDATED["fused"].items() if k != "run"}}
    assert build_routes(fused_old, max_loss=0.005, min_frames=50).only_fused


@pytest.mark.parametrize("flag", [True, None])
def test_routes_proven_on_generated_scenes_only_are_not_taken_unless_trusted(flag):
    """The shipped models' figures come from generated streets (`generated`: true, or absent in stamps made before
    the flag): they route only with modality.trust_generated, and the reason says why not."""
    validated = {k: {**v, "generated": flag} for k, v in VALIDATED.items()}
    if flag is None:
        validated = {k: {kk: vv for kk, vv in v.items() if kk != "generated"} for k, v in validated.items()}
    held = build_routes(validated, max_loss=0.005, min_frames=50)
    assert held.only_fused
    assert "ir 0.899" in held.reasons[0] and "generated scenes only" in held.reasons[0]
    assert "rgb 0.985" in held.reasons[3] and "trust_generated" in held.reasons[3]
    assert build_routes(validated, max_loss=0.005, min_frames=50, trust_generated=True).modes == ROUTES.modes


def test_the_shipped_models_run_fused_by_default_and_say_why():
    from jobs.config import JobConfig
    from jobs.preflight import check_models

    cfg = JobConfig()
    _, routes = check_models(cfg)
    _, trusted = check_models(replace(cfg, modality=replace(cfg.modality, trust_generated=True)))
    assert routes.only_fused and trusted.edges == routes.edges
    for mode, why in zip(trusted.modes, routes.reasons, strict=True):  # every bin the stamps would route, held
        assert mode == "fused" or (f"{mode} " in why and "generated scenes only" in why)


@pytest.mark.parametrize(("value", "mode"), [(0.05, "ir"), (0.15, "fused"), (0.25, "rgb"), (0.5, "rgb")])
def test_first_decision(value, mode):
    assert ModePolicy(CFG, ROUTES).update(0.0, value) == mode


def test_dead_band_holds_the_mode():
    p = ModePolicy(CFG, ROUTES)
    assert set(run(p, [0.05] * 60 + [0.11] * 200)) == {"ir"}  # 0.11 is past 0.10 but inside the 0.02 band
    assert run(p, [0.13] * 10, t0=260 / 25)[-1] == "fused"


def test_min_dwell_blocks_flicker():
    p = ModePolicy(CFG, ROUTES)
    values = [0.05, 0.40] * 100  # alternating dark/bright frames: worst case
    run(p, values)
    assert all(b - a >= 2.0 for a, b in itertools.pairwise(p.switches))
    assert len(p.switches) <= len(values) / 25 / 2.0 + 1


def test_camera_offset_moves_a_camera_across_bins():
    cfg = ModalityConfig(camera_offsets={"lit_street": 0.1}, smoothing_s=0.0)
    assert ModePolicy(cfg, ROUTES, "lit_street").update(0.0, 0.05) == "fused"
    assert ModePolicy(cfg, ROUTES, "field").update(0.0, 0.05) == "ir"


def test_smoothing_delays_reaction():
    p = ModePolicy(ModalityConfig(min_dwell_s=0.0, smoothing_s=1.0), ROUTES)
    modes = run(p, [0.40] * 25 + [0.05] * 25)
    assert modes[25] == "rgb" and "ir" not in modes[25:30]


@pytest.mark.parametrize("forced", ["rgb", "fused", "ir"])
def test_forced_modes_ignore_brightness(forced):
    p = ModePolicy(ModalityConfig(mode=forced), ROUTES)
    assert set(run(p, np.linspace(0, 1, 100))) == {forced}


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="max_loss"):
        ModalityConfig(max_loss=-0.1)
    with pytest.raises(ConfigError, match="hysteresis"):
        ModalityConfig(hysteresis=-1)


def test_brightness_ignores_saturated_glare():
    dark = np.full((64, 64, 3), 20, np.uint8)
    glare = dark.copy()
    glare[:16, :16] = 255
    assert brightness(glare).mean == pytest.approx(brightness(dark).mean, abs=1e-6)
    assert brightness(np.full((64, 64, 3), 200, np.uint8)).mean > 0.7


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_brightness_on_cuda_matches_numpy():
    img = np.random.default_rng(0).integers(0, 250, (128, 160, 3), dtype=np.uint8)
    a, b = brightness(img), brightness(torch.from_numpy(img).cuda())
    assert a.mean == pytest.approx(b.mean, abs=1e-4) and a.p90 == pytest.approx(b.p90, abs=2e-3)
