"""``surf-dist topology``: facts about a graph, its shift operator and its placement, as JSON or text."""

from __future__ import annotations

from typing import Any

import numpy as np

from .files import validate_graph
from .generators import build_graph
from .halo import halo_plan, traffic_per_round
from .placement import place
from .shift import _eigenvalue_moduli, shift_matrix


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
    degrees = graph.degree.astype(np.float64)
    moduli = _eigenvalue_moduli(shift_matrix(graph, normalisation), count=2)
    second = float(moduli[1]) if len(moduli) > 1 else 0.0
    parts = place(graph, num_workers, placement, seed=seed)
    plan = halo_plan(graph, parts)
    return {
        "spec": spec_or_path,
        "seed": seed,
        "num_agents": graph.number_of_nodes(),
        "num_edges": graph.number_of_edges(),
        "weighted": graph.weighted,
        "degree": {"min": int(degrees.min()), "max": int(degrees.max()), "mean": float(degrees.mean())},
        "connected": graph.is_connected(),
        "num_components": len(graph.component_sizes),
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
