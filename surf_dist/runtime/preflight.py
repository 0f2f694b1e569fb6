"""What ``surf-dist train`` checks before any worker starts, so that bad input ends the run with exit 2 and
one message instead of failing in every worker: the backend under torchrun, the dataset files, and the run
directory (a directory, creatable, writable). The config itself is validated when it is loaded."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from ..config import Config
from ..data.datasets import check_files
from ..errors import InputError
from ..worker import checkpoint
from . import under_torchrun


def check_backend(cfg: Config) -> None:
    """Under torchrun ``surf-dist train`` is one rank of the torch backend, never a job of its own per rank."""
    if under_torchrun() and cfg.run.backend != "torch":
        raise InputError(
            [
                f"run.backend = {cfg.run.backend!r} under torchrun (RANK and WORLD_SIZE are set): every rank would "
                "run its own job; fix: --backend torch (the default under torchrun), or run the command with "
                f"--backend {cfg.run.backend} without torchrun"
            ]
        )


def check_trains_udgd(cfg: Config) -> None:
    """``surf-dist train`` meta-trains U-DGD and evaluates it: ``eval.udgd = false`` belongs to the methods alone."""
    if not cfg.eval.udgd:
        raise InputError(
            [
                "eval.udgd = false: train meta-trains U-DGD and evaluates it beside the methods; fix: drop the "
                "setting, or evaluate the methods alone with `surf-dist baselines`"
            ]
        )


def check_data(cfg: Config) -> None:
    """Every dataset file is where the workers will look (downloaded here first with ``data.download``)."""
    check_files(cfg.data.dataset, root=cfg.data.root, download=cfg.data.download)


def prepare_run_dir(out: Path) -> bool:
    """Make ``out`` (and its parents) and check that it is a writable directory; True when made here."""
    fix = "fix: give --out a directory you can write to"
    if out.exists() and not out.is_dir():
        raise InputError([f"--out {out}: is a file, not a directory; {fix}, or move the file away"])
    blocking = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise InputError([f"--out {out}: {blocking} is a file, so no directory can be made under it; {fix}"])
    made = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError([f"--out {out}: cannot make the directory ({exc.strerror or exc}); {fix}"]) from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".surf-dist-write-test.", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        if made:
            out.rmdir()
        raise InputError([f"--out {out}: cannot write there ({exc.strerror or exc}); {fix}"]) from None
    return made


def remove_failed_run_dir(out: Path, *, only_if_empty: bool = False) -> None:
    """After a failed run in a directory this command made: remove it unless it holds a checkpoint to resume
    from (a failed run leaves nothing behind, or something a rerun can use); ``only_if_empty``: leave it
    unless it is empty (under torchrun, where other ranks may still be writing there)."""
    if only_if_empty:
        with contextlib.suppress(OSError):
            out.rmdir()
    elif out.is_dir() and not checkpoint.exists(out):
        shutil.rmtree(out, ignore_errors=True)
