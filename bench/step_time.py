"""Time one meta-training step of the default problem against its matrix products alone.

Prints, from one run: seconds per step (local backend), seconds for the same step's matrix products
(forward and backward of every layer's local network and graph shifts, same shapes and dtype), and
their ratio. The ratio is the overhead of everything else (autograd, sampling, gradient norms, Adam,
the ledger); the aim is about 2 or less.

    python bench/step_time.py [--steps 20] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import time

import torch
from _floor import matmul_floor

from surf_dist.comm.local import LocalMixer
from surf_dist.config import load_config
from surf_dist.worker.problem import Problem
from surf_dist.worker.trainer import Trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config("default", None, args.overrides)
    problem = Problem(cfg)
    trainer = Trainer(cfg, LocalMixer(problem.num_agents), problem)
    for _ in range(args.warmup):
        trainer.train_step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step()
    step_s = (time.perf_counter() - t0) / args.steps
    m = cfg.model
    in_dim = problem.dim + m.batch_size * (problem.num_features + problem.num_classes)
    floor_s = matmul_floor(problem, cfg, trainer.recompute, repeats=args.steps)
    print(
        f"problem: {problem.num_agents} agents, D={problem.dim}, local input {in_dim}, "
        f"L={m.num_layers}, K={m.num_hops}, {m.dtype}, torch threads={torch.get_num_threads()}"
    )
    print(f"meta-training step (local backend): {step_s * 1e3:8.1f} ms")
    print(f"its matrix products alone:          {floor_s * 1e3:8.1f} ms")
    print(f"ratio step / matmul floor:          {step_s / floor_s:8.2f}")


if __name__ == "__main__":
    main()
