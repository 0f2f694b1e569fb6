"""Chaos on the torch backend: about one SIGKILL every 10 steps of random ranks (rank 0, the coordinator, among
them) over a thousand steps, on forked ranks and under torchrun; a kill inside a checkpoint write and inside
the evaluation, on the local backend and on forked ranks. Every run must end as the clean run ends: the same
per-step losses, the same final parameters element by element, one metrics row per step, each kill fired once.

``SURF_CHAOS_STEPS`` sets the length of the random-kill runs (default 1,000 forked, 300 under torchrun, where a
restart starts fresh interpreters: about 4 s each on two cores).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _chaos import MTBF_STEPS, assert_survived, chaos_sets, clean_run, planned_kills
from _commands import torchrun_command

from surf_dist.worker import checkpoint

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _steps(default: int) -> int:
    return int(os.environ.get("SURF_CHAOS_STEPS", default))


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def _train(out: Path, sets: list[str], *backend: str, timeout_s: float) -> subprocess.CompletedProcess:
    args = [a for s in sets for a in ("--set", s)]
    cmd = [sys.executable, "-m", "surf_dist", "train", "--preset", "smoke", *backend, "--out", str(out), "--quiet"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout_s, env=_env())


@pytest.mark.timeout(1200)
def test_forked_ranks_survive_a_hundred_random_kills(tmp_path: Path) -> None:
    """Catches a kill that loses or repeats a step, a restart that resumes to other numbers, a coordinator (rank
    0) whose death the supervisor does not survive, or a kill that fires twice, over ~100 kills."""
    # Prepare
    num_steps = _steps(1000)
    kills = planned_kills(num_steps, 2)
    assert {w for w, _ in kills} == {0, 1}, "the schedule must kill the coordinator and the other rank"
    sets = chaos_sets(num_steps)
    clean_run(sets, tmp_path / "clean")

    # Execute
    chaos = [*sets, f"failures.kill_mtbf_steps={MTBF_STEPS}", f"failures.max_restarts={len(kills)}"]
    r = _train(tmp_path / "run", chaos, "--backend", "torch", "--workers", "2", timeout_s=1100)

    # Assert
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr.count("died (signal SIGKILL)") == len(kills), r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    assert_survived(tmp_path / "run", tmp_path / "clean", kills)


@pytest.mark.timeout(1500)
def test_torchrun_survives_random_kills(tmp_path: Path) -> None:
    """Catches a torchrun job that does not survive its ranks' deaths (rank 0 among them: the agent restarts the
    whole group, which must resume from the last checkpoint each time) or resumes to other numbers."""
    # Prepare
    num_steps = _steps(300)
    kills = planned_kills(num_steps, 2)
    sets = [*chaos_sets(num_steps), f"failures.kill_mtbf_steps={MTBF_STEPS}", "run.timeout_s=30"]
    clean_run(chaos_sets(num_steps), tmp_path / "clean")
    out = tmp_path / "run"

    # Execute
    cmd = torchrun_command("--preset", "smoke", *(a for s in sets for a in ("--set", s)), "--out", str(out), "--quiet",
                           max_restarts=len(kills))  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1400, env=_env())

    # Assert
    assert r.returncode == 0, r.stderr[-3000:]
    assert_survived(out, tmp_path / "clean", kills)


CHECKPOINT_AND_EVAL = [
    pytest.param([], [(0, 8, "checkpoint"), (0, 1, "eval")], id="local"),
    pytest.param(
        ["--backend", "torch", "--workers", "2"], [(0, 8, "checkpoint"), (1, 0, "eval"), (0, 1, "eval")], id="torch"
    ),
]


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("backend", "points"), CHECKPOINT_AND_EVAL)
def test_a_kill_inside_a_checkpoint_write_or_the_evaluation_loses_nothing(
    tmp_path: Path, backend: list[str], points: list[tuple[int, int, str]]
) -> None:
    """Catches a coordinator killed between setting the last checkpoint aside and renaming the new one into place
    (``checkpoint.pt`` missing, ``checkpoint.prev.pt`` and a temp file left) that cannot resume, resumes from the
    half-written file or starts over; and a kill in the final evaluation that ends the run or changes its numbers."""
    # Prepare: 24 steps, a checkpoint every 4 (and at the validation of step 24); the kill inside the one of step 8
    sets = [*chaos_sets(24), "train.checkpoint_every=4", "data.num_meta_test=2"]
    clean_run(sets, tmp_path / "clean", workers=2 if backend else 1)
    kill = "failures.kill=[" + ", ".join(f'"{w}@{s}:{point}"' for w, s, point in points) + "]"

    # Execute
    r = _train(tmp_path / "run", [*sets, kill], *backend, timeout_s=500)

    # Assert: every kill fired once; the checkpoint of step 8 was lost and the one of step 4 resumed
    assert r.returncode == 0, r.stderr[-3000:]
    lines = [line for line in r.stderr.splitlines() if line.startswith("surf-dist")]
    assert len(lines) == len(points), r.stderr
    assert "at step 8; restarting every worker from the checkpoint of step 4" in lines[0], r.stderr
    assert all("at step 24; restarting every worker from the checkpoint of step 24" in line for line in lines[1:])
    run = tmp_path / "run"
    assert checkpoint.step_of(run) == 24 and not (run / ".checkpoint.pt.new").exists()
    assert_survived(run, tmp_path / "clean", [], points)
