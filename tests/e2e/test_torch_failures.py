"""Real process failures under the torch backend: SIGKILLed ranks (under torchrun and forked), a hung rank,
and bad input found by the ranks themselves."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from _commands import corrupt_fashion_mnist, torchrun_command
from _runs import assert_same_parameters

from surf_dist.config import load_config
from surf_dist.runtime.launch import run_local

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def local_smoke(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local")
    run_local(load_config("smoke"), out, progress=False)
    return out


def _forked_torch_run(out: Path, *sets: str, timeout_s: int) -> subprocess.CompletedProcess:
    """``surf-dist train --backend torch --workers 2 --preset smoke`` with ``--set`` overrides."""
    args = ["surf-dist", "train", "--backend", "torch", "--workers", "2", "--preset", "smoke", "--out", str(out)]
    for item in sets:
        args += ["--set", item]
    return subprocess.run([*args, "--quiet"], capture_output=True, text=True, timeout=timeout_s)


def _assert_same_end_state(run: Path, reference: Path) -> None:
    """The same per-step losses and, element by element, the same final parameters as the clean local run."""
    summary, ref = (json.loads((r / "summary.json").read_text()) for r in (run, reference))
    assert summary["train"]["loss_per_step"] == pytest.approx(ref["train"]["loss_per_step"], rel=1e-5)
    assert_same_parameters(run, reference, rtol=1e-4)


def _steps(out: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.timeout(420)
def test_torchrun_rank_killed_mid_training_resumes_to_same_parameters(tmp_path, local_smoke):
    """Catches a run that does not survive a SIGKILLed rank, fires the kill twice, resumes to other numbers,
    or whose surviving rank prints a chained WorkerTimeout traceback instead of one line."""
    out = tmp_path / "run"
    cmd = torchrun_command("--preset", "smoke", "--set", "failures.kill=1@5", "--set", "run.timeout_s=30",
                           "--out", str(out), "--quiet", max_restarts=1)  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((out / "summary.json").read_text())
    assert [(k["worker"], k["step"]) for k in s["failures"]["injected"]["kills"]] == [(1, 5)]
    _assert_same_end_state(out, local_smoke)
    assert "Traceback" not in r.stderr and "TCPStore" not in r.stderr, r.stderr[-3000:]
    # rank 0 either saw its peer die (one line) or was stopped by torchrun's SIGTERM first (no line)
    ours = [line for line in r.stderr.splitlines() if line.startswith("surf-dist")]
    assert len(ours) <= 1, r.stderr
    for line in ours:
        assert "(rank 0 of 2): worker 0: " in line and "at step 5" in line, r.stderr
        assert "suspected hung or dead: worker(s) [1]" in line
    assert _steps(out) == list(range(12))


@pytest.mark.timeout(300)
def test_killed_rank_0_is_one_line_naming_the_worker_and_step(tmp_path, local_smoke):
    """Catches survivors of a killed rank 0 printing torch's C++ TCPStore stack dumps or "worker 0 at step
    None", or a kill event that does not name the worker and the step."""
    out = tmp_path / "run"
    r = _forked_torch_run(out, "failures.kill=0@5", "run.timeout_s=10", timeout_s=280)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr.splitlines() == [
        "surf-dist: rank 0 died (signal SIGKILL) at step 5; restarting every worker from the checkpoint of step 4"
    ], r.stderr[-3000:]
    _assert_same_end_state(out, local_smoke)
    assert _steps(out) == list(range(12))


@pytest.mark.timeout(300)
def test_input_error_in_ranks_ends_the_run_once_with_exit_2(tmp_path):
    """Catches bad input that only the ranks can see (a corrupt data file) being treated as a crash: retried,
    reported once per attempt with tracebacks, exit 1, and an empty --out left behind."""
    root = corrupt_fashion_mnist(tmp_path / "data")
    out = tmp_path / "run"
    r = _forked_torch_run(out, "data.dataset=fashion-mnist", f"data.root={root}", timeout_s=280)
    assert r.returncode == 2, r.stderr[-3000:]
    assert r.stderr.count("bad input (1 problem)") == 1 and "train-images-idx3-ubyte: not an IDX file" in r.stderr
    assert "Traceback" not in r.stderr and "restarting" not in r.stderr
    assert not out.exists()


@pytest.mark.timeout(300)
def test_torchrun_input_error_exits_2_in_every_rank(tmp_path):
    """Catches ranks under torchrun that meet bad input after the rendezvous (their peers left waiting) or
    exit 1 with a traceback: each rank exits 2 with the message, before the rendezvous."""
    root = corrupt_fashion_mnist(tmp_path / "data")
    out = tmp_path / "run"
    cmd = torchrun_command("--preset", "smoke", "--set", "data.dataset=fashion-mnist", "--set", f"data.root={root}",
                           "--out", str(out), "--quiet", max_restarts=0)  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=280, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode != 0
    for rank in (0, 1):
        assert f"surf-dist train (rank {rank} of 2): bad input (1 problem)" in r.stderr, r.stderr[-3000:]
    assert "exitcode  : 2" in r.stderr, r.stderr[-3000:]  # torchrun reports the first rank(s) it saw end
    assert "WorkerTimeout" not in r.stderr and "InputError" not in r.stderr


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
    _assert_same_end_state(out, local_smoke)
