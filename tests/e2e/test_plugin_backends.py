"""A plugin file kept outside the repository, named by path in ``run.plugins``, registers a baseline that runs on
local, torch × 2 (forked ranks), torchrun × 2 and Ray × 2 with the same curves (float64, 1e-10), from the CLI and
from ``surf_dist.worker``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _commands import torchrun_command
from _processes import clean_env
from _runs import TINY_FLOAT64

import surf_dist

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plugin_heavy_ball.py"
SETS = [
    *TINY_FLOAT64,
    'eval.baselines=["dgd","heavy_ball_dgd"]',
    "eval.heavy_ball_dgd_momentum=0.6",
]
TOL = 1e-10


def _cli(args: list[str], cwd: Path) -> None:
    proc = subprocess.run(args, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, f"{' '.join(args)}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"


def _curves(run: Path) -> dict[str, list[float]]:
    ev = json.loads((run / "summary.json").read_text())["eval"]
    out = {"udgd": ev["udgd"]["accuracy_per_layer"], "udgd_loss": ev["udgd"]["loss_per_layer"]}
    for name, b in ev["baselines"].items():
        out[name] = b["accuracy"]
        out[f"{name}_bytes"] = b["agent_bytes"]
    return out


def _assert_same(a: dict[str, list[float]], b: dict[str, list[float]], what: str) -> None:
    assert a.keys() == b.keys(), what
    for key in a:
        assert len(a[key]) == len(b[key]) and all(
            abs(x - y) <= TOL * max(1.0, abs(y)) for x, y in zip(a[key], b[key])
        ), f"{what}: {key} differs\n{a[key]}\n{b[key]}"


@pytest.mark.timeout(1500)
def test_a_plugin_outside_the_repository_runs_the_same_on_every_backend(tmp_path: Path) -> None:
    """Catches a plugin that reaches the coordinator but not the workers (forked ranks, torchrun ranks, Ray actors),
    or a plugin method whose numbers depend on the backend."""
    # Prepare: the plugin lives in a folder of its own, outside the checkout; the runs start elsewhere
    plugins = tmp_path / "my_plugins"
    plugins.mkdir()
    plugin = plugins / "heavy.py"
    shutil.copy(EXAMPLE, plugin)
    work = tmp_path / "work"
    work.mkdir()
    sets = [*SETS, f'run.plugins=["{plugin}"]']
    flags = [arg for s in sets for arg in ("--set", s)]
    train = [sys.executable, "-m", "surf_dist", "train", "--preset", "smoke", "--quiet"]

    # Execute
    api = surf_dist.train(tmp_path / "api", preset="smoke", overrides=sets)
    _cli([*train, *flags, "--out", str(work / "local")], work)
    _cli([*train, *flags, "--backend", "torch", "--workers", "2", "--out", str(work / "torch")], work)
    _cli(torchrun_command("--preset", "smoke", "--quiet", *flags, "--out", str(work / "torchrun")), work)
    _cli([*train, *flags, "--backend", "ray", "--workers", "2", "--out", str(work / "ray")], work)

    # Assert
    oracle = _curves(work / "local")
    assert oracle["heavy_ball_dgd"] != oracle["dgd"]
    _assert_same(_curves(api.dir), oracle, "surf_dist.worker")
    for backend in ("torch", "torchrun", "ray"):
        _assert_same(_curves(work / backend), oracle, backend)
        assert json.loads((work / backend / "summary.json").read_text())["workers"] == 2
