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
from tqdm import tqdm

from ..config.validate import method_params
from ..core.constraints import descent_slacks
from ..core.objective import correct_per_agent, loss_per_agent
from ..core.protocol import SilentAgents
from ..core.rounds import run_method
from ..core.udgd import UDGD
from ..data.tasks import TaskData
from ..plugins import METHODS
from ..rundir.summary import EvalResult, MethodResult, UDGDResult
from .exchanges import Exchanges
from .timing import LateOrSilent, exchange_seconds, pass_seconds
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


class _RoundSchedule:
    """A method's silent agents and senders on one evaluated task (``core.rounds.RoundSchedule``): the injected
    silent agents of each round and, with a deadline, the agents late for the round's messages."""

    def __init__(
        self,
        trainer: Trainer,
        where: tuple[str, int],
        injected: list[SilentAgents | None] | None,
        exchanges: Exchanges,
        num_updates: int,
    ) -> None:
        self.trainer, self.where, self.injected, self.exchanges = trainer, where, injected, exchanges
        self.num_updates = num_updates
        model = trainer.cfg.model
        self.uploads_per_round = model.uploads_per_round if model.variant == "star" else 0

    def silent(self, r: int, num_bytes: int) -> SilentAgents | None:
        t = self.trainer
        if not t.cfg.failures.in_eval:  # nobody is silent, nobody is late
            return None
        injected = None if self.injected is None else self.injected[r - 1]
        if not t.network.has_deadline:
            return injected
        assert t.graph is not None
        return LateOrSilent(t.network, t.graph, num_bytes, (*self.where, r), injected, self.num_updates)

    def quiet(self, r: int, kind: str, silent: SilentAgents | None) -> SilentAgents | None:
        return self.exchanges.quiet_for(r, kind, silent)


def _baseline(
    trainer: Trainer,
    name: str,
    t: int,
    task: TaskData,
    w0_AD: torch.Tensor,
    num_rounds: int,
    split: str = "meta-test",
) -> tuple[list[float], tuple[np.ndarray, np.ndarray]]:
    """The registered method ``name`` on task ``t`` of ``split`` from U-DGD's W_0: its accuracy after every round,
    and the simulated seconds and deadline misses of every round (from the exchanges it made)."""
    key = f"{_PHASES[split]}-baseline"
    cfg, mixer, in_eval = trainer.cfg, trainer.mixer, trainer.cfg.failures.in_eval
    method = METHODS.get(name)(method_params(cfg, name))
    num_updates = method.local_updates()
    injected = trainer.silent.layers(key, t, num_rounds) if in_eval else None
    uploads = trainer.uploads(key, t)
    tg = trainer.problem.graph(split, t)
    operator = tg.mixing(method.mixing)  # the method's own mixing matrix of the graph (default: U-DGD's S)
    if getattr(mixer, "shift_operator", None) is not operator:
        mixer.set_graph(tg.graph, operator, trainer.problem.placement(mixer.num_workers, split, t))
    # late agents hold an exchange up until the deadline: the time model sees the injected silent agents only
    held_up_by = Exchanges(injected, uploads, senders=method.senders, computes=method.computes)
    if trainer.emulator is not None:
        where = (key, t, num_rounds, len(method.senders), num_updates)
        trainer.emulator.begin(tg.graph, mixer.agents, *where, held_up_by)
    schedule = _RoundSchedule(trainer, (key, t), injected, held_up_by, num_updates)
    with mixer.ledger.in_phase(f"eval/{name}"), torch.no_grad():
        run = run_method(
            method,
            mixer,
            w0_AD,
            (task.train_x, task.train_y),
            (task.heldout_x, task.heldout_y),
            num_rounds=num_rounds,
            seed=cfg.seed,
            step_index=t,
            schedule=schedule,
            num_classes=task.num_classes,
        )
        rounds = [
            [(held_up_by.quiet_for(r, kind, _round_set(injected, r)), num_bytes) for kind, num_bytes in exchanges]
            for r, exchanges in enumerate(run.exchanges, start=1)
        ]
        idle = [held_up_by.idle(r) for r in range(1, num_rounds + 1)]
        assert trainer.graph is not None
        timed = exchange_seconds(mixer, trainer.network, trainer.graph, key, t, rounds, idle, num_updates)
    return run.accuracy, timed


