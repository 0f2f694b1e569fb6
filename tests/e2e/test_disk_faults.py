"""A run directory whose disk fills or turns read-only during ``surf-dist train``: one line naming the file and the
fix, exit code 1, no traceback, no process left, the last good checkpoint intact and loadable, ``metrics.jsonl``
whole rows only; and the same command rerun once the disk has room (or is writable again) resumes from that
checkpoint and ends with the clean run's numbers (per-step losses, final parameters).

The disk is a tmpfs mounted under the test's folder (root only: skipped in one line where mounting is not
permitted) as ``--out``'s parent. Full: sized at 2.5 checkpoints with a checkpoint after every step, so the third
checkpoint (previous + current + new) cannot fit: the run fails at step 3 and resumes from the checkpoint of step
2. Read-only: ``mount -o remount,ro`` once the run has written some steps; the rerun follows ``remount,rw``.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from _chaos import clean_run
from _disk import remount, tmpfs
from _processes import alive, clean_env, descendants, start, train_command
from _runs import assert_same_parameters

from surf_dist.worker import checkpoint
from surf_dist.worker.metrics import read_rows

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TORCH = ["--backend", "torch", "--workers", "2"]
FULL = re.compile(
    r"^surf-dist train: cannot write (\S+): No space left on device \(fix: free space on that disk or choose "
    r"another --out; the rerun resumes from step (\d+)\)$"
)
READ_ONLY = re.compile(
    r"^surf-dist train: cannot write (\S+): Read-only file system \(fix: make that file system writable again or "
    r"choose another --out; the rerun resumes from step (\d+)\)$"
)


def train(out: Path, *args: str, timeout_s: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(train_command(out, *args), capture_output=True, text=True, timeout=timeout_s, env=clean_env())


def _sets(sets: list[str]) -> list[str]:
    return [a for s in sets for a in ("--set", s)]


def assert_failed_cleanly(r: subprocess.CompletedProcess, line: re.Pattern[str], out: Path) -> tuple[str, int]:
    """Exit 1 with exactly one line on stderr matching ``line``, no traceback; the checkpoint that line names as
    the resume point loads, no temp file is left, and ``metrics.jsonl`` holds whole rows 0..S-1 for some S at
    or past it. (The file named, the resume step.)"""
    assert r.returncode == 1, r.stderr[-3000:]
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and line.match(lines[0]), r.stderr[-3000:]
    path, resume_at = line.match(lines[0]).group(1, 2)
    state = checkpoint.load(out)
    assert state is not None and state["step"] == int(resume_at)
    assert not list(out.glob(".*.tmp")) and not (out / ".checkpoint.pt.new").exists(), sorted(out.iterdir())
    text = (out / "metrics.jsonl").read_text()
    assert text.endswith("\n"), "a torn last row left in metrics.jsonl"
    steps = [json.loads(row)["step"] for row in text.splitlines()]
    assert steps == list(range(len(steps))) and len(steps) >= int(resume_at)
    return path, int(resume_at)


def assert_same_as_clean(out: Path, clean: Path, attempts: int) -> None:
    """The resumed run ends as the clean run: one metrics row per step with the same losses, the same summary
    losses and final parameters, and ``attempts`` attempts counted."""
    summary = json.loads((out / "summary.json").read_text())
    ref = json.loads((clean / "summary.json").read_text())
    assert summary["timing"]["attempts"] == attempts
    assert json.loads((out / "timing.json").read_text())["attempts"] == attempts
    rows, ref_rows = read_rows(out / "metrics.jsonl"), read_rows(clean / "metrics.jsonl")
    assert [r["step"] for r in rows] == [r["step"] for r in ref_rows], "not one metrics row per step"
    for key in ("lagrangian", "loss"):
        got, want = [r[key] for r in rows], [r[key] for r in ref_rows]
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12), key
    for key in ("loss_per_step", "heldout_loss_per_step"):
        assert summary["train"][key] == pytest.approx(ref["train"][key], rel=1e-9, abs=1e-12), key
    assert_same_parameters(out, clean, rtol=1e-9)
    assert summary["eval"]["udgd"]["accuracy_per_layer"] == pytest.approx(ref["eval"]["udgd"]["accuracy_per_layer"])


@pytest.mark.timeout(400)
@pytest.mark.parametrize("backend", [pytest.param([], id="local"), pytest.param(TORCH, id="torch-2")])
def test_a_full_disk_fails_in_one_line_and_the_rerun_resumes(tmp_path: Path, backend: list[str]) -> None:
    """Catches a full disk that ends the run with a traceback (torch.save's RuntimeError, a rank's error), hangs
    the supervisor or restarts into the same failure, leaves the new checkpoint's temp file or a torn metrics row
    behind, loses the last good checkpoint, or a rerun that does not resume to the clean run's numbers."""
    # Prepare: the clean run (on the test's own disk), then a tmpfs that holds 2.5 of its checkpoints
    sets = ["train.checkpoint_every=1"]
    workers = 2 if backend else 1
    clean_run(sets, tmp_path / "clean", workers=workers)
    size = int(2.5 * (tmp_path / "clean" / "checkpoint.pt").stat().st_size)
    with tmpfs(tmp_path / "disk", size) as disk:
        out = disk / "run"

        # Execute
        t0 = time.monotonic()
        r = train(out, *backend, *_sets(sets))
        failed_s = time.monotonic() - t0

        # Assert: one line, the checkpoint of step 2 intact (the third did not fit)
        path, resume_at = assert_failed_cleanly(r, FULL, out)
        assert path == str(out / "checkpoint.pt")
        assert resume_at == 2, r.stderr
        print(f"failed after {failed_s:.1f} s at the checkpoint of step 3; resumes from step {resume_at}")

        # Execute: the same command on the same path, now with room
        remount(disk, f"size={4 * size}")
        r = train(out, *backend, *_sets(sets))

        # Assert
        assert r.returncode == 0, r.stderr[-3000:]
        assert "Traceback" not in r.stderr
        assert_same_as_clean(out, tmp_path / "clean", attempts=2)


