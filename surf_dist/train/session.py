"""One worker's whole job, the same on every backend: meta-train, evaluate, and (coordinator) report.

A backend only builds the ``Mixer`` and calls ``run_worker``; the math never sees a process.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..comm.mixer import Mixer
from ..config import Config
from ..rundir.atomic import write_json_atomic
from ..rundir.costs import add_costs
from ..rundir.outputs import comm_section, plot, table
from .evaluate import evaluate
from .failures import kills_fired
from .loop import fit
from .problem import Problem
from .trainer import Trainer


def run_worker(
    cfg: Config,
    mixer: Mixer,
    problem: Problem,
    run_dir: str | Path | None,
    *,
    progress: bool = True,
    backend: str = "local",
) -> dict[str, Any] | None:
    """Train and evaluate; the coordinator writes the run directory and returns the summary."""
    run_dir = Path(run_dir) if run_dir is not None else None
    trainer = Trainer(cfg, mixer, problem)
    history = fit(trainer, run_dir, progress=progress)
    t0 = time.perf_counter()
    ev = evaluate(trainer, trainer.eval_model())
    eval_s = time.perf_counter() - t0
    ledger = mixer.merged_ledger()
    if not mixer.is_coordinator:
        return None
    assert ledger is not None
    add_costs(ev, ledger, cfg.eval.target_accuracy)
    graph = problem.graph("meta-test", 0).graph
    summary: dict[str, Any] = {
        "backend": backend,
        "workers": mixer.num_workers,
        "seed": cfg.seed,
        "num_agents": problem.num_agents,
        "placement": {
            "method": cfg.topology.placement,
            "per_task": cfg.topology.placement != "contiguous",
            "agents_per_worker": [len(a) for a in problem.placement(mixer.num_workers)],
        },
        "train": {
            "loss_per_step": history.loss_per_step,
            "heldout_loss_per_step": history.heldout_loss_per_step,
            "final_param_norms": trainer.final_param_norms(),
            "final_duals": trainer.duals.tolist(),
            "best_val_loss": history.best_val_loss,
            "best_step": history.best_step,
            "val": history.val,
            "steps": trainer.step,
            "constrained": cfg.train.constrained,
        },
        "eval": ev,
        "comm": comm_section(
            ledger,
            num_agents=problem.num_agents,
            num_edges_directed=2 * graph.number_of_edges(),
            dim=problem.dim,
            itemsize=problem.dtype.itemsize if hasattr(problem.dtype, "itemsize") else 4,
            num_layers=cfg.model.num_layers,
            num_hops=cfg.model.num_hops,
        ),
        "failures": {
            "semantics": cfg.failures.semantics,
            "injected": {
                "kills": kills_fired(run_dir),
                "silent_agent_layers_train": history.silent_agent_layers,
                "silent_agent_layers_eval": ev["udgd"]["silent_agent_layers"],
            },
        },
        "timing": {
            "seconds_per_step": (
                sum(history.seconds_per_step) / len(history.seconds_per_step) if history.seconds_per_step else 0.0
            ),
            # meta-training over every attempt in this run directory (steps done again after a restart
            # included); evaluation: this attempt's
            "train_s": history.train_s,
            "eval_s": eval_s,
            "total_s": history.train_s + eval_s,
            "attempts": history.attempts,
        },
    }
    if run_dir is not None:
        write_json_atomic(run_dir / "summary.json", summary)
        ledger.write_csv(run_dir / "comm.csv")
        ledger.write_edges_csv(run_dir / "comm_edges.csv")
        try:
            plot(summary, run_dir / "accuracy_vs_rounds.png")
        except Exception as exc:  # a figure is never worth a failed run
            print(f"surf-dist: could not draw the figure: {exc}")
    if progress:
        print(table(summary))
    return summary
