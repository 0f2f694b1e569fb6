"""Every script in ``examples/`` runs as a user would run it (``python examples/NAME.py``), from another folder,
and does what it says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _processes import clean_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(name: str, tmp_path: Path, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--out", str(tmp_path / "out"), *args],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"{name}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


def test_every_example_is_tested() -> None:
    """Catches an example added without a test here."""
    tested = {"plugin_heavy_ball.py", "dataset_from_arrays.py", "local_mlp.py", "sweep_figure.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


@pytest.mark.timeout(600)
def test_plugin_heavy_ball(tmp_path: Path) -> None:
    """Catches the heavy-ball plugin failing when run as a script (it registers itself and names its own file)."""
    out = _run("plugin_heavy_ball.py", tmp_path)
    assert "heavy_ball_dgd:" in out and "dgd:" in out


@pytest.mark.timeout(600)
def test_dataset_from_arrays(tmp_path: Path) -> None:
    """Catches the arrays dataset plugin failing end to end."""
    assert "blobs (4 classes)" in _run("dataset_from_arrays.py", tmp_path)


@pytest.mark.timeout(900)
def test_local_mlp(tmp_path: Path) -> None:
    """Catches the local-network plugin failing end to end."""
    out = _run("local_mlp.py", tmp_path)
    assert "U-DGD (mlp2) per layer" in out and "U-DGD (paper) per layer" in out


@pytest.mark.timeout(900)
def test_sweep_figure(tmp_path: Path) -> None:
    """Catches the Python-driven sweep failing, or not drawing its figure."""
    out = _run("sweep_figure.py", tmp_path, "--counts", "0,2")
    assert "2 silent agents per layer" in out
    assert (tmp_path / "out" / "sweep.png").stat().st_size > 10_000
