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
input and ends the run at once (bad input: exit 2, never retried). At most ``failures.max_restarts``
restarts (``runtime.supervisor``). An interrupt of the driver kills every actor before it propagates.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from ..config import Config
from ..errors import InputError, RunFailed, WorkerTimeout
from ..plugins import load_plugins, plugin_sources
from ..rundir.outputs import table
from ..worker.jobs import Job, TrainJob
from . import addresses
from .interrupts import keep_handlers
from .supervisor import Failure, Group, Outcome, supervise
from .torch_launch import init_process_group, torch_worker, worker_problem

READY_TIMEOUT_S = 180.0  # how long W actors may take to be placed and to import torch
DEATH_GRACE_S = 10.0  # after a worker raised: how long to wait for news of a peer that died first
FORWARDED_ENV = ("GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME", "NCCL_DEBUG", "TP_SOCKET_IFNAME", "GLIBC_TUNABLES")


class RayBackendError(RunFailed, RuntimeError):
    """Ray is missing, unreachable or cannot place the actors: the message says what to do (exit code 1)."""


def _import_ray() -> Any:
    try:
        import ray  # Ray is optional: only the Ray backend imports it
    except ImportError as exc:
        raise RayBackendError(
            "the ray backend needs Ray; install it with pip install 'surf-dist[ray]' (or use --backend local|torch)"
        ) from exc
    return ray


class RayWorker:
    """One worker in its own process (a Ray actor): joins the process group and runs ``torch_worker``."""

    _listener: socket.socket | None = None  # actor 0: the store's server socket, from address() to run()

    def ready(self) -> str:
        """The node this actor runs on (returns once the actor is placed and its process is up)."""
        import ray  # Ray is optional: only the Ray backend imports it

        return ray.util.get_node_ip_address()

    def address(self) -> tuple[str, int]:
        """This node's address (as Ray reports it: loopback for a local Ray) and a port bound there and kept
        open by this actor: the process group's rendezvous (actor 0 only; its store serves on that socket)."""
        import ray  # Ray is optional: only the Ray backend imports it

        ip = ray.util.get_node_ip_address()
        self._listener = addresses.listening_socket(ip)
        return ip, int(self._listener.getsockname()[1])

    def run(
        self,
        cfg: Config,
        out: str | None,
        rank: int,
        world_size: int,
        init_method: str,
        cwd: str | None,
        job: Job,
        plugin_sources: dict[str, str],
    ) -> Any:
        """``job`` as rank ``rank``; the coordinator (rank 0) returns its result."""
        import ray  # Ray is optional: only the Ray backend imports it

        if cwd is not None and os.path.isdir(cwd):
            os.chdir(cwd)  # relative paths in the config (graph files, traces, data roots) mean the driver's
        problems = load_plugins(cfg.run.plugins, sources=plugin_sources)  # before anything reads a registry
        if problems:
            raise InputError(problems)
        torch.set_num_threads(cfg.run.threads_per_worker or 1)  # Ray packs actors onto cores: one thread each
        problem = worker_problem(cfg)  # bad data ends every actor here, before its peers wait for it
        listener = getattr(self, "_listener", None)  # actor 0's, bound in address()
        self._listener = None
        init_process_group(
            cfg.run,
            rank=rank,
            world_size=world_size,
            init_method=init_method,
            listen_fd=None if listener is None else listener.detach(),
            bind_address=ray.util.get_node_ip_address(),
        )
        result = torch_worker(
            cfg, None if out is None else Path(out), progress=False, backend_name="ray", problem=problem, job=job
        )
        # only after success: a group with a dead or hung peer may block here, and the driver kills us anyway
        dist.destroy_process_group()
        return result


