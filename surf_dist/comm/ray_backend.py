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
every node sees. A worker that stops answering (a hang) makes its peers raise ``WorkerTimeout`` after
``run.timeout_s``; that restarts the run the same way. Any other error in an actor is a bug or bad
input and ends the run at once. At most ``failures.max_restarts`` restarts.
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
from ..errors import RunFailed

READY_TIMEOUT_S = 180.0  # how long W actors may take to be placed and to import torch
DEATH_GRACE_S = 10.0  # after a worker raised: how long to wait for news of a peer that died first
FORWARDED_ENV = ("GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME", "NCCL_DEBUG", "TP_SOCKET_IFNAME")


class RayBackendError(RunFailed, RuntimeError):
    """Ray is missing, unreachable or cannot place the actors: the message says what to do (exit code 1)."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise RayBackendError(
            "the ray backend needs Ray; install it with pip install 'surf-dist[ray]' (or use --backend local|torch)"
        ) from exc
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

    def run(
        self, cfg: Config, out: str | None, rank: int, world_size: int, init_method: str, cwd: str | None
    ) -> dict[str, Any] | None:
        """Train and evaluate as rank ``rank``; the coordinator (rank 0) returns the summary."""
        import torch
        import torch.distributed as dist

        from .torch_backend import init_process_group, torch_worker

        if cwd is not None and os.path.isdir(cwd):
            os.chdir(cwd)  # relative paths in the config (graph files, traces, data roots) mean the driver's
        torch.set_num_threads(cfg.run.threads_per_worker or 1)  # Ray packs actors onto cores: one thread each
        init_process_group(cfg.run, rank=rank, world_size=world_size, init_method=init_method)
        summary = torch_worker(cfg, None if out is None else Path(out), progress=False, backend_name="ray")
        # only after success: a group with a dead or hung peer may block here, and the driver kills us anyway
        dist.destroy_process_group()
        return summary


def _connect(ray: Any, cfg: Config) -> bool:
    """Join ``run.ray_address`` or start a local Ray; True when this call started Ray (and must stop it)."""
    if ray.is_initialized():
        return False
    quiet = {"logging_level": logging.WARNING, "log_to_driver": True}
    # run.ray_address, else RAY_ADDRESS (set by `ray job submit`), else a new local Ray of our own
    address = cfg.run.ray_address or os.environ.get("RAY_ADDRESS") or None
    try:
        if address:
            _probe(address)  # ray.init retries an unreachable address for a very long time
            ray.init(address=address, **quiet)
        else:
            num_cpus = max(2, math.ceil(cfg.run.workers * cfg.run.ray_cpus_per_worker))
            # "local": never join a cluster that happens to run on this machine
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **quiet)
    except Exception as exc:
        where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
        fix = (
            (
                "fix: start it with `ray start --head --port=6379` on the head node, check the address and "
                "that this machine can reach it (or drop --ray-address to start a local Ray); with token "
                "authentication, set RAY_AUTH_MODE=token and give this machine the cluster's token "
                "(RAY_AUTH_TOKEN or ~/.ray/auth_token)"
            )
            if address
            else "fix: check `ray start --head` works on this machine"
        )
        raise RayBackendError(f"could not connect to {where}: {type(exc).__name__}: {exc}\n{fix}") from exc
    return True


def _probe(address: str, timeout_s: float = 10.0) -> None:
    """Raise ConnectionError when ``HOST:PORT`` (or ``ray://HOST:PORT``) does not accept a TCP connection."""
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" or a bare host: ray.init reports those itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConnectionError(f"nothing answers at {host}:{port} ({exc})") from exc


def _actor_options(cfg: Config) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "num_cpus": cfg.run.ray_cpus_per_worker,
        "num_gpus": cfg.run.ray_gpus_per_worker,
        "max_restarts": 0,
        "max_task_retries": 0,
    }
    env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    if env:
        opts["runtime_env"] = {"env_vars": env}
    return opts


def _check_resources(ray: Any, cfg: Config) -> None:
    """Warn when the cluster, as it is now, cannot hold W actors (an autoscaler may still add nodes)."""
    have = ray.cluster_resources()
    for name, per_worker in (("CPU", cfg.run.ray_cpus_per_worker), ("GPU", cfg.run.ray_gpus_per_worker)):
        need, key = per_worker * cfg.run.workers, f"run.ray_{name.lower()}s_per_worker"
        if need > have.get(name, 0.0) + 1e-9:
            print(
                f"surf-dist: {cfg.run.workers} actors × {key}={per_worker} need {need:g} {name}s but the "
                f"Ray cluster has {have.get(name, 0.0):g}; the actors wait for resources "
                f"(fix: add nodes or lower {key})",
                file=sys.stderr,
            )


