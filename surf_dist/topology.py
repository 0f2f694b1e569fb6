"""Communication graphs, the graph shift operator S, and the placement of agents on workers.

Words: an *agent* is a node of the graph; a *worker* is a process hosting a block of agents; a
*round* is one neighbour exchange, in which every agent sends its row of the iterate to its
neighbours.

Pipeline::

    build_graph(spec)  ->  shift_operator(graph)       S, dense n x n
                       ->  place(graph, num_workers)   agents per worker
                       ->  halo_plan(graph, placement) rows each worker sends each other worker per round
                       ->  traffic_per_round(...)      logical messages vs physical rows

Every graph here is an undirected ``nx.Graph`` whose nodes are the ints 0..n-1 (inserted in
order), whose edges all carry a positive finite ``"weight"`` (1.0 unless a file says otherwise),
and which stores **no self-loops**: the shift operator adds the self-weight its normalisation
prescribes. Random graphs are a pure function of ``(spec, seed, index)``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import torch
from networkx.algorithms.community import kernighan_lin_bisection

from surf_dist.errors import InputError

GENERATORS: tuple[str, ...] = ("kregular", "random", "star", "ring", "torus", "small_world", "complete")
NORMALISATIONS: tuple[str, ...] = ("row", "spectral", "metropolis")
PLACEMENTS: tuple[str, ...] = ("contiguous", "mincut")
EDGE_LIST_SUFFIXES: tuple[str, ...] = (".txt", ".edges", ".edgelist")
GRAPH_FILE_SUFFIXES: tuple[str, ...] = (*EDGE_LIST_SUFFIXES, ".adjlist", ".graphml", ".json")
NUM_RANDOM_DRAWS = 20  # draws of a random generator before giving up on a connected graph


# ----------------------------------------------------------------------------------------------
# Generator specs: "NAME:key=value,..."
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Key:
    """One key of a generator spec: its type, meaning, default (None: required) and bounds."""

    kind: type
    help: str
    default: int | float | bool | str | None = None
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    def describe(self, name: str) -> str:
        kind = "|".join(self.choices) or self.kind.__name__
        if self.low is not None and self.high is not None:
            kind += f" in [{self.low:g}, {self.high:g}]"
        elif self.low is not None:
            kind += f" >= {self.low:g}"
        default = "required" if self.default is None else f"default {_format_value(self.default)}"
        return f"{name} ({kind}, {default}: {self.help})"


def _generator_keys(name: str) -> dict[str, _Key]:
    """The keys each generator accepts."""
    n = _Key(int, "number of agents", low=2)
    p = _Key(float, "edge probability", low=0.0, high=1.0)
    return {
        "kregular": {
            "n": n,
            "degree": _Key(int, "edges per agent", 3, low=1),
            "mode": _Key(str, "paper: ring + chords as the paper's code", "paper", choices=("paper", "random")),
            "relabel": _Key(bool, "random node relabelling per index (paper mode)", True),
        },
        "random": {
            "n": n,
            "p": p,
            "symmetrise": _Key(str, "or: 1[A + A^T > 0] as the paper's code", "upper", choices=("upper", "or")),
        },
        "star": {"n": n},
        "ring": {"n": _Key(int, "number of agents", low=3)},
        "torus": {"rows": _Key(int, "grid rows", low=1), "cols": _Key(int, "grid columns", low=1)},
        "small_world": {
            "n": _Key(int, "number of agents", low=3),
            "k": _Key(int, "ring neighbours before rewiring (even)", low=2),
            "p": _Key(float, "rewiring probability", low=0.0, high=1.0),
        },
        "complete": {"n": n},
    }[name]


def _is_count(value: object) -> bool:
    """A non-negative int (numpy ints too, bools not)."""
    return bool(isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 0)


def _format_value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _parse_value(name: str, key: _Key, text: str) -> tuple[Any, str | None]:
    """Parse one value; return (value, None) or (None, problem)."""
    value: Any
    try:
        if key.kind is bool:
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            value = text.lower() in ("true", "1", "yes")
        else:
            value = key.kind(text)
    except ValueError:
        return None, f"{name}={text!r} is not of the right type; expected {key.describe(name)}"
    if key.kind is float and not math.isfinite(value):
        return None, f"{name}={text!r} must be finite"
    if key.choices and value not in key.choices:
        return None, f"{name}={text!r} is not one of {', '.join(key.choices)}"
    if (key.low is not None and value < key.low) or (key.high is not None and value > key.high):
        return None, f"{name}={text!r} is out of range; expected {key.describe(name)}"
    return value, None


def _cross_key_problems(name: str, params: dict[str, Any]) -> list[str]:
    """Problems that involve several keys (each checked only when its keys parsed)."""
    n, degree, k = params.get("n"), params.get("degree"), params.get("k")
    problems = []
    if name == "kregular" and n is not None and degree is not None:
        if params.get("mode") == "random" and (degree >= n or (n * degree) % 2):
            problems.append(f"mode=random needs degree < n and n*degree even (got n={n}, degree={degree})")
        # paper mode: circulant offsets 1..degree//2 and (odd degree) the chord offset n//2+1 must differ
        min_n = degree + 2 if degree % 2 else degree + 1
        if params.get("mode") == "paper" and n < min_n:
            problems.append(f"mode=paper with degree={degree} needs n >= {min_n} (got n={n})")
    if name == "small_world" and n is not None and k is not None and (k % 2 or k >= n):
        problems.append(f"k={k} must be even and < n={n} (each agent joins k/2 ring neighbours on each side)")
    if name == "torus" and params.get("rows", 2) * params.get("cols", 2) < 2:
        problems.append("torus needs rows*cols >= 2 agents")
    return problems


def _parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``"NAME:key=value,..."`` into the generator name and typed parameters (defaults filled)."""
    name, _, body = spec.partition(":")
    name = name.strip()
    if name not in GENERATORS:
        files = ", ".join(GRAPH_FILE_SUFFIXES)
        problem = f"unknown generator {name!r}; valid: {', '.join(GENERATORS)}; or give a graph file ({files})"
        raise InputError([problem], source=spec)
    keys = _generator_keys(name)
    problems: list[str] = []
    raw: dict[str, str] = {}
    for item in (part.strip() for part in body.split(",")):
        key, eq, text = (s.strip() for s in item.partition("="))
        if not item:
            continue
        if not eq or not key or not text:
            problems.append(f"{item!r} is not key=value")
        elif key in raw:
            problems.append(f"key {key!r} is given twice")
        elif key not in keys:
            problems.append(f"unknown key {key!r} for {name}")
        else:
            raw[key] = text
    params: dict[str, Any] = {}
    for key_name, spec_key in keys.items():
        if key_name in raw:
            value, value_problem = _parse_value(key_name, spec_key, raw[key_name])
            if value_problem:
                problems.append(value_problem)
            else:
                params[key_name] = value
        elif spec_key.default is None:
            problems.append(f"missing key {key_name!r} ({spec_key.help})")
        else:
            params[key_name] = spec_key.default
    problems += _cross_key_problems(name, params)
    if problems:
        problems.append(f"valid keys for {name}: " + "; ".join(k.describe(n) for n, k in keys.items()))
        raise InputError(problems, source=spec)
    return name, params


