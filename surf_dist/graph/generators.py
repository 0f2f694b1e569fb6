"""Graph generators (registered in ``TOPOLOGIES``, as a plugin's are) and ``build_graph``: a spec or a file to a
canonical ``Graph`` (``graph.core``).

Generators build edge arrays directly (no n × n draw; networkx only for small-world and random-regular graphs,
both O(n·k)); random graphs are a pure function of ``(spec, seed, index)``.
"""

from __future__ import annotations

import inspect
import math
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np

from ..errors import InputError
from ..plugins import TOPOLOGIES, register_topology
from .core import Graph, is_networkx
from .files import load_graph_file, validate_graph
from .spec import NUM_RANDOM_DRAWS, Key, _is_count, _is_generator_spec, _parse_spec, _spec_hash

if TYPE_CHECKING:  # pragma: no cover - networkx is imported where a graph is converted (the CLI validates faster)
    pass

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


# -- the built-in generators (registered as a plugin's are) -------------------------------------------------------
N = Annotated[int, Key("number of agents", low=2)]
P = Annotated[float, Key("edge probability", low=0.0, high=1.0)]


def _kregular_check(n: int, degree: int, mode: str, relabel: bool) -> list[str]:
    problems = []
    if mode == "random" and (degree >= n or (n * degree) % 2):
        problems.append(f"mode=random needs degree < n and n*degree even (got n={n}, degree={degree})")
    elif (n * degree) % 2:  # no graph on n agents has every degree odd when n is odd (handshake lemma)
        problems.append(
            f"no graph on n={n} agents has degree {degree} everywhere: n*degree must be even "
            f"(fix: n={n + 1} or degree={degree + 1})"
        )
    # paper mode: circulant offsets 1..degree//2 and (odd degree) the chord offset n//2+1 must differ
    min_n = degree + 2 if degree % 2 else degree + 1
    if mode == "paper" and n < min_n:
        problems.append(f"mode=paper with degree={degree} needs n >= {min_n} (got n={n})")
    return problems


@register_topology("kregular")
def kregular(
    *,
    rng: np.random.Generator,
    n: N,
    degree: Annotated[int, Key("edges per agent", low=1)] = 3,
    mode: Annotated[str, Key("paper: ring + chords as the paper's code", choices=("paper", "random"))] = "paper",
    relabel: Annotated[bool, Key("random node relabelling per index (paper mode)")] = True,
) -> Graph:
    """Every agent of degree ``degree``: the paper's ring plus chords (98 agents of degree 3 and 2 of degree 2 at
    n = 100), relabelled per task, or a uniformly random regular graph (``mode=random``)."""
    if mode == "random":
        import networkx as nx

        return Graph.from_networkx(nx.random_regular_graph(degree, n, seed=int(rng.integers(2**32))))
    u, v = _kregular_paper_edges(n, degree)
    labels = rng.permutation(n) if relabel else np.arange(n)
    return Graph.from_edges(n, labels[u], labels[v])


kregular.check = _kregular_check  # type: ignore[attr-defined]
kregular.expected_edges = lambda n, degree, mode, relabel: n * degree / 2  # type: ignore[attr-defined]


@register_topology("random")
def random(
    *,
    rng: np.random.Generator,
    allow_disconnected: bool,
    n: N,
    p: P,
    symmetrise: Annotated[str, Key("or: 1[A + A^T > 0] as the paper's code", choices=("upper", "or"))] = "upper",
) -> Graph:
    """Erdős–Rényi G(n, p), sparse; the first connected of ``NUM_RANDOM_DRAWS`` draws (whatever
    ``allow_disconnected`` says, so a graph is the same for a describe and a run)."""
    draws = []
    for _ in range(NUM_RANDOM_DRAWS):
        draws.append(_random_draw(n, p, symmetrise, rng))
        if draws[-1].is_connected():
            return draws[-1]
    if allow_disconnected:
        return draws[0]
    raise InputError(
        [
            f"no connected graph in {NUM_RANDOM_DRAWS} draws with p={p}: raise p (connectivity needs p above about "
            f"ln(n)/n = {math.log(n) / n:.3g}, half that with symmetrise=or), or set topology.allow_disconnected=true "
            "to run on a disconnected graph (DGD cannot reach consensus on it)"
        ]
    )


def _random_edges(n: int, p: float, symmetrise: str) -> float:
    return n * (n - 1) / 2 * p * (2 if symmetrise == "or" else 1)


random.expected_edges = _random_edges  # type: ignore[attr-defined]


@register_topology("small_world")
def small_world(
    *,
    rng: np.random.Generator,
    allow_disconnected: bool,
    n: Annotated[int, Key("number of agents", low=3)],
    k: Annotated[int, Key("ring neighbours before rewiring (even)", low=2)],
    p: Annotated[float, Key("rewiring probability", low=0.0, high=1.0)],
) -> Graph:
    """Watts–Strogatz: a ring of k neighbours, each edge rewired with probability p (connected draws)."""
    import networkx as nx

    graph_seed = int(rng.integers(2**32))
    try:
        graph = nx.connected_watts_strogatz_graph(n, k, p, tries=NUM_RANDOM_DRAWS, seed=graph_seed)
    except nx.NetworkXError as err:
        if not allow_disconnected:
            raise InputError([f"{err}: lower p or raise k"]) from err
        graph = nx.watts_strogatz_graph(n, k, p, seed=graph_seed)
    return Graph.from_networkx(graph)


