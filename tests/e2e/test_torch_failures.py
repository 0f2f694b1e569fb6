"""Real process failures under the torch backend: a SIGKILLed rank under torchrun, and a hung rank."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from surf_dist.backends import run_local
from surf_dist.config import load_config

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def local_smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    return run_local(load_config("smoke"), out, progress=False)


@pytest.mark.timeout(420)
def test_torchrun_rank_killed_mid_training_resumes_to_same_parameters(tmp_path, local_smoke):
    """Catches a run that does not survive a SIGKILLed rank, fires the kill twice, or resumes to other numbers."""
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "--max-restarts",
        "1",
        "-m",
        "surf_dist",
        "train",
        "--backend",
        "torch",
        "--preset",
        "smoke",
        "--set",
        "failures.kill=1@5",
        "--set",
        "run.timeout_s=30",
        "--out",
        str(out),
        "--quiet",
    ]
    r = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=400,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((out / "summary.json").read_text())
    kills = s["failures"]["injected"]["kills"]
    assert [(k["worker"], k["step"]) for k in kills] == [(1, 5)]
    assert s["train"]["loss_per_step"] == pytest.approx(local_smoke["train"]["loss_per_step"], rel=1e-5)
    for name, norm in local_smoke["train"]["final_param_norms"].items():
        assert s["train"]["final_param_norms"][name] == pytest.approx(norm, rel=1e-5)


@pytest.mark.timeout(300)
def test_hung_rank_is_named_within_the_timeout(tmp_path):
    """Catches a hung rank that blocks the run for the default 30 minutes or is not named in the error."""
    t0 = time.monotonic()
    r = subprocess.run(
        [
            "surf-dist",
            "train",
            "--backend",
            "torch",
            "--workers",
            "2",
            "--preset",
            "smoke",
            "--set",
            "failures.hang=1@3",
            "--set",
            "run.timeout_s=5",
            "--set",
            "failures.max_restarts=0",
            "--out",
            str(tmp_path / "run"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=280,
    )
    elapsed = time.monotonic() - t0
    assert r.returncode == 1
    assert "suspected hung or dead: worker(s) [1]" in r.stderr, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert elapsed < 280


@pytest.mark.timeout(420)
def test_hung_rank_is_survived_with_a_restart(tmp_path, local_smoke):
    """Catches a supervisor that cannot restart after a hang, or a hang that fires again after the restart."""
    out = tmp_path / "run"
    r = subprocess.run(
        [
            "surf-dist",
            "train",
            "--backend",
            "torch",
            "--workers",
            "2",
            "--preset",
            "smoke",
            "--set",
            "failures.hang=0@4",
            "--set",
            "run.timeout_s=5",
            "--set",
            "failures.max_restarts=1",
            "--out",
            str(out),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads((out / "summary.json").read_text())
    for name, norm in local_smoke["train"]["final_param_norms"].items():
        assert s["train"]["final_param_norms"][name] == pytest.approx(norm, rel=1e-5)
