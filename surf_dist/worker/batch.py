"""The methods of ``eval.baselines`` evaluated on a batch of tasks at once (``core.rounds``): task b's agent i is
agent b·n + i of one graph of T·n agents, the disjoint union of the tasks' graphs, with a block-diagonal mixing
matrix and each worker hosting its agents of every task (``Mixer.widened``). A round is then one exchange, one
product and one all-reduce for all T tasks; every keyed draw is still each task's own, so each task gets exactly
the numbers it would get alone (a test says so). Silent agents, uploads and deadlines are each task's
(``BlockSet``); the time model times each task on its own graph, from the exchanges the method made.

``eval.batch_tasks`` sets T (0: as many tasks as keep T·n at most ``ROWS_PER_BATCH``; 1 with ``network.emulate``,
whose clock is per task).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from ..comm.ledger import Ledger
from ..config.validate import method_params
from ..core.protocol import SilentAgents
from ..core.rounds import Blocks, run_method
from ..data.tasks import TaskData
from ..graph import Graph, ShiftOperator
from ..plugins import METHODS
from .exchanges import Exchanges
from .problem import Problem, TaskGraph
from .timing import GraphOf, LateOrSilent, exchange_seconds
from .trainer import Trainer

ROWS_PER_BATCH = 20_000


def batch_size(trainer: Trainer, num_tasks: int) -> int:
    """Tasks per batch (``eval.batch_tasks``; 0: auto)."""
    if trainer.emulator is not None:
        return 1
    setting = trainer.cfg.eval.batch_tasks
    if setting:
        return min(setting, num_tasks)
    return max(1, min(num_tasks, ROWS_PER_BATCH // max(1, trainer.problem.num_agents)))


class BlockSet:
    """A silent (or quiet) set over the agents of a batch: block b's agents answer to ``parts[b]``."""

    def __init__(self, parts: Sequence[SilentAgents | None], num_agents: int) -> None:
        self.parts, self.num_agents = list(parts), num_agents

    def mask(self, agents: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(agents.shape, dtype=torch.bool)
        blocks = torch.div(agents, self.num_agents, rounding_mode="floor")
        for b, part in enumerate(self.parts):
            if part is not None:
                chosen = blocks == b
                if bool(chosen.any()):
                    out[chosen] = part.mask(agents[chosen] - b * self.num_agents)
        return out


@dataclass
class TaskSchedule:
    """One task's silent agents and senders for a method (``core.rounds.RoundSchedule`` of a single task)."""

    trainer: Trainer
    graph: GraphOf
    where: tuple[str, int]  # (the draws' phase, the task)
    injected: list[SilentAgents | None] | None
    exchanges: Exchanges
    num_updates: int

    def silent(self, r: int, num_bytes: int) -> SilentAgents | None:
        t = self.trainer
        if not t.cfg.failures.in_eval:  # nobody is silent, nobody is late
            return None
        injected = None if self.injected is None else self.injected[r - 1]
        if not t.network.has_deadline:
            return injected
        return LateOrSilent(t.network, self.graph, num_bytes, (*self.where, r), injected, self.num_updates)

    def quiet(self, r: int, kind: str, silent: SilentAgents | None) -> SilentAgents | None:
        return self.exchanges.quiet_for(r, kind, silent)


class BatchSchedule:
    """The schedules of a batch's tasks as one (``core.rounds.RoundSchedule``)."""

    def __init__(self, tasks: Sequence[TaskSchedule], num_agents: int, uploads_per_round: int) -> None:
        self.tasks, self.num_agents, self.uploads_per_round = list(tasks), num_agents, uploads_per_round

    def _combine(self, parts: list[SilentAgents | None]) -> SilentAgents | None:
        if all(p is None for p in parts):
            return None
        return parts[0] if len(parts) == 1 else BlockSet(parts, self.num_agents)

    def _parts(self, silent: SilentAgents | None) -> list[SilentAgents | None]:
        if silent is None:
            return [None] * len(self.tasks)
        return silent.parts if isinstance(silent, BlockSet) else [silent]

    def silent(self, r: int, num_bytes: int) -> SilentAgents | None:
        return self._combine([s.silent(r, num_bytes) for s in self.tasks])

    def quiet(self, r: int, kind: str, silent: SilentAgents | None) -> SilentAgents | None:
        return self._combine([s.quiet(r, kind, p) for s, p in zip(self.tasks, self._parts(silent))])


@dataclass
class _HostedView:
    """A task's hosted agents (its own ids) and the worker's collectives: what the time model asks of a Mixer."""

    agents: np.ndarray
    mixer: Any

    @property
    def agents_t(self) -> torch.Tensor:
        return torch.as_tensor(self.agents)

    def all_reduce_max(self, t: torch.Tensor) -> torch.Tensor:
        return self.mixer.all_reduce_max(t)

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        return self.mixer.all_reduce_sum(t)


def _stack(tasks: Sequence[TaskData]) -> tuple[torch.Tensor, ...]:
    return tuple(torch.cat([getattr(t, f) for t in tasks]) for f in ("train_x", "train_y", "heldout_x", "heldout_y"))


def _batch_graph(graphs: Sequence[Graph], operators: Sequence[ShiftOperator], n: int) -> tuple[Graph, ShiftOperator]:
    """The disjoint union of the tasks' graphs and the block-diagonal of their mixing matrices."""
    offsets = [b * n for b in range(len(graphs))]
    graph = Graph.from_edges(
        n * len(graphs),
        np.concatenate([g.u + o for g, o in zip(graphs, offsets)]),
        np.concatenate([g.v + o for g, o in zip(graphs, offsets)]),
        np.concatenate([g.weight for g in graphs]),
        directed=graphs[0].directed,
    )
    return graph, ShiftOperator.from_scipy(sp.csr_array(sp.block_diag([s.scipy() for s in operators], format="csr")))


def evaluate_method(
    trainer: Trainer,
    name: str,
    split: str,
    tasks: Sequence[int],
    data: Sequence[TaskData],
    w0s: Sequence[torch.Tensor],
    num_rounds: int,
) -> list[tuple[list[float], np.ndarray, np.ndarray]]:
    """Method ``name`` of ``eval.baselines`` on the batch ``tasks``: per task, (accuracy after every round, simulated
    seconds of every round, deadline misses of every round)."""
    cfg, mixer, problem = trainer.cfg, trainer.mixer, trainer.problem
    key = f"{'test' if split == 'meta-test' else 'val'}-baseline"
    n = problem.num_agents
    method = METHODS.get(name)(method_params(cfg, name))
    num_updates = method.local_updates()
    graphs = [problem.graph(split, t) for t in tasks]
    placements = [problem.placement(mixer.num_workers, split, t) for t in tasks]
    held_up: list[Exchanges] = []
    schedules: list[TaskSchedule] = []
    graph_of = [_graph_of(problem, split, key, t, tg) for t, tg in zip(tasks, graphs)]
    for t, task_graph in zip(tasks, graph_of):
        injected = trainer.silent.layers(key, t, num_rounds) if cfg.failures.in_eval else None
        # late agents hold an exchange up until the deadline: the time model sees the injected silent agents only
        exchanges = Exchanges(injected, trainer.uploads(key, t), senders=method.senders, computes=method.computes)
        held_up.append(exchanges)
        schedules.append(TaskSchedule(trainer, task_graph, (key, t), injected, exchanges, num_updates))
    if problem.dynamic:  # round r of every task of the batch, as one block-diagonal graph
        round_graphs = partial(_batch_round, problem, split, key, list(tasks), method.mixing)
        _, graph, operator = round_graphs(1, 1)
    else:
        graph, operator = _batch_graph([tg.graph for tg in graphs], [tg.mixing(method.mixing) for tg in graphs], n)
    placement = [np.concatenate([p[w] + b * n for b, p in enumerate(placements)]) for w in range(mixer.num_workers)]
    batch = mixer.widened(placement, n * len(tasks), Ledger(n * len(tasks)))
    batch.set_graph(graph, operator, placement)
    if problem.dynamic:
        batch.set_rounds(round_graphs)
    batch.on_round = mixer.on_round
    if trainer.emulator is not None:  # one task a batch: its own ids
        trainer.emulator.begin(
            graph, batch.agents, key, tasks[0], num_rounds, len(method.senders), num_updates, held_up[0]
        )
    uploads = cfg.model.uploads_per_round if cfg.model.variant == "star" else 0
    train_x, train_y, heldout_x, heldout_y = _stack(data)
    with batch.ledger.in_phase(f"eval/{name}"), torch.no_grad():
        run = run_method(
            method,
            batch,
            torch.cat(list(w0s)),
            (train_x, train_y),
            (heldout_x, heldout_y),
            num_rounds=num_rounds,
            seed=cfg.seed,
            blocks=Blocks(list(tasks), n),
            schedule=BatchSchedule(schedules, n, uploads),
            num_classes=data[0].num_classes,
        )
    mixer.ledger.absorb(batch.ledger, n)
    results = []
    for b, (t, task_graph, exchanges) in enumerate(zip(tasks, graph_of, held_up)):
        rounds = [
            [(exchanges.quiet_for(r, kind, _at(exchanges.base, r)), num_bytes) for kind, num_bytes in made]
            for r, made in enumerate(run.exchanges, start=1)
        ]
        idle = [exchanges.idle(r) for r in range(1, num_rounds + 1)]
        view = _HostedView(placements[b][mixer.rank], mixer)
        seconds, misses = exchange_seconds(view, trainer.network, task_graph, key, t, rounds, idle, num_updates)
        results.append((run.accuracy[b], seconds, misses))
    return results


def _graph_of(problem: Problem, split: str, key: str, t: int, tg: TaskGraph) -> GraphOf:
    """Task t's graph for the time model: its graph, or round r's on a changing network (the draws of the
    methods' pass ``(key, t)``)."""
    if not problem.dynamic:
        return tg.graph
    return lambda r, exchange: problem.round_graph(split, t, key, t, r)[1].graph


def _batch_round(
    problem: Problem, split: str, key: str, tasks: list[int], mixing: str | None, r: int, exchange: int
) -> tuple[Any, Graph, ShiftOperator]:
    """Round r of every task of a batch (``Mixer.set_rounds``): the disjoint union of their round graphs and the
    block-diagonal of the method's mixing matrices."""
    rounds = [problem.round_graph(split, t, key, t, r) for t in tasks]
    graphs = [tg.graph for _, tg in rounds]
    graph, operator = _batch_graph(graphs, [tg.mixing(mixing) for _, tg in rounds], problem.num_agents)
    return tuple(k for k, _ in rounds), graph, operator


def _at(sets: Sequence[SilentAgents | None] | None, r: int) -> SilentAgents | None:
    return None if sets is None else sets[r - 1]
