"""``surf-dist report RUN [RUN ...] --out DIR``: what each method costs, across runs, in figures and a table.

Figures (several runs overlaid, U-DGD and every baseline; one colour per method, one line style per run):

* ``accuracy_vs_rounds.png``;
* ``accuracy_vs_bytes.png``: the agents' logical bytes, per meta-test task, on a symmetric-log axis that is
  linear from 0 to the smallest byte count drawn, so that round 0 (no bytes sent yet) stands at its true place,
  0, instead of being clipped to the edge of a log axis; a method whose agents send nothing (``local``,
  ``centralised``, whose pooling is the simulation's) has no place on it and is named in a note instead;
* ``accuracy_vs_time.png``: simulated seconds of the runs whose ``[network]`` models time (a latency, a bandwidth,
  per-link times or a compute time); the others are left out, and the figure is not drawn when none does;
* ``loss_per_layer.png``: U-DGD's held-out loss per layer;
* traffic, per run, from ``comm_edges.csv``: when every task of the run has the same graph,
  ``edge_traffic_<run>.png``, messages per directed edge, sender × receiver (binned to at most 200 × 200 cells for
  large graphs). When the graph is redrawn per task (``topology.per_task`` with a spec whose draws differ, e.g.
  the paper's relabelled 3-regular graph or a random graph; or ``topology.dynamic=resample``), a cell
  (sender i, receiver j) adds up messages of different tasks' edges between agents that were neighbours in some
  tasks only: a picture of the relabelling, not of any link. What a reader can trust there is what each agent
  sent, so the run gets ``agent_traffic_<run>.png`` instead, the distribution of messages sent per agent, and
  ``report.md`` says why.

Table (``report.md``, ``report.json``): per run and method, the final accuracy and the rounds, simulated
seconds and agent bytes needed to reach the target accuracy (``--target``, default the runs' own). A run without
a time model shows "—" for seconds (``null`` in ``report.json``): its zeros mean "not modelled", not "instant".
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..graph.labels import redrawn_per_task
from ..network.model import models_time
from ..plugins import method_label
from ..rundir.atomic import write_json_atomic, write_text_atomic
from ..rundir.costs import to_target
from ..rundir.outputs import save_figure
from ..rundir.styles import UDGD_COLOUR, method_styles

HEATMAP_CELLS = 200
RUN_LINESTYLES = ("-", "--", ":", "-.")


@dataclass(frozen=True)
class RunData:
    """One run of a report: its name (the folder's), folder, ``summary.json`` and ``config.json`` (empty when
    missing)."""

    name: str
    dir: Path
    summary: dict[str, Any]
    config: dict[str, Any]

    @property
    def timed(self) -> bool:
        """Whether its simulated seconds mean anything: a ``[network]`` that models time (a run without
        ``config.json``: any non-zero second)."""
        if self.config:
            return models_time(self.config.get("network"))
        return any(t for c in _curves(self.summary).values() for t in c["seconds"])

    @property
    def redrawn(self) -> bool:
        """Whether its tasks see different graphs (see the module's docstring)."""
        topology = self.config.get("topology", {})
        if topology.get("dynamic", "static") == "resample":
            return True
        spec = topology.get("spec")
        if spec is None:  # no config.json: the default, one fresh draw per task
            return True
        return redrawn_per_task(spec, seed=int(self.config.get("seed", 0)), per_task=bool(topology.get("per_task")))


def load_runs(runs: list[Path]) -> list[RunData]:
    """The runs of a report; InputError naming every folder that holds no finished run."""
    problems, out = [], []
    for run in runs:
        path = run / "summary.json"
        if not path.is_file():
            problems.append(f"{run}: no summary.json (fix: give run directories that surf-dist train finished)")
            continue
        config_path = run / "config.json"
        config = json.loads(config_path.read_text()) if config_path.is_file() else {}
        out.append(RunData(run.name or str(run), run, json.loads(path.read_text()), config))
    if problems:
        raise InputError(problems)
    return out


def _curves(summary: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    """Per method (its name, ``udgd`` for U-DGD): accuracy, rounds, agent bytes, seconds (missing keys of older
    runs: empty)."""
    ev = summary["eval"]
    u = ev["udgd"]
    out = {
        "udgd": {
            "accuracy": u["accuracy_per_layer"],
            "rounds": u["rounds_per_layer"],
            "bytes": u.get("agent_bytes", []),
            "seconds": u.get("time_s", []),
        }
    }
    for name, b in ev["baselines"].items():
        out[name] = {
            "accuracy": b["accuracy"],
            "rounds": b["rounds"],
            "bytes": b.get("agent_bytes", []),
            "seconds": b.get("time_s", []),
        }
    return out


def _label(method: str) -> str:
    return "U-DGD" if method == "udgd" else method_label(method)


def _style(method: str, styles: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"color": UDGD_COLOUR} if method == "udgd" else {"color": styles[method]["color"]}


def _drawable(runs: list[RunData], x: str) -> list[tuple[RunData, str, dict[str, list[float]]]]:
    """The (run, method, curve) that a figure of accuracy against ``x`` can draw: a value for every point, seconds
    only of runs with a time model, bytes only of methods whose agents send some."""
    out = []
    for run in runs:
        if x == "seconds" and not run.timed:
            continue
        for method, c in _curves(run.summary).items():
            if len(c[x]) != len(c["accuracy"]) or (x == "bytes" and not any(c[x])):
                continue
            out.append((run, method, c))
    return out


def _silent_methods(runs: list[RunData]) -> list[str]:
    """Methods that send no agent bytes at all in some run (``local``, ``centralised``): labels, sorted."""
    return sorted(
        {_label(m) for run in runs for m, c in _curves(run.summary).items() if c["bytes"] and not any(c["bytes"])}
    )


def _bytes_axis(ax: Any, curves: list[dict[str, list[float]]], runs: list[RunData]) -> str:
    """A symmetric-log bytes axis, linear from 0 to the smallest positive count; the axis label."""
    smallest = min(b for c in curves for b in c["bytes"] if b > 0)
    ax.set_xscale("symlog", linthresh=smallest, linscale=0.5)
    ax.set_xlim(left=0)
    silent = _silent_methods(runs)
    if silent:
        ax.annotate(
            f"not drawn (their agents send no bytes): {', '.join(silent)}",
            xy=(0.01, 0.98), xycoords="axes fraction", va="top", fontsize=7, color="0.3",
        )  # fmt: skip
    return f"agent bytes sent (logical, per task; linear from 0 to {smallest:.3g} B, log above)"


def accuracy_figure(runs: list[RunData], x: str, label: str) -> Any | None:
    """Accuracy against ``x`` (``rounds``, ``bytes`` or ``seconds``) of every drawable method of every run, or None
    when nothing is drawable (e.g. seconds, and no run has a time model)."""
    import matplotlib.pyplot as plt  # slow to import: only ``report`` and the run's own figure need it

    drawable = _drawable(runs, x)
    if not drawable:
        return None
    styles = method_styles(m for _, m, _ in drawable if m != "udgd")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    linestyles = {run.name: RUN_LINESTYLES[i % len(RUN_LINESTYLES)] for i, run in enumerate(runs)}
    for run, method, c in drawable:
        name = f"{run.name}: {_label(method)}" if len(runs) > 1 else _label(method)
        marker = "o" if method == "udgd" else ""
        ax.plot(
            c[x], c["accuracy"], marker=marker, markersize=3, linestyle=linestyles[run.name], label=name,
            **_style(method, styles),
        )  # fmt: skip
    if x == "rounds":
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(left=0)
    elif x == "bytes":
        label = _bytes_axis(ax, [c for _, _, c in drawable], runs)
    ax.set_xlabel(label)
    ax.set_ylabel("held-out accuracy (mean over meta-test tasks)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    return fig


def loss_figure(runs: list[RunData]) -> Any:
    """U-DGD's held-out loss per layer, one line per run (log scale)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 4))
    for run in runs:
        loss = run.summary["eval"]["udgd"]["loss_per_layer"]
        ax.plot(range(len(loss)), loss, "o-", label=run.name)
    ax.set_yscale("log")
    ax.set_xlabel("layer")
    ax.set_ylabel("U-DGD held-out loss")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def _edge_messages(run_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(sender, receiver, messages forward + backward) per directed edge of ``comm_edges.csv``; None without it."""
    edges = run_dir / "comm_edges.csv"
    if not edges.is_file():
        return None
    with open(edges, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return None
    sender = np.array([int(r["sender"]) for r in rows])
    receiver = np.array([int(r["receiver"]) for r in rows])
    messages = np.array([int(r["forward_messages"]) + int(r["backward_messages"]) for r in rows])
    return sender, receiver, messages


def edge_heatmap(run: str, edges: tuple[np.ndarray, np.ndarray, np.ndarray], num_agents: int) -> Any:
    """Messages per directed edge, binned: O(edges), whatever the number of agents. For a run whose every task
    has the same graph (otherwise see :func:`agent_traffic`)."""
    import matplotlib.pyplot as plt

    sender, receiver, messages = edges
    cells = min(num_agents, HEATMAP_CELLS)
    grid = np.zeros((cells, cells))
    np.add.at(grid, (sender * cells // num_agents, receiver * cells // num_agents), messages)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    image = ax.imshow(np.ma.masked_equal(grid, 0), cmap="viridis", interpolation="nearest")
    fig.colorbar(image, ax=ax, label="messages (forward + backward)")
    unit = "agent" if cells == num_agents else f"bin of {num_agents / cells:.0f} agents"
    ax.set_xlabel(f"receiver ({unit})")
    ax.set_ylabel(f"sender ({unit})")
    ax.set_title(f"{run}: traffic per directed edge (the same graph every task)")
    return fig


def agent_traffic(run: str, edges: tuple[np.ndarray, np.ndarray, np.ndarray], num_agents: int) -> Any:
    """The distribution of messages sent per agent over the run, for a run whose graph is redrawn per task (where
    a per-edge picture would mix the tasks' edges): how many agents sent how many messages."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    sender, _, messages = edges
    sent = np.bincount(sender, weights=messages, minlength=num_agents)
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = min(50, max(1, len(np.unique(sent))))
    ax.hist(sent, bins=bins, color=UDGD_COLOUR)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("messages an agent sent over the run (forward + backward)")
    ax.set_ylabel("agents")
    ax.set_title(f"{run}: messages per agent (graph redrawn per task)", fontsize=10)
    ax.annotate(
        "per-edge traffic not drawn: each task has its own graph,\nso a (sender, receiver) cell would add up "
        "different tasks' edges", xy=(0.01, 0.98), xycoords="axes fraction", va="top", fontsize=7, color="0.3",
    )  # fmt: skip
    return fig


def traffic_figure(run: RunData) -> tuple[str, Any, str | None] | None:
    """The run's traffic figure: (file name, figure, a note for ``report.md`` or None); None without
    ``comm_edges.csv``."""
    edges = _edge_messages(run.dir)
    if edges is None:
        return None
    num_agents = int(run.summary.get("num_agents", run.summary["comm"]["num_agents"]))
    if run.redrawn:
        note = (
            f"{run.name}: its graph is redrawn per task, so a per-edge picture would mix different tasks' edges; "
            f"agent_traffic_{run.name}.png shows the messages each agent sent instead."
        )
        return f"agent_traffic_{run.name}.png", agent_traffic(run.name, edges, num_agents), note
    return f"edge_traffic_{run.name}.png", edge_heatmap(run.name, edges, num_agents), None


def cost_table(runs: list[RunData], target: float | None) -> list[dict[str, Any]]:
    """Per run and method: final accuracy and the rounds, seconds (None without a time model) and bytes to reach
    the target."""
    rows = []
    for run in runs:
        goal = target if target is not None else run.summary["eval"].get("target_accuracy", 0.9)
        for method, c in _curves(run.summary).items():
            n = len(c["accuracy"])
            seconds: list[float | None] = [*c["seconds"]] if len(c["seconds"]) == n and run.timed else [None] * n
            bytes_ = c["bytes"] if len(c["bytes"]) == n else [float("nan")] * n
            reached = to_target(c["accuracy"], c["rounds"], seconds, bytes_, goal)
            rows.append(
                {
                    "run": run.name,
                    "method": _label(method),
                    "target": goal,
                    "final_accuracy": c["accuracy"][-1],
                    "to_target": reached,
                }
            )
    return rows


def _number(value: float | None, scale: float = 1.0) -> str:
    """A cost cell: three significant digits, "—" when there is no value (no time model, or not measured)."""
    if value is None or value != value:  # None or NaN
        return "—"
    return f"{value / scale:.3g}"


def _markdown(rows: list[dict[str, Any]], notes: list[str]) -> str:
    lines = [
        "| run | method | final accuracy | target | rounds to target | seconds to target | agent MB to target |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = r["to_target"]
        cost = ["—"] * 3 if t is None else [str(t["rounds"]), _number(t["time_s"]), _number(t["agent_bytes"], 1e6)]
        lines.append(
            f"| {r['run']} | {r['method']} | {r['final_accuracy']:.3f} | {r['target']:.2f} | " + " | ".join(cost) + " |"
        )
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def _notes(runs: list[RunData]) -> list[str]:
    """What the table and figures leave out, and why."""
    untimed = [run.name for run in runs if not run.timed]
    if not untimed:
        return []
    return [
        f"no time model ([network] sets no latency, bandwidth, links or compute time): {', '.join(untimed)}; "
        "their simulated seconds are — and accuracy_vs_time.png leaves them out."
    ]


def report(runs: list[Path], out: Path, target: float | None = None) -> dict[str, Any]:
    """Write the figures and the table of ``runs`` into ``out``; the table, the files written and the notes."""
    import matplotlib

    matplotlib.use("Agg")
    loaded = load_runs(runs)
    out.mkdir(parents=True, exist_ok=True)
    written, notes = [], _notes(loaded)
    for name, x, label in (
        ("accuracy_vs_rounds.png", "rounds", "communication rounds"),
        ("accuracy_vs_bytes.png", "bytes", "agent bytes sent (logical, per task)"),
        ("accuracy_vs_time.png", "seconds", "simulated seconds (network model)"),
    ):
        fig = accuracy_figure(loaded, x, label)
        if fig is not None:
            save_figure(fig, out / name)
            written.append(name)
    save_figure(loss_figure(loaded), out / "loss_per_layer.png")
    written.append("loss_per_layer.png")
    for run in loaded:
        traffic = traffic_figure(run)
        if traffic is not None:
            name, fig, note = traffic
            save_figure(fig, out / name)
            written.append(name)
            notes += [note] if note else []
    rows = cost_table(loaded, target)
    markdown = _markdown(rows, notes)
    write_text_atomic(out / "report.md", markdown)
    record = {"runs": [str(r) for r in runs], "rows": rows, "files": written, "notes": notes}
    write_json_atomic(out / "report.json", record)
    return {"rows": rows, "files": written, "markdown": markdown, "notes": notes}
