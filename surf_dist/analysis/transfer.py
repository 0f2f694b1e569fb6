"""One trained optimizer on other networks (``surf-dist transfer``): the run's U-DGD, not retrained, evaluated on
each graph of a list (another family, size or density: ``topology.spec``), beside the methods at equal rounds.

Graph filters transfer across graphs (Ruiz, Chamon and Ribeiro, 2020): the taps h_{k,l} and the local networks do
not depend on n. Per graph the table gives U-DGD's final accuracy after its K·L rounds, each method's accuracy at
those rounds and at its last round, and the cost of reaching ``eval.target_accuracy`` (rounds and agent bytes per
task; "—" when never reached), with the wall seconds the evaluation took. ``DIR/transfer.json`` is rewritten after
every graph, so a rerun of the same command resumes where it stopped; ``transfer.md`` and ``transfer.png`` are
drawn at the end.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..graph.labels import graph_title
from ..plugins import method_label
from ..rundir.atomic import write_json_atomic, write_text_atomic
from .reevaluate import trained_config

RESULT = "transfer.json"


def _point(spec: str, overrides: list[str]) -> list[str]:
    return [*overrides, f"topology.spec={spec}"]


def _row(spec: str, cfg: Any, ev: dict[str, Any], seconds: float) -> dict[str, Any]:
    """One graph's line: U-DGD and every method, as the table and the figure show them."""
    u = ev["udgd"]
    row: dict[str, Any] = {
        "spec": spec,
        "title": graph_title(spec),
        "wall_s": seconds,
        "target_accuracy": ev["target_accuracy"],
        "udgd": {
            "rounds": u["rounds"],
            "accuracy": u["accuracy_per_layer"][-1],
            "agent_bytes": u["agent_bytes"][-1],
            "to_target": u["to_target"],
        },
        "baselines": {},
    }
    for name, b in ev["baselines"].items():
        row["baselines"][name] = {
            "accuracy_at_udgd_rounds": b["accuracy_at_udgd_rounds"],
            "accuracy": b["accuracy"][-1],
            "rounds": b["rounds"][-1],
            "agent_bytes_at_udgd_rounds": b["agent_bytes"][u["rounds"]],
            "agent_bytes": b["agent_bytes"][-1],
            "to_target": b["to_target"],
        }
    row["num_agents"] = _num_agents(cfg)
    return row


def _num_agents(cfg: Any) -> int:
    from ..graph import build_graph

    t = cfg.topology
    return build_graph(t.spec, seed=cfg.seed, allow_disconnected=t.allow_disconnected).number_of_nodes()


def transfer(
    run: Path,
    specs: list[str],
    overrides: list[str],
    out: Path,
    *,
    progress: bool = True,
    **execution: Any,
) -> dict[str, Any] | None:
    """Evaluate ``run`` on every graph of ``specs`` (each with ``overrides``); the record written to
    ``out/transfer.json`` (None on torchrun ranks other than 0). Graphs already in that file with the same
    settings are not evaluated again."""
    from .reevaluate import _run_eval

    record_file = out / RESULT
    done: dict[str, Any] = {}
    if record_file.is_file():
        saved = json.loads(record_file.read_text())
        if saved.get("run") == str(run) and saved.get("overrides") == list(overrides):
            done = {row["spec"]: row for row in saved["rows"]}
    record: dict[str, Any] = {"run": str(run), "overrides": list(overrides), "rows": []}
    coordinator = True
    for spec in specs:
        if spec in done:
            record["rows"].append(done[spec])
            if progress:
                print(f"{graph_title(spec)}: done before, kept")
            continue
        cfg = trained_config(run, _point(spec, overrides), **execution)
        t0 = time.perf_counter()
        ev = _run_eval(cfg, run, progress)
        if ev is None:  # a torchrun rank other than 0: it took part, rank 0 holds the result
            coordinator = False
            continue
        row = _row(spec, cfg, ev, time.perf_counter() - t0)
        record["rows"].append(row)
        write_json_atomic(record_file, record)
        if progress:
            print(_line(row))
    if not coordinator:
        return None
    write_json_atomic(record_file, record)
    write_text_atomic(out / "transfer.md", format_transfer(record))
    plot_transfer(record, out / "transfer.png")
    return record


def _line(row: dict[str, Any]) -> str:
    u = row["udgd"]
    cells = [f"U-DGD {u['accuracy']:.3f}"]
    cells += [
        f"{method_label(n)} {b['accuracy_at_udgd_rounds']:.3f} / {b['accuracy']:.3f}"
        for n, b in row["baselines"].items()
    ]
    return f"{row['title']} ({row['num_agents']:,} agents, {row['wall_s']:.1f} s): " + ", ".join(cells)


