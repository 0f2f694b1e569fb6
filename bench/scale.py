"""Scale: one meta-training step of the default model at 1,000 / 10,000 (/ 100,000) agents, local backend.

For each n, in a fresh process (so that peak memory is that n's alone, with the allocator settings of the
CLI, ``surf_dist.runtime.malloc``): seconds per meta-training step, its matrix-product floor (the same step's products
alone: per layer the local network's forward and two backward products, and K sparse shifts forward and
backward; the forward's twice when layers are recomputed), peak RSS, checkpoint size, and the seconds of
an evaluation (one meta-test task, U-DGD and DGD for 2·K·L rounds). Then the ratios step / floor and
(s/step at 10k) / (s/step at 1k), and a weak-scaling table of the torch backend: 1 worker × m agents against
2 workers × 2m agents (forked gloo ranks, one thread each).

    python bench/scale.py                      # 1,000 and 10,000 agents, weak scaling at 500 / 1,000; 1 thread
    python bench/scale.py --agents 100000 --weak 0 --steps 1   # 100,000 only: ~4 min a step, ~20 min in all
    python bench/scale.py --set model.recompute=off --weak 0   # without per-layer recomputation (10k: ~3.6 GB)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import torch
from _floor import matmul_floor

from surf_dist.comm.local import LocalMixer
from surf_dist.config import Config, load_config, replace
from surf_dist.runtime.malloc import lean_env
from surf_dist.runtime.supervisor import ForkedGroup, free_port, run_once
from surf_dist.runtime.torch_launch import build_mixer, init_process_group
from surf_dist.worker import checkpoint
from surf_dist.worker.evaluate import evaluate
from surf_dist.worker.problem import Problem
from surf_dist.worker.trainer import Trainer

BASE = [
    "data.num_meta_train=4",
    "data.num_meta_val=1",
    "data.num_meta_test=1",
    "eval.baselines=dgd",
    "eval.rounds_factor=2",
]


def config(num_agents: int, overrides: list[str]) -> Config:
    return load_config("default", None, [*BASE, f"topology.spec=kregular:n={num_agents},degree=3", *overrides])


def measure(num_agents: int, overrides: list[str], num_steps: int) -> dict[str, Any]:
    """Run in a fresh process: the local backend at ``num_agents`` agents."""
    cfg = config(num_agents, overrides)
    t0 = time.perf_counter()
    problem = Problem(cfg)
    trainer = Trainer(cfg, LocalMixer(problem.num_agents, semantics=cfg.failures.semantics), problem)
    trainer.train_step()  # warm-up: graph, features, first allocations
    setup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(num_steps):
        trainer.train_step()
    step_s = (time.perf_counter() - t0) / num_steps
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint.save(trainer.state(), tmp)
        checkpoint_bytes = (Path(tmp) / checkpoint.NAME).stat().st_size
    t0 = time.perf_counter()
    ev = evaluate(trainer, trainer.model)
    eval_s = time.perf_counter() - t0
    floor_s = matmul_floor(problem, cfg, trainer.recompute)
    return {
        "agents": num_agents,
        "edges": problem.base_graph.number_of_edges(),
        "step_s": step_s,
        "floor_s": floor_s,
        "setup_s": setup_s,
        "eval_s": eval_s,
        "eval_accuracy": ev["udgd"]["accuracy_per_layer"][-1],
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "checkpoint_mb": checkpoint_bytes / 2**20,
        "threads": torch.get_num_threads(),
        "recompute": trainer.recompute,
    }


def _rank(rank: int, cfg: Config, port: int, num_steps: int) -> float:
    torch.set_num_threads(1)
    init_process_group(cfg.run, rank=rank, world_size=cfg.run.workers, init_method=f"tcp://127.0.0.1:{port}")
    problem = Problem(cfg)
    trainer = Trainer(cfg, build_mixer(cfg, problem), problem)
    trainer.train_step()
    trainer.mixer.barrier()
    t0 = time.perf_counter()
    for _ in range(num_steps):
        trainer.train_step()
    trainer.mixer.barrier()
    return (time.perf_counter() - t0) / num_steps


def weak_scaling(num_agents: int, overrides: list[str], num_steps: int) -> dict[str, float]:
    """Seconds per step: 1 torch worker × m agents and 2 workers × 2m agents (one thread each)."""
    out = {}
    for workers in (1, 2):
        cfg = config(workers * num_agents, overrides)
        cfg = replace(cfg, run={"backend": "torch", "workers": workers, "threads_per_worker": 1, "timeout_s": 600})
        target = partial(_rank, cfg=cfg, port=free_port(), num_steps=num_steps)
        out[f"{workers}x{workers * num_agents}"] = max(run_once(ForkedGroup(target, workers, deadline_s=3600)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--weak", type=int, default=500, help="agents per worker for weak scaling (0: skip)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: robust to a busy machine)")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.child is not None:
        print(json.dumps(measure(args.child, args.overrides, args.steps)))
        return
    rows = []
    for n in args.agents:
        cmd = [sys.executable, __file__, "--child", str(n), "--steps", str(args.steps), "--threads", str(args.threads)]
        cmd += [a for o in args.overrides for a in ("--set", o)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=lean_env())  # as the CLI runs
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(
            f"{r['agents']:>7} agents {r['edges']:>7} edges: {r['step_s']:7.2f} s/step, floor {r['floor_s']:6.2f} s "
            f"(step/floor {r['step_s'] / r['floor_s']:4.2f}), peak RSS {r['peak_rss_gb']:5.2f} GB, "
            f"checkpoint {r['checkpoint_mb']:6.1f} MB, eval {r['eval_s']:6.1f} s, setup {r['setup_s']:5.1f} s"
            + (", recomputed layers" if r["recompute"] else ""),
            flush=True,
        )
    by_n = {r["agents"]: r for r in rows}
    if 1000 in by_n and 10000 in by_n:
        print(f"(s/step at 10k) / (s/step at 1k): {by_n[10000]['step_s'] / by_n[1000]['step_s']:.2f}")
    if args.weak:
        w = weak_scaling(args.weak, args.overrides, args.steps)
        (one, t1), (two, t2) = w.items()
        print(f"weak scaling (torch, 1 thread a worker): {one} {t1:.2f} s/step, {two} {t2:.2f} s/step", end="")
        print(f", ratio {t2 / t1:.2f}")


if __name__ == "__main__":
    main()
