"""The meta-training loop around ``Trainer.train_step``: resume, validate, keep the best parameters, log
``metrics.jsonl``, write checkpoints, show progress, and inject the configured process kills.

Every worker runs this loop; only the coordinator (worker 0) writes the run directory. A resumed run cuts
``metrics.jsonl`` back to its checkpoint's step (one row per step, however often it was resumed).
``History.attempts`` and ``History.train_s`` count every attempt in the run directory (``timing.json``):
an attempt's seconds are recorded at each checkpoint, and those of steps lost to a failure are added when
the next attempt drops their rows.
"""

from __future__ import annotations

import math
import sys
import time
from functools import partial
from pathlib import Path

from ..config import save_config
from ..rundir.atomic import disk_errors, remove_stale_temps
from ..runtime.console import Bar, progress_bar
from . import checkpoint
from . import metrics as metrics_file
from .failures import KillInjector
from .metrics import MetricsLog, TensorBoardLog
from .trainer import History, Trainer


def resume(trainer: Trainer, run_dir: Path | None) -> bool:
    """Continue from the run directory's last good checkpoint, if any (every worker reads it)."""
    if run_dir is None:
        return False
    coordinator = trainer.mixer.is_coordinator
    state = checkpoint.load(run_dir, report=coordinator)
    if state is None:
        if coordinator and checkpoint.exists(run_dir):  # (files, but none loads: each was reported above)
            print(f"surf-dist: no usable checkpoint in {run_dir}; starting over from step 0", file=sys.stderr)
        return False
    trainer.load_state(state)
    return True


def save(trainer: Trainer, run_dir: Path | None, killer: KillInjector | None = None) -> None:
    state = trainer.state()  # collective: every worker takes part in gathering the ledger
    if trainer.mixer.is_coordinator and run_dir is not None:
        fault = (
            None if killer is None else partial(killer.maybe_kill_at, "checkpoint", trainer.mixer.rank, trainer.step)
        )
        path = checkpoint.save(state, run_dir, before_commit=fault)
        trainer.mixer.ledger.record_physical("checkpoint", 0, 0, 1, path.stat().st_size)  # simulator traffic


def _progress_bar(trainer: Trainer, resumed: bool) -> Bar:
    bar = progress_bar(trainer.num_steps, initial=trainer.step, desc="meta-train", unit="step")
    if resumed:
        bar.write(f"resumed from step {trainer.step}")
    return bar


def _postfix(row: dict, best_val_loss: float) -> dict[str, object]:
    """What the bar shows after a step: the Lagrangian, the loss, the violated constraints and, once there is
    one, the best validation loss (none while no meta-val task has been seen: ``inf`` says nothing)."""
    shown: dict[str, object] = {
        "lag": f"{row['lagrangian']:.3f}",
        "loss": f"{row['loss']:.3f}",
        "viol": int(sum(s > 0 for s in row["slacks"])),
    }
    if math.isfinite(best_val_loss):
        shown["val"] = f"{best_val_loss:.3f}"
    return shown


def fit(trainer: Trainer, run_dir: Path | None, *, progress: bool = True) -> History:
    """Meta-train to ``trainer.num_steps``; the history of every step (this run's and the resumed ones')."""
    cfg, mixer = trainer.cfg, trainer.mixer
    coordinator = mixer.is_coordinator
    if run_dir is not None and coordinator:
        with disk_errors(run_dir):
            run_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(run_dir)  # left by writes that a disk turned read-only cut off
        save_config(cfg, run_dir / "config.json")
    mixer.barrier()
    resumed = resume(trainer, run_dir)
    history = trainer.history
    writes = run_dir if coordinator else None  # the run directory, where this worker writes it
    metrics = None
    if writes is not None:
        history.attempts, history.train_s = metrics_file.read_timing(writes)
        redone = metrics_file.truncate(writes / metrics_file.NAME, trainer.step)
        history.train_s += sum(float(r.get("seconds", 0.0)) for r in redone)
        metrics = MetricsLog(writes / metrics_file.NAME)
    history.attempts += 1
    if writes is not None:
        metrics_file.write_timing(writes, history.attempts, history.train_s)
    killer = KillInjector(cfg.failures, seed=cfg.seed, num_workers=mixer.num_workers, run_dir=run_dir)
    board = TensorBoardLog(writes, trainer.step) if (writes is not None and cfg.run.tensorboard) else None
    bar = _progress_bar(trainer, resumed) if (progress and coordinator) else None
    val_every = cfg.train.validate_every or cfg.data.num_meta_train
    clock = last_saved = time.perf_counter()

    def checkpoint_now() -> None:
        nonlocal clock, last_saved
        now = time.perf_counter()
        history.train_s += now - clock
        clock = now
        save(trainer, run_dir, killer)
        if writes is not None:
            metrics_file.write_timing(writes, history.attempts, history.train_s)
        last_saved = time.perf_counter()

    def due_by_time() -> bool:
        every_s = cfg.run.checkpoint_every_s
        return run_dir is not None and every_s > 0 and time.perf_counter() - last_saved >= every_s

    saved = False
    try:
        while trainer.step < trainer.num_steps:
            step = trainer.step
            mixer.heartbeat(step)
            killer.maybe_kill(mixer.rank, step)
            mixer.post_flag("checkpoint", step, coordinator and due_by_time())  # the coordinator's clock decides
            row = trainer.train_step()
            if trainer.step % val_every == 0 or trainer.step == trainer.num_steps:
                row["val_loss"] = trainer.validate_and_keep_best()
            if metrics is not None:
                metrics.append(row)
            if board is not None:
                board.append(row)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(_postfix(row, trainer.history.best_val_loss), refresh=False)
            by_time = mixer.read_flag("checkpoint", step)
            by_step = trainer.step % cfg.train.checkpoint_every == 0 or "val_loss" in row
            if by_step or by_time or trainer.step == trainer.num_steps:
                checkpoint_now()
                saved = True
        if not saved:  # a rerun of a finished run: its attempt still counts
            checkpoint_now()
    finally:
        if bar is not None:
            bar.close()
        if metrics is not None:
            metrics.close()
        if board is not None:
            board.close()
    return history