@pytest.mark.timeout(400)
def test_a_disk_turned_read_only_fails_in_one_line_and_the_rerun_resumes(tmp_path: Path) -> None:
    """Catches a run that a read-only remount crashes with a traceback or leaves running, a metrics file held open
    so that the disk cannot be remounted read-only at all, a lost checkpoint, or a rerun (once writable again)
    that does not resume to the clean run's numbers."""
    # Prepare: 120 steps (about 5 s of training here), a checkpoint every 4
    sets = ["train.epochs=20"]
    clean_run(sets, tmp_path / "clean", workers=1)
    size = 4 * (tmp_path / "clean" / "checkpoint.pt").stat().st_size
    with tmpfs(tmp_path / "disk", size) as disk:
        out = disk / "run"
        proc = start(train_command(out, *_sets(sets)))
        try:
            deadline = time.monotonic() + 180
            while len(read_rows(out / "metrics.jsonl")) < 10 or checkpoint.step_of(out) is None:
                assert proc.poll() is None, f"the run ended before the disk turned read-only:\n{proc.communicate()}"
                assert time.monotonic() < deadline, "no 10 steps and a checkpoint within 180 s"
                time.sleep(0.02)
            workers = descendants(proc.pid)

            # Execute
            remount(disk, "ro")
            at_step = len(read_rows(out / "metrics.jsonl"))
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()

        # Assert: one line naming the file; nothing left running
        r = subprocess.CompletedProcess(proc.args, proc.returncode, "", err)
        path, resume_at = assert_failed_cleanly(r, READ_ONLY, out)
        assert Path(path).parent == out and Path(path).name in ("metrics.jsonl", "checkpoint.pt", "timing.json")
        assert 0 < resume_at <= at_step < 120
        assert not [p for p in workers if alive(p)]
        print(f"read-only at step {at_step}: {Path(path).name} failed; resumes from step {resume_at}")

        # Execute: writable again, the same command
        remount(disk, "rw")
        r = train(out, *_sets(sets))

        # Assert
        assert r.returncode == 0, r.stderr[-3000:]
        assert "Traceback" not in r.stderr
        assert_same_as_clean(out, tmp_path / "clean", attempts=2)
