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
