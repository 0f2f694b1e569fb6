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

from .core import Graph
from .describe import describe, format_description
from .files import as_graph, load_graph_file, validate_graph
from .generators import build_graph
from .halo import HaloPlan, halo_plan, traffic_per_round
from .placement import place
from .shift import ShiftOperator, shift_matrix, shift_operator, spectral_gap, star_shift
from .spec import GRAPH_FILE_SUFFIXES, NORMALISATIONS, PLACEMENTS, Key

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
    "halo_plan",
    "load_graph_file",
    "place",
    "shift_matrix",
    "shift_operator",
    "spectral_gap",
    "star_shift",
    "traffic_per_round",
    "validate_graph",
]
