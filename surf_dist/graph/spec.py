"""Generator specs ``NAME:key=value,...``: the generators, their keys, parsing and a stable hash."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

GENERATORS: tuple[str, ...] = ("kregular", "random", "star", "ring", "torus", "small_world", "complete")
NORMALISATIONS: tuple[str, ...] = ("row", "spectral", "metropolis")
PLACEMENTS: tuple[str, ...] = ("contiguous", "mincut")
EDGE_LIST_SUFFIXES: tuple[str, ...] = (".txt", ".edges", ".edgelist")
GRAPH_FILE_SUFFIXES: tuple[str, ...] = (*EDGE_LIST_SUFFIXES, ".adjlist", ".graphml", ".json")
NUM_RANDOM_DRAWS = 20  # draws of a random generator before giving up on a connected graph


@dataclass(frozen=True)
class _Key:
    """One key of a generator spec: its type, meaning, default (None: required) and bounds."""

    kind: type
    help: str
    default: int | float | bool | str | None = None
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    def describe(self, name: str) -> str:
        kind = "|".join(self.choices) or self.kind.__name__
        if self.low is not None and self.high is not None:
            kind += f" in [{self.low:g}, {self.high:g}]"
        elif self.low is not None:
            kind += f" >= {self.low:g}"
        default = "required" if self.default is None else f"default {_format_value(self.default)}"
        return f"{name} ({kind}, {default}: {self.help})"


def _generator_keys(name: str) -> dict[str, _Key]:
    """The keys each generator accepts."""
    n = _Key(int, "number of agents", low=2)
    p = _Key(float, "edge probability", low=0.0, high=1.0)
    return {
        "kregular": {
            "n": n,
            "degree": _Key(int, "edges per agent", 3, low=1),
            "mode": _Key(str, "paper: ring + chords as the paper's code", "paper", choices=("paper", "random")),
            "relabel": _Key(bool, "random node relabelling per index (paper mode)", True),
        },
        "random": {
            "n": n,
            "p": p,
            "symmetrise": _Key(str, "or: 1[A + A^T > 0] as the paper's code", "upper", choices=("upper", "or")),
        },
        "star": {"n": n},
        "ring": {"n": _Key(int, "number of agents", low=3)},
        "torus": {"rows": _Key(int, "grid rows", low=1), "cols": _Key(int, "grid columns", low=1)},
        "small_world": {
            "n": _Key(int, "number of agents", low=3),
            "k": _Key(int, "ring neighbours before rewiring (even)", low=2),
            "p": _Key(float, "rewiring probability", low=0.0, high=1.0),
        },
        "complete": {"n": n},
    }[name]


def _is_count(value: object) -> bool:
    """A non-negative int (numpy ints too, bools not)."""
    return bool(isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 0)


def _format_value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _parse_value(name: str, key: _Key, text: str) -> tuple[Any, str | None]:
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
    if key.choices and value not in key.choices:
        return None, f"{name}={text!r} is not one of {', '.join(key.choices)}"
    if (key.low is not None and value < key.low) or (key.high is not None and value > key.high):
        return None, f"{name}={text!r} is out of range; expected {key.describe(name)}"
    return value, None


def _cross_key_problems(name: str, params: dict[str, Any]) -> list[str]:
    """Problems that involve several keys (each checked only when its keys parsed)."""
    n, degree, k = params.get("n"), params.get("degree"), params.get("k")
    problems = []
    if name == "kregular" and n is not None and degree is not None:
        if params.get("mode") == "random" and (degree >= n or (n * degree) % 2):
            problems.append(f"mode=random needs degree < n and n*degree even (got n={n}, degree={degree})")
        elif (n * degree) % 2:  # no graph on n agents has every degree odd when n is odd (handshake lemma)
            problems.append(
                f"no graph on n={n} agents has degree {degree} everywhere: n*degree must be even "
                f"(fix: n={n + 1} or degree={degree + 1})"
            )
        # paper mode: circulant offsets 1..degree//2 and (odd degree) the chord offset n//2+1 must differ
        min_n = degree + 2 if degree % 2 else degree + 1
        if params.get("mode") == "paper" and n < min_n:
            problems.append(f"mode=paper with degree={degree} needs n >= {min_n} (got n={n})")
    if name == "small_world" and n is not None and k is not None and (k % 2 or k >= n):
        problems.append(f"k={k} must be even and < n={n} (each agent joins k/2 ring neighbours on each side)")
    if name == "torus" and params.get("rows", 2) * params.get("cols", 2) < 2:
        problems.append("torus needs rows*cols >= 2 agents")
    return problems


def _parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``"NAME:key=value,..."`` into the generator name and typed parameters (defaults filled)."""
    name, _, body = spec.partition(":")
    name = name.strip()
    if name not in GENERATORS:
        files = ", ".join(GRAPH_FILE_SUFFIXES)
        problem = f"unknown generator {name!r}; valid: {', '.join(GENERATORS)}; or give a graph file ({files})"
        raise InputError([problem], source=spec)
    keys = _generator_keys(name)
    problems: list[str] = []
    raw: dict[str, str] = {}
    for item in (part.strip() for part in body.split(",")):
        key, eq, text = (s.strip() for s in item.partition("="))
        if not item:
            continue
        if not eq or not key or not text:
            problems.append(f"{item!r} is not key=value")
        elif key in raw:
            problems.append(f"key {key!r} is given twice")
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
            problems.append(f"missing key {key_name!r} ({spec_key.help})")
        else:
            params[key_name] = spec_key.default
    problems += _cross_key_problems(name, params)
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
    if name in GENERATORS:
        return True
    return (
        ":" in spec
        and re.fullmatch(r"[A-Za-z_]\w*", name) is not None
        and Path(spec).suffix.lower() not in GRAPH_FILE_SUFFIXES
    )
