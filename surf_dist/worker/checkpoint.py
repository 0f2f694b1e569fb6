"""Atomic, resumable checkpoints.

``save`` writes ``RUN/checkpoint.pt`` as: temp file → fsync → rename; the previous checkpoint is kept as
``checkpoint.prev.pt`` until the new one has committed. ``load`` checks each candidate (newest first)
and returns the first that loads and carries every required field; a corrupt or partial file is
reported and skipped.

A disk that fills or turns read-only during ``save`` raises ``errors.CannotWrite`` naming ``checkpoint.pt``;
the new checkpoint's temp file is removed (where the disk still allows it) and the last good checkpoint stays
loadable as ``checkpoint.pt`` or ``checkpoint.prev.pt``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..errors import CannotWrite
from ..rundir.atomic import disk_errors, fsync_dir, torch_save_atomic
from ..runtime.interrupts import critical

NAME, PREVIOUS = "checkpoint.pt", "checkpoint.prev.pt"
REQUIRED = ("step", "model", "optimizer", "duals", "history", "config")


def save(state: dict[str, Any], run_dir: str | Path, *, before_commit: Callable[[], None] | None = None) -> Path:
    """Write ``state`` atomically; the last good checkpoint survives a crash at any point. ``before_commit``: called
    at the most fragile moment (the previous checkpoint set aside, the new one written, not yet renamed into place),
    where ``failures.kill = 0@S:checkpoint`` kills the coordinator."""
    run_dir = Path(run_dir)
    final, previous, tmp = run_dir / NAME, run_dir / PREVIOUS, run_dir / f".{NAME}.new"
    with critical(), disk_errors(final):  # an interrupt waits for the new checkpoint to commit
        try:
            torch_save_atomic(tmp, state)
            if final.exists():
                os.replace(final, previous)  # from here until the next rename, previous is the last good one
            if before_commit is not None:
                before_commit()
            os.replace(tmp, final)
        except CannotWrite as exc:  # named by the file the user knows, not by its temp file
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise CannotWrite(str(final), exc.reason, exc.code) from None
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        fsync_dir(run_dir)
    return final


def exists(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a checkpoint file at all (usable or not)."""
    return any((Path(run_dir) / name).exists() for name in (NAME, PREVIOUS))


def load(run_dir: str | Path, *, report: bool = True) -> dict[str, Any] | None:
    """The newest valid checkpoint of ``run_dir`` (None when there is none); ``report``: say on stderr which
    file was unusable and why (the coordinator does, the other workers need not repeat it)."""
    for name in (NAME, PREVIOUS):
        path = Path(run_dir) / name
        if not path.exists():
            continue
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
            missing = [k for k in REQUIRED if k not in state]
            if missing:
                raise ValueError(f"missing fields {missing}")
            return state
        except Exception as exc:  # corrupt, truncated or foreign file: fall back to the previous one
            if not report:
                continue
            print(
                f"surf-dist: checkpoint {path} is unusable ({type(exc).__name__}: {exc}); trying the previous one",
                file=sys.stderr,
            )
    return None


def step_of(run_dir: str | Path) -> int | None:
    """The step of the newest usable checkpoint (None when there is none), without reporting bad files."""
    state = load(run_dir, report=False)
    return None if state is None else int(state["step"])
