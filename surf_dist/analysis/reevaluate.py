"""Re-evaluating trained runs on the local backend (the oracle): ``surf-dist evaluate`` and ``sweep-async``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..comm.local import LocalMixer
from ..config import Config, load_config, read_config, replace
from ..errors import InputError
from ..rundir.atomic import write_json_atomic
from ..rundir.costs import add_costs
from ..train import checkpoint
from ..train.evaluate import evaluate
from ..train.problem import Problem
from ..train.trainer import Trainer


def _trained(run: Path, overrides: list[str]) -> tuple[Config, Any]:
    """A finished run's config (with ``overrides``, on the local backend) and its last checkpoint."""
    if not (run / "config.json").exists():
        raise InputError([f"{run}: no config.json here (fix: give a run directory written by surf-dist train)"])
    cfg = load_config(
        None,
        None,
        overrides,
        base=replace(read_config(run / "config.json"), run={"backend": "local", "workers": 1}),
    )
    state = checkpoint.load(run)
    if state is None:
        raise InputError([f"{run}: no usable checkpoint (fix: train the run to completion first)"])
    return cfg, state


def _evaluate_local(cfg: Config, state: Any) -> dict[str, Any]:
    problem = Problem(cfg)
    trainer = Trainer(cfg, LocalMixer(problem.num_agents, semantics=cfg.failures.semantics), problem)
    trainer.load_state(state)
    ev = evaluate(trainer, trainer.eval_model())
    add_costs(ev, trainer.mixer.ledger, cfg.eval.target_accuracy)
    return ev


def reevaluate(run: Path, overrides: list[str], out: Path | None, progress: bool = True) -> Path:
    """Evaluate a trained run again (on the local backend, the oracle), e.g. with silent agents."""
    cfg, state = _trained(run, overrides)
    ev = _evaluate_local(cfg, state)
    out = out or run / "evaluate.json"
    write_json_atomic(out, {"run": str(run), "overrides": overrides, "backend": "local", "eval": ev})
    if progress:
        u = ev["udgd"]
        print("U-DGD accuracy per layer:", " ".join(f"{a:.3f}" for a in u["accuracy_per_layer"]))
        for name, b in ev["baselines"].items():
            print(
                f"{name.upper()}: {b['accuracy_at_udgd_rounds']:.3f} @ {u['rounds']} rounds, "
                f"{b['accuracy_at_max_rounds']:.3f} @ {b['rounds'][-1]}"
            )
    return out


def sweep_async(runs: list[Path], counts: list[int], overrides: list[str]) -> dict[str, Any]:
    """Final U-DGD accuracy (mean ± std over meta-test tasks) vs silent agents per layer, per run."""
    result: dict[str, Any] = {"counts": counts, "runs": {}}
    print(f"{'run':<32} " + " ".join(f"{c:>12}" for c in counts))
    for run in runs:
        rows = []
        for c in counts:
            cfg, state = _trained(run, [*overrides, f"failures.num_async={c}", "eval.baselines=[]"])
            u = _evaluate_local(cfg, state)["udgd"]
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


def sweep(runs: list[Path], key: str, values: list[str], overrides: list[str]) -> dict[str, Any]:
    """U-DGD's final accuracy and simulated seconds, and every baseline's at U-DGD's rounds and at its last
    round, for each value of one setting (e.g. ``network.deadline_ms``), per run; printed as a table."""
    result: dict[str, Any] = {"key": key, "values": values, "runs": {}}
    for run in runs:
        rows = []
        for value in values:
            cfg, state = _trained(run, [*overrides, f"{key}={value}"])
            ev = _evaluate_local(cfg, state)
            u = ev["udgd"]
            row: dict[str, Any] = {
                "value": value,
                "udgd": {
                    "accuracy": u["accuracy_per_layer"][-1],
                    "time_s": u["time_s"][-1],
                    "deadline_misses": sum(u["deadline_misses_per_layer"]),
                },
            }
            for name, b in ev["baselines"].items():
                row[name] = {
                    "accuracy_at_udgd_rounds": b["accuracy_at_udgd_rounds"],
                    "accuracy": b["accuracy"][-1],
                    "time_s": b["time_s"][-1],
                    "deadline_misses": b["deadline_misses"],
                }
            rows.append(row)
        result["runs"][str(run)] = rows
        print(f"{run}: {key}")
        for row in rows:
            cells = [f"U-DGD {row['udgd']['accuracy']:.3f} in {row['udgd']['time_s']:.3g} s"]
            cells += [
                f"{name.upper()} {r['accuracy_at_udgd_rounds']:.3f} / {r['accuracy']:.3f} in {r['time_s']:.3g} s"
                for name, r in row.items()
                if name not in ("value", "udgd")
            ]
            print(f"  {row['value']:>10}: " + "; ".join(cells))
    return result


def sweep_alpha(run: Path, alphas: list[float], overrides: list[str], progress: bool = True) -> dict[str, Any]:
    """Figure 3: one trained run applied, without retraining, to meta-test tasks of other Dirichlet α
    (``data.alpha``); the baselines are re-run per α with the run's step sizes. Per α: U-DGD's final
    accuracy (mean and std over the tasks, and per layer) and each baseline's at K·L and at the last round."""
    rows = []
    rounds = [0, 0]
    for alpha in alphas:
        cfg, state = _trained(run, [*overrides, f"data.alpha={alpha}"])
        ev = _evaluate_local(cfg, state)
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
            f"{'alpha':>6} {'U-DGD@' + str(r):>12} " + " ".join(f"{(n.upper() + '@' + str(r_max)):>14}" for n in names)
        )
        for row in rows:
            cells = " ".join(f"{row['baselines'][n]['at_max_rounds']:>14.3f}" for n in names)
            print(f"{row['alpha']:>6g} {row['udgd']:>12.3f} {cells}")
    return result
