"""Evaluation on fresh meta-test tasks: U-DGD layer by layer and the baselines round by round.

``eval.split=meta-val`` evaluates the meta-validation tasks instead (to tune settings without looking at
meta-test; their draws are those of validation, phase "val"). For every evaluated task t, U-DGD and every
baseline start from the same W_0; U-DGD uses K·L rounds, the baselines ``eval.rounds_factor`` times as
many. Silent agents are injected when ``failures.in_eval`` (the same keyed draws on every backend).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..config import Config
from ..core.constraints import descent_slacks
from ..core.objective import correct_per_agent, loss_per_agent
from ..core.udgd import UDGD
from ..data.tasks import TaskData
from ..rundir.summary import EvalResult, MethodResult, UDGDResult
from ..runtime.console import progress_bar
from .batch import batch_size, evaluate_method
from .exchanges import Exchanges
from .failures import KillInjector
from .timing import pass_seconds
from .trainer import Trainer

_PHASES = {"meta-test": "test", "meta-val": "val"}  # the keyed draws' phase of each evaluated split


@torch.no_grad()
def layer_metrics(
    trainer: Trainer, model: UDGD, task: TaskData, step: int, with_silent: bool, phase: str = "test"
) -> dict[str, Any]:
    """Per-layer held-out accuracy and loss (global), gradient norms and slacks on one evaluated task."""
    mixer, n = trainer.mixer, trainer.problem.num_agents
    fwd = trainer.forward(model, task, phase, step, with_silent)
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
    trainer: Trainer, phase: str, step: int, exchanges: Exchanges, num_layers: int, num_hops: int, num_updates: int
) -> tuple[np.ndarray, np.ndarray]:
    num_bytes = trainer.problem.dim * trainer.problem.dtype.itemsize
    where = (phase, step, exchanges, num_layers, num_hops, num_updates)
    graph = trainer.graph_of(trainer.round_graphs(phase, step, num_hops))
    return pass_seconds(trainer.mixer, trainer.network, graph, num_bytes, *where)


def _elapsed(per_task: list[np.ndarray]) -> list[float]:
    """Mean over tasks of the simulated time after 0, 1, ..., L layers (or rounds): 0 first."""
    return [0.0, *np.cumsum(np.mean(per_task, axis=0)).tolist()]


def _mean_std(rows: list[list[float]]) -> tuple[list[float], list[float]]:
    t = torch.tensor(rows, dtype=torch.float64)
    std = t.std(dim=0, unbiased=False) if t.shape[0] > 1 else torch.zeros(t.shape[1], dtype=torch.float64)
    return t.mean(dim=0).tolist(), std.tolist()


def evaluate(
    trainer: Trainer, model: UDGD | None, *, progress: bool = False, faults: KillInjector | None = None
) -> EvalResult:
    """The ``eval`` section of the summary, without its costs (``rundir.costs.with_costs``); the same on every
    worker. With ``eval.udgd = false`` the methods alone (``model`` unused; the section's ``udgd`` is None).
    ``faults``: the run's injected kills (``failures.kill = W@T:eval`` fires at evaluated task T)."""
    cfg, mixer = trainer.cfg, trainer.mixer
    e, f = cfg.eval, cfg.failures
    num_rounds_udgd = cfg.model.num_hops * cfg.model.num_layers
    num_rounds = e.rounds_factor * num_rounds_udgd
    per_task: dict[str, list[list[float]]] = {"accuracy": [], "loss": [], "grad_norm": [], "slack": []}
    curves: dict[str, list[list[float]]] = {name: [] for name in e.baselines}
    seconds: dict[str, list[np.ndarray]] = {name: [] for name in ("udgd", *e.baselines)}
    misses: dict[str, list[np.ndarray]] = {name: [] for name in ("udgd", *e.baselines)}
    silent_total = 0
    if model is not None:
        model.eval()
    phase = _PHASES[e.split]
    num_tasks = cfg.data.num_meta_test if e.split == "meta-test" else cfg.data.num_meta_val
    methods = list(e.baselines)
    bar = progress_bar(  # a unit: U-DGD on one task, or one method on one task
        num_tasks * (int(e.udgd) + len(methods)),
        desc=f"evaluate ({e.split}: {num_tasks} tasks × {int(e.udgd) + len(methods)} methods)",
        unit="run",
        disable=not (progress and mixer.is_coordinator),
    )
    size = batch_size(trainer, num_tasks)
    for first in range(0, num_tasks, size):
        chunk = list(range(first, min(first + size, num_tasks)))
        data, w0s = [], []
        for t in chunk:  # U-DGD one task at a time, layer by layer
            if faults is not None:
                faults.maybe_kill_at("eval", mixer.rank, t)
            task = trainer.prepare(e.split, t)
            data.append(task)
            if not e.udgd:  # the methods alone, from the W₀ U-DGD would have started from
                w0s.append(trainer.initial_iterate(phase, t))
                continue
            assert model is not None
            with mixer.ledger.in_phase("eval/udgd"):
                lm = layer_metrics(trainer, model, task, t, f.in_eval, phase)
                injected = trainer.silent.layers(phase, t, cfg.model.num_layers) if f.in_eval else None
                exchanges = Exchanges(injected, trainer.uploads(phase, t))
                timed = _seconds(trainer, phase, t, exchanges, cfg.model.num_layers, cfg.model.num_hops, 1)
            for key in per_task:
                per_task[key].append(lm[key])
            silent_total += lm["num_silent"]
            seconds["udgd"].append(timed[0])
            misses["udgd"].append(timed[1])
            w0s.append(lm["w0"])
            bar.update(1)
        # every method on the whole chunk at once, from the same W₀ as U-DGD
        for name in methods:
            bar.set_postfix_str(name, refresh=False)
            for curve, secs, missed in evaluate_method(trainer, name, e.split, chunk, data, w0s, num_rounds):
                curves[name].append(curve)
                seconds[name].append(secs)
                misses[name].append(missed)
            bar.update(len(chunk))
    bar.close()
    baselines = {}
    for name, rows in curves.items():
        mean, std = _mean_std(rows)
        baselines[name] = MethodResult(
            rounds=list(range(num_rounds + 1)),
            accuracy=mean,
            accuracy_std=std,
            accuracy_at_udgd_rounds=mean[num_rounds_udgd],
            accuracy_at_max_rounds=mean[-1],
            time_s=_elapsed(seconds[name]),
            deadline_misses=int(np.sum(misses[name])),
        )
    udgd = _udgd_result(cfg, per_task, seconds["udgd"], misses["udgd"], silent_total) if e.udgd else None
    return EvalResult(num_tasks=num_tasks, split=e.split, udgd=udgd, baselines=baselines)


def _udgd_result(
    cfg: Config,
    per_task: dict[str, list[list[float]]],
    seconds: list[np.ndarray],
    misses: list[np.ndarray],
    silent_total: int,
) -> UDGDResult:
    """U-DGD's section from its per-task rows: means and spreads over tasks, per layer."""
    acc, acc_std = _mean_std(per_task["accuracy"])
    loss, loss_std = _mean_std(per_task["loss"])
    grad_norm, _ = _mean_std(per_task["grad_norm"])
    slack, _ = _mean_std(per_task["slack"])
    violations = [sum(1 for row in per_task["slack"] if row[layer] > 0) for layer in range(cfg.model.num_layers)]
    return UDGDResult(
        accuracy_per_layer=acc,
        accuracy_std_per_layer=acc_std,
        loss_per_layer=loss,
        loss_std_per_layer=loss_std,
        grad_norm_per_layer=grad_norm,
        slack_per_layer=slack,
        violations_per_layer=violations,
        rounds=cfg.model.num_hops * cfg.model.num_layers,
        rounds_per_layer=[cfg.model.num_hops * layer for layer in range(cfg.model.num_layers + 1)],
        final_accuracy=acc[-1],
        silent_agent_layers=silent_total,
        time_s=_elapsed(seconds),
        deadline_misses_per_layer=np.sum(misses, axis=0).tolist(),
    )
