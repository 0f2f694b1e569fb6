"""Communication benchmark: meta-training steps on the local backend and on forked gloo ranks, in one run.

For the default problem (100 agents on the paper's 3-regular graph, digits, D = 650, L = 10, K = 2, B = 10)
it times ``Trainer.train_step()`` (after a few warm-up steps) on

* ``local``: one process, ``LocalMixer`` (sparse/dense matmul, no communication), and
* ``torch×W``: W forked ranks on 127.0.0.1 (gloo), ``TorchMixer`` halo exchanges,

and prints per backend: seconds per step, the ratio to local, the share of each rank's step time spent
inside communication calls (``TorchMixer.comm_seconds``: point-to-point halo exchanges and all-reduces,
waiting for slower peers included; mean over ranks), and the physical bytes of the timed steps' halo
rounds (forward + backward, from the merged ledger) over the logical bytes of the same rounds, beside
the same ratio for one round of the placement's own graph (``topology.traffic_per_round``).

Every process runs with ``--threads`` torch threads (default 1), so local uses one core and torch×W
uses W cores (oversubscribed when W exceeds the machine's cores: the table prints the core count).

    python bench/comm_bench.py                      # ~1-2 minutes on 2 cores
    python bench/comm_bench.py --steps 40 --workers 2 4 8 --set topology.placement=mincut
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from surf_dist.comm.local import LocalMixer
from surf_dist.config import Config, load_config, replace
from surf_dist.graph import halo_plan, traffic_per_round
from surf_dist.runtime.supervisor import ForkedGroup, free_port, run_once
from surf_dist.runtime.torch_launch import build_mixer, init_process_group
from surf_dist.worker.problem import Problem
from surf_dist.worker.trainer import Trainer

HALO_DIRECTIONS = ("forward", "backward")


def _halo_bytes(counts: dict, phase: str = "train") -> np.ndarray:
    """[logical bytes, physical bytes] of the halo rounds (both directions) recorded under ``phase``."""
    total = np.zeros(2, dtype=np.int64)
    for (p, direction, _, _), row in counts.items():
        if p == phase and direction in HALO_DIRECTIONS:
            total += (row[1], row[3])
    return total


def _timed_steps(trainer: Trainer, num_warmup: int, num_steps: int) -> dict[str, Any]:
    """Warm up, then time ``num_steps`` steps; every worker calls it (the ledger merge is collective)."""
    mixer = trainer.mixer
    for _ in range(num_warmup):
        trainer.train_step()
    before = mixer.merged_ledger()
    mixer.barrier()
    comm0 = getattr(mixer, "comm_seconds", 0.0)
    t0 = time.perf_counter()
    for _ in range(num_steps):
        trainer.train_step()
    mixer.barrier()  # the step time of a group is its slowest worker's
    elapsed = time.perf_counter() - t0
    comm = getattr(mixer, "comm_seconds", 0.0) - comm0
    after = mixer.merged_ledger()
    halo = None if after is None or before is None else _halo_bytes(after.counts) - _halo_bytes(before.counts)
    return {"seconds": elapsed, "comm_seconds": comm, "halo": halo}


def _worker(rank: int, cfg: Config, port: int, num_warmup: int, num_steps: int) -> dict[str, Any]:
    """One forked process: the local backend (``run.backend == "local"``) or one rank of a gloo group."""
    # before any tensor op: a forked child must not enter an OpenMP pool its parent used (it would hang)
    torch.set_num_threads(max(1, cfg.run.threads_per_worker))
    if cfg.run.backend == "local":
        problem = Problem(cfg)
        mixer = LocalMixer(problem.num_agents, semantics=cfg.failures.semantics)
        return _timed_steps(Trainer(cfg, mixer, problem), num_warmup, num_steps)
    init_process_group(cfg.run, rank=rank, world_size=cfg.run.workers, init_method=f"tcp://127.0.0.1:{port}")
    try:
        problem = Problem(cfg)
        return _timed_steps(Trainer(cfg, build_mixer(cfg, problem), problem), num_warmup, num_steps)
    finally:
        dist.destroy_process_group()


def _run_group(cfg: Config, num_warmup: int, num_steps: int, deadline_s: float) -> list[dict[str, Any]]:
    """The per-process results of ``run.workers`` forked processes; raises with a failing one's traceback."""
    target = partial(_worker, cfg=cfg, port=free_port(), num_warmup=num_warmup, num_steps=num_steps)
    return run_once(ForkedGroup(target, cfg.run.workers, deadline_s=deadline_s))


