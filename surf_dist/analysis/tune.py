"""Tuning the baselines' step sizes on meta-validation tasks (``surf-dist tune-baselines``).

Each method of ``eval.baselines`` runs with every step size of a grid, times its own constants' declared grids
(its ``tunable`` settings), on the ``data.num_meta_val`` meta-validation tasks, never on meta-test, on the
configured backend; the setting with the best mean
held-out accuracy after the last round (``eval.rounds_factor`` × K·L rounds, the comparison point against
U-DGD) is chosen. All the baselines take one step size each from the same grid (default {0.1, 0.3, 1, 3},
the sweep that set the digits defaults); a best step at the edge of the grid is flagged, so the grid can be
widened.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from ..config import Config, replace
from ..plugins import METHODS, method_label
from ..runtime.launch import run_job
from ..worker.jobs import EvalJob

DEFAULT_GRID = (0.1, 0.3, 1.0, 3.0)


def candidates(name: str, grid: tuple[float, ...]) -> list[dict[str, Any]]:
    """The settings tried for method ``name``: its step (``step``, the first ``tunable``) over ``grid``, times the
    declared grid of each of its other tunable constants (``param(..., grid=...)``); every method gets the same
    procedure (methods with nothing else to tune get ``len(grid)`` tries)."""
    cls = METHODS.get(name)
    fields = {f.name: f for f in dataclasses.fields(METHODS.params_of(name))}
    axes: list[list[tuple[str, Any]]] = []
    for setting in cls.tunable:
        values = grid if setting == "step" else fields[setting].metadata.get("grid", ())
        if values:
            axes.append([(setting, v) for v in values])
    return [dict(choice) for choice in itertools.product(*axes)] if axes else [{}]


def tune_baselines(cfg: Config, grid: tuple[float, ...] = DEFAULT_GRID, *, progress: bool = True) -> dict[str, Any]:
    """Mean meta-val accuracy of every method at every candidate setting (``candidates``); the best of each.

    Returns a dict with ``grid``, ``num_tasks``, ``rounds`` (U-DGD's K·L and the methods' last round),
    ``tried[name]`` (the candidate settings), ``accuracy[name][i]`` = (at K·L rounds, at the last round) for
    ``tried[name][i]``, ``best[name]`` (the settings chosen), ``at_edge`` (methods whose best value of a setting
    is the smallest or largest tried) and ``settings`` (the ``--set`` lines that apply the choice).
    """
    tried = {name: candidates(name, grid) for name in cfg.eval.baselines}
    result: dict[str, Any] = {"grid": list(grid), "tried": tried, "accuracy": {name: [] for name in tried}}
    for i in range(max((len(c) for c in tried.values()), default=0)):
        names = [name for name, c in tried.items() if i < len(c)]
        params = {name: {**cfg.eval.params.get(name, {}), **tried[name][i]} for name in names}
        c = replace(cfg, eval={"split": "meta-val", "baselines": tuple(names), "params": {**cfg.eval.params, **params}})
        ev = run_job(c, EvalJob(), progress=False)
        if ev is None:  # a torchrun rank other than 0: it took part, rank 0 holds the result
            continue
        result["num_tasks"] = ev["num_tasks"]
        result["rounds"] = [ev["udgd"]["rounds"], c.eval.rounds_factor * ev["udgd"]["rounds"]]
        for name, b in ev["baselines"].items():
            result["accuracy"][name].append([b["accuracy_at_udgd_rounds"], b["accuracy_at_max_rounds"]])
        if progress:
            print(
                f"try {i + 1}: "
                + ", ".join(
                    f"{method_label(n)} {_settings(tried[n][i])} {b['accuracy_at_max_rounds']:.4f}"
                    for n, b in ev["baselines"].items()
                )
            )
    if not result["accuracy"] or not all(result["accuracy"].values()):
        return result
    best = {name: tried[name][_best_row(rows)] for name, rows in result["accuracy"].items()}
    result["best"] = best
    result["at_edge"] = [name for name, chosen in best.items() if _at_edge(chosen, tried[name])]
    result["settings"] = [f"eval.{name}_{k}={v:g}" for name, chosen in best.items() for k, v in chosen.items()]
    return result


def _at_edge(chosen: dict[str, Any], tried: list[dict[str, Any]]) -> bool:
    """Whether a chosen value is the smallest or largest of three or more tried (the grid may be too narrow)."""
    for setting, value in chosen.items():
        values = {c[setting] for c in tried}
        if len(values) > 2 and value in (min(values), max(values)):
            return True
    return False


def _settings(choice: dict[str, Any]) -> str:
    return ",".join(f"{k}={v:g}" for k, v in choice.items()) or "-"


def format_tuning(result: dict[str, Any]) -> str:
    """Every method's tries (accuracy at K·L and at the last round), the choice, and edge warnings."""
    r, r_max = result["rounds"]
    lines = [f"meta-val accuracy over {result['num_tasks']} tasks, @{r} / @{r_max} rounds"]
    for name, rows in result["accuracy"].items():
        lines.append(f"{method_label(name)}:")
        for choice, (short, long) in zip(result["tried"][name], rows):
            mark = "  <- best" if choice == result["best"][name] else ""
            lines.append(f"  {_settings(choice):<28} {short:.4f} / {long:.4f}{mark}")
    lines.append("best: " + " ".join(f"--set {s}" for s in result["settings"]))
    if result["at_edge"]:
        lines.append(f"at the edge of what was tried (widen the grid): {', '.join(result['at_edge'])}")
    return "\n".join(lines)


def _best_row(rows: list[list[float]]) -> int:
    """The index of the row with the best accuracy at the most rounds (its second entry)."""
    return max(range(len(rows)), key=lambda i: rows[i][1])
