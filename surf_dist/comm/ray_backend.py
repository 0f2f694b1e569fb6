"""The Ray backend: the driver is the coordinator-side launcher; W actors host the workers.

The driver (``run_ray``) connects to a Ray cluster (``run.ray_address``) or starts a local one, starts
``run.workers`` actors and asks actor 0 for its node IP and a free port. Every actor then joins one
process group at ``tcp://IP:PORT`` (gloo on CPU, nccl with ``run.device = "cuda"``) and runs the torch
backend's worker body, ``torch_worker``: model vectors travel between actors only, never through the
driver or the object store. Actor 0, the coordinator rank, writes the run directory and returns the
summary, which comes back to the driver.

Fault tolerance: when an actor dies (``failures.kill`` SIGKILLs it, or its node goes), the driver sees
``RayActorError`` on its result, kills the other actors (they may be blocked in a collective with the
dead peer, so the driver does not wait for them), starts W fresh actors and runs again; the Trainer
resumes from the run directory's last checkpoint. That directory must therefore be on a filesystem
every node sees. At most ``failures.max_restarts`` restarts.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from ..config import Config

READY_TIMEOUT_S = 180.0  # how long W actors may take to be placed and to import torch
DEATH_GRACE_S = 10.0  # after a worker raised: how long to wait for news of a peer that died first
FORWARDED_ENV = ("GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME", "NCCL_DEBUG", "TP_SOCKET_IFNAME")


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError("surf-dist: the ray backend needs Ray; install it with "
                           "pip install 'surf-dist[ray]' (or use --backend local|torch)") from exc
    return ray


class RayWorker:
    """One worker in its own process (a Ray actor): joins the process group and runs ``torch_worker``."""

    def ready(self) -> str:
        """The node this actor runs on (returns once the actor is placed and its process is up)."""
        import ray

        return ray.util.get_node_ip_address()

    def address(self) -> tuple[str, int]:
        """This node's IP and a port free on it: the process group's rendezvous (actor 0 only)."""
        import ray

        with socket.socket() as s:
            s.bind(("", 0))
            port = int(s.getsockname()[1])
        return ray.util.get_node_ip_address(), port

    def run(self, cfg: Config, out: str | None, rank: int, world_size: int, init_method: str,
            cwd: str | None) -> dict[str, Any] | None:
        """Train and evaluate as rank ``rank``; the coordinator (rank 0) returns the summary."""
        import torch
        import torch.distributed as dist

        from .torch_backend import init_process_group, torch_worker

        if cwd is not None and os.path.isdir(cwd):
            os.chdir(cwd)  # relative paths in the config (graph files, traces, data roots) mean the driver's
        os.environ["OMP_NUM_THREADS"] = str(cfg.run.threads_per_worker or 1)
        torch.set_num_threads(cfg.run.threads_per_worker or 1)
        init_process_group(cfg.run, rank=rank, world_size=world_size, init_method=init_method)
        try:
            return torch_worker(cfg, None if out is None else Path(out), progress=False, backend_name="ray")
        finally:
            dist.destroy_process_group()


def _connect(ray: Any, cfg: Config) -> bool:
    """Join ``run.ray_address`` or start a local Ray; True when this call started Ray (and must stop it)."""
    if ray.is_initialized():
        return False
    quiet = {"logging_level": logging.WARNING, "log_to_driver": True}
    address = cfg.run.ray_address
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            num_cpus = max(2, math.ceil(cfg.run.workers * cfg.run.ray_cpus_per_worker))
            ray.init(num_cpus=num_cpus, include_dashboard=False, **quiet)
    except Exception as exc:
        where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
        fix = ("fix: start it with `ray start --head --port=6379` on the head node, check the address and "
               "that this machine can reach it (or drop --ray-address to start a local Ray)") if address \
            else "fix: check `ray start --head` works on this machine"
        raise RuntimeError(f"surf-dist: could not connect to {where}: {type(exc).__name__}: {exc}\n{fix}") from exc
    return True


def _actor_options(cfg: Config) -> dict[str, Any]:
    opts: dict[str, Any] = {"num_cpus": cfg.run.ray_cpus_per_worker, "num_gpus": cfg.run.ray_gpus_per_worker,
                            "max_restarts": 0, "max_task_retries": 0}
    env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    if env:
        opts["runtime_env"] = {"env_vars": env}
    return opts


def _check_resources(ray: Any, cfg: Config) -> None:
    """Warn when the cluster, as it is now, cannot hold W actors (an autoscaler may still add nodes)."""
    have = ray.cluster_resources()
    for name, per_worker in (("CPU", cfg.run.ray_cpus_per_worker), ("GPU", cfg.run.ray_gpus_per_worker)):
        need = per_worker * cfg.run.workers
        if need > have.get(name, 0.0) + 1e-9:
            print(f"surf-dist: {cfg.run.workers} actors × run.ray_{name.lower()}s_per_worker={per_worker} need "
                  f"{need:g} {name}s but the Ray cluster has {have.get(name, 0.0):g}; the actors wait for "
                  f"resources (fix: add nodes or lower run.ray_{name.lower()}s_per_worker)", file=sys.stderr)


def _start_actors(ray: Any, cfg: Config) -> list[Any]:
    """W placed and running actors (raises RuntimeError when Ray cannot place them in time)."""
    cls = ray.remote(RayWorker)
    actors = [cls.options(**_actor_options(cfg)).remote() for _ in range(cfg.run.workers)]
    try:
        ray.get([a.ready.remote() for a in actors], timeout=max(READY_TIMEOUT_S, cfg.run.timeout_s))
    except ray.exceptions.GetTimeoutError as exc:
        _kill(ray, actors)
        raise RuntimeError(
            f"surf-dist: Ray did not start {cfg.run.workers} actors (num_cpus={cfg.run.ray_cpus_per_worker}, "
            f"num_gpus={cfg.run.ray_gpus_per_worker} each) within {max(READY_TIMEOUT_S, cfg.run.timeout_s):.0f} s; "
            f"cluster resources: {ray.cluster_resources()} (fix: lower run.ray_cpus_per_worker / "
            "run.ray_gpus_per_worker or add nodes)") from exc
    return actors


def _kill(ray: Any, actors: list[Any]) -> None:
    for a in actors:
        try:
            ray.kill(a, no_restart=True)
        except Exception:  # already gone
            pass


class _ActorDied(Exception):
    def __init__(self, rank: int, error: BaseException) -> None:
        super().__init__(f"actor {rank} died")
        self.rank, self.error = rank, error


def _collect(ray: Any, refs: list[Any]) -> dict[str, Any] | None:
    """Rank 0's result once every rank is done. Raises ``_ActorDied`` when an actor died (also when a
    peer's error came first: a survivor's collective fails when its peer dies), else the first error."""
    rank_of = {ref: r for r, ref in enumerate(refs)}
    pending, results = list(refs), {}
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        ref = done[0]
        try:
            results[rank_of[ref]] = ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            raise _ActorDied(rank_of[ref], exc) from exc
        except ray.exceptions.RayTaskError as exc:
            deadline = time.monotonic() + DEATH_GRACE_S
            while pending and time.monotonic() < deadline:
                more, pending = ray.wait(pending, num_returns=1, timeout=max(0.0, deadline - time.monotonic()))
                for other in more:
                    try:
                        ray.get(other)
                    except ray.exceptions.RayActorError as died:
                        raise _ActorDied(rank_of[other], died) from died
                    except ray.exceptions.RayTaskError:
                        pass
            raise RuntimeError(f"surf-dist: Ray actor {rank_of[ref]} failed:\n{exc}") from exc
    return results[0]


def run_ray(cfg: Config, out: Path | None, *, progress: bool = True) -> dict[str, Any] | None:
    """Train and evaluate on ``run.workers`` Ray actors; returns the summary (the coordinator's)."""
    ray = _import_ray()
    started = _connect(ray, cfg)
    try:
        _check_resources(ray, cfg)
        out_s = None if out is None else str(Path(out).resolve())
        for attempt in range(cfg.failures.max_restarts + 1):
            actors = _start_actors(ray, cfg)
            try:
                ip, port = ray.get(actors[0].address.remote())
                if progress:
                    print(f"surf-dist: {cfg.run.workers} Ray actors, process group at tcp://{ip}:{port}"
                          + (f" (restart {attempt})" if attempt else ""), file=sys.stderr)
                refs = [a.run.remote(cfg, out_s, r, cfg.run.workers, f"tcp://{ip}:{port}", os.getcwd())
                        for r, a in enumerate(actors)]
                summary = _collect(ray, refs)
            except _ActorDied as exc:
                left = attempt < cfg.failures.max_restarts
                print(f"surf-dist: Ray actor {exc.rank} died ({type(exc.error).__name__}); "
                      + (f"restarting all {cfg.run.workers} actors from the last checkpoint" if left
                         else "no restarts left"), file=sys.stderr)
                continue
            finally:
                _kill(ray, actors)  # survivors may be blocked in a collective with a dead peer: do not wait
            if progress and summary is not None:
                from ..report import table

                print(table(summary))
            return summary
        raise RuntimeError(f"surf-dist: the Ray run failed {cfg.failures.max_restarts + 1} times; "
                           "see the messages above")
    finally:
        if started:
            ray.shutdown()
