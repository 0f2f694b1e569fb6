"""What figures and reports say about the graph of a spec: its name, read from the spec itself, and whether the
tasks of a run see different draws of it. (Apart from ``describe.py``: importing that module by its path would
shadow the package's ``describe`` function.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from .generators import build_graph
from .spec import _format_value, _is_generator_spec, _parse_spec


def graph_title(spec_or_path: str) -> str:
    """How a figure or a table names the graph of ``spec_or_path``: from the spec itself, every key with its value
    (defaults filled), so that a title never says another graph's settings.

    ``kregular:n=100,degree=3`` → ``3-regular, n = 100``; ``random:n=8,p=0.3,symmetrise=or`` →
    ``random, n = 8, p = 0.3, A + Aᵀ`` (the paper's code's symmetrisation); a graph file → its file name.
    Raises InputError for a spec that does not parse.
    """
    if not _is_generator_spec(spec_or_path):
        return Path(spec_or_path).name
    name, params = _parse_spec(spec_or_path)
    head, extra = name, []
    if name == "kregular":
        head = f"{params.pop('degree')}-regular"
        if params.pop("mode") == "random":
            head += " (uniformly random)"
        if not params.pop("relabel"):
            extra.append("not relabelled")
    if name == "random" and params.pop("symmetrise") == "or":
        extra.append("A + Aᵀ")
    return ", ".join([head, *(f"{key} = {_format_value(value)}" for key, value in params.items()), *extra])


def redrawn_per_task(spec_or_path: str, *, seed: int, per_task: bool, num_draws: int = 3) -> bool:
    """Whether the tasks of a run see different graphs: ``topology.per_task`` and a spec whose draws differ
    (a relabelled k-regular graph, a random graph; not a ring, a star or a graph file), judged on the first
    ``num_draws`` task indices. A generator that cannot be built here (a plugin's that is not imported) counts as
    redrawn when ``per_task``: nothing shows that it is the same graph."""
    if not per_task or not _is_generator_spec(spec_or_path):  # a file is one graph, wherever it now is
        return False
    try:
        graphs = [build_graph(spec_or_path, seed=seed, index=i, allow_disconnected=True) for i in range(num_draws)]
    except InputError:
        return True
    first = graphs[0]
    return any(
        g.num_agents != first.num_agents or not (np.array_equal(g.u, first.u) and np.array_equal(g.v, first.v))
        for g in graphs[1:]
    )
