"""Reading configs: TOML files and ``--set key=value`` overrides on top of a preset, type-checked by the
schema, every problem collected; saving and reading ``config.json``.

Precedence: preset < ``--config FILE`` < ``--set`` (in order). ``load_config`` validates everything at
once and raises ``InputError`` listing every problem (the CLI exits 2 before any process starts).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import sys
import typing
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import InputError
from ..rundir.atomic import write_text_atomic
from .presets import PRESETS
from .schema import Config
from .validate import validate_config


# -- parsing ---------------------------------------------------------------------------------------------
def _sections() -> dict[str, type]:
    return {f.name: f.type for f in dataclasses.fields(Config) if f.name != "seed"}  # type: ignore[misc]


def _section_types() -> dict[str, Any]:
    hints = typing.get_type_hints(Config)
    return {name: hints[name] for name in _sections()}


def _coerce(value: Any, tp: Any, where: str, problems: list[str]) -> Any:
    """``value`` as type ``tp`` (from TOML or a --set string), or a problem appended."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and type(None) in args:
        if value is None or (isinstance(value, str) and value.lower() in ("", "none", "null")):
            return None
        return _coerce(value, next(a for a in args if a is not type(None)), where, problems)
    if origin is tuple:
        inner = args[0]
        if isinstance(value, str):
            value = [v for v in (s.strip() for s in value.split(",")) if v]
        if not isinstance(value, (list, tuple)):
            problems.append(f'{where}: expected a list, got {value!r} (fix: e.g. {where}=a,b or ["a", "b"])')
            return None
        return tuple(_coerce(v, inner, where, problems) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        problems.append(f"{where}: expected true or false, got {value!r}")
        return None
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            problems.append(f"{where}: expected an integer, got {value!r}")
            return None
        try:
            return int(value)
        except ValueError:
            problems.append(f"{where}: expected an integer, got {value!r}")
            return None
    if tp is float:
        try:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        except (TypeError, ValueError):
            problems.append(f"{where}: expected a number, got {value!r}")
            return None
    if tp is str:
        return str(value)
    raise TypeError(tp)


def _merge(base: dict[str, Any], overrides: dict[str, Any], source: str, problems: list[str]) -> None:
    """Merge nested ``overrides`` into ``base`` (a ``Config.to_dict()``), checking names and types."""
    sections = _section_types()
    for key, value in overrides.items():
        if key == "seed":
            num_before = len(problems)
            seed = _coerce(value, int, f"{source}: seed", problems)
            if len(problems) == num_before:
                base["seed"] = seed
            continue
        if key not in sections:
            hint = difflib.get_close_matches(key, [*sections, "seed"], n=1)
            problems.append(
                f"{source}: unknown section {key!r}"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + f"; sections are seed, {', '.join(sections)}"
            )
            continue
        if not isinstance(value, dict):
            problems.append(f"{source}: {key} must be a table of settings, e.g. [{key}]")
            continue
        hints = typing.get_type_hints(sections[key])
        for name, v in value.items():
            if name not in hints:
                hint = difflib.get_close_matches(name, list(hints), n=1)
                problems.append(
                    f"{source}: unknown setting {key}.{name}"
                    + (f" (did you mean {key}.{hint[0]}?)" if hint else f"; {key} has {', '.join(hints)}")
                )
                continue
            num_before = len(problems)
            coerced = _coerce(v, hints[name], f"{source}: {key}.{name}", problems)
            if len(problems) == num_before:  # a bad value keeps the previous one, so validation still runs
                base[key][name] = coerced


def _parse_set(item: str, problems: list[str]) -> dict[str, Any]:
    """``a.b=value`` → {"a": {"b": value}} (value parsed as TOML when it can be, else kept as a string)."""
    if "=" not in item:
        problems.append(f"--set {item!r}: expected KEY=VALUE, e.g. --set model.num_layers=5")
        return {}
    key, raw = (s.strip() for s in item.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    parts = key.split(".")
    if not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", p) for p in parts) or len(parts) > 2:
        problems.append(f"--set {item!r}: KEY must be SECTION.NAME or seed, e.g. train.epochs")
        return {}
    return {parts[0]: value} if len(parts) == 1 else {parts[0]: {parts[1]: value}}


def load_config(
    preset: str | None = "default",
    config_file: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    base: Config | None = None,
    validate: bool = True,
) -> Config:
    """The resolved, validated ``Config`` (on top of ``base``, default the built-in defaults); raises
    ``InputError`` listing every problem."""
    problems: list[str] = []
    base_dict = (base or Config()).to_dict()
    base = None
    if preset is not None:
        if preset not in PRESETS:
            problems.append(f"--preset {preset!r}: unknown preset; use one of {', '.join(PRESETS)}")
        else:
            _merge(base_dict, PRESETS[preset], f"preset {preset}", problems)
    if config_file is not None:
        path = Path(config_file)
        try:
            _merge(base_dict, tomllib.loads(path.read_text()), str(path), problems)
        except FileNotFoundError:
            problems.append(f"{path}: config file not found (fix: give an existing TOML file to --config)")
        except tomllib.TOMLDecodeError as exc:
            problems.append(f"{path}: not valid TOML: {exc}")
    for item in overrides:
        _merge(base_dict, _parse_set(item, problems), f"--set {item.split('=')[0].strip()}", problems)
    cfg = from_dict(base_dict)
    if validate:
        problems += validate_config(cfg)
    if problems:
        raise InputError(problems)
    return cfg


def from_dict(d: dict[str, Any]) -> Config:
    """A Config from ``to_dict()`` output or a saved ``config.json`` (lists become tuples)."""
    sections = _section_types()
    kwargs: dict[str, Any] = {"seed": int(d.get("seed", 0))}
    for name, tp in sections.items():
        hints = typing.get_type_hints(tp)
        values = {}
        for k, v in d.get(name, {}).items():
            if k in hints:
                values[k] = tuple(v) if isinstance(v, list) else v
        kwargs[name] = tp(**values)
    return Config(**kwargs)


def save_config(cfg: Config, path: str | Path) -> None:
    write_text_atomic(path, json.dumps(cfg.to_dict(), indent=2, sort_keys=True) + "\n")


def read_config(path: str | Path) -> Config:
    return from_dict(json.loads(Path(path).read_text()))


def replace(cfg: Config, **sections: dict[str, Any]) -> Config:
    """A copy of ``cfg`` with some fields of some sections changed, e.g. replace(cfg, run={"workers": 2})."""
    kwargs = {name: dataclasses.replace(getattr(cfg, name), **values) for name, values in sections.items()}
    return dataclasses.replace(cfg, **kwargs)
