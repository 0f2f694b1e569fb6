"""Graph files (edge list, adjacency list, GraphML, JSON node-link): readers and validation that lists
every problem with the file, the line and the fix."""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..plugins import TOPOLOGIES
from .core import Graph, is_networkx
from .spec import GRAPH_FILE_SUFFIXES

if TYPE_CHECKING:  # pragma: no cover - networkx is imported where a graph is converted (the CLI validates faster)
    import networkx as nx


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
    import networkx as nx

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


def _graph_from_records(records: _Records, *, directed_ok: bool) -> tuple[Graph | None, list[str]]:
    """Validate what a file lists and build the canonical graph; every problem is collected."""
    problems = list(records.problems)
    arcs = records.directed and not directed_ok  # a directed graph: u->v and v->u are two arcs
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
        repeat = (u, v) if (u, v) in seen else (v, u) if (v, u) in seen and not arcs else None
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
        edges[(u, v) if arcs else (min(u, v), max(u, v))] = weight if weight is not None else 1.0
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
    ends = np.array(list(edges), dtype=np.int64).reshape(-1, 2)
    return Graph.from_edges(len(node_ids), ends[:, 0], ends[:, 1], list(edges.values()), directed=arcs), []


def load_graph_file(path: str | Path, *, directed_ok: bool = False) -> Graph:
    """Read a graph file: edge list (.txt/.edges/.edgelist, optional weight column), adjacency list
    (.adjlist), GraphML (.graphml) or JSON node-link (.json).

    Raises ONE InputError naming the file and listing every problem: unreadable or unparsable file,
    ids that are not exactly 0..n-1, duplicate or asymmetric edges, bad weights, self-loops, empty graph.
    """
    import networkx as nx

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in GRAPH_FILE_SUFFIXES:
        files, generators = ", ".join(GRAPH_FILE_SUFFIXES), ", ".join(TOPOLOGIES.names())
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


def as_graph(graph: Graph | nx.Graph) -> Graph:
    """A ``Graph``; an ``nx.Graph`` (nodes 0..n-1) is converted."""
    return graph if isinstance(graph, Graph) else Graph.from_networkx(graph)


def validate_graph(
    graph: Graph | nx.Graph, *, num_workers: int = 1, allow_disconnected: bool = False, source: str = "graph"
) -> None:
    """Check a graph for a run: nodes 0..n-1, no self-loops, positive finite weights, connected (strongly, if
    directed; unless allowed), and at least one agent per worker. Raises InputError with every problem."""
    problems = []
    if is_networkx(graph):
        if graph.is_multigraph():
            problems.append("the graph must be a simple nx.Graph or nx.DiGraph (no parallel edges)")
        elif graph.number_of_nodes() and set(graph.nodes) != set(range(graph.number_of_nodes())):
            problems.append("node ids must be exactly 0..n-1")
        else:
            loops = [(a, b) for a, b in graph.edges() if a == b]
            if loops:
                problems.append(f"{len(loops)} self-loops (e.g. {loops[0][0]}): the shift operator adds them")
            if any(_weight(w) is None for _, _, w in graph.edges(data="weight", default=1.0)):
                problems.append("edge weights must be positive finite numbers")
        if problems:
            raise InputError(problems, source=source)
        graph = Graph.from_networkx(graph)
    n = graph.num_agents
    if n == 0:
        problems.append("the graph is empty: it has no agents")
    if not (np.all(np.isfinite(graph.weight)) and np.all(graph.weight > 0)):
        problems.append("edge weights must be positive finite numbers")
    if num_workers < 1:
        problems.append(f"num_workers={num_workers}: need at least one worker")
    elif n and n < num_workers:
        problems.append(
            f"{n} agents cannot fill {num_workers} workers (each worker hosts at least one "
            f"agent): use {n} workers or fewer"
        )
    if n and not allow_disconnected and not graph.is_connected():
        sizes = graph.component_sizes
        what = "not strongly connected" if graph.directed else "disconnected"
        problems.append(
            f"the graph is {what} ({len(sizes)} components of sizes "
            f"{sizes[:8]}{' ...' if len(sizes) > 8 else ''}): information cannot reach every "
            "agent; connect the components, or set topology.allow_disconnected=true to run on it anyway"
        )
    if problems:
        raise InputError(problems, source=source)
