"""``surf-dist report RUN [RUN ...] --out DIR``: what each method costs, across runs, in figures and a table.

Figures (several runs overlaid, U-DGD and every baseline):

* ``accuracy_vs_rounds.png``, ``accuracy_vs_bytes.png`` (the agents' logical bytes, per meta-test task) and
  ``accuracy_vs_time.png`` (simulated seconds of the run's ``[network]``; runs without one are left out);
* ``loss_per_layer.png``: U-DGD's held-out loss per layer;
* ``edge_traffic_<run>.png``: messages per directed edge over the run (``comm_edges.csv``), sender × receiver,
  binned to at most 200 × 200 cells for large graphs.

Table (``report.md``, ``report.json``): per run and method, the final accuracy and the rounds, simulated
seconds and agent bytes needed to reach the target accuracy (``--target``, default the runs' own).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..plugins import method_label
from ..rundir.atomic import write_json_atomic, write_text_atomic
from ..rundir.costs import to_target
from ..rundir.outputs import save_figure

HEATMAP_CELLS = 200


def _load(runs: list[Path]) -> list[tuple[str, dict[str, Any]]]:
    problems, out = [], []
    for run in runs:
        path = run / "summary.json"
        if not path.is_file():
            problems.append(f"{run}: no summary.json (fix: give run directories that surf-dist train finished)")
            continue
        out.append((run.name or str(run), json.loads(path.read_text())))
    if problems:
        raise InputError(problems)
    return out


def _curves(summary: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    """Per method: accuracy, rounds, agent bytes, seconds (missing keys of older runs: empty)."""
    ev = summary["eval"]
    u = ev["udgd"]
    out = {
        "U-DGD": {
            "accuracy": u["accuracy_per_layer"],
            "rounds": u["rounds_per_layer"],
            "bytes": u.get("agent_bytes", []),
            "seconds": u.get("time_s", []),
        }
    }
    for name, b in ev["baselines"].items():
        out[method_label(name)] = {
            "accuracy": b["accuracy"],
            "rounds": b["rounds"],
            "bytes": b.get("agent_bytes", []),
            "seconds": b.get("time_s", []),
        }
    return out


def _plot(runs: list[tuple[str, dict[str, Any]]], x: str, label: str, path: Path) -> bool:
    import matplotlib.pyplot as plt  # slow to import: only ``report`` and the run's own figure need it

    fig, ax = plt.subplots(figsize=(7, 4.5))
    drawn = False
    for run, summary in runs:
        for method, c in _curves(summary).items():
            xs = c[x]
            if len(xs) != len(c["accuracy"]) or (x == "seconds" and not any(xs)):
                continue
            style = "o-" if method == "U-DGD" else "-"
            ax.plot(xs, c["accuracy"], style, markersize=3, label=f"{run}: {method}" if len(runs) > 1 else method)
            drawn = True
    if drawn:
        ax.set_xscale("symlog" if x == "rounds" else "log" if x == "bytes" else "linear")
        ax.set_xlabel(label)
        ax.set_ylabel("held-out accuracy (mean over meta-test tasks)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        save_figure(fig, path)
    else:
        plt.close(fig)
    return drawn


def _loss_per_layer(runs: list[tuple[str, dict[str, Any]]], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for run, summary in runs:
        loss = summary["eval"]["udgd"]["loss_per_layer"]
        ax.plot(range(len(loss)), loss, "o-", label=run)
    ax.set_yscale("log")
    ax.set_xlabel("layer")
    ax.set_ylabel("U-DGD held-out loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def _edge_heatmap(run_dir: Path, num_agents: int, path: Path) -> bool:
    """Messages per directed edge, binned: O(edges), whatever the number of agents."""
    import matplotlib.pyplot as plt

    edges = run_dir / "comm_edges.csv"
    if not edges.is_file():
        return False
    with open(edges, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return False
    sender = np.array([int(r["sender"]) for r in rows])
    receiver = np.array([int(r["receiver"]) for r in rows])
    messages = np.array([int(r["forward_messages"]) + int(r["backward_messages"]) for r in rows])
    cells = min(num_agents, HEATMAP_CELLS)
    grid = np.zeros((cells, cells))
    np.add.at(grid, (sender * cells // num_agents, receiver * cells // num_agents), messages)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    image = ax.imshow(np.ma.masked_equal(grid, 0), cmap="viridis", interpolation="nearest")
    fig.colorbar(image, ax=ax, label="messages (forward + backward)")
    unit = "agent" if cells == num_agents else f"bin of {num_agents / cells:.0f} agents"
    ax.set_xlabel(f"receiver ({unit})")
    ax.set_ylabel(f"sender ({unit})")
    ax.set_title(f"{run_dir.name}: traffic per directed edge")
    save_figure(fig, path)
    return True


def cost_table(runs: list[tuple[str, dict[str, Any]]], target: float | None) -> list[dict[str, Any]]:
    """Per run and method: final accuracy and the rounds, seconds and bytes to reach the target."""
    rows = []
    for run, summary in runs:
        goal = target if target is not None else summary["eval"].get("target_accuracy", 0.9)
        for method, c in _curves(summary).items():
            n = len(c["accuracy"])
            seconds = c["seconds"] if len(c["seconds"]) == n else [float("nan")] * n
            bytes_ = c["bytes"] if len(c["bytes"]) == n else [float("nan")] * n
            reached = to_target(c["accuracy"], c["rounds"], seconds, bytes_, goal)
            rows.append(
                {
                    "run": run,
                    "method": method,
                    "target": goal,
                    "final_accuracy": c["accuracy"][-1],
                    "to_target": reached,
                }
            )
    return rows


def _markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| run | method | final accuracy | target | rounds to target | seconds to target | agent MB to target |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = r["to_target"]
        cost = (
            ("—", "—", "—") if t is None else (str(t["rounds"]), f"{t['time_s']:.3g}", f"{t['agent_bytes'] / 1e6:.3g}")
        )
        lines.append(
            f"| {r['run']} | {r['method']} | {r['final_accuracy']:.3f} | {r['target']:.2f} | " + " | ".join(cost) + " |"
        )
    return "\n".join(lines) + "\n"


def report(runs: list[Path], out: Path, target: float | None = None) -> dict[str, Any]:
    """Write the figures and the table of ``runs`` into ``out``; the table and the files written."""
    import matplotlib

    matplotlib.use("Agg")
    loaded = _load(runs)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, x, label in (
        ("accuracy_vs_rounds.png", "rounds", "communication rounds"),
        ("accuracy_vs_bytes.png", "bytes", "agent bytes sent (logical, per task)"),
        ("accuracy_vs_time.png", "seconds", "simulated seconds (network model)"),
    ):
        if _plot(loaded, x, label, out / name):
            written.append(name)
    _loss_per_layer(loaded, out / "loss_per_layer.png")
    written.append("loss_per_layer.png")
    for run_dir, (run, summary) in zip(runs, loaded, strict=True):
        name = f"edge_traffic_{run}.png"
        if _edge_heatmap(run_dir, int(summary.get("num_agents", summary["comm"]["num_agents"])), out / name):
            written.append(name)
    rows = cost_table(loaded, target)
    markdown = _markdown(rows)
    write_text_atomic(out / "report.md", markdown)
    write_json_atomic(out / "report.json", {"runs": [str(r) for r in runs], "rows": rows, "files": written})
    return {"rows": rows, "files": written, "markdown": markdown}
