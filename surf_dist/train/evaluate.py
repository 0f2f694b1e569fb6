"""Evaluation on fresh meta-test tasks: U-DGD layer by layer and the baselines round by round.

For every meta-test task t, U-DGD and every baseline start from the same W_0; U-DGD uses K·L rounds,
the baselines ``eval.rounds_factor`` times as many. Silent agents are injected when
``failures.in_eval`` (the same keyed draws on every backend).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch

from ..core.baselines import BaselineSteps, run_baseline
from ..core.constraints import descent_slacks
from ..core.objective import correct_per_agent, loss_per_agent
from ..core.protocol import SilentAgents
from ..core.udgd import UDGD
from ..data.tasks import TaskData
from .timing import pass_seconds
from .trainer import Trainer


@torch.no_grad()
def layer_metrics(trainer: Trainer, model: UDGD, task: TaskData, step: int, with_silent: bool) -> dict[str, Any]:
    """Per-layer held-out accuracy and loss (global), gradient norms and slacks on one meta-test task."""
    mixer, n = trainer.mixer, trainer.problem.num_agents
    fwd = trainer.forward(model, task, "test", step, with_silent)
    num_samples = float(n * task.heldout_y.shape[1])
    local = torch.stack(
        [
            torch.stack(
                [
                    correct_per_agent(w, task.heldout_x, task.heldout_y).sum(),
                    loss_per_agent(w, task.heldout_x, task.heldout_y).sum(),
                ]
            )
            for w in fwd.ws
        ]
    )
    total = mixer.all_reduce_sum(local.to(torch.float64))
    slacks = descent_slacks(fwd.norms, trainer.cfg.train.epsilon, trainer.cfg.train.constraint_form)
    return {
        "accuracy": (total[:, 0] / num_samples).tolist(),
        "loss": (total[:, 1] / n).tolist(),
        "grad_norm": fwd.norms.tolist(),
        "slack": slacks.tolist(),
        "w0": fwd.ws[0],
        "num_silent": fwd.num_silent,
    }


def _seconds(
    trainer: Trainer,
    phase: str,
    step: int,
    injected: list[SilentAgents | None] | None,
    num_layers: int,
    num_hops: int,
    num_updates: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulated seconds and deadline misses of each layer (or round) of one pass; zeros when nothing takes
    time (no all-reduce then)."""
    if not trainer.network.active:
        return np.zeros(num_layers), np.zeros(num_layers, dtype=np.int64)
    assert trainer.graph is not None
    num_bytes = trainer.problem.dim * trainer.problem.dtype.itemsize
    return pass_seconds(
        trainer.mixer,
        trainer.network,
        trainer.graph,
        num_bytes,
        phase,
        step,
        injected,
        num_layers,
        num_hops,
        num_updates,
    )


def _round_set(sets: list[SilentAgents | None] | None, r: int) -> SilentAgents | None:
    return None if sets is None else sets[r - 1]


def _elapsed(per_task: list[np.ndarray]) -> list[float]:
    """Mean over tasks of the simulated time after 0, 1, ..., L layers (or rounds): 0 first."""
    return [0.0, *np.cumsum(np.mean(per_task, axis=0)).tolist()]


def _mean_std(rows: list[list[float]]) -> tuple[list[float], list[float]]:
    t = torch.tensor(rows, dtype=torch.float64)
    std = t.std(dim=0, unbiased=False) if t.shape[0] > 1 else torch.zeros(t.shape[1], dtype=torch.float64)
    return t.mean(dim=0).tolist(), std.tolist()


