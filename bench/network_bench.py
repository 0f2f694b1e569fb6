"""Emulation against the network model: measured seconds per round of real runs that hold every message for its
modelled time (``network.emulate=true``) beside the model's seconds, for 2 and 4 forked gloo ranks.

Each case times one U-DGD forward pass on a meta-test task of the default problem (100 agents, L = 10, K = 2:
20 rounds) after a warm-up pass, between two barriers, and prints measured / modelled seconds per round.

    python bench/network_bench.py                                   # 20 ms latency, 10 Mbit/s, 5 ms updates
    python bench/network_bench.py --set network.link_spread=0.5 --set network.deadline_ms=40
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np
import torch

from surf_dist.config import Config, load_config
from surf_dist.runtime.supervisor import ForkedGroup, free_port, run_once
from surf_dist.runtime.torch_launch import build_mixer, init_process_group
from surf_dist.worker.problem import Problem
from surf_dist.worker.timing import pass_seconds
from surf_dist.worker.trainer import Trainer

NETWORK = ["network.latency_ms=20", "network.bandwidth_mbps=10", "network.compute_ms=5", "network.emulate=true"]


def _rank(rank: int, cfg: Config, port: int, num_passes: int) -> tuple[float, float]:
    torch.set_num_threads(1)
    init_process_group(cfg.run, rank=rank, world_size=cfg.run.workers, init_method=f"tcp://127.0.0.1:{port}")
    problem = Problem(cfg)
    trainer = Trainer(cfg, build_mixer(cfg, problem), problem)
    task = trainer.prepare("meta-test", 0)
    m, mixer = cfg.model, trainer.mixer
    with torch.no_grad():
        trainer.forward(trainer.model, task, "test", 0, True)  # warm-up
        mixer.barrier()
        started = time.perf_counter()
        for _ in range(num_passes):
            trainer.forward(trainer.model, task, "test", 0, True)
        mixer.barrier()
    measured = (time.perf_counter() - started) / num_passes
    injected = trainer.silent.layers("test", 0, m.num_layers)
    assert trainer.graph is not None
    num_bytes = problem.dim * problem.dtype.itemsize
    seconds, _ = pass_seconds(
        mixer, trainer.network, trainer.graph, num_bytes, "test", 0, injected, m.num_layers, m.num_hops
    )
    return measured, float(np.sum(seconds))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    print(f"{'workers':>8} {'measured s/round':>17} {'modelled s/round':>17} {'measured/modelled':>18}")
    for workers in args.workers:
        run = [f"run.workers={workers}", "run.backend=torch", "run.threads_per_worker=1", "run.timeout_s=300"]
        cfg = load_config("default", None, [*NETWORK, *run, *args.overrides])
        target = partial(_rank, cfg=cfg, port=free_port(), num_passes=args.passes)
        results = run_once(ForkedGroup(target, workers, deadline_s=1200))
        rounds = cfg.model.num_layers * cfg.model.num_hops
        measured, modelled = max(r[0] for r in results) / rounds, results[0][1] / rounds
        print(f"{workers:>8} {measured:>17.4f} {modelled:>17.4f} {measured / modelled:>18.3f}", flush=True)


if __name__ == "__main__":
    main()
