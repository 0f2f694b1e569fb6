"""One step of primal-dual meta-training of U-DGD over federated tasks (docs/method.md, Alg. 1).

Every worker runs the same steps on its own block of agents; it sees a ``Mixer``, never a backend.
Per step (one meta-train task): one U-DGD forward with fresh mini-batches, the held-out loss at the
last layer, the descent constraints, the Lagrangian; backward through the messages; parameter
gradients summed over workers; Adam on Θ; projected dual ascent on λ. All workers hold identical Θ and
λ because they apply identical updates to identical reduced values. The loop around the steps
(validation, checkpoints, metrics) is ``train.loop``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeAlias

import numpy as np
import torch
from torch import nn

from ..comm.mixer import Mixer
from ..config import Config
from ..config.validate import local_update_params
from ..core.constraints import descent_slacks, dual_step, gradient_norms, lagrangian
from ..core.objective import loss_per_agent
from ..core.protocol import SilentAgents
from ..core.rng import keyed_seed
from ..core.sampling import batch_indices, dropout_keep, initial_iterate, take_batch
from ..core.udgd import UDGD
from ..data.tasks import TaskData
from ..graph import Graph, ShiftOperator
from ..network.emulator import Emulator
from ..plugins import LOCAL_UPDATES
from .exchanges import Exchanges
from .problem import Problem, TaskGraph
from .silent import SilentSchedule, uploaders
from .timing import GraphOf, network_model, with_deadline

RoundGraphOf: TypeAlias = Callable[[int, int], tuple[Any, TaskGraph]]  # (layer, hop) ↦ (key, the round's graph)


def build_model(cfg: Config, problem: Problem) -> UDGD:
    """U-DGD with parameters drawn from a generator keyed by the seed (identical on every worker); its local
    networks are the registered ``model.local_update``."""
    m = cfg.model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(keyed_seed(cfg.seed, "init"))
        model = UDGD(
            num_layers=m.num_layers,
            num_hops=m.num_hops,
            num_features=problem.num_features,
            num_classes=problem.num_classes,
            batch_size=m.batch_size,
            tap_init=m.tap_init,
            variant=m.variant,
            make_update=partial(LOCAL_UPDATES.get(m.local_update), model=m, params=local_update_params(cfg)),
        )
    return model.to(problem.dtype)


@dataclass
class Forward:
    """One unrolled forward pass on one task (hosted rows)."""

    ws: list[torch.Tensor]
    norms: torch.Tensor  # L + 1 global gradient norms
    loss: torch.Tensor  # global held-out loss at the last layer
    num_silent: int  # (agent, layer) pairs that were silent in this pass


@dataclass
class History:
    loss_per_step: list[float] = field(default_factory=list)  # the Lagrangian
    heldout_loss_per_step: list[float] = field(default_factory=list)
    seconds_per_step: list[float] = field(default_factory=list)
    val: list[dict[str, float]] = field(default_factory=list)
    best_val_loss: float = math.inf
    best_step: int = -1
    silent_agent_layers: int = 0  # (agent, layer) pairs silenced during training
    train_s: float = 0.0  # wall seconds of meta-training over every attempt, steps done again included
    attempts: int = 0  # times meta-training started in this run directory: the first, each restart, each rerun


class Trainer:
    """Meta-training on one worker: the model, its optimiser, the duals, and one step at a time."""

    def __init__(self, cfg: Config, mixer: Mixer, problem: Problem) -> None:
        self.cfg, self.mixer, self.problem = cfg, mixer, problem
        self.model = build_model(cfg, problem).to(mixer.device)
        mixer.watch_gradients(self.model.parameters())  # summed over workers while the backward runs
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(),
            lr=cfg.train.lr,
            weight_decay=cfg.train.weight_decay,
            eps=cfg.train.adam_eps,
            fused=True,
        )
        self.duals = torch.zeros(cfg.model.num_layers, dtype=problem.dtype, device=mixer.device)
        self.history = History()
        self.best_state: dict[str, torch.Tensor] = copy.deepcopy(self.model.state_dict())
        self.step = 0
        self.silent = SilentSchedule(cfg.failures, seed=cfg.seed, num_agents=problem.num_agents)
        self.network = network_model(cfg, problem.num_agents)
        self.emulator = Emulator(self.network) if cfg.network.emulate else None
        if self.emulator is not None:
            mixer.on_round = self.emulator.hold
        self.graph: Graph | None = None  # the current task's
        self.task_index: tuple[str, int] = ("meta-train", 0)  # (split, index) of the current task

    @property
    def recompute(self) -> bool:
        """Per-layer recomputation (``model.recompute``; ``auto``: from 100,000 hosted agent-layers on)."""
        setting = self.cfg.model.recompute
        return setting == "on" or (setting == "auto" and len(self.mixer.agents) * self.cfg.model.num_layers >= 100_000)

    @property
    def num_steps(self) -> int:
        return self.cfg.train.epochs * self.cfg.data.num_meta_train

    # -- one forward pass ---------------------------------------------------------------------------------
    def prepare(self, split: str, index: int) -> TaskData:
        """Point the Mixer at the task's graph and return this worker's agents' data."""
        tg = self.problem.graph(split, index)
        self.graph, self.task_index = tg.graph, (split, index)
        self.mixer.set_graph(tg.graph, tg.shift, self.problem.placement(self.mixer.num_workers, split, index))
        task = self.problem.task(split, index, self.mixer.agents)
        if self.mixer.device.type == "cpu":
            return task
        move = {f: getattr(task, f).to(self.mixer.device) for f in ("train_x", "train_y", "heldout_x", "heldout_y")}
        return dataclasses.replace(task, **move)

    def batches(self, task: TaskData, phase: str, step: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """B_0..B_L: B_l feeds layer l and measures ‖∇f̂(W_l; B_l)‖; B_0 only measures W_0."""
        agents, m, b = self.mixer.agents_t, task.train_x.shape[1], self.cfg.model.batch_size
        return [
            take_batch(
                task.train_x,
                task.train_y,
                batch_indices(self.cfg.seed, phase, step, layer, agents, m, b).to(task.train_x.device),
            )
            for layer in range(self.cfg.model.num_layers + 1)
        ]

    def initial_iterate(self, phase: str, step: int) -> torch.Tensor:
        """W₀ of the hosted agents for the pass ``(phase, step)``, A × D: where U-DGD and every method start."""
        agents, dim, dtype = self.mixer.agents_t, self.problem.dim, self.problem.dtype
        w0 = initial_iterate(self.cfg.seed, phase, step, agents, dim, self.cfg.model.w0_std, dtype)
        return w0.to(self.mixer.device)

    def forward(self, model: UDGD, task: TaskData, phase: str, step: int, with_silent: bool) -> Forward:
        """One unrolled forward pass on the hosted agents, with the global loss, gradient norms and the number
        of silent (agent, layer) pairs (summed over workers in the loss's all-reduce)."""
        n, agents, dim, dtype, device = (
            self.problem.num_agents,
            self.mixer.agents_t,
            self.problem.dim,
            self.problem.dtype,
            self.mixer.device,
        )
        w0 = self.initial_iterate(phase, step)
        batches = self.batches(task, phase, step)
        m = self.cfg.model
        rounds = self.round_graphs(phase, step, m.num_hops)
        self.mixer.set_rounds(None if rounds is None else _wired(rounds))
        injected = self.silent.layers(phase, step, m.num_layers) if with_silent else None
        silent = self.silent_sets(phase, step, injected, m.num_layers) if with_silent else None
        uploads = self.uploads(phase, step)
        muted = Exchanges(silent, uploads).muted_layers(m.num_layers)
        if self.emulator is not None and self.graph is not None:
            where = (phase, step, m.num_layers, m.num_hops, 1)
            self.emulator.begin(self.graph, self.mixer.agents, *where, Exchanges(injected, uploads))
        keep = None
        if phase == "train" and self.cfg.model.dropout > 0:
            p = self.cfg.model.dropout

            def keep(layer: int) -> torch.Tensor:  # drawn where it is used: a recomputed layer draws it again
                return dropout_keep(self.cfg.seed, phase, step, layer, agents, dim, p, dtype).to(device)

        ws, squares = model(self.mixer, w0, batches, silent, keep, recompute=self.recompute, muted=muted)
        norms = gradient_norms(self.mixer, squares)
        loss_sum = loss_per_agent(ws[-1], task.heldout_x, task.heldout_y).sum()
        if injected is None:
            loss = self.mixer.all_reduce_sum(loss_sum.reshape(1))[0] / n
            return Forward(ws, norms, loss, 0)
        num_silent = sum(self.mixer.num_silent_hosted(s) for s in injected)
        total = self.mixer.all_reduce_sum(torch.stack([loss_sum, loss_sum.new_tensor(float(num_silent))]))
        return Forward(ws, norms, total[0] / n, int(round(float(total[1].detach()))))

    def round_graphs(self, phase: str, step: int, hops_per_layer: int | None) -> RoundGraphOf | None:
        """The current task's graph of each round of the pass (phase, step) on a changing network (None when it
        does not change): (layer, hop) ↦ (key, TaskGraph), round r = (layer − 1)·K + hop for U-DGD
        (``hops_per_layer`` K) or r = layer for a method's rounds (None)."""
        if not self.problem.dynamic:
            return None
        split, index = self.task_index
        k = hops_per_layer

        def of(layer: int, hop: int) -> tuple[Any, TaskGraph]:
            r = layer if k is None else (layer - 1) * k + hop
            return self.problem.round_graph(split, index, phase, step, r)

        return of

    def graph_of(self, rounds: RoundGraphOf | None) -> GraphOf:
        """The task's graph, or the graph of each round (for the time model)."""
        assert self.graph is not None, "prepare() a task first"
        if rounds is None:
            return self.graph
        return lambda layer, hop: rounds(layer, hop)[1].graph

    def uploads(self, phase: str, step: int) -> Callable[[int], np.ndarray] | None:
        """Star variant: the clients that upload in each layer (or round) of a pass; None when decentralised."""
        if self.cfg.model.variant != "star":
            return None
        seed, n, num_uploads = self.cfg.seed, self.problem.num_agents, self.cfg.model.uploads_per_round
        return lambda layer: uploaders(seed, phase, step, layer, n, num_uploads)

    def silent_sets(
        self, phase: str, step: int, injected: list[SilentAgents | None] | None, num_layers: int, num_updates: int = 1
    ) -> list[SilentAgents | None] | None:
        """The silent sets of a pass: the injected ones and, with a deadline, the agents that miss it."""
        num_bytes = self.problem.dim * self.problem.dtype.itemsize
        graph = self.graph_of(self.round_graphs(phase, step, self.cfg.model.num_hops))
        return with_deadline(self.network, graph, num_bytes, phase, step, injected, num_layers, num_updates)

    # -- one meta-training step -------------------------------------------------------------------------
    def compute_gradients(self, step: int) -> tuple[torch.Tensor, torch.Tensor, Forward]:
        """Lagrangian and slacks of meta-train step ``step``; leaves the summed gradients in ``.grad``."""
        task = self.prepare("meta-train", step % self.cfg.data.num_meta_train)
        self.optimizer.zero_grad(set_to_none=True)
        with self.mixer.ledger.in_phase("train"):
            fwd = self.forward(self.model, task, "train", step, self.cfg.failures.in_training)
            slacks = descent_slacks(fwd.norms, self.cfg.train.epsilon, self.cfg.train.constraint_form)
            lag = lagrangian(fwd.loss, slacks, self.duals, self.cfg.train.constrained)
            # every worker holds the same global Lagrangian; all_reduce_sum's backward sums over workers
            (lag / self.mixer.num_workers).backward()
        self.mixer.all_reduce_grads(self.model.parameters())
        return lag.detach(), slacks.detach(), fwd

    def train_step(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        step = self.step
        lag, slacks, fwd = self.compute_gradients(step)
        grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip or math.inf)
        self.optimizer.step()
        if self.cfg.train.constrained:
            self.duals = dual_step(self.duals, slacks, self.cfg.train.dual_lr)
        self.step += 1
        seconds = time.perf_counter() - t0
        h = self.history
        h.loss_per_step.append(float(lag))
        h.heldout_loss_per_step.append(float(fwd.loss.detach()))
        h.silent_agent_layers += fwd.num_silent
        h.seconds_per_step.append(seconds)
        bytes_so_far = self.mixer.ledger.totals()
        return {
            "step": step,
            "epoch": step // self.cfg.data.num_meta_train,
            "task": step % self.cfg.data.num_meta_train,
            "lagrangian": float(lag),
            "loss": float(fwd.loss.detach()),
            "slacks": slacks.tolist(),
            "duals": self.duals.tolist(),
            "grad_norms": fwd.norms.detach().tolist(),
            "theta_grad_norm": float(grad_norm),
            "seconds": seconds,
            "worker0_logical_bytes": bytes_so_far["logical_bytes"],
            "worker0_physical_bytes": bytes_so_far["physical_bytes"],
        }

    # -- validation and the loop --------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> float:
        """Mean held-out loss at the last layer over the meta-validation tasks."""
        losses = []
        with self.mixer.ledger.in_phase("validate"):
            for v in range(self.cfg.data.num_meta_val):
                task = self.prepare("meta-val", v)
                losses.append(float(self.forward(self.model, task, "val", v, False).loss))
        return sum(losses) / len(losses)

    def validate_and_keep_best(self) -> float:
        """Validate after the step just taken; keep the parameters when they are the best so far."""
        val = self.validate()
        self.history.val.append({"step": self.step, "loss": val})
        if val < self.history.best_val_loss:
            self.history.best_val_loss, self.history.best_step = val, self.step
            self.best_state = copy.deepcopy(self.model.state_dict())
        return val

    def state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "duals": self.duals.clone(),
            "best_state": self.best_state,
            "history": self.history.__dict__.copy(),
            "config": self.cfg.to_dict(),
            "ledger": self.mixer.merged_ledger_state(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.duals = state["duals"].clone().to(self.mixer.device)
        self.best_state = state["best_state"]
        self.history = History(**state["history"])
        if self.mixer.is_coordinator and state.get("ledger") is not None:
            self.mixer.ledger.load_state(state["ledger"])

    def eval_model(self) -> UDGD:
        """The parameters to evaluate: the best validated ones (``train.keep_best``) or the last."""
        if not self.cfg.train.keep_best:
            return self.model
        model = copy.deepcopy(self.model)
        model.load_state_dict(self.best_state)
        return model

    def final_param_norms(self) -> dict[str, float]:
        return {name: float(p.detach().norm()) for name, p in self.model.named_parameters()}


def _wired(rounds: RoundGraphOf) -> Callable[[int, int], tuple[Any, Graph, ShiftOperator]]:
    """Round graphs as a Mixer takes them (``Mixer.set_rounds``): (key, graph, U-DGD's S)."""

    def of(layer: int, hop: int) -> tuple[Any, Graph, ShiftOperator]:
        key, tg = rounds(layer, hop)
        return key, tg.graph, tg.shift

    return of
