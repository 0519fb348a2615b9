"""`benchmarks/render_digests.py` digests what two machines must agree on, and the same machine agrees with itself."""

import json

import fusion.data.generate as generate
from benchmarks.render_digests import CLIPS, main


def test_digests_are_written_per_clip_and_run_and_agree_run_to_run(tmp_path, capsys):
    encode = generate.write_video
    assert main(["repeats=2", f"out={tmp_path}/d.json"]) == 0
    result = json.loads((tmp_path / "d.json").read_text())
    assert json.loads(capsys.readouterr().out) == result
    assert generate.write_video is encode  # the digesting wrapper is removed again
    assert set(result["versions"]) == {"numpy", "opencv", "av", "pyarrow"}
    assert set(result["clips"]) == {name for name, *_ in CLIPS}
    for clip in result["clips"].values():
        first, second = clip["runs"]
        assert set(first) == {"frames_rgb", "frames_ir", "rgb.mp4", "ir.mp4", "gt.parquet", "gt_content"}
        assert first == second and clip["same_every_run"]
        assert len(set(first.values())) == len(first)  # every digest is of something different
