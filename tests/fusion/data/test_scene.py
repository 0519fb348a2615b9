import numpy as np
import pytest

from fusion.data.prims import Drawing, Prim
from fusion.data.render import exposure_s, motion, paint, paint_moving
from fusion.data.scene import SLICES, Illumination, SceneConfig, make_scene, render_pair, sample_illumination

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


def test_stills_are_moments_of_a_moving_street_with_the_sampled_layout():
    """People in stills walk (stride poses, smear), as in footage, yet stand where the scene put them: a still of
    seed s labels the same objects, in nearly the same boxes, as that scene frozen (speed 0) at the same moment."""
    walkers, ious, only_one = 0, [], 0
    for seed in range(12):
        slice_ = SLICES[seed % 5]
        walkers += sum(th.speed > 0.2 for th in make_scene(seed, SMALL).things if th.kind == "person")
        f = render_pair(seed, slice_, SMALL)
        rng = np.random.default_rng([seed, 1])
        g = make_scene(seed, SMALL, speed=0.0).render(float(rng.uniform(0, 5)), sample_illumination(slice_, rng), rng)
        boxes_f = dict(zip(f.ids.tolist(), f.boxes, strict=True))
        boxes_g = dict(zip(g.ids.tolist(), g.boxes, strict=True))
        only_one += len(boxes_f.keys() ^ boxes_g.keys())  # a stride or smear can tip a borderline label
        for a, b in ((boxes_f[k], boxes_g[k]) for k in boxes_f.keys() & boxes_g.keys()):
            inter = np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None).prod()
            ious.append(inter / ((a[2:] - a[:2]).prod() + (b[2:] - b[:2]).prod() - inter))
    assert walkers >= 12 and len(ious) >= 30
    assert only_one <= 0.1 * len(ious)
    assert np.median(ious) > 0.7  # the same place
    assert np.mean(np.asarray(ious) < 0.98) > 0.2  # but not frozen: strides widen boxes, walkers have moved


def test_people_span_far_to_near_as_in_real_surveillance_footage():
    """Real elevated street cameras show people from far and small to ~400 px tall near the lens at 1280x1024
    (0.39 of the frame height). Lenses from tele to wide put the top tenth of people there, with far ones kept."""
    heights = []
    for seed in range(200):  # the top decile of 100 stills moves by +-0.02 from one seed set to the next
        f = render_pair(seed, "day", SMALL)
        heights += ((f.boxes[f.classes == 0, 3] - f.boxes[f.classes == 0, 1]) / 256).tolist()
    p10, p90 = np.percentile(heights, [10, 90])
    assert len(heights) > 600
    assert p90 >= 0.38, f"near people {p90:.3f} of the frame height"  # 40-66° lenses alone: 0.33-0.37
    assert p10 <= 0.15, f"far people {p10:.3f} of the frame height"


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


def _bar(img: np.ndarray, move: tuple[float, float]) -> np.ndarray:
    """A white 10x30 px bar on black painted through paint_moving with image motion `move`."""
    bar = Prim("poly", np.array([[40.0, 20.0], [50.0, 20.0], [50.0, 50.0], [40.0, 50.0]]), (1.0, 1.0, 1.0), 1.0)
    paint_moving(img, Drawing([bar], 10.0, None), move, (1.0, 1.0, 0.0, 0.0), lambda: paint(img, bar, 1.0))
    return img


def test_moving_objects_smear_along_their_motion_and_still_ones_do_not():
    still = _bar(np.zeros((80, 100), np.float32), (0.0, 0.0))
    plain = np.zeros((80, 100), np.float32)
    paint(plain, Prim("poly", np.array([[40.0, 20.0], [50.0, 20.0], [50.0, 50.0], [40.0, 50.0]]), None, 1.0),
          1.0)
    np.testing.assert_array_equal(still, plain)  # no motion: exactly the plain painter (static stills unchanged)
    moved = _bar(np.zeros((80, 100), np.float32), (16.0, 0.0))  # 16 px to the right during the exposure
    cols, rows = moved.sum(0) > 0, moved.sum(1) > 0
    assert cols.sum() >= still.sum(0).astype(bool).sum() + 14 and rows.sum() == rows[still.sum(1) > 0].sum()
    assert abs(moved.sum() - still.sum()) < 0.02 * still.sum()  # the light is spread, not created or lost
    assert moved.max() < 1.0 and ((moved > 0.05) & (moved < 0.95)).sum() > 300  # soft leading and trailing edges
    rgb = _bar(np.zeros((80, 100, 3), np.float32), (0.0, 12.0))  # colour canvases smear too, here vertically
    assert (rgb[..., 0].sum(1) > 0).sum() >= 30 + 10


def test_night_exposure_is_longer_and_moving_scenes_blur_only_where_things_move():
    assert exposure_s(0.04) == pytest.approx(0.04) and exposure_s(1.0) < 0.01
    scene = make_scene(21, SceneConfig())
    mover = next(th for th in scene.things if th.kind == "vehicle" and th.speed > 3)
    dx, dy = motion(scene, mover, exposure_s(0.04))
    assert np.hypot(dx, dy) > 5 and np.hypot(*motion(scene, mover, exposure_s(1.0))) < np.hypot(dx, dy) / 5


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"rgb_size": (32, 32)}, "rgb_size"),
    ({"max_targets": 0}, "max_targets"),
    ({"ir_scale": 0.7}, "ir_scale"),
    ({"hfov": (80.0, 24.0)}, "hfov"),
    ({"hfov": (2.0, 60.0)}, "hfov"),
])
def test_scene_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SceneConfig(**kwargs)


def test_the_cache_digest_covers_every_module_the_renderer_imports(monkeypatch):
    """Cached training pairs are named by `generator_version`: a change to any module that draws them (vehicles and
    shapes moved to their own modules) must re-render them, never reuse pairs of the scenes before."""
    from pathlib import Path

    from fusion.data.scene import generator_modules, generator_version

    assert set(generator_modules()) == {"camera", "figures", "population", "prims", "render", "scene", "street",
                                        "vehicles"}
    digest = generator_version.__wrapped__  # uncached: the source is changed below
    before, read = digest(), Path.read_bytes
    assert generator_version() == before
    monkeypatch.setattr(Path, "read_bytes", lambda p: read(p) + (b"#" if p.name == "vehicles.py" else b""))
    assert digest() != before
