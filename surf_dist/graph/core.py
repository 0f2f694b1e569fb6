"""``Graph``: the one graph type of surf-dist, as arrays (no n × n structure anywhere).

An undirected graph over agents 0..n-1 is stored as its E edges ``(u[e], v[e])`` with ``u < v``, sorted and
unique, each with a positive finite ``weight`` (1.0 unless a file says otherwise), and **no self-loops**: the
shift operator adds the self-weight its normalisation prescribes. A directed graph (``directed=True``) stores
its E arcs u[e] → v[e] (u sends to v), sorted by (u, v) and unique. Memory and every method are O(n + E).

Shapes: N agents, E edges; the CSR adjacency holds the directed edges (2E of an undirected graph: both
directions; E of a directed one), row i listing the agents i sends to.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

if TYPE_CHECKING:  # pragma: no cover - networkx is imported where a graph is converted (the CLI validates faster)
    import networkx as nx


@dataclass(frozen=True, eq=False)
class Graph:
    num_agents: int
    u: np.ndarray  # E int64, u < v
    v: np.ndarray  # E int64
    weight: np.ndarray  # E float64, positive and finite
    directed: bool = False  # u[e] → v[e] only (else both ways, u < v)

    @classmethod
    def from_edges(
        cls, num_agents: int, u: Any, v: Any, weight: Any = None, *, combine: str = "first", directed: bool = False
    ) -> Graph:
        """The canonical graph of an edge list: ends ordered (u < v) unless ``directed``, self-loops dropped,
        duplicates merged (the first listed weight is kept), edges sorted by (u, v)."""
        u = np.asarray(u, dtype=np.int64).reshape(-1)
        v = np.asarray(v, dtype=np.int64).reshape(-1)
        w = np.ones(u.shape[0]) if weight is None else np.asarray(weight, dtype=np.float64).reshape(-1)
        lo, hi = (u, v) if directed else (np.minimum(u, v), np.maximum(u, v))
        keep = lo != hi
        lo, hi, w = lo[keep], hi[keep], w[keep]
        key = lo * np.int64(num_agents) + hi
        _, first = np.unique(key, return_index=True)  # sorted by key = sorted by (u, v); first occurrence
        return cls(int(num_agents), lo[first], hi[first], w[first].astype(np.float64), directed)

    @classmethod
    def from_networkx(cls, graph: nx.Graph) -> Graph:
        """A networkx graph (or DiGraph) whose nodes are 0..n-1 (weights from ``"weight"``, default 1)."""
        edges = list(graph.edges(data="weight", default=1.0))
        directed = bool(graph.is_directed())
        if not edges:
            return cls.from_edges(graph.number_of_nodes(), [], [], [], directed=directed)
        u, v, w = zip(*edges, strict=True)
        return cls.from_edges(graph.number_of_nodes(), u, v, w, directed=directed)

    def to_networkx(self) -> nx.Graph:
        """The same graph as an ``nx.Graph`` (for small graphs: tools, tests, GraphML)."""
        import networkx as nx

        graph = nx.DiGraph() if self.directed else nx.Graph()
        graph.add_nodes_from(range(self.num_agents))
        graph.add_weighted_edges_from(zip(self.u.tolist(), self.v.tolist(), self.weight.tolist(), strict=True))
        return graph

    # -- the networkx vocabulary the tools use ------------------------------------------------------------------
    def number_of_nodes(self) -> int:
        return self.num_agents

    def number_of_edges(self) -> int:
        """E: undirected edges, or the arcs of a directed graph."""
        return int(self.u.shape[0])

    @property
    def num_directed_edges(self) -> int:
        """The directed edges a round sends over: 2E undirected, E directed."""
        return self.number_of_edges() * (1 if self.directed else 2)

    @property
    def weighted(self) -> bool:
        return bool(np.any(self.weight != 1.0))

    # -- adjacency ----------------------------------------------------------------------------------------------
    @cached_property
    def csr(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The directed edges as CSR: (indptr N+1, indices, weights), row i listing the agents i sends to in
        increasing order (both directions of every edge of an undirected graph). Directed edge k goes from
        ``sender[k]`` to ``indices[k]``."""
        if self.directed:
            src, dst, w = self.u, self.v, self.weight
        else:
            src = np.concatenate([self.u, self.v])
            dst = np.concatenate([self.v, self.u])
            w = np.concatenate([self.weight, self.weight])
        order = np.lexsort((dst, src))
        indptr = np.zeros(self.num_agents + 1, dtype=np.int64)
        np.cumsum(np.bincount(src, minlength=self.num_agents), out=indptr[1:])
        return indptr, dst[order], w[order]

    @cached_property
    def sender(self) -> np.ndarray:
        """2E: the sending agent of each directed edge, in CSR order."""
        indptr = self.csr[0]
        return np.repeat(np.arange(self.num_agents, dtype=np.int64), np.diff(indptr))

    def edges_of(self, agents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The directed edges out of ``agents``, in CSR order (each agent's neighbours in increasing order):
        (row E_A: the position in ``agents`` of each edge's sender, neighbour E_A: its receiver). O(E_A)."""
        indptr, indices, _ = self.csr
        counts = indptr[agents + 1] - indptr[agents]
        first = np.repeat(indptr[agents] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        positions = first + np.arange(int(counts.sum()))
        return np.repeat(np.arange(len(agents)), counts), indices[positions]

    @cached_property
    def degree(self) -> np.ndarray:
        """N: neighbours per agent (unweighted); a directed graph's out-degree (the agents it sends to)."""
        return np.diff(self.csr[0])

    @cached_property
    def in_degree(self) -> np.ndarray:
        """N: the agents each agent receives from (the degree of an undirected graph)."""
        return np.bincount(self.csr[1], minlength=self.num_agents) if self.directed else self.degree

    def adjacency(self, weighted: bool = True) -> sp.csr_array:
        """A with A[i, j] the weight of the edge i → j (symmetric for an undirected graph)."""
        indptr, indices, w = self.csr
        data = w if weighted else np.ones_like(w)
        return sp.csr_array((data, indices, indptr), shape=(self.num_agents, self.num_agents))

    # -- connectivity -------------------------------------------------------------------------------------------
    @cached_property
    def component_sizes(self) -> list[int]:
        """Sizes of the connected components (strongly connected ones of a directed graph), largest first."""
        if self.num_agents == 0:
            return []
        # a directed graph: strongly connected components (every agent's value must reach every other)
        _, labels = connected_components(self.adjacency(weighted=False), directed=self.directed, connection="strong")
        return sorted(np.bincount(labels).tolist(), reverse=True)

    def is_connected(self) -> bool:
        return len(self.component_sizes) == 1

    def relabel(self, labels: np.ndarray) -> Graph:
        """The graph with agent i renamed ``labels[i]`` (a permutation of 0..n-1)."""
        return Graph.from_edges(self.num_agents, labels[self.u], labels[self.v], self.weight, directed=self.directed)


def is_networkx(obj: object) -> TypeGuard[nx.Graph]:
    """Whether ``obj`` is a networkx graph (without importing networkx: an object can be one only once it is)."""
    nx_module = sys.modules.get("networkx")
    return nx_module is not None and isinstance(obj, nx_module.Graph)
