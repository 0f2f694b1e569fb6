"""Forked torch.distributed ranks on 127.0.0.1 for the multi-process tests and the communication bench.

``run_ranks(cfg, body)`` forks ``cfg.run.workers`` processes, each joins a gloo group on a free loopback port
(``tcp://127.0.0.1:PORT``), builds its ``Problem``, ``TorchMixer`` and ``Trainer`` exactly as
``surf_dist.comm.torch_backend.torch_worker`` does, calls ``body(trainer)`` and sends the (picklable) result
back through a queue. A rank that raises sends its traceback instead; a rank that hangs or dies is killed
after ``deadline_s`` and reported with every other rank's state. Tensors must be returned as numpy arrays
(a queue moves torch tensors through shared memory, which is not worth the trouble here). The test process
may compute with several threads before it forks: each rank drops to one thread before its first tensor
operation, so it never touches the OpenMP pool it inherited (doing so deadlocks).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_mod
import time
import traceback
from collections.abc import Callable
from typing import Any

import torch

from surf_dist.backends import free_port
from surf_dist.config import Config, replace


def dist_config(cfg: Config, num_workers: int, timeout_s: float = 30.0) -> Config:
    """``cfg`` for ``num_workers`` torch ranks, one thread each, with a short process-group timeout."""
    return replace(
        cfg, run={"backend": "torch", "workers": num_workers, "timeout_s": timeout_s, "threads_per_worker": 1}
    )


def _rank_main(rank: int, cfg: Config, port: int, body: Callable[[Any], Any], results: Any) -> None:
    # before any tensor op: a forked child that enters the OpenMP pool its parent already used hangs, and
    # OMP_NUM_THREADS set after torch started is ignored
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch.distributed as dist

    from surf_dist.comm.torch_backend import build_mixer, init_process_group
    from surf_dist.problem import Problem
    from surf_dist.train import Trainer

    try:
        init_process_group(
            cfg.run, rank=rank, world_size=cfg.run.workers, init_method=f"tcp://127.0.0.1:{port}"
        )
        try:
            problem = Problem(cfg)
            mixer = build_mixer(cfg, problem)
            trainer = Trainer(cfg, mixer, problem, None)
            results.put((rank, "ok", body(trainer)))
        finally:
            dist.destroy_process_group()
    except BaseException:  # report everything, the parent decides
        results.put((rank, "error", traceback.format_exc()))


def run_ranks(cfg: Config, body: Callable[[Any], Any], *, deadline_s: float = 90.0) -> list[Any]:
    """``body(trainer)`` on every rank of ``cfg.run.workers`` forked ranks; the results in rank order.

    Raises ``RuntimeError`` naming the rank and its traceback (or exit code) when a rank fails or the
    deadline passes; every forked process is killed and joined before returning or raising.
    """
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    port = free_port()
    procs = [
        ctx.Process(target=_rank_main, args=(r, cfg, port, body, results), daemon=True)
        for r in range(cfg.run.workers)
    ]
    for p in procs:
        p.start()
    got: dict[int, Any] = {}
    errors: list[str] = []
    deadline = time.monotonic() + deadline_s
    try:
        while len(got) + len(errors) < len(procs):
            try:
                rank, status, value = results.get(timeout=0.5)
            except queue_mod.Empty:
                dead = [
                    (r, p.exitcode)
                    for r, p in enumerate(procs)
                    if p.exitcode not in (None, 0) and r not in got
                ]
                if dead:
                    # a rank killed by a signal never reports; give the others a moment to report theirs
                    time.sleep(1.0)
                    errors += [f"rank {r} died with exit code {c}" for r, c in dead]
                    break
                if time.monotonic() > deadline:
                    errors.append(
                        f"deadline of {deadline_s:.0f} s passed; ranks that reported: {sorted(got)}"
                    )
                    break
                continue
            if status == "ok":
                got[rank] = value
            else:
                errors.append(f"rank {rank} raised:\n{value}")
                # its peers now wait in a collective until the process-group timeout: do not wait for them
                deadline = min(deadline, time.monotonic() + 3.0)
    finally:
        for p in procs:
            p.join(timeout=10.0 if not errors else 0.5)
            if p.is_alive():
                p.kill()
                p.join()
        results.close()
    if errors:
        raise RuntimeError("\n".join(errors))
    return [got[r] for r in range(len(procs))]
