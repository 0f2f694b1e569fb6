"""One supervisor for every backend: start a group of workers, wait, stop them all, restart from the last
checkpoint.

A *group* is one attempt at running W workers together: forked processes (``ForkedGroup``: the local
backend with kills, torch ranks started without torchrun, the tests' harness, the benchmarks) or Ray
actors (``runtime.ray_driver``). ``supervise`` starts a group, waits until every worker has finished or
one has failed, stops the others (a survivor may be blocked in a collective with a dead peer, so it is
killed, not waited for) and starts a fresh group, at most ``max_restarts`` times; the fresh workers
resume from the run directory's last checkpoint.

Retried: a worker that died (a kill, a crash of the process) or timed out waiting for a peer (a hang).
Not retried: an ``InputError`` raised in a worker (bad input is not a crash; it is raised again here, so
the run ends with exit 2), a ``RunFailed`` raised in a worker (``CannotWrite``: the run directory's disk is
full or read-only; raised again here as it is, one line and exit 1: a restart would fail the same way), any
other exception in a worker (a bug: its traceback is shown once, and the
run ends with ``RunFailed``), and an interrupt of the supervisor itself (SIGINT, or SIGTERM turned into
``errors.Interrupted`` by the CLI: every worker is stopped first, then the interrupt propagates).

Every failure is one line on stderr naming the worker and the step the run had reached (from the run
directory's ``metrics.jsonl``), e.g. ``rank 0 died (signal SIGKILL) at step 5; restarting every worker from
the checkpoint of step 4``.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import pickle
import queue as queue_mod
import signal
import socket
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, RunFailed, WorkerTimeout
from ..worker import checkpoint
from ..worker.metrics import steps_done
from .console import say

POLL_S = 0.05
DEATH_GRACE_S = 3.0  # after a worker failed: how long to wait for news of a peer that died first


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the process group's rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def exit_reason(code: int) -> str:
    """A dead process's exit code in words: ``signal SIGKILL`` or ``exit code 3``."""
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"


@dataclass
class Failure:
    """What went wrong with one worker. ``input_problems`` is set when the worker raised an InputError."""

    worker: int
    reason: str
    details: str = ""  # a traceback, for errors that are bugs
    input_problems: list[str] | None = None
    run_failed: RunFailed | None = None  # the worker's own RunFailed (e.g. CannotWrite), already explained
    died: bool = False  # the process itself is gone (a kill, a crash): the most likely first cause


@dataclass
class Outcome:
    results: dict[int, Any] = field(default_factory=dict)  # worker -> what its body returned
    failure: Failure | None = None


class Group(ABC):
    """One attempt: W workers started together and stopped together."""

    num_workers: int
    worker_name = "worker"  # how messages name one worker: "rank", "Ray actor"

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def wait(self) -> Outcome:
        """Block until every worker has returned, or the first failure is known."""

    @abstractmethod
    def stop(self) -> None:
        """Kill every worker still running (idempotent)."""


def _at_step(run_dir: str | Path | None) -> str:
    """`` at step S`` (the step the run had reached, by its metrics file), or nothing when unknown."""
    step = None if run_dir is None else steps_done(run_dir)
    return "" if step is None else f" at step {step}"


def _restart_from(run_dir: str | Path | None) -> str:
    step = None if run_dir is None else checkpoint.step_of(run_dir)
    return "the start (no checkpoint yet)" if step is None else f"the checkpoint of step {step}"


def supervise(
    make_group: Callable[[int], Group],
    *,
    max_restarts: int,
    what: str = "the run",
    run_dir: str | Path | None = None,
) -> dict[int, Any]:
    """Run groups from ``make_group(attempt)`` until one succeeds; its workers' results. ``run_dir``: where
    the messages read the step the run had reached.

    Raises ``InputError`` (a worker's, never retried) or ``RunFailed`` after ``max_restarts + 1`` failures.
    """
    for attempt in range(max_restarts + 1):
        group = make_group(attempt)
        try:
            group.start()
            outcome = group.wait()
        finally:
            group.stop()
        failure = outcome.failure
        if failure is None:
            return outcome.results
        if failure.input_problems is not None:
            raise InputError(failure.input_problems)
        if failure.run_failed is not None:
            raise failure.run_failed
        event = f"{group.worker_name} {failure.worker} {failure.reason}{_at_step(run_dir)}"
        if failure.details:  # a bug: the same error would come back on every restart
            say(failure.details.rstrip())
            raise RunFailed(event)
        then = (
            f"restarting every worker from {_restart_from(run_dir)}"
            if attempt < max_restarts
            else "no restarts left (failures.max_restarts)"
        )
        say(f"surf-dist: {event}; {then}")
    raise RunFailed(f"{what} failed {max_restarts + 1} time(s); see the messages above")


def run_once(group: Group) -> list[Any]:
    """Start ``group``, wait, stop it; every worker's result in worker order, or ``RuntimeError`` naming the
    failure (with its traceback). For tests and benchmarks, which want to see every failure."""
    try:
        group.start()
        outcome = group.wait()
    finally:
        group.stop()
    if outcome.failure is not None:
        f = outcome.failure
        raise RuntimeError(f"{group.worker_name} {f.worker} {f.reason}\n{f.details or f.input_problems or ''}")
    return [outcome.results[w] for w in range(group.num_workers)]


