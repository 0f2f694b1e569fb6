"""Graph generators and ``build_graph``: a spec or a file to a canonical ``nx.Graph``.

Every graph here is an undirected ``nx.Graph`` whose nodes are the ints 0..n-1 (inserted in order), whose
edges all carry a positive finite ``"weight"`` (1.0 unless a file says otherwise), and which stores **no
self-loops**: the shift operator adds the self-weight its normalisation prescribes. Random graphs are a
pure function of ``(spec, seed, index)``.
"""

from __future__ import annotations

import math
from typing import Any

import networkx as nx
import numpy as np

from ..errors import InputError
from .canonical import canonical_graph as _canonical_graph
from .files import load_graph_file, validate_graph
from .spec import NUM_RANDOM_DRAWS, _is_count, _is_generator_spec, _parse_spec, _spec_hash


def _kregular_paper_edges(num_agents: int, degree: int) -> list[tuple[int, int]]:
    """Circulant ring, offsets +-1..+-(degree//2); odd degree adds chords i <-> i + n//2 + 1 for i < n//2 - 1.

    For degree 3, n = 100 this is the paper's ring plus chords i <-> i+51 (i < 49): 98 agents of degree 3
    and 2 of degree 2.
    """
    edges = [(i, (i + s) % num_agents) for i in range(num_agents) for s in range(1, degree // 2 + 1)]
    if degree % 2:
        edges += [(i, i + num_agents // 2 + 1) for i in range(num_agents // 2 - 1)]
    return edges


def _torus_edges(rows: int, cols: int) -> list[tuple[int, int]]:
    """2-D periodic grid; agent (r, c) is r*cols + c and joins (r+1 mod rows, c) and (r, c+1 mod cols)."""
    return [(r * cols + c, ((r + 1) % rows) * cols + c) for r in range(rows) for c in range(cols)] + [
        (r * cols + c, r * cols + (c + 1) % cols) for r in range(rows) for c in range(cols)
    ]


def _random_draw(num_agents: int, p: float, symmetrise: str, rng: np.random.Generator) -> nx.Graph:
    """upper: A_ij ~ Bernoulli(p) for i < j, mirrored (Erdos-Renyi G(n, p)).

    or: A_ij ~ Bernoulli(p) for all i, j, then A <- 1[A + A^T > 0] as the paper's code, so an edge
    appears with probability 1 - (1-p)^2 ~ 2p.
    """
    draws = rng.random((num_agents, num_agents)) < p
    adjacency = draws | draws.T if symmetrise == "or" else np.triu(draws, k=1)
    u, v = np.nonzero(np.triu(adjacency, k=1))
    return _canonical_graph(num_agents, zip(u.tolist(), v.tolist(), strict=True))


def _generate(
    name: str, params: dict[str, Any], rng: np.random.Generator, *, allow_disconnected: bool, spec: str
) -> nx.Graph:
    """Draw the generator's graph. Random ones return their first connected draw whatever allow_disconnected
    says, so a graph is the same for a describe (which allows disconnection) and a run."""
    n = params.get("n", 0)
    if name == "kregular":
        if params["mode"] == "random":
            graph = nx.random_regular_graph(params["degree"], n, seed=int(rng.integers(2**32)))
            return _canonical_graph(n, graph.edges())
        edges = _kregular_paper_edges(n, params["degree"])
        labels = rng.permutation(n) if params["relabel"] else np.arange(n)
        return _canonical_graph(n, ((labels[u], labels[v]) for u, v in edges))
    if name == "random":
        draws = []
        for _ in range(NUM_RANDOM_DRAWS):
            draws.append(_random_draw(n, params["p"], params["symmetrise"], rng))
            if nx.is_connected(draws[-1]):
                return draws[-1]
        if allow_disconnected:
            return draws[0]
        problem = (
            f"no connected graph in {NUM_RANDOM_DRAWS} draws with p={params['p']}: raise p (connectivity "
            f"needs p above about ln(n)/n = {math.log(n) / n:.3f}, half that with symmetrise=or)"
        )
        raise InputError([problem], source=spec)
    if name == "small_world":
        graph_seed = int(rng.integers(2**32))
        try:
            graph = nx.connected_watts_strogatz_graph(
                n, params["k"], params["p"], tries=NUM_RANDOM_DRAWS, seed=graph_seed
            )
        except nx.NetworkXError as err:
            if not allow_disconnected:
                raise InputError([f"{err}: lower p or raise k"], source=spec) from err
            graph = nx.watts_strogatz_graph(n, params["k"], params["p"], seed=graph_seed)
        return _canonical_graph(n, graph.edges())
    if name == "star":
        return _canonical_graph(n, ((0, i) for i in range(1, n)))
    if name == "ring":
        return _canonical_graph(n, ((i, (i + 1) % n) for i in range(n)))
    if name == "torus":
        return _canonical_graph(params["rows"] * params["cols"], _torus_edges(params["rows"], params["cols"]))
    return _canonical_graph(n, ((i, j) for i in range(n) for j in range(i + 1, n)))  # complete


def build_graph(spec: str, *, seed: int, index: int = 0, allow_disconnected: bool = False) -> nx.Graph:
    """The graph of a generator spec ``"NAME:key=value,..."`` or of a graph file (any other spec).

    Random choices come from ``default_rng(SeedSequence([seed, index, sha256(canonical spec)]))``, so the
    graph is a pure function of (spec, seed, index); ``index`` is e.g. the task number. Raises InputError
    (every problem at once) for a bad spec or file, or a disconnected graph unless ``allow_disconnected``.
    """
    problems = [
        f"{name} must be a non-negative int (got {value!r})"
        for name, value in (("seed", seed), ("index", index))
        if not _is_count(value)
    ]
    if problems:
        raise InputError(problems, source=spec)
    if _is_generator_spec(spec):
        name, params = _parse_spec(spec)
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), _spec_hash(name, params)]))
        graph = _generate(name, params, rng, allow_disconnected=allow_disconnected, spec=spec)
    else:
        graph = load_graph_file(spec)
    validate_graph(graph, allow_disconnected=allow_disconnected, source=spec)
    return graph