class _NotTokenDefault(logging.Filter):
    """Drops Ray's warning that a new local cluster uses token authentication (Ray's default)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Token authentication is enabled for this Ray cluster")


_NOT_TOKEN_DEFAULT = _NotTokenDefault()  # one instance: addFilter adds it once however often Ray starts


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
            # Ray turns token authentication on for every new local cluster and warns about it each time; the
            # default is kept, the warning dropped (it is not about this run)
            logging.getLogger("ray._private.authentication.authentication_token_setup").addFilter(_NOT_TOKEN_DEFAULT)
            # "local": never join a cluster that happens to run on this machine; on loopback only
            with _loopback_ray(ray), workers_at_normal_priority():
                ray.init(
                    address="local",
                    num_cpus=num_cpus,
                    include_dashboard=False,
                    _node_ip_address=addresses.LOOPBACK,
                    **quiet,
                )
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


@contextlib.contextmanager
def _loopback_ray(ray: Any) -> Iterator[None]:
    """A local Ray started inside the block listens on loopback only: its GCS, raylet, object manager, agents and
    workers bind the node address, and on Linux Ray turns 127.0.0.1 into the first network interface's address
    (``services.resolve_ip_for_localhost``) and binds every interface, unless clusters are off
    (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, the default on macOS and Windows). The variable is read when Ray is
    imported, so the driver's copy is set as well; the daemons inherit the environment."""
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    name = getattr(constants, "ENABLE_RAY_CLUSTERS_ENV_VAR", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    saved = getattr(constants, "ENABLE_RAY_CLUSTER", None)
    if saved is not None:
        constants.ENABLE_RAY_CLUSTER = False  # type: ignore[union-attr]
    try:
        with _environment(name, "0"):
            yield
    finally:
        if saved is not None:
            constants.ENABLE_RAY_CLUSTER = saved  # type: ignore[union-attr]


@contextlib.contextmanager
def workers_at_normal_priority() -> Iterator[None]:
    """A local Ray started inside the block runs its workers at nice 0, as forked ranks run: Ray's raylet starts
    them at nice 15 (``RAY_worker_niceness``), and beside a busy loop on every core such actors got almost no CPU
    (a 6-step run did not finish in 300 s). The raylet reads the variable when it starts; a cluster keeps its own."""
    with _environment("RAY_worker_niceness", "0"):
        yield


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """``os.environ[name] = value`` inside the block (what the daemons started there inherit), restored after."""
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


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
    actors: list[Any] = []
    timeout_s = max(READY_TIMEOUT_S, cfg.run.timeout_s)
    try:
        actors += [cls.options(**_actor_options(cfg)).remote() for _ in range(cfg.run.workers)]
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
    except BaseException:  # an interrupt: no actor may outlive the driver on a cluster that stays up
        _kill(ray, actors)
        raise
    return actors


def _kill(ray: Any, actors: list[Any]) -> None:
    for a in actors:
        try:
            ray.kill(a, no_restart=True)
        except Exception:  # already gone
            pass


class RayGroup(Group):
    """One attempt on Ray: W fresh actors that form one process group and run ``torch_worker``."""

    worker_name = "Ray actor"

    def __init__(self, ray: Any, cfg: Config, out: str | None, attempt: int, progress: bool, job: Job) -> None:
        self.ray, self.cfg, self.out, self.attempt, self.progress = ray, cfg, out, attempt, progress
        self.job, self.plugin_sources = job, plugin_sources(cfg.run.plugins)
        self.num_workers = cfg.run.workers
        self.actors: list[Any] = []
        self.refs: list[Any] = []

    def start(self) -> None:
        self.actors = _start_actors(self.ray, self.cfg)
        ip, port = self.ray.get(self.actors[0].address.remote())
        if self.progress:
            print(
                f"surf-dist: {self.num_workers} Ray actors, process group at tcp://{ip}:{port}"
                + (f" (restart {self.attempt})" if self.attempt else ""),
                file=sys.stderr,
            )
        self.refs = [
            a.run.remote(
                self.cfg,
                self.out,
                r,
                self.num_workers,
                f"tcp://{ip}:{port}",
                os.getcwd(),
                self.job,
                self.plugin_sources,
            )
            for r, a in enumerate(self.actors)
        ]

    def _failure(self, rank: int, exc: BaseException) -> Failure:
        ray = self.ray
        if isinstance(exc, ray.exceptions.RayActorError):
            return Failure(rank, f"died ({type(exc).__name__})", died=True)
        cause = getattr(exc, "cause", None) or exc
        if isinstance(cause, InputError):
            return Failure(rank, "found bad input", input_problems=cause.problems)
        if isinstance(cause, RunFailed):  # e.g. CannotWrite: the run directory's disk, not a crash
            return Failure(rank, f"failed: {cause}", run_failed=cause)
        if isinstance(cause, WorkerTimeout):
            return Failure(rank, f"timed out waiting for its peers: {str(cause).splitlines()[0]}")
        return Failure(rank, f"raised {type(cause).__name__}", details=str(exc))

    def wait(self) -> Outcome:
        """Every actor's result, or the first failure; after an actor raised, wait up to ``DEATH_GRACE_S``
        for news of a peer that died first (a survivor's collective fails when its peer dies, possibly before
        Ray reports the death)."""
        ray = self.ray
        rank_of = {ref: r for r, ref in enumerate(self.refs)}
        pending, outcome = list(self.refs), Outcome()
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            try:
                outcome.results[rank_of[done[0]]] = ray.get(done[0])
                continue
            except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as exc:
                failure = self._failure(rank_of[done[0]], exc)
            deadline = time.monotonic() + DEATH_GRACE_S
            while pending and not failure.died and failure.run_failed is None and time.monotonic() < deadline:
                more, pending = ray.wait(pending, num_returns=1, timeout=max(0.0, deadline - time.monotonic()))
                for other in more:
                    try:
                        ray.get(other)
                    except ray.exceptions.RayActorError as died:
                        failure = self._failure(rank_of[other], died)
                    except ray.exceptions.RayTaskError:
                        pass
            outcome.failure = failure
            return outcome
        return outcome

    def stop(self) -> None:
        _kill(self.ray, self.actors)  # survivors may be blocked in a collective with a dead peer: do not wait


def run_ray(cfg: Config, out: Path | None, *, progress: bool = True, job: Job | None = None) -> Any:
    """``job`` (default: train) on ``run.workers`` Ray actors; its result (the coordinator's).

    Joins ``run.ray_address`` (else ``RAY_ADDRESS``) or starts a local Ray, and stops only a Ray it
    started. Raises ``RayBackendError`` when Ray is missing or unreachable and ``RunFailed`` when the
    run failed ``failures.max_restarts + 1`` times."""
    ray = _import_ray()
    with keep_handlers():  # ray.init installs a SIGTERM handler of its own that would skip the clean stop
        started = _connect(ray, cfg)
    try:
        _check_resources(ray, cfg)
        out_s = None if out is None else str(Path(out).resolve())
        results = supervise(
            lambda attempt: RayGroup(ray, cfg, out_s, attempt, progress, job or TrainJob()),
            max_restarts=cfg.failures.max_restarts,
            what="the Ray run",
            run_dir=out,
        )
        result = results[0]
        if progress and job is None and result is not None:
            print(table(result))
        return result
    finally:
        if started:
            ray.shutdown()
