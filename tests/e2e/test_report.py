"""``surf-dist report`` over runs with a network model, and TensorBoard scalars beside metrics.jsonl."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from surf_dist.config import load_config
from surf_dist.runtime.launch import run_local

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
    for name in [*names, *(f"edge_traffic_{run.name}" for run in runs)]:
        assert (tmp_path / f"{name}.png").stat().st_size > 1000, name
    table = json.loads((tmp_path / "report.json").read_text())
    assert {(row["run"], row["method"]) for row in table["rows"]} == {
        (run.name, method) for run in runs for method in ("U-DGD", "DGD", "DSGD", "DFEDAVGM")
    }
    summary = json.loads((runs[0] / "summary.json").read_text())
    u = summary["eval"]["udgd"]
    first = next(i for i, a in enumerate(u["accuracy_per_layer"]) if a >= 0.3)
    row = next(r for r in table["rows"] if r["run"] == runs[0].name and r["method"] == "U-DGD")
    assert row["to_target"]["time_s"] == pytest.approx(u["time_s"][first])
    assert row["to_target"]["agent_bytes"] == pytest.approx(u["agent_bytes"][first])
    assert "| U-DGD |" in r.stdout


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