def _spec_hash(name: str, params: dict[str, Any]) -> int:
    """A stable 64-bit hash of the canonical spec (sorted keys, defaults filled): never Python's hash()."""
    canonical = name + ":" + ",".join(f"{k}={_format_value(v)}" for k, v in sorted(params.items()))
    return int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:8], "little")


def _is_generator_spec(spec: str) -> bool:
    """A spec names a generator unless it is an existing path or looks like a graph file name."""
    if Path(spec).exists():
        return False
    name = spec.partition(":")[0].strip()
    if name in GENERATORS:
        return True
    return (
        ":" in spec
        and re.fullmatch(r"[A-Za-z_]\w*", name) is not None
        and Path(spec).suffix.lower() not in GRAPH_FILE_SUFFIXES
    )


# ----------------------------------------------------------------------------------------------
# Generators
# ----------------------------------------------------------------------------------------------
def _canonical_graph(
    num_agents: int, edges: Iterable[tuple[int, int]], weights: Iterable[float] | None = None
) -> nx.Graph:
    """nx.Graph with nodes 0..n-1 in order, sorted edges (u < v), every edge weighted, no self-loops."""
    pairs = [(min(int(u), int(v)), max(int(u), int(v))) for u, v in edges]
    by_pair = dict(zip(pairs, [1.0] * len(pairs) if weights is None else weights, strict=True))
    graph = nx.Graph()
    graph.add_nodes_from(range(num_agents))
    graph.add_edges_from((u, v, {"weight": float(w)}) for (u, v), w in sorted(by_pair.items()) if u != v)
    return graph


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


