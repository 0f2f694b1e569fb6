"""Communication graphs: specs and generators, graph files, the shift operator S, placement of agents on
workers, halo plans, and the description ``surf-dist topology`` prints.

Words: an *agent* is a node of the graph; a *worker* is a process hosting a block of agents; a *round* is
one neighbour exchange, in which every agent sends its row of the iterate to its neighbours.

Pipeline::

    build_graph(spec)  ->  shift_matrix(graph)         S, sparse
                       ->  place(graph, num_workers)   agents per worker
                       ->  halo_plan(graph, placement) rows each worker sends each other worker per round
                       ->  traffic_per_round(...)      logical messages vs physical rows
"""

import importlib
from typing import Any

# names → the submodule that defines them, imported on first use (validating a config needs only a few of them)
_WHERE = {
    "Graph": "core",
    "describe": "describe",
    "format_description": "describe",
    "as_graph": "files",
    "load_graph_file": "files",
    "validate_graph": "files",
    "build_graph": "generators",
    "graph_title": "labels",
    "redrawn_per_task": "labels",
    "HaloPlan": "halo",
    "halo_plan": "halo",
    "traffic_per_round": "halo",
    "place": "placement",
    "ShiftOperator": "shift",
    "shift_matrix": "shift",
    "shift_operator": "shift",
    "spectral_gap": "shift",
    "star_shift": "shift",
    "GRAPH_FILE_SUFFIXES": "spec",
    "NORMALISATIONS": "spec",
    "PLACEMENTS": "spec",
    "Key": "spec",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "Key",
    "GRAPH_FILE_SUFFIXES",
    "NORMALISATIONS",
    "PLACEMENTS",
    "Graph",
    "HaloPlan",
    "ShiftOperator",
    "as_graph",
    "build_graph",
    "describe",
    "format_description",
    "graph_title",
    "halo_plan",
    "load_graph_file",
    "place",
    "redrawn_per_task",
    "shift_matrix",
    "shift_operator",
    "spectral_gap",
    "star_shift",
    "traffic_per_round",
    "validate_graph",
]
