from dataclasses import dataclass, field
from typing import Literal

import pytest

from fusion.config import ConfigError, load_config, split_cli


@dataclass(frozen=True)
class Inner:
    size: tuple[int, int] = (640, 512)
    mode: Literal["a", "b"] = "a"


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    rate: float = 0.5
    inner: Inner = field(default_factory=Inner)


@pytest.mark.parametrize(("text", "overrides", "expect"), [
    ("", [], Outer()),
    ("name: y\ninner: {size: [32, 64]}\n", [], Outer(name="y", inner=Inner(size=(32, 64)))),
    ("", ["inner.mode=b", "rate=1"], Outer(rate=1.0, inner=Inner(mode="b"))),
    ("nmae: y\n", [], "unknown key.*nmae"),
    ("", ["inner.mode=c"], r"inner.mode: 'c' is not one of \['a', 'b'\]"),
    ("", ["rate=fast"], "rate: expected a number"),
    ("inner: {size: [1, 2, 3]}\n", [], "inner.size: expected 2 items"),
    ("- 1\n", [], "top level must be a mapping"),
])
def test_load_config_table(tmp_path, text, overrides, expect):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    if isinstance(expect, str):
        with pytest.raises(ConfigError, match=expect):
            load_config(Outer, path, overrides)
    else:
        assert load_config(Outer, path, overrides) == expect


def test_split_cli():
    assert split_cli(["c.yaml", "a=1"]) == ("c.yaml", ["a=1"])
    assert split_cli(["a=1"]) == (None, ["a=1"])
    with pytest.raises(ConfigError, match="key=value"):
        split_cli(["c.yaml", "oops"])
