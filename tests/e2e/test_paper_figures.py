"""``surf-dist paper-figures --quick``: the five figures, their numbers and their tables from one command."""

from __future__ import annotations

import json
import subprocess

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.timeout(600)
def test_paper_figures_quick_writes_five_figures_and_their_numbers(tmp_path):
    """Catches a figure, a key of figures.json or a traceable run missing from the one-command regeneration."""
    out = tmp_path / "figs"
    r = subprocess.run(["surf-dist", "paper-figures", "--out", str(out), "--quick"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    figs = json.loads((out / "figures.json").read_text())
    for n in range(1, 6):
        assert (out / f"fig{n}.png").stat().st_size > 1000
        assert f"fig{n}" in figs
    assert (out / "runs" / "surf" / "summary.json").exists() and (out / "runs" / "standard" / "summary.json").exists()
    assert len(figs["fig1"]["surf"]["accuracy"]) == len(figs["fig1"]["layers"])
    assert [p["title"] for p in figs["fig2"]["panels"]] == ["3-regular", "random (p = 0.1)", "star"]
    assert list(figs["fig2"]["panels"][2]["baselines"]) == ["fedavg"]
    assert [row["alpha"] for row in figs["fig3"]["rows"]] == [1.0, 0.7, 0.3]
    assert len(figs["fig4"]["surf"]) == len(figs["fig4"]["counts"]) == len(figs["fig4"]["standard"])
    assert [row["epsilon"] for row in figs["fig5"]["rows"]] == [0.001, 0.01, 0.05, 0.1, 0.5]
    assert all(len(row["accuracy_per_layer"]) == 6 for row in figs["fig5"]["rows"])  # L = 5
    tables = (out / "tables.md").read_text()
    assert all(f"## Figure {n}" in tables for n in range(1, 6))
    # a second call reuses the finished runs and redraws
    mtime = (out / "runs" / "surf" / "summary.json").stat().st_mtime
    r = subprocess.run(["surf-dist", "paper-figures", "--out", str(out), "--quick"], capture_output=True, text=True)
    assert r.returncode == 0 and "training" not in r.stdout
    assert (out / "runs" / "surf" / "summary.json").stat().st_mtime == mtime


@pytest.mark.timeout(900)
def test_a_killed_paper_figures_resumes_on_rerun(tmp_path):
    """Catches a rerun of a killed ``paper-figures`` that trains its finished runs again or starts its interrupted
    run over (instead of resuming it from its last checkpoint), or whose figures differ from an uninterrupted
    call's."""
    import os
    import signal
    import time

    from _processes import start

    # Prepare: a clean call, for the figures' numbers
    clean, out = tmp_path / "clean", tmp_path / "figs"
    assert (
        subprocess.run(["surf-dist", "paper-figures", "--out", str(clean), "--quick"], capture_output=True).returncode
        == 0
    )

    # Execute: SIGKILL (nothing can clean up) while a run trains, after another has finished
    proc = start(["surf-dist", "paper-figures", "--out", str(out), "--quick"])
    runs = out / "runs"

    def mid_training() -> list[str]:
        return (
            [r.name for r in runs.glob("*") if (r / "checkpoint.pt").exists() and not (r / "summary.json").exists()]
            if runs.exists()
            else []
        )

    deadline = time.monotonic() + 300
    while not (mid_training() and list(runs.glob("*/summary.json"))):
        assert proc.poll() is None and time.monotonic() < deadline, "no run was caught training"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {r.parent.name: r.stat().st_mtime for r in runs.glob("*/summary.json")}
    interrupted = mid_training()
    rerun = subprocess.run(["surf-dist", "paper-figures", "--out", str(out), "--quick"], capture_output=True, text=True)

    # Assert
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    for name, mtime in finished.items():
        assert (runs / name / "summary.json").stat().st_mtime == mtime, f"{name} was trained again"
        assert f"training {runs / name} " not in rerun.stdout
    for name in interrupted:
        timing = json.loads((runs / name / "timing.json").read_text())
        assert timing["attempts"] == 2, f"{name}: {timing}"
        steps = [json.loads(line)["step"] for line in (runs / name / "metrics.jsonl").read_text().splitlines()]
        assert steps == list(range(len(steps))) and steps, name
    figures, reference = (json.loads((d / "figures.json").read_text()) for d in (out, clean))
    for fig in ("fig1", "fig3", "fig4"):  # the numbers, not the paths of the runs behind them

        def numbers(d: dict) -> dict:
            return {k: v for k, v in d.items() if k not in ("runs", "run") and not k.endswith("_run")}

        assert numbers(figures[fig]) == numbers(reference[fig]), fig
