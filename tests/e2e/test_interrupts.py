"""SIGINT and SIGTERM to ``surf-dist train``: every worker stops within seconds, one line says at which step,
the exit code is 130 or 143, and the same command run again resumes and ends with one metrics row per step."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

import pytest
from _processes import clean_env, interrupt, metrics_steps, start, train_command, wait_for_checkpoint, wait_for_file

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STOP_WITHIN_S = 15.0  # from the signal to every worker gone (measured: ~1-2 s; the machine is shared)
LINE = re.compile(r"^surf-dist train: interrupted at step (\d+); rerun the same command to resume \(from step (\d+)\)$")


# the local case is interrupted while it computes; the torch cases while a rank hangs at step 9
# (``failures.hang``: deterministic, and the rerun, which does not hang again, has only 3 steps left)
CASES = [
    pytest.param([], ["train.epochs=20"], signal.SIGINT, False, 5, id="local-SIGINT"),
    pytest.param(
        ["--backend", "torch", "--workers", "2"], ["failures.hang=0@9"], signal.SIGTERM, False, 9, id="torch-SIGTERM"
    ),
    pytest.param(
        ["--backend", "torch", "--workers", "2"], ["failures.hang=1@9"], signal.SIGINT, True, 9, id="torch-ctrl-c"
    ),
]


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("backend_args", "sets", "signum", "whole_group", "min_rows"), CASES)
def test_interrupt_stops_every_worker_and_the_rerun_resumes(
    tmp_path: Path, backend_args: list[str], sets: list[str], signum: int, whole_group: bool, min_rows: int
) -> None:
    """Catches an interrupt that leaves ranks training, prints tracebacks (the ranks' KeyboardInterrupt on
    Ctrl-C), exits with 1 instead of 130/143, or whose rerun does not resume or duplicates metrics rows."""
    # Prepare
    out = tmp_path / "run"
    cmd = train_command(out, *backend_args, *(a for s in [*sets, "run.timeout_s=30"] for a in ("--set", s)))
    proc = start(cmd)
    wait_for_checkpoint(proc, out, min_rows=min_rows, timeout_s=240)
    for hang in (s.split("=", 1)[1] for s in sets if s.startswith("failures.hang=")):
        # the hang has fired (its marker written): an interrupt before that would leave the hang to the rerun,
        # which would then time out and restart (a third attempt; seen on a loaded machine)
        wait_for_file(proc, out / "failures" / f"hang-{hang}.json", timeout_s=60)

    # Execute
    err, seconds = interrupt(proc, signum, whole_group=whole_group)

    # Assert: the interrupt
    assert proc.returncode == 128 + signum, err
    assert seconds < STOP_WITHIN_S
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and LINE.match(lines[0]), err
    step, resume_at = (int(g) for g in LINE.match(lines[0]).groups())
    assert step == len(metrics_steps(out)) and 0 < resume_at <= step

    # Assert: the rerun
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=clean_env())
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert metrics_steps(out) == list(range(len(summary["train"]["loss_per_step"])))
    assert summary["timing"]["attempts"] == 2


BY_TIME = ["train.epochs=30", "train.checkpoint_every=100000", "train.validate_every=100000"]


@pytest.mark.timeout(400)
@pytest.mark.parametrize("backend_args", [[], ["--backend", "torch", "--workers", "2"]], ids=["local", "torch"])
def test_a_checkpoint_by_time_keeps_the_work_of_an_interrupt(tmp_path: Path, backend_args: list[str]) -> None:
    """Catches an interrupt that loses every step when the step schedule has not written a checkpoint yet
    (``train.checkpoint_every=100`` and Ctrl-C at step 90), workers that disagree on a checkpoint the
    coordinator's clock decided (a hang), or a resumed run that differs from one never interrupted."""
    # Prepare: no checkpoint by step or validation before the last step; one every half second by time
    from surf_dist.config import load_config
    from surf_dist.runtime.launch import run_local

    out = tmp_path / "run"
    sets = [*BY_TIME, "run.checkpoint_every_s=0.5", "run.timeout_s=30"]
    cmd = train_command(out, *backend_args, *(a for s in sets for a in ("--set", s)))
    proc = start(cmd)
    wait_for_checkpoint(proc, out, min_rows=1, timeout_s=240)

    # Execute
    err, _ = interrupt(proc, signal.SIGINT, whole_group=True)
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=clean_env())
    reference = run_local(load_config("smoke", None, BY_TIME), tmp_path / "clean", progress=False)

    # Assert
    match = LINE.match(err.strip().splitlines()[-1])
    assert match, err
    assert int(match.group(2)) > 0, err  # resumed from a checkpoint the step schedule would not have written
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert metrics_steps(out) == list(range(180)) and summary["timing"]["attempts"] == 2
    assert reference is not None
    assert summary["train"]["loss_per_step"] == pytest.approx(reference["train"]["loss_per_step"], rel=1e-4)
