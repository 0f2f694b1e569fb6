"""Every write ``surf-dist train`` makes into its run directory, on a disk that is full at that very write (a
tmpfs filled with a ballast file just before it; root only, skipped in one line where mounting is not permitted):
one line naming the file, the fix and where the rerun resumes, exit code 1, no traceback, no torn file; and the
rerun, once the ballast is gone, finishes. Also the pieces: a metrics row cut back, a checkpoint's temp file
removed, a worker's ``CannotWrite`` passed through the supervisor whole and never retried."""

from __future__ import annotations

import contextlib
import errno
import json
import pickle
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from _disk import tmpfs

from surf_dist.cli import main
from surf_dist.errors import CannotWrite
from surf_dist.rundir import atomic
from surf_dist.runtime.supervisor import ForkedGroup, supervise
from surf_dist.worker import checkpoint, metrics

MB = 1 << 20


def fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte with a ballast file (removed to make room again)."""
    ballast = disk / "ballast"
    with open(ballast, "ab", buffering=0) as fh:
        for chunk in (MB, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    fh.write(b"\0" * chunk)
    return ballast


# -- the pieces ---------------------------------------------------------------------------------------------------
def test_a_metrics_row_that_does_not_fit_is_cut_back(tmp_path: Path) -> None:
    """Catches a row torn by a full disk left at the end of ``metrics.jsonl`` (a short write, then ENOSPC), or the
    OSError escaping as itself instead of a ``CannotWrite`` naming the file."""
    with tmpfs(tmp_path / "disk", 64 * 1024) as disk:
        log = metrics.MetricsLog(disk / metrics.NAME)
        log.append({"step": 0, "pad": "x" * 100})
        fill(disk)
        with pytest.raises(CannotWrite) as caught:
            for step in range(1, 100):  # the rows fill the first page's slack, then one straddles its end
                log.append({"step": step, "pad": "x" * 100})
        text = (disk / metrics.NAME).read_text()
        assert caught.value.path == str(disk / metrics.NAME) and caught.value.code == "ENOSPC"
        assert text.endswith("\n") and [json.loads(x)["step"] for x in text.splitlines()] == list(range(step))
        assert step > 1, "the test needs rows that fit in the last page's slack"


def test_a_checkpoint_that_does_not_fit_keeps_the_last_good_one(tmp_path: Path) -> None:
    """Catches torch's RuntimeError (its wrapping of ENOSPC) escaping, the temp file left filling the disk, the error
    naming the temp file, or the last good checkpoint lost."""
    state = {k: 0 for k in checkpoint.REQUIRED} | {"step": 4, "model": torch.zeros(MB // 4)}
    with tmpfs(tmp_path / "disk", 3 * MB) as disk:
        checkpoint.save(state, disk)
        with pytest.raises(CannotWrite) as caught:
            checkpoint.save({**state, "step": 8, "model": torch.ones(MB // 2)}, disk)
        assert caught.value.path == str(disk / checkpoint.NAME)
        assert sorted(p.name for p in disk.iterdir()) == [checkpoint.NAME]
        assert checkpoint.step_of(disk) == 4


def test_cannot_write_says_the_fix_and_survives_pickling() -> None:
    """Catches a message without the fix or the resume step, or a CannotWrite that loses its fields on its way from
    a worker to the supervisor."""
    exc = CannotWrite("RUN/checkpoint.pt", "No space left on device", "ENOSPC", 8)
    again = pickle.loads(pickle.dumps(exc))
    assert (
        str(again)
        == str(exc)
        == (
            "cannot write RUN/checkpoint.pt: No space left on device (fix: free space on that disk or choose another "
            "--out; the rerun resumes from step 8)"
        )
    )
    assert "writable again" in str(CannotWrite("RUN/x", "Read-only file system", "EROFS"))
    assert "no checkpoint yet" in str(CannotWrite("RUN/x", "Disk quota exceeded", "EDQUOT"))
    wrapped = RuntimeError("[enforce fail at inline_container.cc] unexpected pos")
    wrapped.__context__ = OSError(errno.ENOSPC, "No space left on device")
    assert atomic.disk_oserror(wrapped) is wrapped.__context__
    assert atomic.disk_oserror(OSError(errno.EACCES, "Permission denied")) is None


def _rank(rank: int) -> None:
    if rank == 0:
        raise CannotWrite("RUN/checkpoint.pt", "No space left on device", "ENOSPC", 4)
    time.sleep(60)  # rank 1: blocked in a collective with rank 0, as a survivor would be


def test_a_workers_cannot_write_ends_the_run_at_once_and_is_not_retried() -> None:
    """Catches the supervisor treating a full disk as a bug (a traceback, ``raised CannotWrite``), retrying it
    (every restart fails the same way), or waiting for the blocked peer instead of stopping it."""
    attempts = []

    def group(attempt: int) -> ForkedGroup:
        attempts.append(attempt)
        return ForkedGroup(_rank, 2)

    t0 = time.monotonic()
    with pytest.raises(CannotWrite) as caught:
        supervise(group, max_restarts=3)
    assert attempts == [0] and time.monotonic() - t0 < 2.5
    assert caught.value.resume_step == 4 and caught.value.path == "RUN/checkpoint.pt"


# -- every write of a run -----------------------------------------------------------------------------------------
# (the file, its n-th write in a run of the smoke preset, where the rerun resumes): config and timing are written
# before the first checkpoint (of step 4), the second checkpoint at step 6 (the end of the first epoch), the rest
# once the run is done (the checkpoint of step 12). A metrics row fails only where it needs a new page of the
# tmpfs: the disk is filled before the first row from the n-th on that straddles a page's end (a short write, then
# ENOSPC), and the rerun resumes from whichever checkpoint came before it (ANY).
ANY = -1
WRITES = [
    ("config.json", 1, None),
    ("timing.json", 1, None),
    ("metrics.jsonl", 6, ANY),  # rows of ~470 bytes: the row of step 8 straddles the first page's end
    ("checkpoint.pt", 2, 4),
    ("comm.csv", 1, 12),
    ("comm_edges.csv", 1, 12),
    ("accuracy_vs_rounds.png", 1, 12),
    ("summary.json", 1, 12),
]
PAGE = 4096


@pytest.fixture
def fill_before(monkeypatch: pytest.MonkeyPatch) -> Iterator[list]:
    """``fill_before.append((disk, name, n))``: fill ``disk`` just before the n-th write of the file ``name`` (a
    metrics row: the first from the n-th on that does not fit in the file's last page)."""
    plan: list = []
    counts: dict[str, int] = {}
    real_mkstemp, real_append = atomic.tempfile.mkstemp, metrics.MetricsLog.append

    def before(name: str, straddles: bool = True) -> None:
        counts[name] = counts.get(name, 0) + 1
        for item in list(plan):
            disk, target, n = item
            if target == name and counts[name] >= n and straddles:
                fill(disk)
                plan.remove(item)

    def mkstemp(*args, prefix: str = "", **kwargs):
        target = prefix[1:-1]  # ".NAME." of write_atomic (the checkpoint: ".checkpoint.pt.new")
        before(target.removesuffix(".new").lstrip("."))
        return real_mkstemp(*args, prefix=prefix, **kwargs)

    def append(self, row):
        slack = -self.path.stat().st_size % PAGE  # bytes left in the file's last page
        before(self.path.name, len(json.dumps(row)) + 1 > slack)
        return real_append(self, row)

    monkeypatch.setattr(atomic.tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(metrics.MetricsLog, "append", append)
    yield plan


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("name", "nth", "resume_at"), WRITES, ids=[w[0] for w in WRITES])
def test_every_write_into_a_full_disk_fails_in_one_line_and_the_rerun_finishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fill_before: list, name: str, nth: int, resume_at: int | None
) -> None:
    """Catches a write into the run directory that a full disk turns into a traceback (or, for the figure, into a
    run that ends "successfully" without its outputs), a torn file left in place, a summary.json written before
    the outputs it vouches for, or a rerun that cannot finish once there is room."""
    with tmpfs(tmp_path / "disk", 128 * MB) as disk:
        out = disk / "run"
        argv = ["train", "--preset", "smoke", "--out", str(out), "--quiet"]
        fill_before.append((disk, name, nth))

        # Execute
        code = main(argv)

        # Assert
        err = capsys.readouterr().err
        assert code == 1 and "Traceback" not in err, err
        if resume_at == ANY:
            resume_at = checkpoint.step_of(out)
        where = (
            "the rerun starts from step 0: no checkpoint yet"
            if resume_at is None
            else f"the rerun resumes from step {resume_at}"
        )
        line = (
            f"surf-dist train: cannot write {out / name}: No space left on device (fix: free space on that disk or "
            f"choose another --out; {where})"
        )
        assert err.strip() == line
        print(f"{name}: failed after {len(metrics.read_rows(out / metrics.NAME)) if out.exists() else 0} rows")
        assert not (out / "summary.json").exists()
        if out.exists():
            assert not list(out.glob(".*.tmp"))
            rows = (out / metrics.NAME).read_text()
            assert rows.endswith("\n") and all(json.loads(x) for x in rows.splitlines())
        assert (checkpoint.step_of(out) if out.exists() else None) == resume_at

        # Execute: room again, the same command
        fill_before.clear()
        (disk / "ballast").unlink()
        code = main(argv)

        # Assert
        assert code == 0, capsys.readouterr().err
        summary = json.loads((out / "summary.json").read_text())
        assert len(summary["train"]["loss_per_step"]) == 12
        assert [r["step"] for r in metrics.read_rows(out / metrics.NAME)] == list(range(12))
        assert summary["timing"]["attempts"] == (1 if resume_at is None else 2)
