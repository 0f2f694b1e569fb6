"""Halo plans (which rows each worker sends each other worker every round) and traffic per round."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from .core import Graph
from .files import as_graph
from .spec import _is_count

if TYPE_CHECKING:  # pragma: no cover - networkx is imported where a graph is converted (the CLI validates faster)
    import networkx as nx


@dataclass(frozen=True, eq=False)
class HaloPlan:
    """Who sends which rows to whom every round.

    ``send[(src, dst)]`` holds the sorted global ids of agents hosted by worker ``src`` with at least one
    neighbour on worker ``dst``: ``dst`` needs their rows every round, each row once per pair even if the
    agent has several neighbours there. Only non-empty pairs are keys.
    """

    placement: list[np.ndarray]  # agents per worker
    owner: np.ndarray  # owner[agent] = worker
    send: dict[tuple[int, int], np.ndarray]
    cut_edges: int  # edges (arcs of a directed graph) whose ends lie on different workers

    @property
    def num_workers(self) -> int:
        return len(self.placement)

    def neighbours_of(self, worker: int) -> list[int]:
        """Sorted workers ``worker`` exchanges rows with, either way (the same both ways for an undirected graph)."""
        return sorted(
            {dst for src, dst in self.send if src == worker} | {src for src, dst in self.send if dst == worker}
        )

    def halo_of(self, worker: int) -> np.ndarray:
        """Sorted ids of agents hosted elsewhere whose rows ``worker`` receives every round."""
        rows = [self.send[(src, dst)] for src, dst in self.send if dst == worker]
        return np.sort(np.concatenate(rows)) if rows else np.empty(0, dtype=np.int64)


def _owner(placement: list[np.ndarray], num_agents: int) -> np.ndarray:
    """owner[agent] = worker; InputError unless the placement is a disjoint cover of 0..n-1, no part empty."""
    owner = np.full(num_agents, -1, dtype=np.int64)
    counts = np.zeros(num_agents, dtype=np.int64)
    problems = []
    for worker, agents in enumerate(placement):
        agents = np.asarray(agents, dtype=np.int64).ravel()
        inside = agents[(agents >= 0) & (agents < num_agents)]
        if agents.size == 0:
            problems.append(f"worker {worker} hosts no agents")
        if inside.size < agents.size:
            problems.append(
                f"worker {worker} hosts agents outside 0..{num_agents - 1}: "
                f"{np.setdiff1d(agents, inside)[:10].tolist()}"
            )
        np.add.at(counts, inside, 1)
        owner[inside] = worker
    twice, unplaced = np.flatnonzero(counts > 1), np.flatnonzero(counts == 0)
    if twice.size:
        problems.append(f"{twice.size} agents are placed more than once: {twice[:10].tolist()}")
    if unplaced.size:
        problems.append(f"{unplaced.size} agents are on no worker: {unplaced[:10].tolist()}")
    if problems:
        raise InputError(problems, source="placement")
    return owner


def halo_plan(graph: Graph | nx.Graph, placement: list[np.ndarray]) -> HaloPlan:
    """Build the halo plan: for each directed edge u → v between workers (u on w1, v on w2), u is in
    send[(w1, w2)] (both directions of an undirected edge). O(n + E) with array operations."""
    graph = as_graph(graph)
    n, num_workers = graph.num_agents, len(placement)
    owner = _owner(placement, n)
    sender, receiver = graph.sender, graph.csr[1]
    crossing = owner[sender] != owner[receiver]
    u = sender[crossing]
    src, dst = owner[u], owner[receiver[crossing]]
    key = np.unique((src * num_workers + dst) * n + u)
    pair, agent = np.divmod(key, n)
    breaks = np.flatnonzero(np.diff(pair)) + 1
    send = {
        (int(p[0]) // num_workers, int(p[0]) % num_workers): a.astype(np.int64)
        for p, a in zip(np.split(pair, breaks), np.split(agent, breaks), strict=True)
        if len(p)
    }
    owner.setflags(write=False)
    cut = int(crossing.sum()) // (1 if graph.directed else 2)
    return HaloPlan([np.sort(np.asarray(p, dtype=np.int64)) for p in placement], owner, send, cut)


def traffic_per_round(graph: Graph | nx.Graph, plan: HaloPlan, dim: int, bytes_per_float: int = 4) -> dict[str, Any]:
    """Traffic of one round for rows of ``dim`` floats.

    logical:  messages = sum_i out-degree(i) = 2 |E| (|E| arcs of a directed graph); bytes = messages * dim * bytes
    physical: rows = sum over (src, dst) pairs of |send[(src, dst)]|; bytes = rows * dim * bytes_per_float;
              worker_pairs = number of (src, dst) pairs that exchange anything.
    """
    problems = [
        f"{name}={value!r} must be a positive int"
        for name, value in (("dim", dim), ("bytes_per_float", bytes_per_float))
        if not _is_count(value) or value < 1
    ]
    if problems:
        raise InputError(problems, source="traffic")
    num_messages = as_graph(graph).num_directed_edges
    num_rows = sum(len(agents) for agents in plan.send.values())
    bytes_per_row = dim * bytes_per_float
    return {
        "dim": dim,
        "bytes_per_float": bytes_per_float,
        "logical": {"messages": num_messages, "bytes": num_messages * bytes_per_row},
        "physical": {"rows": num_rows, "bytes": num_rows * bytes_per_row, "worker_pairs": len(plan.send)},
    }