def _cost(target: dict[str, Any] | None) -> str:
    if target is None:
        return "—"
    return f"{target['rounds']} r, {_mb(target['agent_bytes'])}"


def _mb(value: float) -> str:
    return f"{value / 1e6:.2f} MB" if value >= 1e4 else f"{value:.0f} B"


def format_transfer(record: dict[str, Any]) -> str:
    """``transfer.md``: one row per graph; U-DGD after its rounds, each method at those rounds and at its last,
    and what reaching the target cost."""
    rows = record["rows"]
    if not rows:
        return "# Transfer\n\nno graph evaluated\n"
    names = list(rows[0]["baselines"])
    r, r_max = rows[0]["udgd"]["rounds"], max((b["rounds"] for b in rows[0]["baselines"].values()), default=0)
    header = ["graph", "n", f"U-DGD @{r}"]
    header += [f"{method_label(n)} @{r} / @{r_max}" for n in names]
    header += ["U-DGD to target"] + [f"{method_label(n)} to target" for n in names] + ["wall s"]
    lines = [
        "# Transfer",
        "",
        f"The trained optimizer of `{record['run']}` evaluated on other graphs, not retrained"
        + (f" (settings: {', '.join(record['overrides'])})" if record["overrides"] else "")
        + ". Accuracy on the held-out samples of the meta-test tasks; cost to the target: rounds and the agents' "
        "bytes per task (— never reached).",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
    ]
    for row in rows:
        u, b = row["udgd"], row["baselines"]
        cells = [row["title"], f"{row['num_agents']:,}", f"{u['accuracy']:.3f}"]
        cells += [f"{b[n]['accuracy_at_udgd_rounds']:.3f} / {b[n]['accuracy']:.3f}" for n in names]
        cells += [_cost(u["to_target"])] + [_cost(b[n]["to_target"]) for n in names] + [f"{row['wall_s']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_transfer(record: dict[str, Any], path: Path) -> Any:
    """Final accuracy per graph (U-DGD at K·L rounds; each method at K·L rounds, solid, and at its last round,
    hatched) and the agents' bytes to reach the target (log scale; no bar where never reached). The figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from ..rundir.outputs import save_figure
    from ..rundir.styles import UDGD_COLOUR, method_styles

    rows = record["rows"]
    names = list(rows[0]["baselines"]) if rows else []
    styles = method_styles(names)
    x = np.arange(len(rows))
    width = 0.8 / (1 + 2 * len(names))
    fig, (acc_ax, cost_ax) = plt.subplots(1, 2, figsize=(12, 4.2))
    r = rows[0]["udgd"]["rounds"] if rows else 0
    acc_ax.bar(x, [row["udgd"]["accuracy"] for row in rows], width, color=UDGD_COLOUR, label=f"U-DGD @{r}")
    cost_ax.bar(x, [_bytes_to_target(row["udgd"]) for row in rows], 2 * width, color=UDGD_COLOUR, label="U-DGD")
    for i, name in enumerate(names):
        colour = styles[name]["color"]
        at = x + (1 + 2 * i) * width
        label = method_label(name)
        acc_ax.bar(at, [row["baselines"][name]["accuracy_at_udgd_rounds"] for row in rows], width, color=colour,
                   label=f"{label} @{r}")  # fmt: skip
        acc_ax.bar(at + width, [row["baselines"][name]["accuracy"] for row in rows], width, color=colour,
                   hatch="//", alpha=0.6, label=f"{label} @{_rounds_of(rows, name)}")  # fmt: skip
        cost_ax.bar(x + (1 + i) * 2 * width, [_bytes_to_target(row["baselines"][name]) for row in rows], 2 * width,
                    color=colour, label=label)  # fmt: skip
    titles = [f"{row['title']}" for row in rows]
    for ax in (acc_ax, cost_ax):
        ax.set_xticks(x + 0.4 - width / 2, titles, rotation=20, ha="right", fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    acc_ax.set_ylim(0, 1)
    acc_ax.set_ylabel("held-out accuracy")
    acc_ax.set_title("final accuracy (hatched: each method at its last round)")
    cost_ax.set_yscale("log")
    cost_ax.set_ylabel("agent bytes per task to the target")
    target = rows[0]["target_accuracy"] if rows else None
    cost_ax.set_title(f"cost to accuracy {target} (no bar: never reached)")
    cost_ax.legend(fontsize=7)
    acc_ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(f"transfer of {Path(record['run']).name}")
    save_figure(fig, path)
    return fig


def _rounds_of(rows: list[dict[str, Any]], name: str) -> int:
    return int(rows[0]["baselines"][name]["rounds"])


def _bytes_to_target(result: dict[str, Any]) -> float:
    target = result["to_target"]
    return float("nan") if target is None else max(float(target["agent_bytes"]), 1.0)
