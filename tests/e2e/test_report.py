"""``surf-dist report`` over runs with and without a network model, what its figures show (read back from the
matplotlib Figures), ``sweep`` without a network, and TensorBoard scalars beside metrics.jsonl."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from surf_dist.analysis.report import accuracy_figure, agent_traffic, load_runs, traffic_figure
from surf_dist.config import load_config
from surf_dist.plugins import method_label
from surf_dist.runtime.launch import run_local

matplotlib.use("Agg")

pytestmark = pytest.mark.e2e
FAST = ["data.num_meta_train=3", "train.epochs=1", "data.num_meta_test=1", "eval.rounds_factor=2"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[Path]:
    out = []
    for name, network in (
        ("uniform", ["network.latency_ms=50", "network.bandwidth_mbps=10", "run.tensorboard=true"]),
        ("deadline", ["network.latency_ms=50", "network.link_spread=0.5", "network.deadline_ms=80"]),
    ):
        run = tmp_path_factory.mktemp(name)
        run_local(load_config("smoke", None, [*FAST, *network]), run, progress=False)
        out.append(run)
    return out


@pytest.fixture(scope="module")
def untimed(tmp_path_factory) -> Path:
    """A run with no [network] (no time model) on one graph for every task."""
    run = tmp_path_factory.mktemp("untimed")
    run_local(load_config("smoke", None, [*FAST, "topology.per_task=false"]), run, progress=False)
    return run


def _methods(run: Path) -> set[str]:
    summary = json.loads((run / "summary.json").read_text())
    return {"U-DGD", *(method_label(name) for name in summary["eval"]["baselines"])}


@pytest.mark.timeout(300)
def test_report_draws_every_figure_and_the_cost_table(runs: list[Path], tmp_path: Path) -> None:
    """Catches a report that misses a figure, leaves a run out of the table, or prices the target wrongly."""
    r = subprocess.run(
        ["surf-dist", "report", *map(str, runs), "--out", str(tmp_path), "--target", "0.3"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    names = ["accuracy_vs_rounds", "accuracy_vs_bytes", "accuracy_vs_time", "loss_per_layer"]
    for name in [*names, *(f"agent_traffic_{run.name}" for run in runs)]:  # the smoke graph: relabelled per task
        assert (tmp_path / f"{name}.png").stat().st_size > 1000, name
    table = json.loads((tmp_path / "report.json").read_text())
    assert {(row["run"], row["method"]) for row in table["rows"]} == {
        (run.name, method) for run in runs for method in _methods(run)
    }
    summary = json.loads((runs[0] / "summary.json").read_text())
    u = summary["eval"]["udgd"]
    first = next(i for i, a in enumerate(u["accuracy_per_layer"]) if a >= 0.3)
    row = next(r for r in table["rows"] if r["run"] == runs[0].name and r["method"] == "U-DGD")
    assert row["to_target"]["time_s"] == pytest.approx(u["time_s"][first])
    assert row["to_target"]["agent_bytes"] == pytest.approx(u["agent_bytes"][first])
    assert "| U-DGD |" in r.stdout


@pytest.mark.timeout(300)
def test_report_without_a_network_shows_no_seconds(runs: list[Path], untimed: Path, tmp_path: Path) -> None:
    """Catches a report that prices a run without a time model at 0 simulated seconds (in the table, the JSON or
    the figure of seconds), or that hides the seconds of a run that has one."""
    r = subprocess.run(
        ["surf-dist", "report", str(runs[0]), str(untimed), "--out", str(tmp_path), "--target", "0.3"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    rows = json.loads((tmp_path / "report.json").read_text())["rows"]
    reached = {(row["run"], row["method"]): row["to_target"] for row in rows if row["to_target"]}
    assert (untimed.name, "U-DGD") in reached and (runs[0].name, "U-DGD") in reached
    for (run, _), cost in reached.items():
        assert (cost["time_s"] is None) == (run == untimed.name) and cost["agent_bytes"] is not None
    table = [line.split(" | ") for line in (tmp_path / "report.md").read_text().splitlines() if line.startswith("| ")]
    seconds = {(cells[0].lstrip("| "), cells[1]): cells[5] for cells in table[1:]}
    assert seconds[(untimed.name, "U-DGD")] == "—" and seconds[(runs[0].name, "U-DGD")] not in ("—", "0")
    assert "no time model" in r.stdout and untimed.name in r.stdout.split("no time model")[1].splitlines()[0]
    fig = accuracy_figure(load_runs([runs[0], untimed]), "seconds", "simulated seconds")
    assert fig is not None
    legend = [t.get_text() for t in fig.get_axes()[0].get_legend().get_texts()]
    assert legend and all(label.startswith(f"{runs[0].name}: ") for label in legend)
    assert accuracy_figure(load_runs([untimed]), "seconds", "simulated seconds") is None


def test_accuracy_vs_bytes_draws_round_0_at_0(runs: list[Path]) -> None:
    """Catches round 0 (no bytes yet) clipped to the left edge of a log axis, or a method that sends no agent
    bytes drawn as if it did."""
    loaded = load_runs(runs[:1])
    fig = accuracy_figure(loaded, "bytes", "agent bytes")
    assert fig is not None
    ax = fig.get_axes()[0]
    assert ax.get_xscale() == "symlog" and ax.get_xlim()[0] == 0
    fig.canvas.draw()
    assert 0 in list(ax.get_xticks()) and "0" in ax.get_xlabel()
    lines = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert all(line.get_xdata()[0] == 0 and min(line.get_xdata()) == 0 for line in lines)
    summary = loaded[0].summary["eval"]
    silent = {method_label(n) for n, b in summary["baselines"].items() if not any(b["agent_bytes"])}
    assert silent, "the smoke run evaluates local and centralised, which send no agent bytes"
    assert {line.get_label() for line in lines} == _methods(runs[0]) - silent
    note = next(a.get_text() for a in ax.texts if "send no bytes" in a.get_text())
    assert all(label in note for label in silent)


def test_edge_traffic_only_over_one_graph(runs: list[Path], untimed: Path) -> None:
    """Catches a per-edge traffic picture of a run whose graph is redrawn per task (a mixture of the tasks'
    edges), or a per-agent count that loses messages."""
    fixed, redrawn = load_runs([untimed, runs[0]])
    name, fig, note = traffic_figure(fixed)
    assert name == f"edge_traffic_{untimed.name}.png" and note is None and "same graph" in fig.get_axes()[0].get_title()
    name, fig, note = traffic_figure(redrawn)
    assert name == f"agent_traffic_{runs[0].name}.png" and "redrawn per task" in note
    with open(runs[0] / "comm_edges.csv") as fh:
        rows = list(csv.DictReader(fh))
    sender = np.array([int(r["sender"]) for r in rows])
    messages = np.array([int(r["forward_messages"]) + int(r["backward_messages"]) for r in rows])
    num_agents = redrawn.summary["num_agents"]
    ax = agent_traffic("r", (sender, sender, messages), num_agents).get_axes()[0]
    counts = [patch.get_height() for patch in ax.patches]
    assert sum(counts) == num_agents  # one count per agent
    sent = np.bincount(sender, weights=messages, minlength=num_agents)
    assert ax.get_xlim()[0] <= sent.min() and sent.max() <= ax.get_xlim()[1]


@pytest.mark.timeout(300)
def test_sweep_without_a_network_prints_no_seconds(untimed: Path, tmp_path: Path) -> None:
    """Catches ``surf-dist sweep`` printing "in 0 s" (and writing 0) for a run with no time model."""
    out = tmp_path / "sweep.json"
    r = subprocess.run(
        ["surf-dist", "sweep", "--run", str(untimed), "--key", "failures.num_async", "--values", "0",
         "--set", 'eval.baselines=["dgd"]', "--out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(out.read_text())["runs"][str(untimed)]
    assert row["udgd"]["time_s"] is None and row["dgd"]["time_s"] is None
    assert "in —" in r.stdout and " s;" not in r.stdout and "no [network]" in r.stdout


def test_report_of_a_folder_without_a_run_is_bad_input(tmp_path: Path) -> None:
    """Catches a report that crashes with a traceback on a folder that holds no run."""
    r = subprocess.run(
        ["surf-dist", "report", str(tmp_path), "--out", str(tmp_path / "o")], capture_output=True, text=True
    )
    assert r.returncode == 2 and "no summary.json" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.timeout(300)
def test_tensorboard_scalars_one_per_step(runs: list[Path]) -> None:
    """Catches TensorBoard logging that is missing, or that disagrees with metrics.jsonl."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = EventAccumulator(str(runs[0] / "tensorboard"))
    board.Reload()
    rows = [json.loads(line) for line in (runs[0] / "metrics.jsonl").read_text().splitlines()]
    events = board.Scalars("train/lagrangian")
    assert [e.step for e in events] == [r["step"] for r in rows]
    assert [e.value for e in events] == pytest.approx([r["lagrangian"] for r in rows], rel=1e-6)
    assert not (runs[1] / "tensorboard").exists()


@pytest.mark.timeout(300)
def test_sweep_over_a_deadline(runs: list[Path], tmp_path: Path) -> None:
    """Catches a sweep that ignores its key, or a deadline that neither silences agents nor shortens rounds."""
    out = tmp_path / "sweep.json"
    r = subprocess.run(
        ["surf-dist", "sweep", "--run", str(runs[0]), "--key", "network.deadline_ms", "--values", "0,60",
         "--set", "network.link_spread=0.5", "--out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = json.loads(out.read_text())["runs"][str(runs[0])]
    assert [row["value"] for row in rows] == ["0", "60"]
    none, tight = rows
    assert none["udgd"]["deadline_misses"] == 0 < tight["udgd"]["deadline_misses"]
    assert tight["udgd"]["time_s"] < none["udgd"]["time_s"] and tight["dgd"]["time_s"] < none["dgd"]["time_s"]
