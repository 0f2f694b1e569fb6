"""The federated problem family: tasks (data split over agents + a graph) as pure functions of the seed.

``Problem`` is what a worker needs to know about task t of a split: its graph and shift operator
(the same on every worker) and its own agents' samples (only those are materialised).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..config import Config
from ..core.rng import keyed_seed
from ..data.tasks import TaskData, TaskSource
from ..graph import Graph, ShiftOperator, build_graph, place, shift_matrix, star_shift
from ..graph.dynamic import link_key, one_peer_graph, repaired_self, surviving_links, without_links
from ..graph.generators import exponential_peers

SPLIT_CODES = {"meta-train": 0, "meta-val": 1, "meta-test": 2}
DTYPES = {"float32": torch.float32, "float64": torch.float64}


CACHE_EDGES = 4_000_000  # the graphs and placements kept for reuse hold about this many edges in all


@dataclass(frozen=True)
class TaskGraph:
    """A task's graph, U-DGD's shift operator S, and the other mixing matrices of that graph the methods ask for
    (``Method.mixing``: ``metropolis``, ``column``, the star's ``mean`` of the uploads...), made once each."""

    graph: Graph
    shift: ShiftOperator  # S, sparse, float64
    uploads_per_round: int = 0  # the star's M (for its ``mean`` operator)
    make_mixing: Callable[[str], ShiftOperator] | None = None  # how a round graph makes its other mixings
    _mixings: dict[str, ShiftOperator] = field(default_factory=dict, compare=False, repr=False)

    def mixing(self, kind: str | None) -> ShiftOperator:
        """The mixing matrix ``kind`` of this graph (None: U-DGD's S)."""
        if kind is None:
            return self.shift
        if kind not in self._mixings:
            if self.make_mixing is not None:
                self._mixings[kind] = self.make_mixing(kind)
            elif kind == "mean":
                self._mixings[kind] = star_shift(self.graph, self.uploads_per_round, "mean")
            else:
                self._mixings[kind] = shift_matrix(self.graph, kind)
        return self._mixings[kind]


class _Cache(OrderedDict):
    """A least-recently-used cache of ``capacity`` entries."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def get_or_make(self, key: Any, make: Callable[[], Any]) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = self[key] = make()
        if len(self) > self.capacity:
            self.popitem(last=False)
        return value


class Problem:
    """Tasks of a config: graphs, the placement of agents on workers, and each worker's data."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.dtype = DTYPES[cfg.model.dtype]
        self.base_graph = build_graph(
            cfg.topology.spec, seed=cfg.seed, index=0, allow_disconnected=cfg.topology.allow_disconnected
        )
        self.num_agents = self.base_graph.number_of_nodes()
        self.source = TaskSource(cfg.data, seed=cfg.seed, num_agents=self.num_agents, dtype=self.dtype)
        # validation and evaluation reuse their tasks' graphs: keep a few, fewer the larger the graph
        size = self.num_agents + self.base_graph.number_of_edges()
        capacity = max(2, min(64, CACHE_EDGES // size))
        self._graphs, self._placements = _Cache(capacity), _Cache(capacity)
        self._round_graphs = _Cache(max(2, min(4 * cfg.model.num_hops + 4, CACHE_EDGES // size)))

    @property
    def num_features(self) -> int:
        return self.source.num_features

    @property
    def num_classes(self) -> int:
        return self.source.num_classes

    @property
    def dim(self) -> int:
        return (self.num_features + 1) * self.num_classes

    def placement(self, num_workers: int, split: str = "meta-train", index: int = 0) -> list[np.ndarray]:
        """Agents per worker for a task. ``contiguous`` is the same for every task; ``mincut`` partitions the
        task's own graph (with fresh graphs per task a placement fixed once would cut edges at random).
        Workers hold only their agents' data of the current task, so moving agents between tasks is free."""
        if self.cfg.topology.placement == "contiguous" or num_workers == 1:
            return self._placements.get_or_make(num_workers, lambda: place(self.base_graph, num_workers))
        return self._placements.get_or_make(
            (num_workers, split, index),
            lambda: place(self.graph(split, index).graph, num_workers, self.cfg.topology.placement, seed=self.cfg.seed),
        )

    def graph(self, split: str, index: int) -> TaskGraph:
        """The graph of task ``index`` of ``split`` (a fresh draw per task when ``topology.per_task``)."""
        return self._graphs.get_or_make((split, index), lambda: self._make_graph(split, index))

    def _make_graph(self, split: str, index: int) -> TaskGraph:
        if self.cfg.topology.per_task:
            graph = build_graph(
                self.cfg.topology.spec,
                seed=self.cfg.seed,
                index=SPLIT_CODES[split] * 1_000_000 + index,
                allow_disconnected=self.cfg.topology.allow_disconnected,
            )
        else:
            graph = self.base_graph
        if self.cfg.model.variant == "star":
            uploads = self.cfg.model.uploads_per_round
            return TaskGraph(graph, star_shift(graph, uploads), uploads)
        shift = shift_matrix(graph, self.cfg.topology.normalisation)
        return TaskGraph(graph, shift.transposed if self.cfg.topology.transpose else shift)

    @property
    def dynamic(self) -> bool:
        """Whether the network changes from round to round (``topology.dynamic``, ``graph.dynamic``)."""
        return self.cfg.topology.dynamic != "static"

    def round_graph(self, split: str, index: int, phase: str, step: int, r: int) -> tuple[Any, TaskGraph]:
        """(key, graph) of round r (from 1) of the pass (phase, step) on task (split, index): rounds of one key
        share their graph (``graph.dynamic``). Static networks: the task's graph, key None."""
        t, tg = self.cfg.topology, self.graph(split, index)
        if t.dynamic == "static":
            return None, tg
        if t.dynamic == "resample":
            key: Any = ("resample", phase, step, (r - 1) // self.cfg.model.num_hops)
        elif t.dynamic == "exponential-one-peer":
            key = ("one-peer", (r - 1) % len(exponential_peers(self.num_agents)))
        else:
            key = ("link-failure", phase, step, r)
        return key, self._round_graphs.get_or_make((split, index, key), lambda: self._make_round(tg, key, r))

    def _make_round(self, tg: TaskGraph, key: tuple[Any, ...], r: int) -> TaskGraph:
        t, seed = self.cfg.topology, self.cfg.seed
        if key[0] == "resample":
            index = keyed_seed(seed, "resample", *key[1:])
            graph = build_graph(t.spec, seed=seed, index=index, allow_disconnected=True)
            shift = shift_matrix(graph, t.normalisation)
            return TaskGraph(graph, shift.transposed if t.transpose else shift)
        if key[0] == "one-peer":  # every normalisation gives (I + P_r)/2: one message out, one in
            graph = one_peer_graph(self.num_agents, r)
            shift = shift_matrix(graph, "row")
            return TaskGraph(graph, shift, make_mixing=lambda kind: shift)
        keep_E = surviving_links(tg.graph, t.link_failure_p, link_key(seed, *key[1:]))
        graph = without_links(tg.graph, keep_E)
        if t.link_repair == "renormalise":
            shift = shift_matrix(graph, t.normalisation)
            return TaskGraph(graph, shift.transposed if t.transpose else shift)
        failed = without_links(tg.graph, ~keep_E)
        return TaskGraph(
            graph,
            repaired_self(tg.shift, failed, sender_side=False),
            make_mixing=lambda kind: repaired_self(tg.mixing(kind), failed, sender_side=kind == "column"),
        )

    def task(self, split: str, index: int, agents: np.ndarray) -> TaskData:
        return self.source.task(split, index, agents=torch.as_tensor(agents))
