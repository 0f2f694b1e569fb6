"""Re-evaluating trained runs, on any backend: ``surf-dist evaluate`` and the sweeps (``sweep``, ``sweep-async``,
``sweep-alpha``). The local backend is the oracle; torch ranks and Ray actors give its numbers.

A run is evaluated under its own config with ``overrides`` on top (silent agents, a network, another graph or
size, another α); a setting that would change the trained model's shape is refused, naming it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from ..config import Config, load_config, read_config
from ..errors import InputError
from ..network.model import models_time
from ..plugins import method_label
from ..rundir.atomic import write_json_atomic
from ..rundir.outputs import eval_table
from ..rundir.summary import EvalResult
from ..runtime import under_torchrun

# the settings that fix the shapes of U-DGD's parameters (D = (P + 1)·C from the data, the local network's input
# D + B·(P + C), L layers of K + 1 taps, the local network and its own settings, the star's server taps)
SHAPE_SETTINGS = (
    "model.num_layers",
    "model.num_hops",
    "model.batch_size",
    "model.hidden",
    "model.local_update",
    "model.params",
    "model.variant",
    "data.dataset",
    "data.features",
    "data.params",
)


def trained_config(
    run: Path, overrides: list[str] | tuple[str, ...] = (), *, backend: str | None = None, workers: int | None = None
) -> Config:
    """A finished run's config with ``overrides`` on top, on ``backend`` × ``workers`` (default: local, 1 worker;
    under torchrun: torch, a worker per rank; ``--set run.backend=...`` works too). Raises InputError for a
    directory that holds no run, or overrides that change the model's shape."""
    if not run.exists():
        raise InputError([f"{run}: no such directory (fix: give a run directory written by surf-dist train)"])
    if not run.is_dir():
        raise InputError([f"{run}: not a directory (fix: give a run directory written by surf-dist train)"])
    if not (run / "config.json").exists():
        raise InputError([f"{run}: not a run directory: no config.json (fix: give a directory surf-dist train wrote)"])
    trained = read_config(run / "config.json")
    if under_torchrun():  # this process is one rank of the torch backend, with one worker per rank
        default_backend, default_workers = "torch", int(os.environ["WORLD_SIZE"])
    else:
        default_backend, default_workers = "local", 1
    execution = [f"run.backend={backend or default_backend}", f"run.workers={workers or default_workers}"]
    cfg = load_config(None, None, [*execution, *overrides], base=trained)
    changed = [key for key in SHAPE_SETTINGS if _get(cfg, key) != _get(trained, key)]
    if changed:
        raise InputError(
            [
                f"{key} = {_get(cfg, key)!r}: the run was trained with {_get(trained, key)!r}; evaluation cannot "
                "change the shape of the trained model (fix: drop that --set, or train a run with it)"
                for key in changed
            ]
        )
    return cfg


def _get(cfg: Config, dotted: str) -> Any:
    section, name = dotted.split(".")
    value = getattr(getattr(cfg, section), name)
    if name == "params":  # only the chosen local network's or dataset's own settings shape the model
        owner = cfg.model.local_update if section == "model" else cfg.data.dataset
        return value.get(owner, {})
    return value


def trained_state(run: Path) -> dict[str, Any]:
    """The parameters a finished run evaluates: its best validated ones (``train.keep_best``) or its last."""
    from ..worker import checkpoint

    state = checkpoint.load(run)
    if state is None:
        raise InputError([f"{run}: no usable checkpoint (fix: train the run to completion first)"])
    keep_best = state["config"].get("train", {}).get("keep_best", True)
    return state["best_state"] if keep_best and state.get("best_state") is not None else state["model"]


