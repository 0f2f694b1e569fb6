"""Real process failures under the torch backend: a SIGKILLed rank under torchrun, and a hung rank."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from _commands import torchrun_command

from surf_dist.config import load_config
from surf_dist.runtime.launch import run_local

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def local_smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    return run_local(load_config("smoke"), out, progress=False)


def _forked_torch_run(out: Path, *sets: str, timeout_s: int) -> subprocess.CompletedProcess:
    """``surf-dist train --backend torch --workers 2 --preset smoke`` with ``--set`` overrides."""
    args = ["surf-dist", "train", "--backend", "torch", "--workers", "2", "--preset", "smoke", "--out", str(out)]
    for item in sets:
        args += ["--set", item]
    return subprocess.run([*args, "--quiet"], capture_output=True, text=True, timeout=timeout_s)


def _assert_same_end_state(summary: dict, reference: dict) -> None:
    assert summary["train"]["loss_per_step"] == pytest.approx(reference["train"]["loss_per_step"], rel=1e-5)
    for name, norm in reference["train"]["final_param_norms"].items():
        assert summary["train"]["final_param_norms"][name] == pytest.approx(norm, rel=1e-5)


@pytest.mark.timeout(420)
def test_torchrun_rank_killed_mid_training_resumes_to_same_parameters(tmp_path, local_smoke):
    """Catches a run that does not survive a SIGKILLed rank, fires the kill twice, or resumes to other numbers."""
    out = tmp_path / "run"
    cmd = torchrun_command("--preset", "smoke", "--set", "failures.kill=1@5", "--set", "run.timeout_s=30",
                           "--out", str(out), "--quiet", max_restarts=1)  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((out / "summary.json").read_text())
    assert [(k["worker"], k["step"]) for k in s["failures"]["injected"]["kills"]] == [(1, 5)]
    _assert_same_end_state(s, local_smoke)


@pytest.mark.timeout(300)
def test_hung_rank_is_named_within_the_timeout(tmp_path):
    """Catches a hung rank that blocks the run for the default 30 minutes or is not named in the error."""
    t0 = time.monotonic()
    r = _forked_torch_run(tmp_path / "run", "failures.hang=1@3", "run.timeout_s=5", "failures.max_restarts=0",
                          timeout_s=280)  # fmt: skip
    assert r.returncode == 1
    assert "suspected hung or dead: worker(s) [1]" in r.stderr, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert time.monotonic() - t0 < 280


@pytest.mark.timeout(420)
def test_hung_rank_is_survived_with_a_restart(tmp_path, local_smoke):
    """Catches a supervisor that cannot restart after a hang, or a hang that fires again after the restart."""
    out = tmp_path / "run"
    r = _forked_torch_run(out, "failures.hang=0@4", "run.timeout_s=5", "failures.max_restarts=1", timeout_s=400)
    assert r.returncode == 0, r.stderr[-2000:]
    _assert_same_end_state(json.loads((out / "summary.json").read_text()), local_smoke)
