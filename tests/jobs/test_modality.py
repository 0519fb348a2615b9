import itertools

import numpy as np
import pytest
import torch

from fusion.config import ConfigError
from jobs.config import ModalityConfig
from jobs.modality import ModePolicy, brightness

CFG = ModalityConfig(dark_below=0.14, bright_above=0.29, hysteresis=0.02, min_dwell_s=2.0, smoothing_s=0.0)


def run(policy: ModePolicy, values, fps=25, contrast=0.4, t0=0.0):
    return [policy.update(t0 + i / fps, v, contrast) for i, v in enumerate(values)]


@pytest.mark.parametrize(("value", "contrast", "mode"), [
    (0.05, 0.1, "ir"), (0.20, 0.3, "fused"), (0.40, 0.4, "rgb"), (0.45, 0.15, "fused"),  # bright but flat = fog
])
def test_first_decision(value, contrast, mode):
    assert ModePolicy(CFG).update(0.0, value, contrast) == mode


def test_dead_band_holds_the_mode():
    p = ModePolicy(CFG)
    modes = run(p, [0.10] * 60 + [0.15] * 200)  # 0.15 is past 0.14 but inside the 0.02 band
    assert set(modes) == {"ir"}
    modes = run(p, [0.17] * 10, t0=260 / 25)
    assert modes[-1] == "fused"


def test_min_dwell_blocks_flicker():
    p = ModePolicy(CFG)
    values = [0.05, 0.40] * 100  # alternating dark/bright frames: worst case
    run(p, values, contrast=0.4)
    switches = p.switches
    assert all(b - a >= 2.0 for a, b in itertools.pairwise(switches))
    assert len(switches) <= len(values) / 25 / 2.0 + 1


def test_smoothing_delays_reaction():
    p = ModePolicy(ModalityConfig(min_dwell_s=0.0, smoothing_s=1.0))
    modes = run(p, [0.40] * 25 + [0.05] * 25, contrast=0.4)
    assert modes[25] == "rgb" and modes[-1] in ("fused", "ir") and "ir" not in modes[25:30]


@pytest.mark.parametrize("forced", ["rgb", "fused", "ir"])
def test_forced_modes_ignore_brightness(forced):
    p = ModePolicy(ModalityConfig(mode=forced))
    assert set(run(p, np.linspace(0, 1, 100))) == {forced}


def test_config_rejects_overlapping_bands():
    with pytest.raises(ConfigError, match="dead bands"):
        ModalityConfig(dark_below=0.2, bright_above=0.25, hysteresis=0.03)
    with pytest.raises(ConfigError, match="dark_below < bright_above"):
        ModalityConfig(dark_below=0.5, bright_above=0.3)


def test_brightness_ignores_glare_and_matches_on_torch():
    frame = np.full((64, 64, 3), 40, np.uint8)
    glare = frame.copy()
    glare[:16, :16] = 255
    assert brightness(glare).mean == pytest.approx(brightness(frame).mean, abs=1e-6)
    b_np, b_t = brightness(frame), brightness(torch.from_numpy(frame))
    assert b_np.mean == pytest.approx(b_t.mean, abs=1e-5) and b_np.mean == pytest.approx(40 / 255, abs=1e-3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_brightness_on_the_gpu_matches_cpu():
    frame = np.random.default_rng(0).integers(0, 256, (512, 640, 3), dtype=np.uint8)
    a, b = brightness(frame), brightness(torch.from_numpy(frame).cuda())
    assert a.mean == pytest.approx(b.mean, abs=1e-4) and a.p90 == pytest.approx(b.p90, abs=2e-3)