def evaluate_run(
    run: Path,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    backend: str | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> EvalResult | None:
    """Evaluate a finished run under its config with ``overrides``, on any backend (None on torchrun ranks other
    than 0, which take part but do not hold the result)."""
    cfg = trained_config(run, overrides, backend=backend, workers=workers)
    result = _run_eval(cfg, run, progress)
    return None if result is None else EvalResult.from_dict(result)


def reevaluate(
    run: Path,
    overrides: list[str],
    out: Path | None,
    *,
    backend: str | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> Path | None:
    """Evaluate a trained run again (e.g. with silent agents) and write the result (default ``RUN/evaluate.json``);
    its path (None on torchrun ranks other than 0)."""
    cfg = trained_config(run, overrides, backend=backend, workers=workers)
    result = evaluate_run(run, overrides, backend=backend, workers=workers, progress=progress)
    if result is None:
        return None
    out = out or run / "evaluate.json"
    record = {
        "run": str(run),
        "overrides": list(overrides),
        "backend": cfg.run.backend,
        "workers": cfg.run.workers,
        "eval": result.to_dict(),
    }
    write_json_atomic(out, record)
    if progress:
        u = result.udgd
        if u is not None:
            print("U-DGD accuracy per layer:", " ".join(f"{a:.3f}" for a in u.accuracy_per_layer))
        print(eval_table(result.to_dict()))
    return out


def _run_eval(cfg: Config, run: Path, progress: bool) -> dict[str, Any] | None:
    """The run's parameters evaluated under ``cfg`` on its backend (torch is imported here, after validation)."""
    from ..runtime.launch import run_job
    from ..worker.jobs import EvalJob

    return run_job(cfg, EvalJob(trained_state(run)), progress=progress)


def _evaluated(run: Path, overrides: list[str], execution: dict[str, Any]) -> tuple[Config, dict[str, Any] | None]:
    """The config and the ``eval`` section (a dict) of one point of a sweep."""
    cfg = trained_config(run, overrides, **execution)
    result = _run_eval(cfg, run, False)
    return cfg, result


def sweep_async(runs: list[Path], counts: list[int], overrides: list[str], **execution: Any) -> dict[str, Any]:
    """Final U-DGD accuracy (mean ± std over meta-test tasks) vs silent agents per layer, per run."""
    result: dict[str, Any] = {"counts": counts, "runs": {}}
    print(f"{'run':<32} " + " ".join(f"{c:>12}" for c in counts))
    for run in runs:
        rows = []
        for c in counts:
            cfg, ev = _evaluated(run, [*overrides, f"failures.num_async={c}", "eval.baselines=[]"], execution)
            if ev is None:  # a torchrun rank other than 0: it took part, rank 0 holds the result
                continue
            u = ev["udgd"]
            rows.append(
                {
                    "num_async": c,
                    "accuracy": u["accuracy_per_layer"][-1],
                    "std": u["accuracy_std_per_layer"][-1],
                }
            )
        label = f"{run.name} ({'constrained' if cfg.train.constrained else 'unconstrained'})"
        result["runs"][str(run)] = {"constrained": cfg.train.constrained, "points": rows}
        print(f"{label:<32} " + " ".join(f"{r['accuracy']:.3f}±{r['std']:.3f}" for r in rows))
    return result


def _seconds(time_s: float, timed: bool) -> float | None:
    """A simulated duration, or None where the config models no time (its 0 means "not modelled")."""
    return time_s if timed else None


def _in_seconds(time_s: float | None) -> str:
    return "in —" if time_s is None else f"in {time_s:.3g} s"


def sweep(runs: list[Path], key: str, values: list[str], overrides: list[str], **execution: Any) -> dict[str, Any]:
    """U-DGD's final accuracy and simulated seconds, and every baseline's at U-DGD's rounds and at its last
    round, for each value of one setting (e.g. ``network.deadline_ms``), per run; printed as a table. Seconds are
    None (printed "—") at a point whose ``[network]`` models no time."""
    result: dict[str, Any] = {"key": key, "values": values, "runs": {}}
    for run in runs:
        rows = []
        for value in values:
            cfg, ev = _evaluated(run, [*overrides, f"{key}={value}"], execution)
            if ev is None:  # a torchrun rank other than 0: it took part, rank 0 holds the result
                continue
            timed = models_time(dataclasses.asdict(cfg.network))
            u = ev["udgd"]
            row: dict[str, Any] = {
                "value": value,
                "udgd": {
                    "accuracy": u["accuracy_per_layer"][-1],
                    "time_s": _seconds(u["time_s"][-1], timed),
                    "deadline_misses": sum(u["deadline_misses_per_layer"]),
                },
            }
            for name, b in ev["baselines"].items():
                row[name] = {
                    "accuracy_at_udgd_rounds": b["accuracy_at_udgd_rounds"],
                    "accuracy": b["accuracy"][-1],
                    "time_s": _seconds(b["time_s"][-1], timed),
                    "deadline_misses": b["deadline_misses"],
                }
            rows.append(row)
        result["runs"][str(run)] = rows
        untimed = any(row["udgd"]["time_s"] is None for row in rows)
        print(f"{run}: {key}" + (" (simulated seconds: — where no [network] models time)" if untimed else ""))
        for row in rows:
            cells = [f"U-DGD {row['udgd']['accuracy']:.3f} {_in_seconds(row['udgd']['time_s'])}"]
            cells += [
                f"{method_label(name)} {r['accuracy_at_udgd_rounds']:.3f} / {r['accuracy']:.3f} "
                f"{_in_seconds(r['time_s'])}"
                for name, r in row.items()
                if name not in ("value", "udgd")
            ]
            print(f"  {row['value']:>10}: " + "; ".join(cells))
    return result


def sweep_alpha(
    run: Path, alphas: list[float], overrides: list[str], progress: bool = True, **execution: Any
) -> dict[str, Any]:
    """Figure 3: one trained run applied, without retraining, to meta-test tasks of other Dirichlet α
    (``data.alpha``); the baselines are re-run per α with the run's step sizes. Per α: U-DGD's final
    accuracy (mean and std over the tasks, and per layer) and each baseline's at K·L and at the last round."""
    rows = []
    rounds = [0, 0]
    for alpha in alphas:
        cfg, ev = _evaluated(run, [*overrides, f"data.alpha={alpha}"], execution)
        if ev is None:  # a torchrun rank other than 0: it took part, rank 0 holds the result
            continue
        u = ev["udgd"]
        rows.append(
            {
                "alpha": alpha,
                "udgd": u["accuracy_per_layer"][-1],
                "udgd_std": u["accuracy_std_per_layer"][-1],
                "udgd_per_layer": u["accuracy_per_layer"],
                "baselines": {
                    name: {
                        "at_udgd_rounds": b["accuracy_at_udgd_rounds"],
                        "at_max_rounds": b["accuracy_at_max_rounds"],
                        "std_at_max_rounds": b["accuracy_std"][-1],
                    }
                    for name, b in ev["baselines"].items()
                },
            }
        )
        rounds = [u["rounds"], cfg.eval.rounds_factor * u["rounds"]]
    result = {"run": str(run), "alphas": alphas, "rounds": rounds, "rows": rows}
    if progress:
        r, r_max = rounds
        names = list(rows[0]["baselines"]) if rows else []
        print(
            f"{'alpha':>6} {'U-DGD@' + str(r):>12} "
            + " ".join(f"{(method_label(n) + '@' + str(r_max)):>14}" for n in names)
        )
        for row in rows:
            cells = " ".join(f"{row['baselines'][n]['at_max_rounds']:>14.3f}" for n in names)
            print(f"{row['alpha']:>6g} {row['udgd']:>12.3f} {cells}")
    return result