def _seconds(
    trainer: Trainer, phase: str, step: int, exchanges: Exchanges, num_layers: int, num_hops: int, num_updates: int
) -> tuple[np.ndarray, np.ndarray]:
    assert trainer.graph is not None
    num_bytes = trainer.problem.dim * trainer.problem.dtype.itemsize
    where = (phase, step, exchanges, num_layers, num_hops, num_updates)
    return pass_seconds(trainer.mixer, trainer.network, trainer.graph, num_bytes, *where)


def _round_set(sets: list[SilentAgents | None] | None, r: int) -> SilentAgents | None:
    return None if sets is None else sets[r - 1]


def _elapsed(per_task: list[np.ndarray]) -> list[float]:
    """Mean over tasks of the simulated time after 0, 1, ..., L layers (or rounds): 0 first."""
    return [0.0, *np.cumsum(np.mean(per_task, axis=0)).tolist()]


def _mean_std(rows: list[list[float]]) -> tuple[list[float], list[float]]:
    t = torch.tensor(rows, dtype=torch.float64)
    std = t.std(dim=0, unbiased=False) if t.shape[0] > 1 else torch.zeros(t.shape[1], dtype=torch.float64)
    return t.mean(dim=0).tolist(), std.tolist()


def evaluate(trainer: Trainer, model: UDGD, *, progress: bool = False) -> EvalResult:
    """The ``eval`` section of the summary, without its costs (``rundir.costs.with_costs``); the same on every
    worker."""
    cfg, mixer = trainer.cfg, trainer.mixer
    e, f = cfg.eval, cfg.failures
    num_rounds_udgd = cfg.model.num_hops * cfg.model.num_layers
    num_rounds = e.rounds_factor * num_rounds_udgd
    per_task: dict[str, list[list[float]]] = {"accuracy": [], "loss": [], "grad_norm": [], "slack": []}
    curves: dict[str, list[list[float]]] = {name: [] for name in e.baselines}
    seconds: dict[str, list[np.ndarray]] = {name: [] for name in ("udgd", *e.baselines)}
    misses: dict[str, list[np.ndarray]] = {name: [] for name in ("udgd", *e.baselines)}
    silent_total = 0
    model.eval()
    phase = _PHASES[e.split]
    num_tasks = cfg.data.num_meta_test if e.split == "meta-test" else cfg.data.num_meta_val
    bar = tqdm(
        total=num_tasks,
        desc=f"evaluate ({e.split})",
        unit="task",
        dynamic_ncols=True,
        mininterval=1.0,
        disable=not (progress and mixer.is_coordinator),
    )
    for t in range(num_tasks):
        task = trainer.prepare(e.split, t)
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
        for name in e.baselines:
            curve, timed = _baseline(trainer, name, t, task, lm["w0"], num_rounds, e.split)
            curves[name].append(curve)
            seconds[name].append(timed[0])
            misses[name].append(timed[1])
        bar.update(1)
    bar.close()
    acc, acc_std = _mean_std(per_task["accuracy"])
    loss, loss_std = _mean_std(per_task["loss"])
    grad_norm, _ = _mean_std(per_task["grad_norm"])
    slack, _ = _mean_std(per_task["slack"])
    violations = [sum(1 for row in per_task["slack"] if row[layer] > 0) for layer in range(cfg.model.num_layers)]
    udgd = UDGDResult(
        accuracy_per_layer=acc,
        accuracy_std_per_layer=acc_std,
        loss_per_layer=loss,
        loss_std_per_layer=loss_std,
        grad_norm_per_layer=grad_norm,
        slack_per_layer=slack,
        violations_per_layer=violations,
        rounds=num_rounds_udgd,
        rounds_per_layer=[cfg.model.num_hops * layer for layer in range(cfg.model.num_layers + 1)],
        final_accuracy=acc[-1],
        silent_agent_layers=silent_total,
        time_s=_elapsed(seconds["udgd"]),
        deadline_misses_per_layer=np.sum(misses["udgd"], axis=0).tolist(),
    )
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
    return EvalResult(num_tasks=num_tasks, split=e.split, udgd=udgd, baselines=baselines)
