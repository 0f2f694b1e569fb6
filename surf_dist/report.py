"""The run directory's outputs: ``summary.json`` (the contract of DESIGN.md), ``comm.csv``, the table, figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .comm.ledger import Ledger


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
    """Totals of the whole run, per phase, and the analytic count of one U-DGD forward pass."""
    total = ledger.totals()
    return {
        "logical": {"messages": total["logical_messages"], "bytes": total["logical_bytes"]},
        "physical": {"messages": total["physical_messages"], "bytes": total["physical_bytes"]},
        "by_phase": ledger.by_phase(),
        "by_direction": {d: ledger.totals(direction=d) for d in ("forward", "backward", "allreduce")},
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


def table(summary: dict[str, Any]) -> str:
    """A short table: U-DGD at its rounds vs each baseline at the same rounds and at the largest count."""
    ev = summary["eval"]
    u = ev["udgd"]
    r = u["rounds"]
    r_max = max((b["rounds"][-1] for b in ev["baselines"].values()), default=r)
    at_r, at_max = f"@{r} rounds", f"@{r_max} rounds"
    lines = [f"{'method':<10} {'rounds':>7} {'accuracy':>9}   {at_r:>12} {at_max:>13}"]
    lines.append(
        f"{'U-DGD':<10} {r:>7} {u['accuracy_per_layer'][-1]:>9.3f}   {u['accuracy_per_layer'][-1]:>12.3f} {'':>13}"
    )
    for name, b in ev["baselines"].items():
        lines.append(
            f"{name.upper():<10} {b['rounds'][-1]:>7} {b['accuracy'][-1]:>9.3f}   "
            f"{b['accuracy_at_udgd_rounds']:>12.3f} {b['accuracy_at_max_rounds']:>13.3f}"
        )
    acc = " ".join(f"{a:.2f}" for a in u["accuracy_per_layer"])
    loss = " ".join(f"{v:.3f}" for v in u["loss_per_layer"])
    lines.append(f"U-DGD accuracy per layer: {acc}")
    lines.append(f"U-DGD loss per layer:     {loss}")
    lines.append(f"constraint violations per layer (of {ev['num_tasks']} tasks): {u['violations_per_layer']}")
    c = summary["comm"]
    lines.append(
        f"communication: logical {c['logical']['messages']:,} messages / {c['logical']['bytes']:,} B, "
        f"physical {c['physical']['bytes']:,} B"
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
        ax.plot(b["rounds"], b["accuracy"], label=name.upper())
    ax.set_xscale("symlog")
    ax.set_xlabel("communication rounds")
    ax.set_ylabel("held-out accuracy")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
