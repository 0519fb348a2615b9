"""YAML → frozen dataclasses, validated at the boundary.

Every config in fusedet is a frozen dataclass. `load_config(Cls, path, overrides)` reads YAML, applies
`key=value` overrides (dotted keys reach nested dataclasses), rejects unknown keys by name, checks
`Literal[...]` choices and converts lists to tuples. Each dataclass's own `__post_init__` then checks ranges.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key."""


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return from_dict(tp, value, where=where)
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(f"{where}: {value!r} is not one of {list(choices)}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError("; ".join(errors))
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
        return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls: type[T], data: Mapping[str, Any], *, where: str = "config") -> T:
    """Build dataclass `cls` from `data`; unknown keys and wrong types raise ConfigError naming the key."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(fields)}")
    kwargs = {name: _convert(hints[name], value, f"{where}.{name}") for name, value in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain-YAML-serialisable dict (tuples become lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(cfg))


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply `a.b=value` strings (value parsed as YAML) to a nested dict, returning a new dict."""
    out = yaml.safe_load(yaml.safe_dump(data)) or {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected key=value")
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
        try:
            node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""  # `key=` means the empty string
        except yaml.YAMLError as exc:
            problem = str(getattr(exc, "problem", "") or exc).splitlines()[0]
            raise ConfigError(f"override {item!r}: the value is not valid YAML ({problem}); quote lists of "
                              "strings, e.g. 'key=[\"a=1\", \"b\"]'") from exc
    return out


def load_config(cls: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """Read YAML at `path` (or start from the defaults), apply overrides, validate into `cls`."""
    data: dict[str, Any] = {}
    where = cls.__name__
    if path is not None:
        where = str(path)
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {path}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
    return from_dict(cls, apply_overrides(data, overrides), where=where)


def parse_args(cls: type[T], args: Sequence[str], *, positional: int = 0, config_file: bool = False
               ) -> tuple[list[str], T]:
    """`<positional...> [config.yaml] [key=value ...]` → (positionals, validated `cls`)."""
    args = list(args)
    if len(args) < positional or any("=" in a for a in args[:positional]):
        raise ConfigError(f"expected {positional} positional argument(s) before the key=value overrides")
    path, overrides = split_cli(args[positional:]) if config_file else (None, args[positional:])
    if not config_file and any("=" not in a for a in overrides):
        raise ConfigError(f"expected key=value overrides, got {[a for a in overrides if '=' not in a]}")
    return args[:positional], load_config(cls, path, overrides)


def cli_main(body: Callable[[list[str]], int], argv: Sequence[str] | None, *, doc: str | None,
             config: type | Mapping[str, type] | None = None, errors: tuple[type[BaseException], ...] = ()) -> int:
    """Run a CLI body the one way every fusedet command runs.

    `-h`/`--help` prints the command's docstring and every key of `config` (a dataclass, or {subcommand: dataclass})
    with its default and comment. A user mistake — ConfigError, a missing file, or one of `errors` — is one line on
    stderr and exit status 2, never a traceback; Ctrl-C is exit status 130.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args) or args[:1] == ["help"]:
        print(help_text(doc, config))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return body(args)
    except (ConfigError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError, *errors) as exc:
        print(f"error: {exc}  (--help lists the keys)" if isinstance(exc, ConfigError) else f"error: {exc}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


_FIELD = re.compile(r"^    (\w+)\s*:\s*[^#]*?(?:#\s*(.*))?$")
_COMMENT = re.compile(r"^\s*#(\s*)(.*)$")


def field_comments(cls: type) -> dict[str, str]:
    """{field: comment} from the dataclass's source: trailing comments, their aligned continuation lines, and
    comment blocks written above a field. The comments in the code are the documentation `--help` shows."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return {}
    out: dict[str, str] = {}
    last, pending = None, []
    for line in lines:
        m = _FIELD.match(line)
        if m and m.group(1) in {f.name for f in dataclasses.fields(cls)}:
            last = m.group(1)
            out[last] = " ".join([*pending, (m.group(2) or "").strip()]).strip()
            pending = []
            continue
        c = _COMMENT.match(line)
        if c and len(c.group(1)) > 1 and last:  # aligned under the previous field's comment: its continuation
            out[last] = f"{out[last]} {c.group(2).strip()}".strip()
        elif c:
            pending.append(c.group(2).strip())
        else:
            last = None if line.strip().startswith("def ") else last
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, tuple | list):
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    if isinstance(value, str):
        return repr(value) if value == "" or any(c in value for c in " :#,[]{}") else value
    if isinstance(value, dict):
        return "{}" if not value else repr(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def describe(cls: type, prefix: str = "") -> list[tuple[str, str]]:
    """(`key = default`, comment) per key, dotted for sections."""
    rows = []
    notes = field_comments(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(tp):
            rows += describe(tp, f"{prefix}{f.name}.")
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else "(required)")
        choices = f" (one of {list(get_args(tp))})" if get_origin(tp) is Literal else ""
        rows.append((f"{prefix}{f.name} = {_fmt(default)}", f"{notes.get(f.name, '')}{choices}"))
    return rows


def help_text(doc: str | None, config: type | Mapping[str, type] | None) -> str:
    parts = [(doc or "").strip()]
    groups = config.items() if isinstance(config, Mapping) else [("", config)] if config else []
    for name, cls in groups:
        parts.append(f"\nKeys{' of ' + name if name else ''} (key=value, dotted for sections; values are YAML, "
                     "sizes are [W,H]):")
        rows = describe(cls)
        width = min(max((len(k) for k, _ in rows), default=0), 46)
        parts.append("\n".join(f"  {k:{width}}  {note}".rstrip() for k, note in rows))
    return "\n".join(parts)


def split_cli(argv: Sequence[str]) -> tuple[str | None, list[str]]:
    """`[config.yaml] [key=value ...]` → (path or None, overrides)."""
    path = None
    rest = list(argv)
    if rest and "=" not in rest[0]:
        path = rest.pop(0)
    bad = [a for a in rest if "=" not in a]
    if bad:
        raise ConfigError(f"expected key=value overrides, got {bad}")
    return path, rest
