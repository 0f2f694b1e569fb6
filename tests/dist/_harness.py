"""Forked torch.distributed ranks on 127.0.0.1 for the multi-process tests, on the project's one supervisor.

``run_ranks(cfg, body)`` forks ``cfg.run.workers`` processes (``runtime.supervisor.ForkedGroup``); each joins a
gloo group on a free loopback port, builds its ``Problem``, ``TorchMixer`` and ``Trainer`` exactly as
``runtime.torch_launch.torch_worker`` does, calls ``body(trainer)`` and returns the (picklable) result. A rank
that raises, hangs past ``deadline_s`` or dies fails the call with a ``RuntimeError`` naming the rank and its
traceback. Tensors must be returned as numpy arrays. The test process may compute with several threads before
it forks: each rank drops to one thread before its first tensor operation, so it never touches the OpenMP pool
it inherited (doing so deadlocks).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
import torch.distributed as dist

from surf_dist.config import Config, replace
from surf_dist.worker.problem import Problem
from surf_dist.runtime.supervisor import ForkedGroup, free_port, run_once
from surf_dist.runtime.torch_launch import build_mixer, init_process_group
from surf_dist.worker.trainer import Trainer


def dist_config(cfg: Config, num_workers: int, timeout_s: float = 30.0) -> Config:
    """``cfg`` for ``num_workers`` torch ranks, one thread each, with a short process-group timeout."""
    return replace(
        cfg, run={"backend": "torch", "workers": num_workers, "timeout_s": timeout_s, "threads_per_worker": 1}
    )


def _rank_main(rank: int, cfg: Config, port: int, body: Callable[[Any], Any]) -> Any:
    # before any tensor op: a forked child that enters the OpenMP pool its parent already used hangs, and
    # OMP_NUM_THREADS set after torch started is ignored
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    init_process_group(cfg.run, rank=rank, world_size=cfg.run.workers, init_method=f"tcp://127.0.0.1:{port}")
    try:
        problem = Problem(cfg)
        return body(Trainer(cfg, build_mixer(cfg, problem), problem))
    finally:
        dist.destroy_process_group()


def run_ranks(cfg: Config, body: Callable[[Any], Any], *, deadline_s: float = 90.0) -> list[Any]:
    """``body(trainer)`` on every rank of ``cfg.run.workers`` forked ranks; the results in rank order."""
    target = partial(_rank_main, cfg=cfg, port=free_port(), body=body)
    return run_once(ForkedGroup(target, cfg.run.workers, deadline_s=deadline_s))
