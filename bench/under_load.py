"""Seconds per meta-training step of the default problem, quiet and beside busy loops, by torch threads.

A shared machine should slow a run in proportion to the share of the cores it keeps: with one busy loop per
core, a one-thread worker gets about half of its core, so about 2× slower. Several spinning threads that wait for
each other at every product slow by far more. Prints, from one run, for each thread count (1, and torch's
default: the machine's cores): the step quiet, the step beside one busy loop per core, and their ratio.

    python bench/under_load.py [--steps 10] [--threads 1,0]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time

import torch

from surf_dist.comm.local import LocalMixer
from surf_dist.config import load_config
from surf_dist.worker.problem import Problem
from surf_dist.worker.trainer import Trainer


def _busy(stop: mp.synchronize.Event) -> None:
    """A busy loop (the other job), until ``stop`` is set."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def _step_seconds(trainer: Trainer, steps: int) -> float:
    trainer.train_step()  # warm
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", default="1,0", help="torch thread counts to try (0: torch's default)")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    default_threads = torch.get_num_threads()
    cfg = load_config("default", None, [])
    problem = Problem(cfg)
    trainer = Trainer(cfg, LocalMixer(problem.num_agents), problem)
    print(f"default problem, {problem.num_agents} agents, local backend, {cores} cores, {args.steps} steps each")
    print(f"{'threads':>8} {'quiet s/step':>13} {'loaded s/step':>14} {'slowdown':>9}")
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads or default_threads)
        quiet = _step_seconds(trainer, args.steps)
        stop = mp.Event()
        hogs = [mp.Process(target=_busy, args=(stop,), daemon=True) for _ in range(cores)]
        for hog in hogs:
            hog.start()
        try:
            loaded = _step_seconds(trainer, args.steps)
        finally:
            stop.set()
            for hog in hogs:
                hog.join()
        print(f"{torch.get_num_threads():>8} {quiet:>13.3f} {loaded:>14.3f} {loaded / quiet:>8.1f}×")


if __name__ == "__main__":
    main()
