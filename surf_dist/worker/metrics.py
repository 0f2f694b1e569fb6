"""``metrics.jsonl``: one JSON line per meta-training step, written by the coordinator as it goes; and
``timing.json``: the attempts at meta-training in a run directory and their seconds.

A resumed run first cuts the metrics back to the steps before its checkpoint (``truncate``), so after any
number of kills, restarts and reruns the file holds exactly one row per step, in order. ``timing.json``
outlives every attempt, even one killed before its first checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..rundir.atomic import write_json_atomic, write_text_atomic

NAME = "metrics.jsonl"
TIMING = "timing.json"


class MetricsLog:
    """Appends one row per step to ``path`` and flushes it, so a crash loses at most the row being written."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fh = open(self.path, "a")  # noqa: SIM115 - closed by close()

    def append(self, row: dict[str, Any]) -> None:
        self._fh.write(json.dumps(row) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


class TensorBoardLog:
    """The same rows as TensorBoard scalars in ``RUN/tensorboard`` (``run.tensorboard``); events past ``step``
    left by an interrupted attempt are dropped on resume (``purge_step``)."""

    SCALARS = ("lagrangian", "loss", "val_loss", "theta_grad_norm", "seconds")

    def __init__(self, run_dir: Path, step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter  # optional: needs the tensorboard package

        self._writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=step)

    def append(self, row: dict[str, Any]) -> None:
        step = int(row["step"])
        for name in self.SCALARS:
            if name in row:
                self._writer.add_scalar(f"train/{name}", row[name], step)
        for name in ("slacks", "duals"):
            for layer, value in enumerate(row.get(name, []), start=1):
                self._writer.add_scalar(f"{name}/layer{layer}", value, step)

    def close(self) -> None:
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