def evaluate(trainer: Trainer, model: UDGD) -> dict[str, Any]:
    """``eval`` section of the summary (identical on every worker)."""
    cfg, mixer = trainer.cfg, trainer.mixer
    e, f = cfg.eval, cfg.failures
    num_rounds_udgd = cfg.model.num_hops * cfg.model.num_layers
    num_rounds = e.rounds_factor * num_rounds_udgd
    steps = BaselineSteps.from_config(e)
    per_task: dict[str, list[list[float]]] = {"accuracy": [], "loss": [], "grad_norm": [], "slack": []}
    curves: dict[str, list[list[float]]] = {name: [] for name in e.baselines}
    seconds: dict[str, list[np.ndarray]] = {name: [] for name in ("udgd", *e.baselines)}
    misses: dict[str, list[np.ndarray]] = {name: [] for name in ("udgd", *e.baselines)}
    silent_total = 0
    model.eval()
    for t in range(cfg.data.num_meta_test):
        task = trainer.prepare("meta-test", t)
        with mixer.ledger.in_phase("eval/udgd"):
            lm = layer_metrics(trainer, model, task, t, f.in_eval)
            injected = trainer.silent.layers("test", t, cfg.model.num_layers) if f.in_eval else None
            timed = _seconds(trainer, "test", t, injected, cfg.model.num_layers, cfg.model.num_hops)
        for key in per_task:
            per_task[key].append(lm[key])
        silent_total += lm["num_silent"]
        seconds["udgd"].append(timed[0])
        misses["udgd"].append(timed[1])
        for name in e.baselines:
            num_updates = steps.dfedavgm_local_steps if name == "dfedavgm" else 1
            injected = trainer.silent.layers("test-baseline", t, num_rounds) if f.in_eval else None
            sets = trainer.silent_sets("test-baseline", t, injected, num_rounds, num_updates) if f.in_eval else None
            if mixer.emulator is not None and trainer.graph is not None:
                mixer.emulator.begin(
                    trainer.graph, mixer.agents, "test-baseline", t, num_rounds, 1, num_updates, injected
                )
            with mixer.ledger.in_phase(f"eval/{name}"), torch.no_grad():
                timed = _seconds(trainer, "test-baseline", t, injected, num_rounds, 1, num_updates)
                curve = run_baseline(
                    name,
                    mixer,
                    lm["w0"],
                    (task.train_x, task.train_y),
                    (task.heldout_x, task.heldout_y),
                    num_rounds=num_rounds,
                    steps=steps,
                    seed=cfg.seed,
                    step_index=t,
                    silent_for_round=partial(_round_set, sets),
                )
            curves[name].append(curve)
            seconds[name].append(timed[0])
            misses[name].append(timed[1])
    acc, acc_std = _mean_std(per_task["accuracy"])
    loss, loss_std = _mean_std(per_task["loss"])
    grad_norm, _ = _mean_std(per_task["grad_norm"])
    slack, _ = _mean_std(per_task["slack"])
    violations = [sum(1 for row in per_task["slack"] if row[layer] > 0) for layer in range(cfg.model.num_layers)]
    udgd = {
        "accuracy_per_layer": acc,
        "accuracy_std_per_layer": acc_std,
        "loss_per_layer": loss,
        "loss_std_per_layer": loss_std,
        "grad_norm_per_layer": grad_norm,
        "slack_per_layer": slack,
        "violations_per_layer": violations,
        "rounds": num_rounds_udgd,
        "rounds_per_layer": [cfg.model.num_hops * layer for layer in range(cfg.model.num_layers + 1)],
        "final_accuracy": acc[-1],
        "silent_agent_layers": silent_total,
        "time_s": _elapsed(seconds["udgd"]),
        "deadline_misses_per_layer": np.sum(misses["udgd"], axis=0).tolist(),
    }
    baselines = {}
    for name, rows in curves.items():
        mean, std = _mean_std(rows)
        baselines[name] = {
            "rounds": list(range(num_rounds + 1)),
            "accuracy": mean,
            "accuracy_std": std,
            "accuracy_at_udgd_rounds": mean[num_rounds_udgd],
            "accuracy_at_max_rounds": mean[-1],
            "time_s": _elapsed(seconds[name]),
            "deadline_misses": int(np.sum(misses[name])),
        }
    return {"num_tasks": cfg.data.num_meta_test, "udgd": udgd, "baselines": baselines}
