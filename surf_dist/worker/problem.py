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
from ..data.tasks import TaskData, TaskSource
from ..graph import Graph, ShiftOperator, build_graph, place, shift_matrix, star_shift

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
    _mixings: dict[str, ShiftOperator] = field(default_factory=dict, compare=False, repr=False)

    def mixing(self, kind: str | None) -> ShiftOperator:
        """The mixing matrix ``kind`` of this graph (None: U-DGD's S)."""
        if kind is None:
            return self.shift
        if kind not in self._mixings:
            if kind == "mean":
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

    def task(self, split: str, index: int, agents: np.ndarray) -> TaskData:
        return self.source.task(split, index, agents=torch.as_tensor(agents))
