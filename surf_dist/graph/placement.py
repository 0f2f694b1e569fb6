"""Placement of agents on workers: contiguous blocks, or a min-cut partition (METIS).

Every placement is ``num_workers`` sorted int64 arrays, disjoint, covering 0..n-1, none empty, with the sizes
of ``np.array_split`` (differing by at most one), so a worker's memory is predictable.

``mincut`` asks METIS (pymetis; multilevel k-way, ~0.05 s for 100,000 agents) for a partition with at most
0.1 % imbalance, with a fixed seed, then evens the sizes out by moving the boundary agents that cost the
fewest cut edges. METIS is deterministic for a seed and a version: every worker of a run must have the same
pymetis version (as they must have the same surf-dist). It falls back to contiguous when that cuts fewer
edges, so mincut never cuts more edges than contiguous.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pymetis

from ..errors import InputError
from .core import Graph
from .files import as_graph
from .spec import PLACEMENTS, _is_count

if TYPE_CHECKING:  # pragma: no cover - networkx is imported where a graph is converted (the CLI validates faster)
    import networkx as nx


def num_cut_edges(graph: Graph, placement: list[np.ndarray]) -> int:
    """Undirected edges whose ends lie on different workers."""
    owner = owner_of(placement, graph.num_agents)
    return int(np.count_nonzero(owner[graph.u] != owner[graph.v]))  # edges (or arcs) between workers


def owner_of(placement: list[np.ndarray], num_agents: int) -> np.ndarray:
    """owner[agent] = worker (no checks; see ``halo._owner`` for the checked version)."""
    owner = np.empty(num_agents, dtype=np.int64)
    for worker, agents in enumerate(placement):
        owner[agents] = worker
    return owner


def _metis(graph: Graph, num_workers: int, seed: int) -> np.ndarray:
    if graph.directed:  # METIS partitions undirected graphs: an arc either way is a cut either way
        graph = Graph.from_edges(graph.num_agents, graph.u, graph.v)
    indptr, indices, _ = graph.csr
    options = pymetis.Options(seed=seed, ufactor=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        _, parts = pymetis.part_graph(num_workers, xadj=indptr, adjncy=indices, options=options)
    return np.asarray(parts, dtype=np.int64)


def _balance(graph: Graph, parts: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Move agents out of parts above their target size into parts below it, cheapest moves first: an agent's
    cost is (neighbours in its part) − (neighbours in the target part)."""
    parts = parts.copy()
    indices = graph.csr[1]
    target = np.asarray(sizes)
    while True:
        count = np.bincount(parts, minlength=len(sizes))
        over, under = np.flatnonzero(count > target), np.flatnonzero(count < target)
        if not len(over):
            return parts
        dest = int(under[0])
        movers = np.flatnonzero(np.isin(parts, over))
        neighbour_part, n = parts[indices], graph.num_agents
        same = np.bincount(graph.sender, weights=neighbour_part == parts[graph.sender], minlength=n)
        into = np.bincount(graph.sender, weights=neighbour_part == dest, minlength=n)
        cost = same[movers] - into[movers]
        order = movers[np.argsort(cost, kind="stable")]
        num_moves = min(int(target[dest] - count[dest]), sum(int(count[p] - target[p]) for p in over))
        chosen: list[int] = []
        left = {int(p): int(count[p] - target[p]) for p in over}
        for agent in order:
            if left[int(parts[agent])] > 0:
                chosen.append(int(agent))
                left[int(parts[agent])] -= 1
                if len(chosen) == num_moves:
                    break
        parts[chosen] = dest


def place(graph: Graph | nx.Graph, num_workers: int, method: str = "contiguous", *, seed: int = 0) -> list[np.ndarray]:
    """Agents per worker (module docstring)."""
    graph = as_graph(graph)
    n = graph.num_agents
    problems = []
    if method not in PLACEMENTS:
        problems.append(f"unknown placement {method!r}; valid: {', '.join(PLACEMENTS)}")
    if not _is_count(seed):
        problems.append(f"seed={seed!r} must be a non-negative int")
    if not _is_count(num_workers) or not 1 <= num_workers <= n:
        problems.append(f"num_workers={num_workers!r} must be an int in 1..{n} (at least one agent a worker)")
    if problems:
        raise InputError(problems, source="placement")
    contiguous = [chunk.astype(np.int64) for chunk in np.array_split(np.arange(n), num_workers)]
    if method == "contiguous" or num_workers == 1:
        return contiguous
    sizes = [len(chunk) for chunk in contiguous]
    parts = _balance(graph, _metis(graph, int(num_workers), int(seed) % (2**31)), sizes)
    mincut = [np.flatnonzero(parts == w).astype(np.int64) for w in range(num_workers)]
    return contiguous if num_cut_edges(graph, contiguous) < num_cut_edges(graph, mincut) else mincut