# ----------------------------------------------------------------------------------------------
# Graph files
# ----------------------------------------------------------------------------------------------
@dataclass
class _Records:
    """What a file lists, before validation: nodes and edges, each with where it was found."""

    nodes: list[tuple[Any, str]]  # (id, where)
    edges: list[tuple[Any, Any, Any, str]]  # (u, v, weight, where)
    closed: bool = False  # edges may name only listed nodes (GraphML, JSON)
    directed: bool = False
    mirrors_ok: bool = False  # u->v and v->u may both be listed (adjacency lists, directed files)
    problems: list[str] = field(default_factory=list)


def _tokens(line: str) -> list[str]:
    return [t for t in re.split(r"[,\s]+", line.split("#", 1)[0].strip()) if t]


def _read_edge_list(text: str) -> _Records:
    """Lines ``u v`` or ``u v weight``; ``#`` starts a comment."""
    records = _Records([], [])
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = _tokens(line)
        if len(tokens) in (2, 3):
            records.edges.append((tokens[0], tokens[1], tokens[2] if len(tokens) == 3 else 1.0, f"line {number}"))
        elif tokens:
            records.problems.append(f"line {number}: expected 'u v' or 'u v weight', got {line.strip()!r}")
    return records


def _read_adjlist(text: str) -> _Records:
    """Lines ``u v1 v2 ...`` (networkx adjacency list); an edge may appear on one or both endpoints' lines."""
    records = _Records([], [], mirrors_ok=True)
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = _tokens(line)
        if tokens:
            records.nodes.append((tokens[0], f"line {number}"))
            records.edges += [(tokens[0], v, 1.0, f"line {number}") for v in tokens[1:]]
    return records


def _read_graphml(path: Path) -> _Records:
    graph = nx.read_graphml(path, node_type=str)
    edges = graph.edges(keys=True, data=True) if graph.is_multigraph() else graph.edges(data=True)
    return _Records(
        [(node, "node list") for node in graph.nodes],
        [(e[0], e[1], e[-1].get("weight", 1.0), f"edge {e[0]}-{e[1]}") for e in edges],
        closed=True,
        directed=graph.is_directed(),
        mirrors_ok=graph.is_directed(),
    )


def _read_node_link(text: str) -> _Records:
    """JSON node-link: {"directed": false, "nodes": [{"id": 0}, ...],
    "edges" (or "links"): [{"source": 0, "target": 1, "weight": 1.0 (optional)}, ...]}."""
    data = json.loads(text)
    links = data.get("edges", data.get("links")) if isinstance(data, dict) else None
    if not isinstance(links, list) or not isinstance(data.get("nodes"), list):
        return _Records([], [], problems=["JSON node-link needs lists 'nodes' and 'edges' (or 'links')"])
    directed = bool(data.get("directed", False))
    records = _Records([], [], closed=True, directed=directed, mirrors_ok=directed)
    for i, node in enumerate(data["nodes"]):
        if isinstance(node, dict) and "id" in node:
            records.nodes.append((node["id"], f"nodes[{i}]"))
        else:
            records.problems.append(f"nodes[{i}] has no 'id'")
    for i, link in enumerate(links):
        if isinstance(link, dict) and "source" in link and "target" in link:
            records.edges.append((link["source"], link["target"], link.get("weight", 1.0), f"edges[{i}]"))
        else:
            records.problems.append(f"edges[{i}] needs 'source' and 'target'")
    return records


def _agent_id(token: Any) -> int | None:
    """A non-negative integer id (int, or a string of digits), else None."""
    if isinstance(token, int | np.integer) and not isinstance(token, bool) and token >= 0:
        return int(token)
    if isinstance(token, str) and re.fullmatch(r"\s*\d+\s*", token):
        return int(token)
    return None


def _weight(token: Any) -> float | None:
    """A positive finite weight, else None."""
    if isinstance(token, bool):
        return None
    try:
        weight = float(token)
    except (TypeError, ValueError):
        return None
    return weight if math.isfinite(weight) and weight > 0 else None


