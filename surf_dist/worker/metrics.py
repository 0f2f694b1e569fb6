"""``metrics.jsonl``: one JSON line per meta-training step, written by the coordinator as it goes; and
``timing.json``: the attempts at meta-training in a run directory and their seconds.

A resumed run first cuts the metrics back to the steps before its checkpoint (``truncate``), so after any
number of kills, restarts and reruns the file holds exactly one row per step, in order. ``timing.json``
outlives every attempt, even one killed before its first checkpoint.

A row that does not fit on a full disk is cut off again (the file keeps whole rows only), and the error is
``errors.CannotWrite`` naming the file; a torn last line that is left anyway (a crash mid-write) is skipped
when the file is read.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from ..rundir.atomic import disk_errors, write_json_atomic, write_text_atomic

NAME = "metrics.jsonl"
TIMING = "timing.json"


class MetricsLog:
    """Appends one row per step to ``path``, so a crash loses at most the row being written.

    The file is opened for each row and closed again: a file held open for writing would keep its file system
    from being remounted read-only (EBUSY) between steps. A row that fails to go in whole (ENOSPC) is cut off
    again, so the file ends with a whole row."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with disk_errors(self.path):
            self.path.touch()

    def append(self, row: dict[str, Any]) -> None:
        line = (json.dumps(row) + "\n").encode("utf-8")
        with disk_errors(self.path):
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                size = os.fstat(fd).st_size
                try:
                    view = memoryview(line)
                    while view:  # a short write (the last page of a nearly full disk): write the rest
                        view = view[os.write(fd, view) :]
                except OSError:
                    with contextlib.suppress(OSError):  # shrinking needs no room (a read-only disk refuses it)
                        os.ftruncate(fd, size)
                    raise
            finally:
                os.close(fd)

    def close(self) -> None:
        """Nothing is held open between rows."""


class TensorBoardLog:
    """The same rows as TensorBoard scalars in ``RUN/tensorboard`` (``run.tensorboard``); events past ``step``
    left by an interrupted attempt are dropped on resume (``purge_step``)."""

    SCALARS = ("lagrangian", "loss", "val_loss", "theta_grad_norm", "seconds")

    def __init__(self, run_dir: Path, step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter  # optional: needs the tensorboard package

        self.path = run_dir / "tensorboard"
        with disk_errors(self.path):
            self._writer = SummaryWriter(str(self.path), purge_step=step)

    def append(self, row: dict[str, Any]) -> None:
        step = int(row["step"])
        with disk_errors(self.path):
            for name in self.SCALARS:
                if name in row:
                    self._writer.add_scalar(f"train/{name}", row[name], step)
            for name in ("slacks", "duals"):
                for layer, value in enumerate(row.get(name, []), start=1):
                    self._writer.add_scalar(f"{name}/layer{layer}", value, step)

    def close(self) -> None:
        with disk_errors(self.path):
            self._writer.close()


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a metrics file (none when it does not exist); a torn last line (a crash mid-write) is
    skipped."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
    return rows


def truncate(path: str | Path, step: int) -> list[dict[str, Any]]:
    """Keep the rows of steps before ``step`` (the step a resumed run starts at), atomically; the rows
    dropped (steps the resumed run does again)."""
    path = Path(path)
    if not path.exists():
        return []
    rows = read_rows(path)
    latest = {r["step"]: r for r in rows if r["step"] < step}  # a file from before this rule may repeat steps
    kept, dropped = [latest[s] for s in sorted(latest)], [r for r in rows if r["step"] >= step]
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in kept))
    return dropped


def steps_done(run_dir: str | Path) -> int | None:
    """Meta-training steps done in a run directory, by its metrics file (None when it has no rows)."""
    rows = read_rows(Path(run_dir) / NAME)
    return rows[-1]["step"] + 1 if rows else None


def read_timing(run_dir: str | Path) -> tuple[int, float]:
    """(attempts, seconds of meta-training) so far in a run directory; (0, 0.0) for a new one."""
    try:
        d = json.loads((Path(run_dir) / TIMING).read_text())
        return int(d["attempts"]), float(d["train_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0, 0.0


def write_timing(run_dir: str | Path, attempts: int, train_s: float) -> None:
    write_json_atomic(Path(run_dir) / TIMING, {"attempts": attempts, "train_s": train_s})
