"""Jobs on the configured backend: ``launch`` (``surf-dist train``: the run directory, then the job) and ``run_job``
(any job without a run directory, e.g. an evaluation).

* ``local``: one process, ``LocalMixer`` (the oracle). With process kills configured, the run goes to a
  forked child that the supervisor restarts from the last checkpoint (``failures.max_restarts``).
* ``torch``: under ``torchrun`` each rank joins the process group from the environment; run from a plain
  shell, ``surf-dist train --backend torch --workers N`` forks N local ranks itself (``torch_launch``).
* ``ray``: the driver starts N actors that form a gloo group among themselves (``ray_driver``).
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

from ..comm.ledger import Ledger
from ..comm.local import LocalMixer
from ..config import Config, read_config
from ..errors import CannotWrite, InputError
from ..worker import checkpoint
from ..worker.jobs import Job, TrainJob
from ..worker.problem import Problem
from . import under_torchrun
from .preflight import (
    check_backend,
    check_data,
    check_trains_udgd,
    prepare_run_dir,
    remove_failed_run_dir,
)
from .ray_driver import run_ray
from .supervisor import ForkedGroup, supervise
from .torch_launch import run_torch, warm_before_fork


def run_local(cfg: Config, out: Path | None, progress: bool = True, job: Job | None = None) -> Any:
    """``job`` (default: train) with every agent in this process, on ``run.threads_per_worker`` torch threads
    (this process's count is restored afterwards); its result."""
    import torch

    threads = torch.get_num_threads()
    if cfg.run.threads_per_worker:
        torch.set_num_threads(cfg.run.threads_per_worker)
    try:
        problem = Problem(cfg)
        ledger = Ledger(problem.num_agents)
        mixer = LocalMixer(problem.num_agents, semantics=cfg.failures.semantics, device=cfg.run.device, ledger=ledger)
        return (job or TrainJob())(cfg, mixer, problem, out, progress=progress, backend="local")
    finally:
        torch.set_num_threads(threads)


def launch(cfg: Config, out: Path, progress: bool = True) -> dict[str, Any] | None:
    """Run ``train`` on the configured backend; the run directory gets config, metrics, summary. The summary
    (None on torchrun ranks other than 0).

    Input is checked before any worker starts (``preflight``). A run that fails in a directory made here
    and leaves no checkpoint removes that directory; an interrupted one keeps it for the rerun. A disk that fills
    or turns read-only during the run raises ``CannotWrite`` with the step the rerun resumes from."""
    check_backend(cfg)
    check_trains_udgd(cfg)
    check_data(cfg)
    made = prepare_run_dir(out)
    try:
        _check_run_dir(cfg, out)
        return _run(cfg, out, progress)
    except KeyboardInterrupt:
        raise
    except CannotWrite as exc:  # the disk filled or turned read-only: say where the rerun resumes
        exc.resume_step = checkpoint.step_of(out)
        if made:
            remove_failed_run_dir(out, only_if_empty=under_torchrun())
        raise
    except BaseException:
        if made:
            remove_failed_run_dir(out, only_if_empty=under_torchrun())  # other ranks may be writing there
        raise


def run_job(cfg: Config, job: Job, *, progress: bool = True) -> Any:
    """Any job (e.g. ``EvalJob``) on the configured backend, without a run directory; the coordinator's result
    (None on torchrun ranks other than 0). Input is checked before any worker starts."""
    check_backend(cfg)
    check_data(cfg)
    backend = cfg.run.backend
    if backend == "torch":
        return run_torch(cfg, None, progress=progress, job=job)
    if backend == "ray":
        return run_ray(cfg, None, progress=progress, job=job)
    return run_local(cfg, None, progress, job)


def _run(cfg: Config, out: Path, progress: bool) -> dict[str, Any] | None:
    backend = cfg.run.backend
    kills = bool(cfg.failures.kill or cfg.failures.kill_mtbf_steps or cfg.failures.stop)
    if backend == "local":
        if not kills:
            return run_local(cfg, out, progress)
        target = partial(_run_local_child, cfg=cfg, out=out, progress=progress)
        warm_before_fork(cfg)
        supervise(
            lambda attempt: ForkedGroup(target, 1, worker_name="worker process"),
            max_restarts=cfg.failures.max_restarts,
            run_dir=out,
        )
        return read_summary(out)
    if backend == "torch":
        return run_torch(cfg, out, progress=progress)
    return run_ray(cfg, out, progress=progress)


def _run_local_child(rank: int, cfg: Config, out: Path, progress: bool) -> None:
    run_local(cfg, out, progress)  # the summary stays in the run directory


def read_summary(out: Path) -> dict[str, Any]:
    return json.loads((out / "summary.json").read_text())


def _check_run_dir(cfg: Config, out: Path) -> None:
    """A run directory holds one run: resuming it with a different config is an input error."""
    saved = out / "config.json"
    if not saved.exists():
        return
    # how the run is executed may change on resume; what it computes may not
    old, new = read_config(saved).computed(), cfg.computed()
    if old != new:
        diff = sorted(
            f"{s}.{k}" for s in new if isinstance(new[s], dict) for k in new[s] if old.get(s, {}).get(k) != new[s][k]
        )
        raise InputError(
            [
                f"{out}: holds a run with another config (differs in {', '.join(diff) or 'seed'}); "
                "fix: choose a new --out directory or delete this one"
            ]
        )