def _graph_from_records(records: _Records, *, directed_ok: bool) -> tuple[nx.Graph | None, list[str]]:
    """Validate what a file lists and build the canonical graph; every problem is collected."""
    problems = list(records.problems)
    if records.directed and not directed_ok:
        problems.append(
            "the graph is declared directed; surf-dist needs an undirected graph (declare it "
            "undirected, or load with directed_ok=True to merge u->v and v->u)"
        )
    mirrors_ok = records.mirrors_ok or directed_ok
    bad_id = "node id {!r} ({}) is not a non-negative integer: agents are numbered 0..n-1"
    declared: set[int] = set()
    for token, where in records.nodes:
        node = _agent_id(token)
        if node is None:
            problems.append(bad_id.format(token, where))
        elif node in declared:
            problems.append(f"node {node} is listed twice ({where})")
        else:
            declared.add(node)
    seen: dict[tuple[int, int], tuple[float | None, str]] = {}  # ordered arc -> (weight, where)
    edges: dict[tuple[int, int], float] = {}
    node_ids = set(declared)
    for u_token, v_token, w_token, where in records.edges:
        u, v, weight = _agent_id(u_token), _agent_id(v_token), _weight(w_token)
        problems += [bad_id.format(t, where) for t, node in ((u_token, u), (v_token, v)) if node is None]
        if weight is None:
            problems.append(
                f"edge {u_token}-{v_token} ({where}): weight {w_token!r} must be a positive finite "
                "number (drop the edge rather than give it weight 0)"
            )
        if u is None or v is None:
            continue
        node_ids |= {u, v}
        if records.closed:
            problems += [
                f"edge {u}-{v} ({where}) names node {x}, which is not in the node list"
                for x in sorted({u, v} - declared)
            ]
        if u == v:
            problems.append(
                f"self-loop {u}-{u} ({where}): remove it; the shift operator adds each agent's "
                "self-weight as its normalisation says"
            )
            continue
        repeat = (u, v) if (u, v) in seen else (v, u) if (v, u) in seen else None
        if repeat is not None:
            other_weight, other_where = seen[repeat]
            conflict = weight is not None and other_weight is not None and other_weight != weight
            if conflict:
                problems.append(
                    f"asymmetric edge {u}-{v}: weight {other_weight:g} ({other_where}) but {weight:g} "
                    f"({where}); an undirected graph has one weight per edge"
                )
            elif repeat == (u, v) or not mirrors_ok:
                problems.append(f"duplicate edge {u}-{v} ({other_where} and {where}): list each edge once")
            continue
        seen[(u, v)] = (weight, where)
        edges[(min(u, v), max(u, v))] = weight if weight is not None else 1.0
    if not node_ids:
        problems.append("the graph is empty: it has no agents")
    else:
        missing = sorted(set(range(max(node_ids) + 1)) - node_ids)
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
            problems.append(
                f"node ids must be exactly 0..n-1 (n = {max(node_ids) + 1} from the largest id); "
                f"missing {len(missing)}: {shown}"
            )
    if problems:
        return None, problems
    return _canonical_graph(len(node_ids), edges.keys(), edges.values()), []


