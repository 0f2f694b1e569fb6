"""Tuning the baselines' step sizes on meta-validation tasks (``surf-dist tune-baselines``).

Each method of ``eval.baselines`` runs with every step size of a grid (its ``tunable`` settings) on the
``data.num_meta_val`` meta-validation tasks, never on meta-test, on the configured backend; the step with the best mean
held-out accuracy after the last round (``eval.rounds_factor`` × K·L rounds, the comparison point against
U-DGD) is chosen. All the baselines take one step size each from the same grid (default {0.1, 0.3, 1, 3},
the sweep that set the digits defaults); a best step at the edge of the grid is flagged, so the grid can be
widened.
"""

from __future__ import annotations

from typing import Any

from ..config import Config, replace
from ..plugins import METHODS, method_label
from ..runtime.launch import run_job
from ..worker.jobs import EvalJob

DEFAULT_GRID = (0.1, 0.3, 1.0, 3.0)


def tune_baselines(cfg: Config, grid: tuple[float, ...] = DEFAULT_GRID, *, progress: bool = True) -> dict[str, Any]:
    """Mean meta-val accuracy of every baseline at every step of ``grid``; the best step of each.

    Returns a dict with ``grid``, ``num_tasks``, ``rounds`` (U-DGD's K·L and the baselines' last round),
    ``accuracy[name][i]`` = (at K·L rounds, at the last round) for ``grid[i]``, ``best[name]`` (the step),
    ``at_edge`` (baselines whose best step is the smallest or largest of the grid) and ``settings`` (the
    ``--set`` lines that apply the choice).
    """
    result: dict[str, Any] = {"grid": list(grid), "accuracy": {name: [] for name in cfg.eval.baselines}}
    for step in grid:
        params = {
            name: {**cfg.eval.params.get(name, {}), **dict.fromkeys(_tunable(name), step)}
            for name in cfg.eval.baselines
        }
        c = replace(cfg, eval={"split": "meta-val", "params": {**cfg.eval.params, **params}})
        ev = run_job(c, EvalJob(), progress=False)
        if ev is None:  # a torchrun rank other than 0: it took part, rank 0 holds the result
            continue
        result["num_tasks"] = ev["num_tasks"]
        result["rounds"] = [ev["udgd"]["rounds"], c.eval.rounds_factor * ev["udgd"]["rounds"]]
        for name, b in ev["baselines"].items():
            result["accuracy"][name].append([b["accuracy_at_udgd_rounds"], b["accuracy_at_max_rounds"]])
        if progress:
            print(
                f"step {step:g}: "
                + ", ".join(f"{method_label(n)} {b['accuracy_at_max_rounds']:.4f}" for n, b in ev["baselines"].items())
            )
    best = {name: grid[max(range(len(grid)), key=lambda i: rows[i][1])] for name, rows in result["accuracy"].items()}
    result["best"] = best
    result["at_edge"] = [name for name, step in best.items() if step in (min(grid), max(grid))]
    result["settings"] = [f"eval.{name}_{field}={step:g}" for name, step in best.items() for field in _tunable(name)]
    return result


def _tunable(name: str) -> tuple[str, ...]:
    """The settings of method ``name`` that the grid sets (its step sizes)."""
    return METHODS.get(name).tunable


def format_tuning(result: dict[str, Any]) -> str:
    """The grid as a table (accuracy at K·L and at the last round), the choice, and edge warnings."""
    r, r_max = result["rounds"]
    lines = [f"meta-val accuracy over {result['num_tasks']} tasks, @{r} / @{r_max} rounds"]
    lines.append(f"{'step':>8} " + " ".join(f"{method_label(name):>17}" for name in result["accuracy"]))
    for i, step in enumerate(result["grid"]):
        cells = [f"{rows[i][0]:.4f} / {rows[i][1]:.4f}" for rows in result["accuracy"].values()]
        lines.append(f"{step:>8g} " + " ".join(f"{c:>17}" for c in cells))
    lines.append("best: " + " ".join(f"--set {s}" for s in result["settings"]))
    if result["at_edge"]:
        lines.append(f"at the edge of the grid (widen it): {', '.join(result['at_edge'])}")
    return "\n".join(lines)
