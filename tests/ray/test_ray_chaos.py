"""Chaos on Ray: random SIGKILLs of the actors (the one hosting rank 0, the coordinator, among them) about one
every 10 steps, and an actor frozen by SIGSTOP. Every run must end as the clean run ends: the same per-step
losses, the same final parameters element by element, one metrics row per step, each fault fired once.

``SURF_CHAOS_STEPS`` sets the length of the random-kill run (default 300: a restart starts two actors, each a
fresh interpreter importing torch, about 7 s on two cores; 1,000 steps and ~100 kills take about 12 minutes).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _chaos import MTBF_STEPS, assert_survived, chaos_sets, clean_run, planned_kills

pytestmark = [pytest.mark.ray, pytest.mark.slow]

RAY_SETS = ["run.ray_cpus_per_worker=0.5", "run.threads_per_worker=1"]


def _ray_train(out: Path, sets: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    """``surf-dist train --backend ray --workers 2`` (a local Ray of its own) with ``--set`` overrides."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(OMP_NUM_THREADS="1", RAY_USAGE_STATS_ENABLED="0")
    cmd = [sys.executable, "-m", "surf_dist", "train", "--backend", "ray", "--workers", "2", "--preset", "smoke"]
    args = [a for s in [*RAY_SETS, *sets] for a in ("--set", s)]
    return subprocess.run([*cmd, *args, "--out", str(out), "--quiet"], capture_output=True, text=True,
                          timeout=timeout_s, env=env)  # fmt: skip


@pytest.mark.timeout(1800)
def test_ray_survives_random_kills_of_its_actors(tmp_path: Path) -> None:
    """Catches a driver that gives up on, or hangs after, a dead actor (the coordinator's among them), a restart
    that does not resume from the last checkpoint or resumes to other numbers, or a kill that fires twice."""
    # Prepare
    num_steps = int(os.environ.get("SURF_CHAOS_STEPS", 300))
    kills = planned_kills(num_steps, 2)
    assert {w for w, _ in kills} == {0, 1}, "the schedule must kill the coordinator's actor and the other"
    clean_run(chaos_sets(num_steps), tmp_path / "clean")

    # Execute
    sets = [*chaos_sets(num_steps), f"failures.kill_mtbf_steps={MTBF_STEPS}", f"failures.max_restarts={len(kills)}"]
    r = _ray_train(tmp_path / "run", [*sets, "run.timeout_s=30"], timeout_s=1700)

    # Assert
    assert r.returncode == 0, r.stderr[-3000:]
    assert len(re.findall(r"Ray actor \d died", r.stderr)) == len(kills), r.stderr[-3000:]
    assert_survived(tmp_path / "run", tmp_path / "clean", kills)


@pytest.mark.timeout(600)
def test_a_frozen_actor_is_named_within_the_timeout_and_the_run_restarts(tmp_path: Path) -> None:
    """Catches an actor frozen by SIGSTOP (alive to Ray, silent to its peers) that blocks the run for ever, is not
    named, is left running (stopped) after the restart, or whose restart resumes to other numbers."""
    # Prepare
    sets = chaos_sets(24)
    clean_run(sets, tmp_path / "clean")
    timeout_s = 10

    # Execute
    t0 = time.monotonic()
    r = _ray_train(tmp_path / "run", [*sets, 'failures.stop=["1@7"]', f"run.timeout_s={timeout_s}"], timeout_s=500)
    seconds = time.monotonic() - t0

    # Assert: named, restarted from the checkpoint of step 5, and the same run as the clean one
    assert r.returncode == 0, r.stderr[-3000:]
    lines = [line for line in r.stderr.splitlines() if line.startswith("surf-dist:")]
    assert len(lines) == 1, r.stderr[-3000:]
    assert "timed out waiting for its peers" in lines[0] and "suspected hung or dead: worker(s) [1]" in lines[0]
    assert lines[0].endswith("at step 7; restarting every worker from the checkpoint of step 5"), lines[0]
    marker = json.loads((tmp_path / "run" / "failures" / "stop-1@7.json").read_text())
    assert marker["signal"] == "SIGSTOP"
    assert not Path(f"/proc/{marker['pid']}").exists(), "the frozen actor was left behind"
    assert seconds < 500
    assert_survived(tmp_path / "run", tmp_path / "clean", [], attempts=2)
