"""Placement of agents on workers: contiguous blocks or a min-cut partition."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
from networkx.algorithms.community import kernighan_lin_bisection

from ..errors import InputError
from .spec import PLACEMENTS, _is_count


def _num_cut_edges(graph: nx.Graph, placement: list[np.ndarray]) -> int:
    owner = np.empty(graph.number_of_nodes(), dtype=np.int64)
    for worker, agents in enumerate(placement):
        owner[agents] = worker
    return sum(1 for u, v in graph.edges() if owner[u] != owner[v])


def _bfs_order(graph: nx.Graph) -> list[int]:
    """Agents in breadth-first order, component by component, each from a pseudo-peripheral agent
    (two sweeps of 'go to the farthest agent'), so that a prefix is a compact region."""
    order: list[int] = []
    for component in sorted(nx.connected_components(graph), key=min):
        start = min(component)
        for _ in range(2):
            distance = nx.single_source_shortest_path_length(graph, start)
            farthest = max(distance.values())
            start = min(v for v, d in distance.items() if d == farthest)
        order += [start] + [v for _, v in nx.bfs_edges(graph, start, sort_neighbors=sorted)]
    return order


def _bisect(graph: nx.Graph, size_left: int, rng: np.random.Generator, num_random_starts: int = 2) -> set[int]:
    """A set of exactly ``size_left`` agents with few edges leaving it: Kernighan-Lin (which swaps pairs, so
    it keeps the sizes) from a breadth-first start and from random starts; the smallest cut wins."""
    nodes = sorted(graph.nodes)
    starts = [set(_bfs_order(graph)[:size_left])]
    starts += [set(rng.permutation(nodes)[:size_left].tolist()) for _ in range(num_random_starts)]
    best: set[int] = set()
    best_cut = math.inf
    for start in starts:
        part_a, part_b = kernighan_lin_bisection(graph, partition=(start, set(nodes) - start), weight=None)
        left = part_a if len(part_a) == size_left else part_b
        cut = nx.cut_size(graph, left)
        if cut < best_cut:
            best, best_cut = left, cut
    return best


def _bisect_recursively(
    graph: nx.Graph, agents: list[int], num_parts: int, rng: np.random.Generator
) -> list[list[int]]:
    """Split ``agents`` into ``num_parts`` parts whose sizes are those of np.array_split (differ by <= 1)."""
    if num_parts == 1:
        return [agents]
    num_left = num_parts // 2
    sizes = [len(chunk) for chunk in np.array_split(np.arange(len(agents)), num_parts)]
    left = _bisect(graph.subgraph(agents), sum(sizes[:num_left]), rng)
    right = sorted(set(agents) - left)
    return _bisect_recursively(graph, sorted(left), num_left, rng) + _bisect_recursively(
        graph, right, num_parts - num_left, rng
    )


def place(graph: nx.Graph, num_workers: int, method: str = "contiguous", *, seed: int = 0) -> list[np.ndarray]:
    """Agents per worker: ``num_workers`` sorted int64 arrays, disjoint, covering 0..n-1, none empty, sizes
    as np.array_split (differing by at most one).

    - ``contiguous``: np.array_split(arange(n), num_workers).
    - ``mincut``: recursive Kernighan-Lin bisection (networkx, deterministic for ``seed``; pymetis is not
      used so that every machine computes the same placement). Falls back to contiguous when that cuts
      fewer edges, so mincut never cuts more edges than contiguous.
    """
    n = graph.number_of_nodes()
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
    rng = np.random.default_rng(np.random.SeedSequence([seed, num_workers]))
    parts = _bisect_recursively(graph, list(range(n)), int(num_workers), rng)
    mincut = [np.array(sorted(part), dtype=np.int64) for part in parts]
    return contiguous if _num_cut_edges(graph, contiguous) < _num_cut_edges(graph, mincut) else mincut