def _analytic_ratio(problem: Problem, num_workers: int) -> float:
    """Physical over logical bytes of one round on the graph the placement was computed on."""
    graph = problem.base_graph
    traffic = traffic_per_round(graph, halo_plan(graph, problem.placement(num_workers)), problem.dim)
    return traffic["physical"]["bytes"] / traffic["logical"]["bytes"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="timed meta-training steps per backend")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4], help="torch rank counts to time")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--deadline-s", type=float, default=300.0, help="give up on a torch group after this")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override on top of the default preset (repeatable)",
    )
    args = parser.parse_args(argv)

    num_tasks = max(1, args.warmup + args.steps)
    cfg = load_config(
        "default",
        None,
        [f"data.num_meta_train={num_tasks}", "data.num_meta_val=1", "data.num_meta_test=1", *args.overrides],
    )
    # every measurement runs in forked processes; this one computes nothing before the last fork
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    run = {"threads_per_worker": args.threads, "timeout_s": args.deadline_s}
    local = _run_group(
        replace(cfg, run={**run, "backend": "local", "workers": 1}), args.warmup, args.steps, args.deadline_s
    )[0]
    groups = {
        num_workers: _run_group(
            replace(cfg, run={**run, "backend": "torch", "workers": num_workers}),
            args.warmup,
            args.steps,
            args.deadline_s,
        )
        for num_workers in args.workers
    }

    problem = Problem(cfg)
    m = cfg.model
    print(
        f"problem: {problem.num_agents} agents ({cfg.topology.spec}, per_task={cfg.topology.per_task}), "
        f"D={problem.dim}, L={m.num_layers}, K={m.num_hops}, B={m.batch_size}, {m.dtype}; "
        f"placement {cfg.topology.placement}"
    )
    print(
        f"timing: {args.warmup} warm-up + {args.steps} timed steps per backend, {args.threads} thread(s) a "
        f"process, {os.cpu_count()} cores\n"
    )
    local_s = local["seconds"] / args.steps
    rows = [("local", local_s, 1.0, None, None, None)]
    for num_workers, ranks in groups.items():
        seconds = max(r["seconds"] for r in ranks) / args.steps
        comm_share = float(np.mean([r["comm_seconds"] / r["seconds"] for r in ranks]))
        logical, physical = ranks[0]["halo"]
        analytic = _analytic_ratio(problem, num_workers)
        rows.append((f"torch×{num_workers}", seconds, seconds / local_s, comm_share, physical / logical, analytic))

    header = ("backend", "s/step", "vs local", "comm share", "phys/logical", "per round, task 0")
    print(f"{header[0]:<10} {header[1]:>9} {header[2]:>9} {header[3]:>11} {header[4]:>13} {header[5]:>18}")
    for name, s, ratio, share, phys, analytic in rows:
        dash = "—"
        print(
            f"{name:<10} {s:>9.4f} {ratio:>8.2f}× {dash if share is None else f'{share:.1%}':>11} "
            f"{dash if phys is None else f'{phys:.3f}':>13} "
            f"{dash if analytic is None else f'{analytic:.3f}':>18}"
        )
    print(
        "\ncomm share: time inside p2p halo exchanges and all-reduces (waits included), mean over ranks.\n"
        "phys/logical: bytes that crossed a process boundary over the bytes agents would send, forward\n"
        "+ backward halo rounds of the timed steps; 'per round, task 0': the same ratio for one round on\n"
        "the graph the placement was computed on (later tasks draw a fresh graph when per_task is true)."
    )


if __name__ == "__main__":
    main()
