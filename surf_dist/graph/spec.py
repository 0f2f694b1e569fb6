"""Generator specs ``NAME:key=value,...``: a registered generator's keys (from its signature), parsing and a
stable hash."""

from __future__ import annotations

import hashlib
import inspect
import math
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..plugins import TOPOLOGIES
from ..plugins.params import Key

NORMALISATIONS: tuple[str, ...] = ("row", "spectral", "metropolis", "column")
DIRECTED_NORMALISATIONS: tuple[str, ...] = ("row", "column")
PLACEMENTS: tuple[str, ...] = ("contiguous", "mincut")
EDGE_LIST_SUFFIXES: tuple[str, ...] = (".txt", ".edges", ".edgelist")
GRAPH_FILE_SUFFIXES: tuple[str, ...] = (*EDGE_LIST_SUFFIXES, ".adjlist", ".graphml", ".json")
NUM_RANDOM_DRAWS = 20  # draws of a random generator before giving up on a connected graph


@dataclass(frozen=True)
class _SpecKey:
    """One key of a generator spec: its type, default (None: required) and its ``Key``."""

    kind: type
    key: Key
    default: int | float | bool | str | None = None

    @property
    def help(self) -> str:
        return self.key.help

    def describe(self, name: str) -> str:
        kind = "|".join(self.key.choices) or self.kind.__name__
        low, high = self.key.low, self.key.high
        if low is not None and high is not None:
            kind += f" in [{low:g}, {high:g}]"
        elif low is not None:
            kind += f" >= {low:g}"
        default = "required" if self.default is None else f"default {_format_value(self.default)}"
        return f"{name} ({kind}, {default}{': ' + self.help if self.help else ''})"


def generator_keys(fn: Any) -> dict[str, _SpecKey]:
    """The keys of a registered generator: its keyword parameters but ``rng`` and ``allow_disconnected`` (given by
    the caller), typed by their annotations (bool,
    int, float, str, optionally ``Annotated[type, Key(...)]``), required when they have no default."""
    hints = typing.get_type_hints(fn, include_extras=True)
    keys = {}
    for name, parameter in inspect.signature(fn).parameters.items():
        if name in ("rng", "allow_disconnected") or parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
        hint, key = hints.get(name, str), Key()
        if typing.get_origin(hint) is typing.Annotated:
            hint, *extras = typing.get_args(hint)
            key = next((e for e in extras if isinstance(e, Key)), key)
        if hint not in (bool, int, float, str):
            raise TypeError(f"generator {getattr(fn, '__name__', fn)!r}: key {name!r} must be bool, int, float or str")
        default = None if parameter.default is inspect.Parameter.empty else parameter.default
        keys[name] = _SpecKey(hint, key, default)
    return keys


def _is_count(value: object) -> bool:
    """A non-negative int (numpy ints too, bools not)."""
    return bool(isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 0)


def _format_value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _parse_value(name: str, key: _SpecKey, text: str) -> tuple[Any, str | None]:
    """Parse one value; return (value, None) or (None, problem)."""
    value: Any
    try:
        if key.kind is bool:
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            value = text.lower() in ("true", "1", "yes")
        else:
            value = key.kind(text)
    except ValueError:
        return None, f"{name}={text!r} is not of the right type; expected {key.describe(name)}"
    if key.kind is float and not math.isfinite(value):
        return None, f"{name}={text!r} must be finite"
    if key.key.choices and value not in key.key.choices:
        return None, f"{name}={text!r} is not one of {', '.join(key.key.choices)}"
    low, high = key.key.low, key.key.high
    if (low is not None and value < low) or (high is not None and value > high):
        return None, f"{name}={text!r} is out of range; expected {key.describe(name)}"
    return value, None


def _parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``"NAME:key=value,..."`` into the generator name and typed parameters (defaults filled)."""
    name, _, body = spec.partition(":")
    name = name.strip()
    if name not in TOPOLOGIES:
        files = ", ".join(GRAPH_FILE_SUFFIXES)
        problem = (
            f"unknown generator {name!r}; registered: {', '.join(TOPOLOGIES.names())} (a plugin in run.plugins can "
            f"register more); or give a graph file ({files})"
        )
        raise InputError([problem], source=spec)
    generator = TOPOLOGIES.get(name)
    keys = generator_keys(generator)
    problems: list[str] = []
    raw: dict[str, str] = {}
    for item in (part.strip() for part in body.split(",")):
        key, eq, text = (s.strip() for s in item.partition("="))
        if not item:
            continue
        if not eq or not key or not text:
            problems.append(f"{item!r} is not key=value (fix: e.g. {name}:{next(iter(keys), 'n')}=VALUE)")
        elif key in raw:
            problems.append(f"key {key!r} is given twice (fix: give it once)")
        elif key not in keys:
            problems.append(f"unknown key {key!r} for {name}")
        else:
            raw[key] = text
    params: dict[str, Any] = {}
    for key_name, spec_key in keys.items():
        if key_name in raw:
            value, value_problem = _parse_value(key_name, spec_key, raw[key_name])
            if value_problem:
                problems.append(value_problem)
            else:
                params[key_name] = value
        elif spec_key.default is None:
            problems.append(f"missing key {key_name!r} ({spec_key.help}; fix: add {key_name}=VALUE)")
        else:
            params[key_name] = spec_key.default
    if not problems and hasattr(generator, "check"):  # problems of several keys together
        problems += generator.check(**params)
    if problems:
        problems.append(f"valid keys for {name}: " + "; ".join(k.describe(n) for n, k in keys.items()))
        raise InputError(problems, source=spec)
    return name, params


def _spec_hash(name: str, params: dict[str, Any]) -> int:
    """A stable 64-bit hash of the canonical spec (sorted keys, defaults filled): never Python's hash()."""
    canonical = name + ":" + ",".join(f"{k}={_format_value(v)}" for k, v in sorted(params.items()))
    return int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:8], "little")


def _is_generator_spec(spec: str) -> bool:
    """A spec names a generator unless it is an existing path or looks like a graph file name."""
    if Path(spec).exists():
        return False
    name = spec.partition(":")[0].strip()
    if name in TOPOLOGIES:
        return True
    return (
        ":" in spec
        and re.fullmatch(r"[A-Za-z_]\w*", name) is not None
        and Path(spec).suffix.lower() not in GRAPH_FILE_SUFFIXES
    )


DYNAMICS = ("static", "resample", "exponential-one-peer", "link-failure")  # topology.dynamic (graph.dynamic)
REPAIRS = ("renormalise", "self")  # topology.link_repair
