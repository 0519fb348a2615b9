import numpy as np
import pytest

from fusion.data.scene import SLICES, Illumination, SceneConfig, make_scene, render_pair

SMALL = SceneConfig(rgb_size=(320, 256), ir_size=(160, 128))


def test_same_seed_same_pair_other_seed_other_pair():
    a, b, c = render_pair(7, "dusk", SMALL), render_pair(7, "dusk", SMALL), render_pair(8, "dusk", SMALL)
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.ir, b.ir)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    assert not np.array_equal(a.rgb, c.rgb)


@pytest.mark.parametrize("slice_", SLICES)
def test_shapes_and_boxes_inside_rgb_image(slice_):
    for seed in range(20):
        f = render_pair(seed, slice_, SMALL)
        assert f.rgb.shape == (256, 320, 3) and f.rgb.dtype == np.uint8
        assert f.ir.shape == (128, 160) and f.ir.dtype == np.uint8
        assert len(f.boxes) == len(f.classes)
        assert (f.boxes[:, :2] >= 0).all() and (f.boxes[:, 2] <= 320).all() and (f.boxes[:, 3] <= 256).all()
        assert (f.boxes[:, 2] > f.boxes[:, 0]).all() and (f.boxes[:, 3] > f.boxes[:, 1]).all()
        assert set(f.classes.tolist()) <= {0, 1}


def _luma(bgr):
    return (0.114 * bgr[..., 0] + 0.587 * bgr[..., 1] + 0.299 * bgr[..., 2]).mean()


def test_night_rgb_darker_than_day_as_real_lit_streets_and_fog_flattens_contrast():
    day = np.mean([_luma(render_pair(s, "day", SMALL).rgb) for s in range(10)])
    night = np.mean([_luma(render_pair(s, "night", SMALL).rgb) for s in range(10)])
    assert night < 0.6 * day
    assert 0.06 * 255 < night < 0.3 * 255  # real lamp-lit night streets read 0.09-0.30 (issue 13)
    std_day = np.mean([render_pair(s, "day", SMALL).rgb.std() for s in range(10)])
    std_fog = np.mean([render_pair(s, "fog", SMALL).rgb.std() for s in range(10)])
    assert std_fog < 0.7 * std_day


@pytest.mark.parametrize("slice_", SLICES)
def test_persons_are_hot_in_ir_in_every_slice(slice_):
    cfg = SceneConfig(rgb_size=(320, 256), ir_size=(320, 256))  # aligned, same grid: boxes index IR directly
    contrasts = []
    for seed in range(15):
        f = render_pair(seed, slice_, cfg)
        for (x1, y1, x2, y2), c in zip(f.boxes.astype(int), f.classes, strict=True):
            if c != 0 or (x2 - x1) < 6:
                continue
            inner = f.ir[y1 + (y2 - y1) // 4:(y1 + y2) // 2, (3 * x1 + x2) // 4:(x1 + 3 * x2) // 4]
            ring = np.concatenate([f.ir[y1:y2, max(x1 - 6, 0):max(x1 - 2, 0)].ravel(),
                                   f.ir[y1:y2, x2 + 2:x2 + 6].ravel()])
            if inner.size and ring.size:
                contrasts.append(float(inner.mean()) - float(ring.mean()))
    assert len(contrasts) >= 5
    assert np.median(contrasts) > 40  # grey levels out of 255


def test_night_rgb_persons_low_contrast_but_day_high():
    def rgb_contrast(slice_):
        vals = []
        for seed in range(15):
            f = render_pair(seed, slice_, SMALL)
            g = f.rgb.astype(np.float32).mean(-1)
            for (x1, y1, x2, y2), c in zip(f.boxes.astype(int), f.classes, strict=True):
                if c == 0 and x2 - x1 >= 6 and x1 >= 6:
                    vals.append(abs(g[y1:y2, x1:x2].mean() - g[y1:y2, max(x1 - 6, 0):x1].mean()))
        return np.nanmedian(vals)

    assert rgb_contrast("night") < 0.5 * rgb_contrast("day")


def test_ir_misalignment_moves_ir_only():
    aligned = make_scene(3, SceneConfig(rgb_size=(320, 256), ir_size=(160, 128)))
    shifted = make_scene(3, SceneConfig(rgb_size=(320, 256), ir_size=(160, 128), ir_shift=8.0, ir_scale=0.05))
    assert aligned.ir_affine != shifted.ir_affine
    il = Illumination(light=0.9)
    fa = aligned.render(0.0, il, np.random.default_rng(0))
    fs = shifted.render(0.0, il, np.random.default_rng(0))
    np.testing.assert_array_equal(fa.rgb, fs.rgb)
    np.testing.assert_array_equal(fa.boxes, fs.boxes)
    assert np.abs(fa.ir.astype(int) - fs.ir.astype(int)).mean() > 2


def test_objects_move_over_time():
    scene = make_scene(5, SMALL)
    il = Illumination(light=0.9)
    f0 = scene.render(0.0, il, np.random.default_rng(0))
    f1 = scene.render(1.0, il, np.random.default_rng(0))
    assert len(f0.boxes) and not np.allclose(f0.boxes[: len(f1.boxes)], f1.boxes[: len(f0.boxes)])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"rgb_size": (32, 32)}, "rgb_size"),
    ({"max_targets": 0}, "max_targets"),
    ({"ir_scale": 0.7}, "ir_scale"),
])
def test_scene_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SceneConfig(**kwargs)
