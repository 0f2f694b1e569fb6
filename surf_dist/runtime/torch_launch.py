"""Launching torch.distributed workers: under torchrun (this process is one rank) or as forked local ranks
that ``supervise`` restarts from the last checkpoint when one dies (as torchrun --max-restarts does).

A rank first builds its ``Problem`` and loads the data (``worker_problem``): bad input found there ends every
rank before the rendezvous, with exit 2 and no peer left waiting. Then it joins the default process group
(gloo on CPU, nccl on GPUs), builds its ``TorchMixer`` for the placement of the problem's agents, and runs
the same job as every backend (``train.jobs``: ``TrainJob``, ``EvalJob``).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import gc
import importlib
import logging
import os
import sys
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import torch
import torch.distributed as dist

from ..comm.ledger import Ledger
from ..comm.torch_mixer import TorchMixer
from ..config import Config, RunConfig, replace
from ..worker.jobs import Job, TrainJob
from ..worker.problem import Problem
from . import addresses, under_torchrun
from .addresses import bind_gloo
from .supervisor import ForkedGroup, supervise

_JOINED = False  # a torchrun rank that joined a group leaves through exit_rank


def init_process_group(
    cfg_run: RunConfig,
    *,
    rank: int | None = None,
    world_size: int | None = None,
    init_method: str | None = None,
    listen_fd: int | None = None,
    bind_address: str | None = None,
) -> None:
    """Join the default process group: from torchrun's environment, or explicit (forked ranks, Ray actors) at
    ``init_method`` = ``tcp://HOST:PORT``, where rank 0 serves the rendezvous store on HOST only (``listen_fd``:
    a socket bound there already, e.g. inherited from the supervisor). This rank's gloo pairs bind
    ``bind_address`` (default HOST; a Ray actor on another node: its own node's address)."""
    backend = "nccl" if cfg_run.device == "cuda" else "gloo"
    timeout = dt.timedelta(seconds=cfg_run.timeout_s)
    if cfg_run.threads_per_worker:
        torch.set_num_threads(cfg_run.threads_per_worker)
    if rank is None:  # torchrun: the store of this restart attempt, under a prefix of its own, so that a
        # restarted group never reads the addresses its dead predecessor left in a reused store
        master = os.environ.get("MASTER_ADDR", addresses.LOOPBACK)
        bind_gloo(cfg_run.node_address or addresses.route_source(master, int(os.environ.get("MASTER_PORT", 9))))
        store, env_rank, env_world = next(dist.rendezvous("env://", timeout=timeout))
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        global _JOINED
        _JOINED = True
        dist.init_process_group(
            backend,
            store=dist.PrefixStore(f"surf-dist/attempt-{attempt}", store),
            rank=env_rank,
            world_size=env_world,
            timeout=timeout,
        )
        return
    assert world_size is not None and init_method is not None, "an explicit rank needs a world size and an address"
    host, port = _host_port(init_method)
    bind_gloo(bind_address or host)
    if rank == 0:
        if listen_fd is None:
            listen_fd = addresses.listening_socket(host, port).detach()
        store = dist.TCPStore(host, port, world_size, True, timeout, master_listen_fd=listen_fd)
    else:
        if listen_fd is not None:
            os.close(listen_fd)  # the store's server socket, inherited: rank 0's alone
        store = dist.TCPStore(host, port, world_size, False, timeout)
    dist.init_process_group(backend, store=store, rank=rank, world_size=world_size, timeout=timeout)


def _host_port(init_method: str) -> tuple[str, int]:
    """``tcp://HOST:PORT`` (HOST may be ``[IPv6]``) as (HOST, PORT)."""
    hostport = init_method.removeprefix("tcp://")
    host, _, port = hostport.rpartition(":")
    return host.strip("[]"), int(port)


def build_mixer(cfg: Config, problem: Problem) -> TorchMixer:
    """This rank's Mixer once the process group exists (a GPU from LOCAL_RANK when ``run.device`` is cuda)."""
    device = "cpu"
    if cfg.run.device == "cuda":
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        torch.cuda.set_device(device)
    return TorchMixer(
        placement=problem.placement(dist.get_world_size()),
        num_agents=problem.num_agents,
        ledger=Ledger(problem.num_agents),
        semantics=cfg.failures.semantics,
        device=device,
        timeout_s=cfg.run.timeout_s,
    )


def worker_problem(cfg: Config) -> Problem:
    """This worker's ``Problem`` with its data loaded: call it before the rendezvous, so that a corrupt data
    file (an ``InputError``) ends the worker before its peers wait for it."""
    problem = Problem(cfg)
    problem.num_features  # noqa: B018 - loads the train split (and builds its features)
    return problem


def torch_worker(
    cfg: Config,
    out: Path | None,
    progress: bool,
    backend_name: str = "torch",
    problem: Problem | None = None,
    job: Job | None = None,
) -> Any:
    """The body of one rank once the process group exists: ``job`` (default: train); the coordinator's result."""
    problem = problem or Problem(cfg)
    mixer = build_mixer(cfg, problem)
    job = job or TrainJob()
    return job(cfg, mixer, problem, out, progress=progress and mixer.is_coordinator, backend=backend_name)


def forked_rank_threads(cfg: Config) -> int:
    """torch threads of a forked rank: N forked ranks must not each start an OpenMP pool the machine's size."""
    return cfg.run.threads_per_worker or max(1, (os.cpu_count() or 1) // cfg.run.workers)  # 0: share the cores


def join_forked_group(cfg: Config, rank: int, port: int, listen_fd: int | None = None) -> None:
    """Before any tensor work in a forked rank: its thread count, then the group at tcp://127.0.0.1:PORT (rank 0
    serves the store on ``listen_fd``, the supervisor's socket bound to that address)."""
    torch.set_num_threads(forked_rank_threads(cfg))
    init_process_group(
        cfg.run,
        rank=rank,
        world_size=cfg.run.workers,
        init_method=f"tcp://{addresses.LOOPBACK}:{port}",
        listen_fd=listen_fd,
    )


def _forked_rank(rank: int, cfg: Config, out: Path | None, port: int, listen_fd: int, progress: bool, job: Job) -> Any:
    torch.set_num_threads(forked_rank_threads(cfg))  # before the first tensor operation of the fork
    try:
        problem = worker_problem(cfg)
    except BaseException:
        os.close(listen_fd)  # peers waiting to connect see the store gone, not a silent listener
        raise
    join_forked_group(cfg, rank, port, listen_fd)
    result = torch_worker(cfg, out, progress, problem=problem, job=job)
    dist.destroy_process_group()
    return result


def joined_group() -> bool:
    """This process joined a process group (it may still hold one: ``exit_rank`` ends it)."""
    return _JOINED


def warm_before_fork(cfg: Config) -> None:
    """Load in the supervisor, once, what every forked worker would load for itself: the data (module-level
    caches) and torch's lazily imported optimizer machinery (``torch._dynamo``, 1.3 s here). Forked workers
    inherit both, so a restart after a kill takes a fraction of a second instead of seconds; bad data is found
    here, once, before any worker starts."""
    importlib.import_module("torch._dynamo")
    threads = torch.get_num_threads()
    try:
        worker_problem(cfg)
    finally:
        torch.set_num_threads(threads)


def exit_rank(code: int) -> NoReturn:
    """End a torchrun rank with ``code``. After success its process groups are destroyed first (their threads
    joined while the interpreter is whole); then the process leaves with ``os._exit``, as forked ranks do.

    Why not a plain exit: gloo's worker threads drop their last reference to a finished collective's tensors a
    moment after the caller's ``wait()`` returns, and dropping a tensor that has a Python object takes the GIL.
    When the main thread has meanwhile begun the interpreter's teardown (a rank ends right after its last
    collective), that thread is stopped by ``pthread_exit`` inside a ``noexcept`` frame: ``terminate called
    without an active exception``, SIGABRT. The lag is microseconds on a quiet machine and can be milliseconds
    when another job holds the cores, so the abort came only under load. Without the teardown there is no such
    moment."""
    if code == 0 and dist.is_initialized():
        dist.destroy_process_group()
        gc.collect()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _destroy_group() -> None:
    """At exit of a torchrun rank run from Python (not the CLI, which ends through ``exit_rank``): leave the process
    group cleanly (its threads joined before the interpreter goes)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def run_torch(cfg: Config, out: Path | None, *, progress: bool = True, job: Job | None = None) -> Any:
    """``job`` (default: train) on the torch backend. Under torchrun: this process is one rank. Otherwise fork
    ``run.workers`` local ranks and supervise them. The coordinator's result (None on other torchrun ranks)."""
    job = job or TrainJob()
    if under_torchrun():
        world = int(os.environ["WORLD_SIZE"])
        if cfg.run.workers not in (1, world):
            print(f"surf-dist: run.workers={cfg.run.workers} ignored: torchrun started {world} ranks", file=sys.stderr)
        cfg = replace(cfg, run={"workers": world})
        if cfg.run.threads_per_worker:
            torch.set_num_threads(cfg.run.threads_per_worker)
        problem = worker_problem(cfg)
        if not dist.is_initialized():  # one group per torchrun process, however many jobs it runs (a sweep)
            init_process_group(cfg.run)
            atexit.register(_destroy_group)
        return torch_worker(cfg, out, progress, problem=problem, job=job)

    def group(attempt: int) -> ForkedGroup:
        # the store's server socket, bound on loopback before any rank starts (no race for its port); rank 0
        # inherits it, the supervisor closes its own copy once every rank has started
        listener = addresses.listening_socket(addresses.LOOPBACK)
        port = listener.getsockname()[1]
        target = partial(
            _forked_rank, cfg=cfg, out=out, port=port, listen_fd=listener.fileno(), progress=progress, job=job
        )
        return ForkedGroup(target, cfg.run.workers, inherited=[listener])

    warm_before_fork(cfg)
    results = supervise(group, max_restarts=cfg.failures.max_restarts, what="the torch run", run_dir=out)
    return results[0]