def _start_actors(ray: Any, cfg: Config) -> list[Any]:
    """W placed and running actors (raises RuntimeError when Ray cannot place them in time)."""
    cls = ray.remote(RayWorker)
    actors = [cls.options(**_actor_options(cfg)).remote() for _ in range(cfg.run.workers)]
    timeout_s = max(READY_TIMEOUT_S, cfg.run.timeout_s)
    try:
        ray.get([a.ready.remote() for a in actors], timeout=timeout_s)
    except ray.exceptions.GetTimeoutError as exc:
        _kill(ray, actors)
        raise RayBackendError(
            f"Ray did not start {cfg.run.workers} actors (num_cpus={cfg.run.ray_cpus_per_worker}, "
            f"num_gpus={cfg.run.ray_gpus_per_worker} each) within {timeout_s:.0f} s; "
            f"cluster resources: {ray.cluster_resources()} (fix: lower run.ray_cpus_per_worker / "
            "run.ray_gpus_per_worker or add nodes)"
        ) from exc
    except ray.exceptions.RayActorError as exc:
        _kill(ray, actors)
        raise RayBackendError(
            f"a Ray actor could not start: {exc}\n(fix: install surf-dist, at the same "
            "version, on every node: pip install -e '.[ray]')"
        ) from exc
    return actors


def _kill(ray: Any, actors: list[Any]) -> None:
    for a in actors:
        try:
            ray.kill(a, no_restart=True)
        except Exception:  # already gone
            pass


class _Restart(Exception):
    """The run must restart: actor ``rank`` died or timed out waiting for a hung peer."""

    def __init__(self, rank: int, reason: str) -> None:
        super().__init__(f"Ray actor {rank} {reason}")
        self.rank, self.reason = rank, reason


def _timed_out(exc: BaseException) -> bool:
    """Whether an actor's error is the torch backend's ``WorkerTimeout`` (a peer hung or vanished)."""
    from . import torch_backend

    timeout_cls = getattr(torch_backend, "WorkerTimeout", None)
    cause = getattr(exc, "cause", exc)
    return timeout_cls is not None and isinstance(cause, timeout_cls)


def _collect(ray: Any, refs: list[Any]) -> dict[str, Any] | None:
    """Rank 0's result once every rank is done, else ``_Restart`` or the first actor's error.

    A survivor's collective fails when its peer dies, possibly before Ray reports the death: after an
    actor raised, wait up to ``DEATH_GRACE_S`` for news of a dead peer, which then names the failure."""
    rank_of = {ref: r for r, ref in enumerate(refs)}
    pending, results = list(refs), {}
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        ref = done[0]
        try:
            results[rank_of[ref]] = ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            raise _Restart(rank_of[ref], f"died ({type(exc).__name__})") from exc
        except ray.exceptions.RayTaskError as exc:
            deadline = time.monotonic() + DEATH_GRACE_S
            while pending and time.monotonic() < deadline:
                left_s = max(0.0, deadline - time.monotonic())
                more, pending = ray.wait(pending, num_returns=1, timeout=left_s)
                for other in more:
                    try:
                        ray.get(other)
                    except ray.exceptions.RayActorError as died:
                        raise _Restart(rank_of[other], f"died ({type(died).__name__})") from died
                    except ray.exceptions.RayTaskError:
                        pass
            if _timed_out(exc):
                first = str(getattr(exc, "cause", exc)).splitlines()[0]
                raise _Restart(rank_of[ref], f"timed out waiting for its peers: {first}") from exc
            raise RuntimeError(f"surf-dist: Ray actor {rank_of[ref]} failed:\n{exc}") from exc
    return results[0]


def run_ray(cfg: Config, out: Path | None, *, progress: bool = True) -> dict[str, Any] | None:
    """Train and evaluate on ``run.workers`` Ray actors; returns the summary (the coordinator's).

    Joins ``run.ray_address`` (else ``RAY_ADDRESS``) or starts a local Ray, and stops only a Ray it
    started. Raises ``RayBackendError`` when Ray is missing or unreachable and ``RunFailed`` when the
    run failed ``failures.max_restarts + 1`` times."""
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
                    print(
                        f"surf-dist: {cfg.run.workers} Ray actors, process group at tcp://{ip}:{port}"
                        + (f" (restart {attempt})" if attempt else ""),
                        file=sys.stderr,
                    )
                refs = [
                    a.run.remote(cfg, out_s, r, cfg.run.workers, f"tcp://{ip}:{port}", os.getcwd())
                    for r, a in enumerate(actors)
                ]
                summary = _collect(ray, refs)
            except _Restart as exc:
                then = (
                    f"restarting all {cfg.run.workers} actors from the last checkpoint"
                    if attempt < cfg.failures.max_restarts
                    else "no restarts left"
                )
                print(f"surf-dist: {exc}; {then}", file=sys.stderr)
                continue
            finally:
                _kill(ray, actors)  # survivors may be blocked in a collective with a dead peer: do not wait
            if progress and summary is not None:
                from ..report import table

                print(table(summary))
            return summary
        raise RunFailed(f"the Ray run failed {cfg.failures.max_restarts + 1} time(s); see the messages above")
    finally:
        if started:
            ray.shutdown()