def load_graph_file(path: str | Path, *, directed_ok: bool = False) -> nx.Graph:
    """Read a graph file: edge list (.txt/.edges/.edgelist, optional weight column), adjacency list
    (.adjlist), GraphML (.graphml) or JSON node-link (.json).

    Raises ONE InputError naming the file and listing every problem: unreadable or unparsable file,
    ids that are not exactly 0..n-1, duplicate or asymmetric edges, bad weights, self-loops, empty graph.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in GRAPH_FILE_SUFFIXES:
        files, generators = ", ".join(GRAPH_FILE_SUFFIXES), ", ".join(GENERATORS)
        problem = f"unknown graph file type {suffix or '(none)'!r}: use {files}, or NAME:key=value ({generators})"
        raise InputError([problem], source=str(path))
    if not path.is_file():
        problem = "file not found (a generator spec looks like NAME:key=value, e.g. ring:n=16)"
        raise InputError([problem], source=str(path))
    try:
        if suffix == ".graphml":
            records = _read_graphml(path)
        else:
            reader = {".adjlist": _read_adjlist, ".json": _read_node_link}.get(suffix, _read_edge_list)
            records = reader(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, ET.ParseError, nx.NetworkXError, KeyError, TypeError) as err:
        raise InputError([f"cannot parse as {suffix[1:]}: {err}"], source=str(path)) from err
    graph, problems = _graph_from_records(records, directed_ok=directed_ok)
    if graph is None:
        raise InputError(problems, source=str(path))
    return graph


def validate_graph(
    graph: nx.Graph, *, num_workers: int = 1, allow_disconnected: bool = False, source: str = "graph"
) -> None:
    """Check a graph for a run: undirected, nodes 0..n-1, no self-loops, positive finite weights,
    connected (unless allowed), and at least one agent per worker. Raises InputError with every problem."""
    n = graph.number_of_nodes()
    problems = []
    if graph.is_directed() or graph.is_multigraph():
        problems.append("the graph must be a simple undirected nx.Graph")
    if n == 0:
        problems.append("the graph is empty: it has no agents")
    elif set(graph.nodes) != set(range(n)):
        problems.append("node ids must be exactly 0..n-1")
    loops = list(nx.selfloop_edges(graph))
    if loops:
        problems.append(f"{len(loops)} self-loops (e.g. {loops[0][0]}): the shift operator adds them")
    if any(_weight(w) is None for _, _, w in graph.edges(data="weight", default=1.0)):
        problems.append("edge weights must be positive finite numbers")
    if num_workers < 1:
        problems.append(f"num_workers={num_workers}: need at least one worker")
    elif n and n < num_workers:
        problems.append(
            f"{n} agents cannot fill {num_workers} workers (each worker hosts at least one "
            f"agent): use {n} workers or fewer"
        )
    if n and not allow_disconnected and not graph.is_directed() and not nx.is_connected(graph):
        sizes = sorted((len(c) for c in nx.connected_components(graph)), reverse=True)
        problems.append(
            f"the graph is disconnected ({len(sizes)} components of sizes "
            f"{sizes[:8]}{' ...' if len(sizes) > 8 else ''}): information cannot reach every "
            "agent; connect the components or allow disconnected graphs"
        )
    if problems:
        raise InputError(problems, source=source)


# ----------------------------------------------------------------------------------------------
# Shift operator
# ----------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------
# Placement of agents on workers
# ----------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------
# Halo plans and traffic
# ----------------------------------------------------------------------------------------------
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
    cut_edges: int  # undirected edges whose ends lie on different workers

    @property
    def num_workers(self) -> int:
        return len(self.placement)

    def neighbours_of(self, worker: int) -> list[int]:
        """Sorted workers that exchange rows with ``worker`` (send is symmetric in its pairs)."""
        return sorted(dst for src, dst in self.send if src == worker)

    def halo_of(self, worker: int) -> np.ndarray:
        """Sorted ids of agents hosted elsewhere whose rows ``worker`` receives every round."""
        rows = [self.send[(src, worker)] for src in self.neighbours_of(worker)]
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


def halo_plan(graph: nx.Graph, placement: list[np.ndarray]) -> HaloPlan:
    """Build the halo plan: for each cross-worker edge (u on w1, v on w2), u is in send[(w1, w2)] and v in
    send[(w2, w1)]."""
    owner = _owner(placement, graph.number_of_nodes())
    rows: dict[tuple[int, int], set[int]] = {}
    num_cut = 0
    for u, v in graph.edges():
        w_u, w_v = int(owner[u]), int(owner[v])
        if w_u != w_v:
            num_cut += 1
            rows.setdefault((w_u, w_v), set()).add(int(u))
            rows.setdefault((w_v, w_u), set()).add(int(v))
    send = {pair: np.array(sorted(agents), dtype=np.int64) for pair, agents in sorted(rows.items())}
    owner.setflags(write=False)
    return HaloPlan([np.sort(np.asarray(p, dtype=np.int64)) for p in placement], owner, send, num_cut)


def traffic_per_round(graph: nx.Graph, plan: HaloPlan, dim: int, bytes_per_float: int = 4) -> dict[str, Any]:
    """Traffic of one round for rows of ``dim`` floats.

    logical:  messages = sum_i out-degree(i) = 2 |E| (no self-loops); bytes = messages * dim * bytes_per_float
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
    num_messages = 2 * (graph.number_of_edges() - nx.number_of_selfloops(graph))
    num_rows = sum(len(agents) for agents in plan.send.values())
    bytes_per_row = dim * bytes_per_float
    return {
        "dim": dim,
        "bytes_per_float": bytes_per_float,
        "logical": {"messages": num_messages, "bytes": num_messages * bytes_per_row},
        "physical": {"rows": num_rows, "bytes": num_rows * bytes_per_row, "worker_pairs": len(plan.send)},
    }


