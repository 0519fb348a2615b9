"""Appearance randomisation: zero amplitudes change nothing, each draw changes what it claims, draws are reproducible,
and a flat-filled object comes out textured (the shortcut it exists to take away)."""

import pytest
import torch

from fusion.config import ConfigError, load_config
from fusion.data.appearance import randomize_appearance
from fusion.data.pairs import AugmentConfig
from fusion.train import TrainConfig


def _flat_scene(B=4, H=64, W=80):
    rgb = torch.full((B, 3, H, W), 0.3)
    rgb[:, :, 16:48, 30:50] = torch.tensor([0.8, 0.2, 0.1])[:, None, None]  # a flat red "person"
    ir = torch.full((B, 1, H, W), 0.4)
    ir[:, :, 16:48, 30:50] = 0.9
    return rgb, ir


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_off_by_default_and_zero_amplitudes_leave_frames_unchanged():
    assert not AugmentConfig().appearance and AugmentConfig().with_appearance().appearance
    rgb, ir = _flat_scene()
    for aug in (AugmentConfig(), AugmentConfig().with_appearance().without_appearance()):
        r, i = randomize_appearance(rgb.clone(), ir.clone(), aug, _gen())
        torch.testing.assert_close(r, rgb, atol=1e-3, rtol=0)
        torch.testing.assert_close(i, ir, atol=1e-3, rtol=0)
    # Every amplitude but one at zero still runs the whole chain: that chain is the identity where amplitudes are 0.
    near_zero = AugmentConfig(grey=1e-9)
    r, i = randomize_appearance(rgb.clone(), ir.clone(), near_zero, _gen())
    torch.testing.assert_close(r, rgb, atol=1e-3, rtol=0)
    torch.testing.assert_close(i, ir, atol=1e-3, rtol=0)


def test_draws_are_reproducible_and_per_image():
    rgb, ir = _flat_scene()
    a = randomize_appearance(rgb.clone(), ir.clone(), AugmentConfig().with_appearance(), _gen(5))
    b = randomize_appearance(rgb.clone(), ir.clone(), AugmentConfig().with_appearance(), _gen(5))
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(a[1], b[1])
    assert not torch.allclose(a[0][0], a[0][1])  # each image its own draw
    assert a[0].shape == rgb.shape and a[1].shape == ir.shape
    assert a[0].min() >= 0 and a[0].max() <= 1 and a[1].min() >= 0 and a[1].max() <= 1


@pytest.mark.parametrize("field", ["texture", "noise"])
def test_a_flat_fill_comes_out_textured(field):
    rgb, ir = _flat_scene()
    aug = AugmentConfig(**{field: 0.3})
    r, i = randomize_appearance(rgb, ir, aug, _gen(1))
    inside_rgb, inside_ir = r[:, :, 16:48, 30:50], i[:, :, 16:48, 30:50]
    assert inside_rgb.std(dim=(2, 3)).mean() > 0.01  # was 0: one colour
    assert inside_ir.std(dim=(2, 3)).mean() > 0.005


def test_blur_softens_edges_and_keeps_the_mean():
    rgb, ir = _flat_scene(B=16)
    aug = AugmentConfig(blur=2.0)
    r, _ = randomize_appearance(rgb.clone(), ir, aug, _gen(2))
    edge = (r[:, 0, 32, 29] - r[:, 0, 32, 30]).abs()  # across the object's left edge
    assert (edge < 0.49).sum() >= 4  # about half the frames are blurred
    torch.testing.assert_close(r.mean(), rgb.mean(), atol=2e-3, rtol=0)


def test_modality_dropout_blanks_one_modality_at_most():
    rgb, ir = _flat_scene(B=64)
    aug = AugmentConfig(drop_rgb=0.5, drop_ir=0.5)
    r, i = randomize_appearance(rgb, ir, aug, _gen(3))
    dark_rgb = r.amax(dim=(1, 2, 3)) < 0.1
    flat_ir = (i[:, 0, 30, 40] - i[:, 0, 2, 2]).abs() < 0.1  # object and ground nearly the same
    assert dark_rgb.any() and flat_ir.any()
    assert not (dark_rgb & flat_ir).any()


@pytest.mark.parametrize("override, key", [("augment.grey=1.5", "grey"), ("augment.blur=-1", "blur"),
                                           ("augment.drop_rgb=0.7", "drop_ir")])
def test_bad_amplitudes_are_one_line_errors_naming_the_key(override, key):
    overrides = [override] + (["augment.drop_ir=0.5"] if key == "drop_ir" else [])
    with pytest.raises(ConfigError, match=key):
        load_config(TrainConfig, None, overrides)


def test_the_cpu_loader_draws_appearance_without_moving_boxes():
    from fusion.data.pairs import SyntheticPairs, TrainPairs

    src = SyntheticPairs(n=1, seed=1, size=(320, 256))
    plain = TrainPairs(src, size=(320, 256), augment=AugmentConfig())[0]
    drawn = TrainPairs(src, size=(320, 256), augment=AugmentConfig().with_appearance())[0]
    torch.testing.assert_close(drawn[2], plain[2])  # the same geometry draws: boxes unchanged
    assert drawn[0].shape == plain[0].shape and (drawn[0] - plain[0]).abs().mean() > 0.01
