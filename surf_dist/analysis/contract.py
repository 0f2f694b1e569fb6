"""The ``summary.json`` contract (docs/summary.md: what outside checks read), checked: ``surf-dist check-summary``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..errors import InputError

SUMMARY = "summary.json"
# dotted keys every summary holds (docs/summary.md)
REQUIRED = (
    "backend",
    "workers",
    "seed",
    "eval.udgd.accuracy_per_layer",
    "eval.udgd.loss_per_layer",
    "eval.udgd.rounds",
    "eval.baselines",
    "comm.logical.messages",
    "comm.logical.bytes",
    "comm.physical.bytes",
    "train.loss_per_step",
    "train.final_param_norms",
    "failures.injected",
    "timing.seconds_per_step",
)


def summary_path(run: str | Path) -> Path:
    """``RUN/summary.json`` for a run directory; a path to a JSON file as it is."""
    run = Path(run)
    return run if run.suffix == ".json" else run / SUMMARY


def load_summary(run: str | Path) -> dict[str, Any]:
    """The summary of a run directory (or a summary file); ``InputError`` when it is missing or not JSON."""
    path = summary_path(run)
    try:
        summary = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError([f"{path}: not found (fix: give a run directory that surf-dist train finished)"]) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError([f"{path}: not a readable JSON file ({exc})"]) from None
    if not isinstance(summary, dict):
        raise InputError([f"{path}: holds {type(summary).__name__}, not a JSON object"])
    return summary


def get(d: Any, dotted: str) -> Any:
    """``d["a"]["b"]`` for ``"a.b"``; KeyError or TypeError when a part is missing."""
    for part in dotted.split("."):
        d = d[part]
    return d


def _numbers(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value
    )


def summary_problems(summary: dict[str, Any]) -> list[str]:
    """Every way ``summary`` breaks the contract (empty when it holds)."""
    problems = []
    for key in REQUIRED:
        try:
            get(summary, key)
        except (KeyError, TypeError):
            problems.append(f"missing {key}")
    if problems:
        return problems
    acc, loss = get(summary, "eval.udgd.accuracy_per_layer"), get(summary, "eval.udgd.loss_per_layer")
    if not (_numbers(acc) and _numbers(loss)) or len(acc) != len(loss) or len(acc) < 2:
        problems.append("eval.udgd.accuracy_per_layer and .loss_per_layer must be lists of L+1 finite numbers")
    baselines = get(summary, "eval.baselines")
    if not isinstance(baselines, dict):
        problems.append("eval.baselines must map each baseline's name to its curves")
    else:
        for name, b in baselines.items():
            rounds, accuracy = b.get("rounds"), b.get("accuracy")
            if not (_numbers(rounds) and _numbers(accuracy)) or not rounds or len(rounds) != len(accuracy):
                problems.append(f"eval.baselines.{name}: rounds and accuracy must be number lists of one length")
    if not _numbers(get(summary, "train.loss_per_step")) or not get(summary, "train.loss_per_step"):
        problems.append("train.loss_per_step must be a non-empty list of finite numbers")
    norms = get(summary, "train.final_param_norms")
    if not isinstance(norms, dict) or not norms or not _numbers(list(norms.values())):
        problems.append("train.final_param_norms must map parameter names to norms")
    for key in ("workers", "eval.udgd.rounds", "comm.logical.messages", "comm.logical.bytes", "comm.physical.bytes"):
        value = get(summary, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            problems.append(f"{key} must be a non-negative integer, got {value!r}")
    return problems
