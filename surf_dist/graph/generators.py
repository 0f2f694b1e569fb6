"""Graph generators and ``build_graph``: a spec or a file to a canonical ``Graph`` (``graph.core``).

Generators build edge arrays directly (no n × n draw; networkx only for small-world and random-regular graphs,
both O(n·k)); random graphs are a pure function of ``(spec, seed, index)``.
"""

from __future__ import annotations

import math
from typing import Any

import networkx as nx
import numpy as np

from ..errors import InputError
from .core import Graph
from .files import load_graph_file, validate_graph
from .spec import NUM_RANDOM_DRAWS, _is_count, _is_generator_spec, _parse_spec, _spec_hash

MAX_EDGES = 50_000_000  # a generator refuses to build more (complete:n=10000 already has 5e7)


def _kregular_paper_edges(num_agents: int, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Circulant ring, offsets +-1..+-(degree//2); odd degree adds chords i <-> i + n//2 + 1 for i < n//2 - 1.

    For degree 3, n = 100 this is the paper's ring plus chords i <-> i+51 (i < 49): 98 agents of degree 3
    and 2 of degree 2.
    """
    agents = np.arange(num_agents, dtype=np.int64)
    u = [agents for _ in range(1, degree // 2 + 1)]
    v = [(agents + s) % num_agents for s in range(1, degree // 2 + 1)]
    if degree % 2:
        chords = np.arange(num_agents // 2 - 1, dtype=np.int64)
        u.append(chords)
        v.append(chords + num_agents // 2 + 1)
    return np.concatenate(u), np.concatenate(v)


def _torus_edges(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """2-D periodic grid; agent (r, c) is r*cols + c and joins (r+1 mod rows, c) and (r, c+1 mod cols)."""
    r, c = np.divmod(np.arange(rows * cols, dtype=np.int64), cols)
    here = r * cols + c
    return np.concatenate([here, here]), np.concatenate([((r + 1) % rows) * cols + c, r * cols + (c + 1) % cols])


def _pair_of(index: np.ndarray, num_agents: int) -> tuple[np.ndarray, np.ndarray]:
    """The pair (i, j), i < j, of each position in the row-major list of the n(n-1)/2 pairs."""
    # pairs before row i: i·n − i(i+1)/2; invert with the quadratic formula, then correct float rounding
    n = float(num_agents)
    i = np.floor(((2 * n - 1) - np.sqrt((2 * n - 1) ** 2 - 8.0 * index)) / 2).astype(np.int64)
    before = i * num_agents - i * (i + 1) // 2
    i = np.where(before > index, i - 1, i)
    before = i * num_agents - i * (i + 1) // 2
    i = np.where(index - before >= num_agents - 1 - i, i + 1, i)
    before = i * num_agents - i * (i + 1) // 2
    return i, index - before + i + 1


def _random_draw(num_agents: int, p: float, symmetrise: str, rng: np.random.Generator) -> Graph:
    """upper: each of the n(n-1)/2 pairs is an edge with probability p (Erdos-Renyi G(n, p)).

    or: the paper's code draws A_ij ~ Bernoulli(p) for all i, j and takes 1[A + A^T > 0], so a pair is an edge
    with probability 1 - (1-p)^2 ~ 2p: the same G(n, p') with p' = 1 - (1-p)^2.

    Sparse: the number of edges m ~ Binomial(n(n-1)/2, p'), then m distinct pairs uniformly (NumPy's choice
    without replacement, O(m) for m ≪ n²): O(n + m) time and memory instead of an n × n draw.
    """
    q = 1.0 - (1.0 - p) ** 2 if symmetrise == "or" else p
    num_pairs = num_agents * (num_agents - 1) // 2
    m = int(rng.binomial(num_pairs, q))
    index = np.sort(rng.choice(num_pairs, size=m, replace=False)).astype(np.int64)
    u, v = _pair_of(index, num_agents)
    return Graph.from_edges(num_agents, u, v)


def _generate(
    name: str, params: dict[str, Any], rng: np.random.Generator, *, allow_disconnected: bool, spec: str
) -> Graph:
    """Draw the generator's graph. Random ones return their first connected draw whatever allow_disconnected
    says, so a graph is the same for a describe (which allows disconnection) and a run."""
    n = params.get("n", 0)
    if name == "kregular":
        if params["mode"] == "random":
            return Graph.from_networkx(nx.random_regular_graph(params["degree"], n, seed=int(rng.integers(2**32))))
        u, v = _kregular_paper_edges(n, params["degree"])
        labels = rng.permutation(n) if params["relabel"] else np.arange(n)
        return Graph.from_edges(n, labels[u], labels[v])
    if name == "random":
        draws = []
        for _ in range(NUM_RANDOM_DRAWS):
            draws.append(_random_draw(n, params["p"], params["symmetrise"], rng))
            if draws[-1].is_connected():
                return draws[-1]
        if allow_disconnected:
            return draws[0]
        problem = (
            f"no connected graph in {NUM_RANDOM_DRAWS} draws with p={params['p']}: raise p (connectivity "
            f"needs p above about ln(n)/n = {math.log(n) / n:.3g}, half that with symmetrise=or)"
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
        return Graph.from_networkx(graph)
    if name == "star":
        return Graph.from_edges(n, np.zeros(n - 1, dtype=np.int64), np.arange(1, n))
    if name == "ring":
        return Graph.from_edges(n, np.arange(n), (np.arange(n) + 1) % n)
    if name == "torus":
        return Graph.from_edges(params["rows"] * params["cols"], *_torus_edges(params["rows"], params["cols"]))
    return Graph.from_edges(n, *np.triu_indices(n, k=1))  # complete


def _num_edges(name: str, params: dict[str, Any]) -> float:
    """Edges a generator will build (expected, for random): checked against ``MAX_EDGES`` first."""
    n = params.get("n", 0)
    if name == "complete":
        return n * (n - 1) / 2
    if name == "random":
        return n * (n - 1) / 2 * params["p"] * (2 if params["symmetrise"] == "or" else 1)
    return 0.0


def build_graph(spec: str, *, seed: int, index: int = 0, allow_disconnected: bool = False) -> Graph:
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
        if _num_edges(name, params) > MAX_EDGES:
            problem = f"about {_num_edges(name, params):.3g} edges: more than {MAX_EDGES:.0e}; use a sparser graph"
            raise InputError([problem], source=spec)
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), _spec_hash(name, params)]))
        graph = _generate(name, params, rng, allow_disconnected=allow_disconnected, spec=spec)
    else:
        graph = load_graph_file(spec)
    validate_graph(graph, allow_disconnected=allow_disconnected, source=spec)
    return graph