def _small_world_check(n: int, k: int, p: float) -> list[str]:
    if k % 2 or k >= n:
        return [f"k={k} must be even and < n={n} (each agent joins k/2 ring neighbours on each side)"]
    return []


small_world.check = _small_world_check  # type: ignore[attr-defined]
small_world.expected_edges = lambda n, k, p: n * k / 2  # type: ignore[attr-defined]


@register_topology("star")
def star(*, rng: np.random.Generator, n: N) -> Graph:
    """Agent 0 (the server) joined to every other agent."""
    return Graph.from_edges(n, np.zeros(n - 1, dtype=np.int64), np.arange(1, n))


star.expected_edges = lambda n: n - 1  # type: ignore[attr-defined]


@register_topology("ring")
def ring(*, rng: np.random.Generator, n: Annotated[int, Key("number of agents", low=3)]) -> Graph:
    """A cycle 0 − 1 − … − (n−1) − 0."""
    return Graph.from_edges(n, np.arange(n), (np.arange(n) + 1) % n)


ring.expected_edges = lambda n: n  # type: ignore[attr-defined]


@register_topology("torus")
def torus(
    *,
    rng: np.random.Generator,
    rows: Annotated[int, Key("grid rows", low=1)],
    cols: Annotated[int, Key("grid columns", low=1)],
) -> Graph:
    """A 2-D periodic grid of rows × cols agents."""
    return Graph.from_edges(rows * cols, *_torus_edges(rows, cols))


def _torus_check(rows: int, cols: int) -> list[str]:
    return ["torus needs rows*cols >= 2 agents"] if rows * cols < 2 else []


torus.check = _torus_check  # type: ignore[attr-defined]
torus.expected_edges = lambda rows, cols: 2 * rows * cols  # type: ignore[attr-defined]


@register_topology("complete")
def complete(*, rng: np.random.Generator, n: N) -> Graph:
    """Every pair of agents joined."""
    return Graph.from_edges(n, *np.triu_indices(n, k=1))


def _complete_edges(n: int) -> float:
    return n * (n - 1) / 2


complete.expected_edges = _complete_edges  # type: ignore[attr-defined]


@register_topology("directed_ring")
def directed_ring(*, rng: np.random.Generator, n: N) -> Graph:
    """A directed cycle: agent i sends to i + 1 (mod n) only."""
    return Graph.from_edges(n, np.arange(n), (np.arange(n) + 1) % n, directed=True)


directed_ring.expected_edges = lambda n: n  # type: ignore[attr-defined]


def exponential_peers(n: int) -> np.ndarray:
    """The offsets 2^0, 2^1, ..., 2^(τ−1), τ = ⌈log₂ n⌉, of the exponential graph (those below n)."""
    return np.array([2**k for k in range(max(1, int(np.ceil(np.log2(n)))))], dtype=np.int64)


@register_topology("exponential")
def exponential(*, rng: np.random.Generator, n: N) -> Graph:
    """The static exponential graph (directed): agent i sends to i + 2^k (mod n) for k = 0..⌈log₂ n⌉ − 1."""
    offsets = exponential_peers(n)
    senders = np.repeat(np.arange(n), len(offsets))
    return Graph.from_edges(n, senders, (senders + np.tile(offsets, n)) % n, directed=True)


exponential.expected_edges = lambda n: n * max(1, math.ceil(math.log2(n)))  # type: ignore[attr-defined]


def _as_graph(made: Any, name: str) -> Graph:
    """A generator's result (Graph, networkx graph, or (n, u, v) edge arrays) as a ``Graph``."""
    if isinstance(made, Graph):
        return made
    if is_networkx(made):
        return Graph.from_networkx(made)
    if isinstance(made, tuple) and len(made) == 3:
        n, u, v = made
        return Graph.from_edges(int(n), np.asarray(u, dtype=np.int64), np.asarray(v, dtype=np.int64))
    raise InputError(
        [f"generator {name!r} returned {type(made).__name__}; return a Graph, a networkx graph or (n, u, v)"]
    )


def _generate(name: str, params: dict[str, Any], rng: np.random.Generator, *, allow_disconnected: bool) -> Graph:
    """Call the registered generator (with ``allow_disconnected`` when it takes it)."""
    fn = TOPOLOGIES.get(name)
    wants = "allow_disconnected" in inspect.signature(fn).parameters
    return _as_graph(fn(rng=rng, **({"allow_disconnected": allow_disconnected} if wants else {}), **params), name)


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
        expected = getattr(TOPOLOGIES.get(name), "expected_edges", None)
        if expected is not None and expected(**params) > MAX_EDGES:
            problem = (
                f"about {expected(**params):.3g} edges: more than {MAX_EDGES:.0e}; fix: use a smaller or sparser "
                "graph (fewer agents, a lower degree or p)"
            )
            raise InputError([problem], source=spec)
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), _spec_hash(name, params)]))
        try:
            graph = _generate(name, params, rng, allow_disconnected=allow_disconnected)
        except InputError as exc:
            raise InputError(exc.problems, source=spec) from None
    else:
        graph = load_graph_file(spec)
    validate_graph(graph, allow_disconnected=allow_disconnected, source=spec)
    return graph