# ----------------------------------------------------------------------------------------------
# Description for the CLI
# ----------------------------------------------------------------------------------------------
def _ranges(agents: np.ndarray) -> str:
    """Sorted ids as runs: [0, 1, 2, 5, 7, 8] -> '0-2,5,7-8'."""
    if agents.size == 0:
        return ""
    breaks = np.flatnonzero(np.diff(agents) != 1) + 1
    runs = np.split(agents, breaks)
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else f"{r[0]}" for r in runs)


def describe(
    spec_or_path: str,
    *,
    num_workers: int = 1,
    placement: str = "contiguous",
    normalisation: str = "row",
    dim: int = 650,
    seed: int = 0,
) -> dict[str, Any]:
    """JSON-serialisable facts about a graph (index 0 of ``seed``), its shift operator and its placement.

    A disconnected graph is described (``connected``: false), not refused.
    """
    graph = build_graph(spec_or_path, seed=seed, allow_disconnected=True)
    validate_graph(graph, num_workers=num_workers, allow_disconnected=True, source=spec_or_path)
    degrees = np.array([d for _, d in graph.degree()], dtype=np.float64)
    moduli = _eigenvalue_moduli(shift_operator(graph, normalisation))
    second = float(moduli[1]) if len(moduli) > 1 else 0.0
    parts = place(graph, num_workers, placement, seed=seed)
    plan = halo_plan(graph, parts)
    return {
        "spec": spec_or_path,
        "seed": seed,
        "num_agents": graph.number_of_nodes(),
        "num_edges": graph.number_of_edges(),
        "weighted": any(w != 1.0 for _, _, w in graph.edges(data="weight")),
        "degree": {"min": int(degrees.min()), "max": int(degrees.max()), "mean": float(degrees.mean())},
        "connected": nx.is_connected(graph),
        "num_components": nx.number_connected_components(graph),
        "normalisation": normalisation,
        "second_eigenvalue_modulus": second,
        "spectral_gap": 1.0 - second,
        "placement": {
            "method": placement,
            "num_workers": num_workers,
            "agents_per_worker": [len(p) for p in parts],
            "agents": [_ranges(p) for p in parts],
        },
        "cut_edges": plan.cut_edges,
        "traffic_per_round": traffic_per_round(graph, plan, dim),
    }


def _human_bytes(num_bytes: int) -> str:
    size = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1024
    return f"{num_bytes} B"


def format_description(d: dict[str, Any], max_workers_listed: int = 16) -> str:
    """Human-readable text of :func:`describe`'s dict."""
    deg, place_d, traffic = d["degree"], d["placement"], d["traffic_per_round"]
    logical, physical = traffic["logical"], traffic["physical"]
    lines = [
        f"graph      {d['spec']}  (seed {d['seed']})",
        f"agents     {d['num_agents']}   edges {d['num_edges']}{' (weighted)' if d['weighted'] else ''}   "
        f"degree min {deg['min']} / mean {deg['mean']:.2f} / max {deg['max']}",
        "connected  " + ("yes" if d["connected"] else f"NO ({d['num_components']} components)"),
        f"shift      {d['normalisation']}: second eigenvalue modulus {d['second_eigenvalue_modulus']:.6f}, "
        f"spectral gap {d['spectral_gap']:.6f}",
        f"placement  {place_d['method']} on {place_d['num_workers']} workers, cut edges {d['cut_edges']}",
    ]
    for worker, (count, agents) in enumerate(zip(place_d["agents_per_worker"], place_d["agents"], strict=True)):
        if worker == max_workers_listed:
            lines.append(f"  ... {place_d['num_workers'] - worker} more workers")
            break
        lines.append(f"  worker {worker:<4d} {count:>6d} agents  {agents}")
    lines += [
        f"per round  (rows of d={traffic['dim']} floats, {traffic['bytes_per_float']} B each)",
        f"  logical  {logical['messages']} messages, {_human_bytes(logical['bytes'])}",
        f"  physical {physical['rows']} rows between {physical['worker_pairs']} worker pairs, "
        f"{_human_bytes(physical['bytes'])}",
    ]
    return "\n".join(lines)
