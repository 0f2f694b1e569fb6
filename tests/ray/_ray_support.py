"""Helpers for the Ray tests: small configs, the local oracle, and Ray actors running a test body.

Configs are the ``smoke`` preset made smaller (3 steps per epoch, one validation and one test task, no
baselines unless asked) so that a 2-core machine runs the whole directory in a few minutes.
``run_actors(cfg, body)`` is the Ray twin of ``tests/dist/_harness.run_ranks``: W actors form one gloo group
and each runs ``body(trainer)``, so the parity body of ``tests/_parity.py`` runs on Ray as on forked ranks.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from surf_dist.config import Config, load_config
from surf_dist.runtime.launch import run_local
from surf_dist.runtime.torch_launch import build_mixer, init_process_group
from surf_dist.worker.problem import Problem
from surf_dist.worker.trainer import Trainer

# smoke, smaller: 3 meta-train tasks × 1 epoch = 3 steps, one validation and one meta-test task
FAST = [
    "data.num_meta_train=3",
    "train.epochs=1",
    "data.num_meta_val=1",
    "data.num_meta_test=1",
    "eval.baselines=[]",
]
LOSS_RTOL = 1e-5  # float32
ACC_ATOL = 1e-6


def ray_config(num_workers: int, overrides: list[str] = ()) -> Config:
    """The Ray config: ``num_workers`` actors of half a CPU (3 fit on a 2-CPU Ray), one thread each."""
    return load_config(
        "smoke",
        None,
        [
            *FAST,
            *overrides,
            "run.backend=ray",
            f"run.workers={num_workers}",
            "run.ray_cpus_per_worker=0.5",
            "run.threads_per_worker=1",
            "run.timeout_s=60",
        ],
    )


def local_summary(overrides: list[str], out: Path | None = None) -> dict[str, Any]:
    """The oracle: the same config on the local backend (one process)."""
    cfg = load_config("smoke", None, [*FAST, *overrides, "run.backend=local", "run.workers=1"])
    summary = run_local(cfg, out, progress=False)
    assert summary is not None
    return summary


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def assert_same_run(ray_s: dict[str, Any], local_s: dict[str, Any], *, rtol: float = LOSS_RTOL) -> None:
    """Per-step losses and final parameter norms to ``rtol`` (relative), eval accuracy per layer to 1e-6, from
    two summaries (when the run directories are not both at hand; otherwise ``surf_dist.analysis.compare.compare_runs``
    also compares the parameters elementwise)."""
    la, lb = ray_s["train"]["loss_per_step"], local_s["train"]["loss_per_step"]
    assert len(la) == len(lb) >= 3, f"steps: ray {len(la)} vs local {len(lb)}"
    gaps = [_rel(a, b) for a, b in zip(la, lb, strict=True)]
    assert max(gaps) <= rtol, f"loss per step differs: ray {la} vs local {lb} (rel gaps {gaps})"
    na, nb = ray_s["train"]["final_param_norms"], local_s["train"]["final_param_norms"]
    assert set(na) == set(nb), f"parameter names differ: {sorted(set(na) ^ set(nb))}"
    bad = {k: (na[k], nb[k]) for k in na if not _rel(na[k], nb[k]) <= rtol}
    assert not bad, f"final parameter norms differ (ray, local): {bad}"
    ea, eb = ray_s["eval"]["udgd"]["accuracy_per_layer"], local_s["eval"]["udgd"]["accuracy_per_layer"]
    assert len(ea) == len(eb), f"layers: ray {len(ea)} vs local {len(eb)}"
    assert all(math.isclose(a, b, abs_tol=ACC_ATOL) for a, b in zip(ea, eb, strict=True)), (
        f"eval accuracy per layer differs: ray {ea} vs local {eb}"
    )


class BodyActor:
    """One Ray actor that joins a gloo group and runs a test body on its own Trainer."""

    def address(self) -> tuple[str, int]:
        import socket

        import ray

        ip = ray.util.get_node_ip_address()
        with socket.socket() as s:
            s.bind((ip, 0))  # the node's address, never the wildcard
            return ip, int(s.getsockname()[1])

    def run(self, cfg: Config, rank: int, init_method: str, body: Callable[[Trainer], Any]) -> Any:
        torch.set_num_threads(1)
        init_process_group(cfg.run, rank=rank, world_size=cfg.run.workers, init_method=init_method)
        try:
            problem = Problem(cfg)
            return body(Trainer(cfg, build_mixer(cfg, problem), problem))
        finally:
            dist.destroy_process_group()


def run_actors(cfg: Config, body: Callable[[Trainer], Any], *, deadline_s: float = 180.0) -> list[Any]:
    """``body(trainer)`` on ``cfg.run.workers`` Ray actors (one gloo group); the results in rank order."""
    import ray

    # the actors cannot import the test modules: send the body and the actor class by value
    for module in {body.__module__, __name__}:
        ray.cloudpickle.register_pickle_by_value(sys.modules[module])
    cls = ray.remote(num_cpus=0.5)(BodyActor)
    actors = [cls.remote() for _ in range(cfg.run.workers)]
    try:
        ip, port = ray.get(actors[0].address.remote(), timeout=deadline_s)
        refs = [a.run.remote(cfg, r, f"tcp://{ip}:{port}", body) for r, a in enumerate(actors)]
        return ray.get(refs, timeout=deadline_s)
    finally:
        for a in actors:
            ray.kill(a, no_restart=True)
