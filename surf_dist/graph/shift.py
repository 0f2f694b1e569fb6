"""The graph shift operator S, sparse (CSR over the edges plus the diagonal), and its spectrum.

S is built from the edge arrays in O(n + E), never as an n × n matrix; ``shift_operator`` gives the dense
tensor for small graphs (tools, tests, the local backend's fast path under 512 agents), equal to the sparse
one. Normalisations of the weighted adjacency A (no self-loops in A):

- ``row``:        S = D^-1 (A + I), D = diag((A + I) 1); row-stochastic (docs/method.md, k-regular).
- ``spectral``:   S = (A + I) / lambda_max(A + I); spectral radius 1, not stochastic (docs/method.md, random).
- ``metropolis``: S_ij = 1 / (1 + max(d_i, d_j)) on edges (unweighted degrees d), S_ii = 1 - sum_j S_ij;
                  symmetric and doubly stochastic.
- ``column``:     S = (A + I)ᵀ D_out^-1: each agent splits its value over itself and the agents it sends to;
                  column-stochastic (push-sum), for undirected and directed graphs.

Rows are receivers (y_i = Σ_j S_ij x_j, with S_ij ≠ 0 when j sends to i); a directed graph takes ``row`` (over
its in-neighbours) or ``column``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..errors import InputError
from .core import Graph
from .files import as_graph
from .spec import DIRECTED_NORMALISATIONS, NORMALISATIONS

if TYPE_CHECKING:  # pragma: no cover - networkx is imported where a graph is converted (the CLI validates faster)
    import networkx as nx

if TYPE_CHECKING:  # pragma: no cover - torch is imported where a tensor is made (the CLI validates without it)
    import torch

DENSE_EIGEN_MAX = 2000  # up to this many agents spectra use a dense eigensolver, above it a sparse one (ARPACK)


@dataclass(frozen=True, eq=False)
class ShiftOperator:
    """S as CSR, N × N in float64: row i holds S_ii and S_ij for i's neighbours j, columns increasing."""

    num_agents: int
    indptr: np.ndarray  # N + 1
    indices: np.ndarray  # N + 2E column ids
    values: np.ndarray  # N + 2E

    @classmethod
    def from_scipy(cls, matrix: sp.sparray) -> ShiftOperator:
        csr = sp.csr_array(matrix)
        csr.sum_duplicates()
        csr.sort_indices()
        return cls(csr.shape[0], csr.indptr.astype(np.int64), csr.indices.astype(np.int64), csr.data.copy())

    def scipy(self) -> sp.csr_array:
        return sp.csr_array((self.values, self.indices, self.indptr), shape=(self.num_agents, self.num_agents))

    def to_dense(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The dense n × n tensor (small graphs only; default float64)."""
        import torch

        return torch.tensor(self.scipy().toarray(), dtype=dtype or torch.float64)

    @cached_property
    def transposed(self) -> ShiftOperator:
        """Sᵀ (the backward of a round runs along the reversed edges)."""
        return self if self.is_symmetric else ShiftOperator.from_scipy(self.scipy().T)

    @cached_property
    def is_symmetric(self) -> bool:
        s = self.scipy()
        return bool(abs(s - s.T).max() <= 1e-15) if s.nnz else True

    def rows(self, agents: np.ndarray, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rows ``agents`` of S as CSR (crow A+1, col, value) whose column ids are positions in ``columns``
        (every neighbour of an agent in ``agents`` must appear in ``columns``). O((entries + C) log C)."""
        starts, ends = self.indptr[agents], self.indptr[agents + 1]
        counts = ends - starts
        crow = np.zeros(len(agents) + 1, dtype=np.int64)
        np.cumsum(counts, out=crow[1:])
        take = np.repeat(starts - crow[:-1], counts) + np.arange(crow[-1])
        order = np.argsort(columns, kind="stable")
        found = np.searchsorted(columns[order], self.indices[take])
        found = np.minimum(found, len(columns) - 1)
        col = order[found]
        assert np.array_equal(columns[col], self.indices[take]), "a neighbour of a row is missing from the columns"
        return crow, col, self.values[take]


def shift_matrix(graph: Graph | nx.Graph, normalisation: str = "row") -> ShiftOperator:
    """The sparse shift operator of ``graph`` (module docstring)."""
    if normalisation not in NORMALISATIONS:
        problem = f"unknown normalisation {normalisation!r}; valid: {', '.join(NORMALISATIONS)}"
        raise InputError([problem], source="shift operator")
    graph = as_graph(graph)
    n = graph.num_agents
    if graph.directed and normalisation not in DIRECTED_NORMALISATIONS:
        problem = (
            f"normalisation {normalisation!r} needs an undirected graph; a directed one takes "
            f"{' or '.join(DIRECTED_NORMALISATIONS)}"
        )
        raise InputError([problem], source="shift operator")
    # rows are receivers: S_ij ≠ 0 when j sends to i (the transpose of the sender-row adjacency)
    adjacency = graph.adjacency().T.tocsr() if graph.directed else graph.adjacency()
    identity = sp.identity(n, format="csr")
    if normalisation == "column":  # S_ij = w_ji / Σ_k w_jk over j's out-edges and itself: columns sum to 1
        with_self = (adjacency + identity).tocsc()
        out_weight = np.asarray(with_self.sum(axis=0)).ravel()
        return ShiftOperator.from_scipy(sp.csr_array(with_self / out_weight[None, :]))
    if normalisation == "metropolis":
        degree = graph.degree.astype(np.float64)
        indptr, indices, _ = graph.csr
        weights = 1.0 / (1.0 + np.maximum(degree[graph.sender], degree[indices]))
        off = sp.csr_array((weights, indices, indptr), shape=(n, n))
        return ShiftOperator.from_scipy(off + sp.diags_array(1.0 - off.sum(axis=1)))
    with_self = adjacency + identity
    if normalisation == "row":
        row = ShiftOperator.from_scipy(with_self)
        row.values[:] /= np.repeat(with_self.sum(axis=1), np.diff(row.indptr))  # w_ij / Σ_j w_ij, as written
        return row
    return ShiftOperator.from_scipy(with_self / _largest_eigenvalue(with_self))


def shift_operator(
    graph: Graph | nx.Graph, normalisation: str = "row", *, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """The dense n × n shift operator (small graphs: tools, tests); equals ``shift_matrix(...).to_dense()``."""
    return shift_matrix(graph, normalisation).to_dense(dtype)


def _largest_eigenvalue(symmetric: sp.sparray) -> float:
    if symmetric.shape[0] <= DENSE_EIGEN_MAX:
        return float(np.linalg.eigvalsh(symmetric.toarray())[-1])
    return float(spla.eigsh(symmetric, k=1, which="LA", return_eigenvectors=False)[0])


def _symmetric_similar(s: sp.csr_array) -> sp.csr_array | None:
    """A symmetric matrix with S's eigenvalues, or None. Symmetric S: itself. Row-normalised S = D^-1 M with
    M symmetric and M_ii = 1 (so D^-1 = diag(S)) is similar to D^-1/2 M D^-1/2, whose entries are
    M_ij sqrt(S_ii S_jj)."""
    if s.nnz == 0 or abs(s - s.T).max() <= 1e-12:
        return s
    diagonal = s.diagonal()
    if np.all(diagonal > 0):
        m = sp.diags_array(1.0 / diagonal) @ s
        if abs(m - m.T).max() <= 1e-10 * max(abs(m).max(), 1.0):
            root = sp.diags_array(np.sqrt(diagonal))
            similar = root @ m @ root
            return (similar + similar.T) / 2
    return None


def _eigenvalue_moduli(shift: Any, count: int | None = None) -> np.ndarray:
    """|eigenvalues| of S in descending order: all of them (dense, up to ``DENSE_EIGEN_MAX`` agents) or the
    ``count`` largest (sparse ARPACK above; ``count`` defaults to 3)."""
    s = shift.scipy() if isinstance(shift, ShiftOperator) else sp.csr_array(shift.detach().cpu().double().numpy())
    similar = _symmetric_similar(s)
    if s.shape[0] <= DENSE_EIGEN_MAX:
        dense = s.toarray() if similar is None else similar.toarray()
        values = np.linalg.eigvals(dense) if similar is None else np.linalg.eigvalsh(dense)
        return np.sort(np.abs(values))[::-1]
    k = min(count or 3, s.shape[0] - 2)
    if similar is None:
        values = spla.eigs(s, k=k, which="LM", return_eigenvectors=False)
    else:
        values = spla.eigsh(similar, k=k, which="LM", return_eigenvectors=False)
    return np.sort(np.abs(values))[::-1]


def spectral_gap(S: Any) -> float:  # noqa: N803 (S is the paper's name)
    """1 - |lambda_2|, where |lambda_2| is the second largest eigenvalue modulus of S (0 for one agent).

    A small gap means slow mixing: the paper's 3-regular row-normalised S has |lambda_2| ~ 0.996.
    """
    moduli = _eigenvalue_moduli(S, count=2)
    return 1.0 - (float(moduli[1]) if len(moduli) > 1 else 0.0)


def star_shift(graph: Graph, uploads_per_round: int, operator: str = "udgd") -> ShiftOperator:
    """Shift operators of the star variant (eq. 13, docs/method.md), server = agent 0, clients 1..n-1, for rounds in
    which only M = ``uploads_per_round`` clients upload (the others are muted, their rows read as 0):

    - ``udgd``:   S = (A + I) / (1 + √M): the masked star's adjacency with self-loops divided by its largest
                  eigenvalue (the server and its M uploaders form a star of M + 1 nodes, eigenvalue 1 + √M;
                  the other clients only receive, which adds no eigenvalue above it);
    - ``mean``:   S_0j = 1/M for every client j (the mean of the uploads), S_i0 = 1 for every client i (the
                  server's model), nothing else: the aggregation and broadcast of FedAvg and every star method,
                  two muted exchanges.
    """
    n = graph.num_agents
    clients = np.arange(1, n, dtype=np.int64)
    if operator == "udgd":
        adjacency = graph.adjacency(weighted=False) + sp.identity(n, format="csr")
        return ShiftOperator.from_scipy(adjacency / (1.0 + np.sqrt(uploads_per_round)))
    rows = np.concatenate([np.zeros(n - 1, dtype=np.int64), clients])
    cols = np.concatenate([clients, np.zeros(n - 1, dtype=np.int64)])
    values = np.concatenate([np.full(n - 1, 1.0 / uploads_per_round), np.ones(n - 1)])
    return ShiftOperator.from_scipy(sp.csr_array((values, (rows, cols)), shape=(n, n)))
