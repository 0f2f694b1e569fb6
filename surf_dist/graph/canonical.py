"""The canonical form of every graph in surf-dist."""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx


def canonical_graph(
    num_agents: int, edges: Iterable[tuple[int, int]], weights: Iterable[float] | None = None
) -> nx.Graph:
    """nx.Graph with nodes 0..n-1 in order, sorted edges (u < v), every edge weighted, no self-loops."""
    pairs = [(min(int(u), int(v)), max(int(u), int(v))) for u, v in edges]
    by_pair = dict(zip(pairs, [1.0] * len(pairs) if weights is None else weights, strict=True))
    graph = nx.Graph()
    graph.add_nodes_from(range(num_agents))
    graph.add_edges_from((u, v, {"weight": float(w)}) for (u, v), w in sorted(by_pair.items()) if u != v)
    return graph
