"""The run directory's outputs: ``summary.json`` (the contract of docs/summary.md), ``comm.csv``, the table, figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..comm.ledger import KIND_OF_DIRECTION, Ledger
from ..plugins import method_label
from .atomic import write_atomic


def _pair(counts: dict[str, int]) -> dict[str, dict[str, int]]:
    """The four counters as {logical: {messages, bytes}, physical: {messages, bytes}}."""
    return {
        side: {"messages": counts[f"{side}_messages"], "bytes": counts[f"{side}_bytes"]}
        for side in ("logical", "physical")
    }


def comm_section(
    ledger: Ledger,
    *,
    num_agents: int,
    num_edges_directed: int,
    dim: int,
    itemsize: int,
    num_layers: int,
    num_hops: int,
) -> dict[str, Any]:
    """The run's traffic: the agents' own (``logical``, ``physical``, as the contract of docs/summary.md), every kind of
    traffic (``by_kind``: agent, coordination, simulator), and the same total split by phase and by direction
    (each split sums to ``total``); and the analytic count of one U-DGD forward pass."""
    kinds = ledger.by_kind()
    directions = {d: ledger.totals(direction=d) for d in ("forward", "backward", "allreduce")}
    return {
        "logical": _pair(kinds["agent"])["logical"],
        "physical": _pair(kinds["agent"])["physical"],
        "total": _pair(ledger.totals()),
        "by_kind": {kind: _pair(counts) for kind, counts in kinds.items()},
        "kind_of_direction": dict(KIND_OF_DIRECTION),
        "by_phase": ledger.by_phase(),
        "by_direction": {**directions, **ledger.by_direction()},
        "analytic_per_udgd_forward": {
            "rounds": num_layers * num_hops,
            "messages": num_layers * num_hops * num_edges_directed,
            "bytes": num_layers * num_hops * num_edges_directed * dim * itemsize,
            "broadcasts_per_agent": num_layers * num_hops,
            "floats_per_message": dim,
            "note": "per layer: K rounds × Σ_i out-degree(i) messages × D floats, less what silent agents did not send",
        },
        "num_agents": num_agents,
    }


def _bytes(value: float) -> str:
    """Agent bytes per task, in a unit a reader compares at a glance."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:.0f} B"


def eval_table(ev: dict[str, Any]) -> str:
    """U-DGD (when evaluated) and every method: rounds, final accuracy, accuracy at U-DGD's rounds, the agents'
    bytes per task and the simulated seconds at the end ("—" without a network model: every time is 0)."""
    u = ev.get("udgd")
    timed = any(t > 0 for part in [u or {}, *ev["baselines"].values()] for t in part.get("time_s", []))
    at_r = "" if u is None else f" {'@' + str(u['rounds']) + ' rounds':>11}"  # no U-DGD: no column for its rounds
    lines = [f"{'method':<12} {'rounds':>7} {'accuracy':>9}{at_r} {'agent bytes':>12} {'sim s':>8}"]

    def row(label: str, rounds: int, final: float, at_udgd: float | None, nbytes: list[float], secs: list[float]):
        at = "" if at_udgd is None else f" {at_udgd:>11.3f}"
        sim = f"{secs[-1]:.3f}" if timed and secs else "—"
        shown = _bytes(nbytes[-1]) if nbytes else "—"
        lines.append(f"{label:<12} {rounds:>7} {final:>9.3f}{at} {shown:>12} {sim:>8}")

    if u is not None:
        acc = u["accuracy_per_layer"]
        row("U-DGD", u["rounds"], acc[-1], acc[-1], u.get("agent_bytes", []), u.get("time_s", []))
    for name, b in ev["baselines"].items():
        at_udgd = None if u is None else b["accuracy_at_udgd_rounds"]
        row(method_label(name), b["rounds"][-1], b["accuracy"][-1], at_udgd, b.get("agent_bytes", []), b["time_s"])
    lines.append("(agent bytes: what the agents sent each other per task, mean over tasks)")
    return "\n".join(lines)


def table(summary: dict[str, Any]) -> str:
    """The run's table: U-DGD at its rounds vs each method (``eval_table``), U-DGD per layer, the traffic."""
    ev = summary["eval"]
    u = ev["udgd"]
    lines = [eval_table(ev)]
    acc = " ".join(f"{a:.2f}" for a in u["accuracy_per_layer"])
    loss = " ".join(f"{v:.3f}" for v in u["loss_per_layer"])
    lines.append(f"U-DGD accuracy per layer: {acc}")
    lines.append(f"U-DGD loss per layer:     {loss}")
    lines.append(f"constraint violations per layer (of {ev['num_tasks']} tasks): {u['violations_per_layer']}")
    c = summary["comm"]
    lines.append(
        f"agents' messages: {c['logical']['messages']:,} ({c['logical']['bytes']:,} B), of which "
        f"{c['physical']['bytes']:,} B crossed a process boundary; the simulation's own traffic: "
        f"{c['by_kind']['simulator']['physical']['bytes']:,} B"
    )
    return "\n".join(lines)


def plot(summary: dict[str, Any], path: str | Path) -> None:
    """Accuracy vs communication rounds: U-DGD per layer and every baseline per round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ev = summary["eval"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ev["udgd"]["rounds_per_layer"], ev["udgd"]["accuracy_per_layer"], "o-", label="U-DGD")
    for name, b in ev["baselines"].items():
        ax.plot(b["rounds"], b["accuracy"], label=method_label(name))
    ax.set_xscale("symlog")
    ax.set_xlabel("communication rounds")
    ax.set_ylabel("held-out accuracy")
    ax.legend()
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def save_figure(fig: Any, path: str | Path) -> None:
    """Lay out, write as PNG at 120 dpi (atomically: a full disk leaves no half figure), and close (so that many
    figures do not pile up in memory)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    try:
        write_atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=120))
    finally:
        plt.close(fig)
