"""Settings of registered objects: a frozen dataclass per method (or dataset, local network), its fields
declared with ``param``, values coerced from TOML or ``--set`` strings and checked against their ranges.

A method ``NAME`` with a field ``FIELD`` is set as ``eval.NAME_FIELD`` (``--set eval.dgd_step=0.3``, or a TOML
``[eval] dgd_step = 0.3``, or a table ``[eval.dgd] step = 0.3``); a dataset's as ``data.NAME_FIELD``, a local
network's as ``model.NAME_FIELD``. This module imports neither torch nor the config, so the CLI can parse and
validate without them.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any

Range = tuple[float | None, float | None, bool, bool]  # (low, high, low included, high included); None: open


@dataclasses.dataclass(frozen=True)
class Key:
    """Bounds, choices and help of one key of a graph generator: ``n: Annotated[int, Key("agents", low=2)]``."""

    help: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class NoParams:
    """A registered object without settings of its own."""


def param(
    default: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    choices: tuple[str, ...] = (),
    grid: tuple[Any, ...] = (),
    help: str = "",
) -> Any:
    """A field of a settings dataclass with its range (``low`` ≤ value ≤ ``high``; ``*_open``: strict) or its
    ``choices``, a one-line ``help``, and the values ``tune-baselines`` tries (``grid``, for a tunable constant).
    Use as ``step: float = param(0.3, low=0, low_open=True)``."""
    meta = {"range": (low, high, not low_open, not high_open), "choices": tuple(choices), "grid": grid, "help": help}
    return dataclasses.field(default=default, metadata=meta)


def range_problem(name: str, value: Any, rng: Range) -> str:
    """The problem with ``value`` of setting ``name`` against its range ("" when it lies inside)."""
    low, high, low_in, high_in = rng
    lo = "" if low is None else f"{'≥' if low_in else '>'} {low:g}"
    hi = "" if high is None else f"{'≤' if high_in else '<'} {high:g}"
    want = " and ".join(x for x in (lo, hi) if x)
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name} = {value}: must be a finite number{' ' + want if want else ''}"
    ok = (low is None or value > low or (low_in and value == low)) and (
        high is None or value < high or (high_in and value == high)
    )
    return "" if ok else f"{name} = {value!r}: must be {want}"


def coerce(value: Any, tp: Any, where: str, problems: list[str]) -> Any:
    """``value`` as type ``tp`` (from TOML or a --set string), or None with a problem appended."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if value is None or (isinstance(value, str) and value.lower() in ("", "none", "null")):
            return None
        return coerce(value, next(a for a in args if a is not type(None)), where, problems)
    if origin is tuple:
        inner = args[0]
        if isinstance(value, str):
            value = [v for v in (s.strip() for s in value.split(",")) if v]
        if not isinstance(value, list | tuple):
            problems.append(f'{where}: expected a list, got {value!r} (fix: e.g. {where}=a,b or ["a", "b"])')
            return None
        return tuple(coerce(v, inner, where, problems) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        problems.append(f"{where}: expected true or false, got {value!r}")
        return None
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int | str):
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
    raise TypeError(f"{where}: settings of type {tp!r} are not supported (use bool, int, float, str, tuple)")


def fields_of(params_cls: type) -> dict[str, dataclasses.Field]:
    """The settings of a params dataclass by name."""
    return {f.name: f for f in dataclasses.fields(params_cls)}


def defaults(params_cls: type) -> dict[str, Any]:
    """Every setting's default (a field without a default is a registration error)."""
    out = {}
    for f in dataclasses.fields(params_cls):
        if f.default is dataclasses.MISSING:
            if f.default_factory is dataclasses.MISSING:
                raise TypeError(f"{params_cls.__qualname__}.{f.name} has no default; every setting needs one")
            out[f.name] = f.default_factory()
        else:
            out[f.name] = f.default
    return out


def checked_values(params_cls: type, values: Mapping[str, Any], prefix: str, problems: list[str]) -> dict[str, Any]:
    """``values`` (names of ``params_cls``'s fields) coerced to their types and checked against their ranges and
    choices; every problem is appended, named ``{prefix}{field}``; unknown names are problems too."""
    hints = typing.get_type_hints(params_cls)
    known = fields_of(params_cls)
    out: dict[str, Any] = {}
    before_all = len(problems)
    for name, value in values.items():
        where = f"{prefix}{name}"
        if name not in known:
            have = ", ".join(f"{prefix}{k}" for k in known) or "none"
            problems.append(f"{where}: unknown setting (settings: {have})")
            continue
        before = len(problems)
        v = coerce(value, hints[name], where, problems)
        if len(problems) > before:
            continue
        meta = known[name].metadata
        if meta.get("choices") and v not in meta["choices"]:
            problems.append(f"{where} = {v!r}: unknown; use one of {', '.join(meta['choices'])}")
            continue
        if isinstance(v, int | float) and not isinstance(v, bool):
            problem = range_problem(where, v, meta.get("range", (None, None, True, True)))
            if problem:
                problems.append(problem)
                continue
        out[name] = v
    if len(problems) == before_all:  # the settings together: a Params class may check them (``__post_init__``)
        try:
            build(params_cls, out)
        except (TypeError, ValueError) as exc:
            problems.append(f"{prefix.rstrip('_')}: {exc}")
    return out


def build(params_cls: type, values: Mapping[str, Any]) -> Any:
    """An instance of ``params_cls`` from (already checked) values; missing ones take their defaults."""
    return params_cls(**{**defaults(params_cls), **values})


def describe(params_cls: type, prefix: str) -> list[str]:
    """One line per setting: ``prefix+name = default  (range) help``."""
    lines = []
    for f in dataclasses.fields(params_cls):
        meta = f.metadata
        low, high, low_in, high_in = meta.get("range", (None, None, True, True))
        bounds = []
        if low is not None:
            bounds.append(f"{'≥' if low_in else '>'} {low:g}")
        if high is not None:
            bounds.append(f"{'≤' if high_in else '<'} {high:g}")
        if meta.get("choices"):
            bounds.append("|".join(meta["choices"]))
        extra = f" ({', '.join(bounds)})" if bounds else ""
        lines.append(f"{prefix}{f.name} = {defaults(params_cls)[f.name]!r}{extra}  {meta.get('help', '')}".rstrip())
    return lines
