"""The graph shift operator S and its spectrum."""

from __future__ import annotations

import networkx as nx
import numpy as np
import torch

from ..errors import InputError
from .spec import NORMALISATIONS


def shift_operator(graph: nx.Graph, normalisation: str = "row", *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Dense graph shift operator S (n x n) from the weighted adjacency A (self-loops in A ignored).

    - ``row``:        S = D^-1 (A + I), D = diag((A + I) 1); row-stochastic (PAPER §5, k-regular).
    - ``spectral``:   S = (A + I) / lambda_max(A + I); spectral radius 1, not stochastic (PAPER §5, random).
    - ``metropolis``: S_ij = 1 / (1 + max(d_i, d_j)) on edges (unweighted degrees d), S_ii = 1 - sum_j S_ij;
                      symmetric and doubly stochastic.
    """
    if normalisation not in NORMALISATIONS:
        problem = f"unknown normalisation {normalisation!r}; valid: {', '.join(NORMALISATIONS)}"
        raise InputError([problem], source="shift operator")
    n = graph.number_of_nodes()
    adjacency = nx.to_numpy_array(graph, nodelist=range(n), weight="weight", dtype=np.float64)
    np.fill_diagonal(adjacency, 0.0)
    if normalisation == "metropolis":
        linked = adjacency != 0
        degree = linked.sum(axis=1)
        shift = np.where(linked, 1.0 / (1.0 + np.maximum.outer(degree, degree)), 0.0)
        np.fill_diagonal(shift, 1.0 - shift.sum(axis=1))
    else:
        with_self = adjacency + np.eye(n)
        if normalisation == "row":
            shift = with_self / with_self.sum(axis=1, keepdims=True)
        else:
            shift = with_self / np.linalg.eigvalsh(with_self)[-1]
    return torch.tensor(shift, dtype=dtype)


def _eigenvalue_moduli(shift: torch.Tensor) -> np.ndarray:
    """|eigenvalues| of S in descending order.

    Symmetric S: eigvalsh. Row-normalised S = D^-1 M with M symmetric and M_ii = 1 (so D^-1 = diag(S)) is
    similar to the symmetric D^-1/2 M D^-1/2, whose entries are M_ij sqrt(S_ii S_jj): eigvalsh again, which
    is faster and more accurate than the general eigvals used for anything else.
    """
    s = shift.detach().to(device="cpu", dtype=torch.float64)
    diagonal = torch.diagonal(s)
    if torch.allclose(s, s.T, rtol=1e-12, atol=1e-15):
        values = torch.linalg.eigvalsh((s + s.T) / 2)
    elif bool(torch.all(diagonal > 0)) and torch.allclose(m := s / diagonal[:, None], m.T, rtol=1e-10):
        similar = m * torch.outer(diagonal.sqrt(), diagonal.sqrt())
        values = torch.linalg.eigvalsh((similar + similar.T) / 2)
    else:
        values = torch.linalg.eigvals(s)
    return np.sort(values.abs().numpy())[::-1]


def spectral_gap(S: torch.Tensor) -> float:  # noqa: N803 (S is the paper's name)
    """1 - |lambda_2|, where |lambda_2| is the second largest eigenvalue modulus of S (0 for one agent).

    A small gap means slow mixing: the paper's 3-regular row-normalised S has |lambda_2| ~ 0.996.
    """
    moduli = _eigenvalue_moduli(S)
    return 1.0 - (float(moduli[1]) if len(moduli) > 1 else 0.0)