# -- forked processes ----------------------------------------------------------------------------------------
def _die_with_parent() -> None:
    """Linux: SIGKILL this child when its parent dies, so a killed supervisor leaves no orphan worker."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _child(rank: int, target: Callable[[int], Any], results: Any) -> None:
    """A forked worker: run ``target(rank)`` and report how it ended. Exit codes: 0 done, 2 input error,
    3 timed out waiting for a peer, 1 anything else (a ``RunFailed`` is sent whole: its message is the line)."""
    _die_with_parent()
    # the supervisor handles Ctrl-C for the whole group: a worker that raised KeyboardInterrupt would print a
    # traceback of its own, interleaved with its peers'; SIGTERM (whose handler the fork inherited) just ends it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    code = 0
    try:  # pickled here, so that a result that cannot be pickled is this worker's error, not a silent hang
        results.put((rank, "ok", pickle.dumps(target(rank), protocol=pickle.HIGHEST_PROTOCOL)))
    except InputError as exc:
        results.put((rank, "input", exc.problems))
        code = 2
    except WorkerTimeout as exc:
        results.put((rank, "timeout", str(exc)))
        code = 3
    except RunFailed as exc:
        results.put((rank, "failed", exc))
        code = 1
    except BaseException as exc:  # a bug: the traceback goes to the supervisor
        results.put((rank, "error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
        code = 1
    results.close()
    results.join_thread()  # the report must be in the pipe before the process is gone
    os._exit(code)  # skip atexit handlers and finalisers inherited from the parent


class ForkedGroup(Group):
    """``num_workers`` forked processes, worker r running ``target(r)``; each returns a picklable result.

    ``deadline_s``: a worker still running after that long is a failure (tests and benchmarks). ``inherited``:
    sockets the workers inherit (the rendezvous store's, bound here); this process closes its copies once every
    worker has started."""

    def __init__(
        self,
        target: Callable[[int], Any],
        num_workers: int,
        *,
        deadline_s: float | None = None,
        worker_name: str = "rank",
        inherited: Sequence[socket.socket] = (),
    ) -> None:
        self.target, self.num_workers, self.deadline_s = target, num_workers, deadline_s
        self.worker_name = worker_name
        self.inherited = list(inherited)
        self._ctx = mp.get_context("fork")
        self._results: Any = None
        self._procs: list[Any] = []

    def start(self) -> None:
        self._results = self._ctx.Queue()
        self._procs = [
            self._ctx.Process(target=_child, args=(r, self.target, self._results), daemon=True)
            for r in range(self.num_workers)
        ]
        try:
            for p in self._procs:
                p.start()
        finally:
            self._close_inherited()

    def _close_inherited(self) -> None:
        for s in self.inherited:
            s.close()
        self.inherited = []

    def _report(self, item: tuple) -> tuple[int, Any, Failure | None]:
        rank, status, value = item[0], item[1], item[2]
        if status == "ok":
            return rank, pickle.loads(value), None
        if status == "input":
            return rank, None, Failure(rank, "found bad input", input_problems=list(value))
        if status == "timeout":
            return rank, None, Failure(rank, f"timed out waiting for its peers: {value}")
        if status == "failed":
            return rank, None, Failure(rank, f"failed: {value}", run_failed=value)
        return rank, None, Failure(rank, f"raised {value}", details=item[3])

    def _dead(self, reported: set[int]) -> list[Failure]:
        """Workers gone with a non-zero exit code and no report: killed or crashed."""
        return [
            Failure(r, f"died ({exit_reason(p.exitcode)})", died=True)
            for r, p in enumerate(self._procs)
            if p.exitcode not in (None, 0) and r not in reported
        ]

    def wait(self) -> Outcome:
        outcome = Outcome()
        reported: set[int] = set()
        started = time.monotonic()
        while len(outcome.results) < self.num_workers:
            try:
                rank, value, failure = self._report(self._results.get(timeout=POLL_S))
                reported.add(rank)
                if failure is None:
                    outcome.results[rank] = value
                    continue
            except queue_mod.Empty:
                dead = self._dead(reported)
                if not dead:
                    if self.deadline_s is not None and time.monotonic() - started > self.deadline_s:
                        outcome.failure = Failure(
                            -1, f"(deadline of {self.deadline_s:.0f} s passed; done: {sorted(outcome.results)})"
                        )
                        return outcome
                    continue
                failure = dead[0]
            outcome.failure = self._first_cause(failure, reported)
            return outcome
        return outcome

    def _first_cause(self, failure: Failure, reported: set[int]) -> Failure:
        """A worker that raised may only have lost a peer that died first: wait a moment for such a death."""
        if failure.died or failure.input_problems is not None or failure.run_failed is not None:
            return failure
        deadline = time.monotonic() + DEATH_GRACE_S
        while time.monotonic() < deadline:
            with contextlib.suppress(queue_mod.Empty):
                rank, _, other = self._report(self._results.get(timeout=POLL_S))
                reported.add(rank)
                if other is not None and other.input_problems is not None:
                    return other
            dead = self._dead(reported)
            if dead:
                return dead[0]
            if all(p.exitcode is not None for p in self._procs):
                break
        return failure

    def stop(self) -> None:
        self._close_inherited()
        started = [p for p in self._procs if p.pid is not None]  # an interrupt may land between two starts
        for p in started:
            if p.exitcode is None:
                p.kill()
        for p in started:
            p.join()
        if self._results is not None:
            self._results.close()
            self._results.cancel_join_thread()
