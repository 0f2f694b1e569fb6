"""The federated problem family: tasks (data split over agents + a graph) as pure functions of the seed.

``Problem`` is what a worker needs to know about task t of a split: its graph and shift operator
(the same on every worker) and its own agents' samples (only those are materialised).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import networkx as nx
import numpy as np
import torch

from .config import Config
from .data.tasks import TaskData, TaskSource
from .graph import build_graph, place, shift_operator

SPLIT_CODES = {"meta-train": 0, "meta-val": 1, "meta-test": 2}
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class TaskGraph:
    graph: nx.Graph
    s_NN: torch.Tensor  # the shift operator, n × n, in the model dtype


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

    @property
    def num_features(self) -> int:
        return self.source.num_features

    @property
    def num_classes(self) -> int:
        return self.source.num_classes

    @property
    def dim(self) -> int:
        return (self.num_features + 1) * self.num_classes

    @lru_cache(maxsize=512)  # noqa: B019 - one Problem per process; a mincut costs ~0.1 s, once per task
    def placement(self, num_workers: int, split: str = "meta-train", index: int = 0) -> list[np.ndarray]:
        """Agents per worker for a task. ``contiguous`` is the same for every task; ``mincut`` partitions the
        task's own graph (with fresh graphs per task a placement fixed once would cut edges at random).
        Workers hold only their agents' data of the current task, so moving agents between tasks is free."""
        if self.cfg.topology.placement == "contiguous" or num_workers == 1:
            return place(self.base_graph, num_workers, "contiguous")
        return place(self.graph(split, index).graph, num_workers, self.cfg.topology.placement, seed=self.cfg.seed)

    @lru_cache(maxsize=64)  # noqa: B019 - one Problem per process, a handful of graphs reused by validation
    def graph(self, split: str, index: int) -> TaskGraph:
        """The graph of task ``index`` of ``split`` (a fresh draw per task when ``topology.per_task``)."""
        if self.cfg.topology.per_task:
            graph = build_graph(
                self.cfg.topology.spec,
                seed=self.cfg.seed,
                index=SPLIT_CODES[split] * 1_000_000 + index,
                allow_disconnected=self.cfg.topology.allow_disconnected,
            )
        else:
            graph = self.base_graph
        return TaskGraph(graph, shift_operator(graph, self.cfg.topology.normalisation).to(self.dtype))

    def task(self, split: str, index: int, agents: np.ndarray) -> TaskData:
        return self.source.task(split, index, agents=torch.as_tensor(agents))
