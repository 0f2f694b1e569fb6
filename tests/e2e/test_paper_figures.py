"""``surf-dist paper-figures --quick``: the five figures, their numbers and their tables from one command."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import matplotlib
import pytest
from matplotlib.text import Text

from surf_dist.config.presets import PRESETS
from surf_dist.paper import plots
from surf_dist.plugins import method_label

matplotlib.use("Agg")

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
    panels = figs["fig2"]["panels"]
    assert [p["key"] for p in panels] == ["kregular", "random", "star"]
    # each panel titled from its own run's graph: the quick random graph is p = 0.3, not the paper's 0.1
    assert [p["title"] for p in panels] == [
        "3-regular, n = 8",
        "random, n = 8, p = 0.3, A + Aᵀ",
        "star, n = 9 (3 uploads a round)",
    ]
    for panel in panels:
        run_config = json.loads((Path(panel["run"]) / "config.json").read_text())
        assert panel["spec"] == run_config["topology"]["spec"] and list(panel["baselines"]) == list(
            run_config["eval"]["baselines"]
        )
    assert list(panels[2]["baselines"]) == PRESETS["star"]["eval"]["baselines"]  # the paper's five and the references
    # every figure drawn from these numbers carries the quick mark; Figure 2 names every evaluated method
    mark = figs["mark"]
    assert mark.startswith("quick:") and "not the paper's numbers" in mark
    for n in range(1, 6):
        fig = plots.figure(f"fig{n}", figs[f"fig{n}"], mark=mark)
        assert mark in [t.get_text() for t in fig.findobj(Text)], n
    fig2 = plots.figure("fig2", figs["fig2"], mark=mark)
    for ax, panel in zip(fig2.get_axes(), panels):
        assert ax.get_title() == panel["title"]
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [*map(method_label, panel["baselines"]), "U-DGD"]
    assert [row["alpha"] for row in figs["fig3"]["rows"]] == [1.0, 0.7, 0.3]
    assert len(figs["fig4"]["surf"]) == len(figs["fig4"]["counts"]) == len(figs["fig4"]["standard"])
    assert [row["epsilon"] for row in figs["fig5"]["rows"]] == [0.001, 0.01, 0.05, 0.1, 0.5]
    assert all(len(row["accuracy_per_layer"]) == 6 for row in figs["fig5"]["rows"])  # L = 5
    tables = (out / "tables.md").read_text()
    assert all(f"## Figure {n}" in tables for n in range(1, 6))
    assert f"> **{mark}**" in tables and "random (p = 0.1)" not in tables
    assert "| random, n = 8, p = 0.3, A + Aᵀ | U-DGD |" in tables
    # a second call reuses the finished runs and redraws
    mtime = (out / "runs" / "surf" / "summary.json").stat().st_mtime
    r = subprocess.run(["surf-dist", "paper-figures", "--out", str(out), "--quick"], capture_output=True, text=True)
    assert r.returncode == 0 and "training" not in r.stdout
    assert (out / "runs" / "surf" / "summary.json").stat().st_mtime == mtime


@pytest.mark.timeout(600)
def test_paper_figures_with_the_reference_settings_and_links_that_fail(tmp_path):
    """Catches ``--reference`` runs that do not use the reference code's settings, ``--only`` drawing other
    figures, or Figure 4 without its second kind of asynchrony (links that fail)."""
    out = tmp_path / "ref"
    command = ["surf-dist", "paper-figures", "--out", str(out), "--quick", "--reference", "--only", "4"]
    r = subprocess.run(command, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(p.name for p in out.glob("fig*.png")) == ["fig4.png"]
    config = json.loads((out / "runs" / "surf" / "config.json").read_text())["model"]
    assert (config["normalisation"], config["w0_std"], config["init"], config["tap_init"]) == (
        "agent-batch", 5.0, "paper", "paper",
    )  # fmt: skip
    figs = json.loads((out / "figures.json").read_text())
    assert figs["reference"] is True and set(figs) & {"fig1", "fig2", "fig3", "fig5"} == set()
    links = figs["fig4"]["links"]
    assert links["ps"] == [0.0, 0.3] and len(links["surf"]) == len(links["standard"]) == 2
    # p = 0 is the evaluation without failures: the silent-agent sweep's first point
    assert links["surf"][0] == figs["fig4"]["surf"][0]
    fig = plots.figure("fig4", figs["fig4"])
    assert [ax.get_xlabel() for ax in fig.get_axes()] == [
        "silent agents per layer", "probability that a link fails in a round",
    ]  # fmt: skip
    assert "Links that fail" in (out / "tables.md").read_text()
    bad = subprocess.run(
        ["surf-dist", "paper-figures", "--out", str(out), "--only", "6"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "--only" in bad.stderr and "Traceback" not in bad.stderr


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
