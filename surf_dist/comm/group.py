"""A Mixer whose workers form a torch.distributed process group: the collectives (differentiable sums, the maxima,
the gradient buckets, gathers and broadcasts), and liveness (heartbeats in the rendezvous store, and a clear error
naming the worker behind when a collective times out). ``TorchMixer`` adds the halo exchange of rounds.
"""

from __future__ import annotations

import datetime as dt
import pickle
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from ..errors import WorkerTimeout
from .grad_buckets import BUCKET_NUMEL, GradientBuckets
from .ledger import Ledger
from .mixer import Mixer
from .quiet import fd2_silenced


def _pickled_size(obj: Any) -> int:
    return len(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; backward sums the upstream gradients over ranks (exact for any downstream use).
    ``direction``: ``allreduce`` for the method's own collectives (layer ``layer``), ``scalars`` for the
    simulator's (losses, norms, accuracies)."""

    @staticmethod
    def forward(ctx: Any, t: torch.Tensor, mixer: GroupMixer, direction: str, layer: int):
        ctx.mixer, ctx.direction, ctx.layer = mixer, direction, layer
        out = t.detach().clone().contiguous()
        mixer.raw_all_reduce(out, direction, layer)
        return out

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor):
        out = g.detach().clone().contiguous()
        ctx.mixer.raw_all_reduce(out, ctx.direction, ctx.layer)
        return out, None, None, None


class GroupMixer(Mixer):
    """A worker of a process group ``group`` hosting ``placement[rank]``; subclasses make the rounds."""

    def __init__(
        self,
        *,
        placement: list[np.ndarray],
        num_agents: int,
        group: Any = None,
        semantics: str = "zero",
        timeout_s: float | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        rank, world = dist.get_rank(group), dist.get_world_size(group)
        if len(placement) != world:
            raise ValueError(f"placement has {len(placement)} workers but the process group has {world} ranks")
        super().__init__(
            agents=placement[rank],
            num_agents=num_agents,
            rank=rank,
            num_workers=world,
            semantics=semantics,
            ledger=ledger,
        )
        self.placement, self.group = placement, group
        self.comm_seconds = 0.0
        self.timeout = None if timeout_s is None else dt.timedelta(seconds=timeout_s)
        self._buckets: GradientBuckets | None = None
        self.step = -1
        self.store: dist.Store | None
        try:  # the rendezvous store outlives a hung main thread: it tells who fell behind
            self.store = dist.distributed_c10d._get_default_store()
        except Exception:  # pragma: no cover - no default store (custom groups)
            self.store = None

    # -- liveness ------------------------------------------------------------------------------------
    def heartbeat(self, step: int) -> None:
        self.step = step
        if self.store is not None:
            self.store.set(f"surf/progress/{self.rank}", str(step))

    def post_flag(self, name: str, step: int, value: bool) -> None:
        """The coordinator writes ``surf/flag/NAME/STEP`` to the store before the step's collectives; a worker
        reads it once it has passed one of them with the coordinator, so the key is there. Keys of two steps
        back are deleted (every worker read them before the coordinator could start this step)."""
        if self.store is None:
            super().post_flag(name, step, value)
            return
        if self.is_coordinator:
            store = self.store
            self._run("store (flag)", [0], lambda: store.set(f"surf/flag/{name}/{step}", "1" if value else "0"))
            self._flags[(name, step)] = value
            if step >= 2:
                try:
                    store.delete_key(f"surf/flag/{name}/{step - 2}")
                except Exception:  # a store without deletion: the keys stay (a few bytes a step)
                    pass

    def read_flag(self, name: str, step: int) -> bool:
        if self.store is None:
            if self.num_workers == 1:
                return super().read_flag(name, step)
            return bool(self.broadcast_object(super().read_flag(name, step)))
        if self.is_coordinator:
            return self._flags.pop((name, step), False)
        store = self.store
        return self._run("store (flag)", [0], lambda: store.get(f"surf/flag/{name}/{step}")) == b"1"

    def _progress(self) -> dict[int, int | None]:
        """Each worker's last heartbeat (None: unknown). Probed after a failure, when the store itself may be
        gone with the worker that hosted it: the first call that fails ends the probe, and c10d's stack dumps
        of those calls are silenced."""
        out: dict[int, int | None] = dict.fromkeys(range(self.num_workers))
        if self.store is None:
            return out
        with fd2_silenced():
            for r in range(self.num_workers):
                try:
                    self.store.set_timeout(dt.timedelta(seconds=2))
                    out[r] = int(self.store.get(f"surf/progress/{r}").decode())
                except Exception:
                    break
        return out

    def _timed_out(self, what: str, peers: list[int] | None, exc: Exception) -> WorkerTimeout:
        """A clear error naming the worker(s) that stopped answering."""
        progress = self._progress()
        known = {r: s for r, s in progress.items() if s is not None}
        behind = sorted(r for r, s in known.items() if s < self.step) if known else []
        others = [r for r in range(self.num_workers) if r != self.rank]  # nothing known: any of them
        suspects = [r for r in (behind or peers or others) if r != self.rank]
        if known:
            seen = ", ".join(
                f"worker {r} at step {s}" if s is not None else f"worker {r} unknown" for r, s in progress.items()
            )
        else:
            seen = "none (the rendezvous store did not answer: the worker that hosts it is gone)"
        cause = str(exc).splitlines()[0] if str(exc) else ""
        return WorkerTimeout(
            f"worker {self.rank}: {what} at step {self.step} failed: a peer closed its connection or gave no "
            f"answer within run.timeout_s; suspected hung or dead: worker(s) {suspects or 'unknown'}; "
            f"last steps seen: {seen}. Cause: {type(exc).__name__}: {cause}"
        )

    def _run(self, what: str, peers: list[int] | None, fn: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn()
        except (RuntimeError, dist.DistError) as exc:  # gloo/nccl timeouts and closed connections
            raise self._timed_out(what, peers, exc) from exc
        finally:
            self.comm_seconds += time.perf_counter() - t0

    def _global_rank(self, peer: int) -> int:
        return peer if self.group is None else dist.get_global_rank(self.group, peer)

    # -- reductions -----------------------------------------------------------------------------------
    def raw_all_reduce(self, t: torch.Tensor, direction: str, layer: int = 0) -> None:
        """In-place sum over ranks."""
        self._run(f"all-reduce ({direction})", None, lambda: dist.all_reduce(t, group=self.group))
        self._record_ring(direction, t, layer)

    def _record_ring(self, direction: str, t: torch.Tensor, layer: int = 0) -> None:
        """Physical bytes this worker sends in an all-reduce of ``t``, estimated as a ring sends them:
        2 (W−1) messages of 1/W of the tensor each, 2 (W−1)/W × its size."""
        nbytes = t.numel() * t.element_size()
        direction = "recompute" if self.recomputing else direction
        self.ledger.record_physical(
            direction,
            layer,
            0,
            2 * (self.num_workers - 1),
            int(2 * (self.num_workers - 1) / self.num_workers * nbytes),
        )

    def all_reduce_sum(self, t: torch.Tensor, *, ledger_layer: int | None = None, num_senders: int = 0) -> torch.Tensor:
        if ledger_layer is None:
            return _AllReduceSum.apply(t, self, "scalars", 0)
        self.record_all_reduce(ledger_layer, t, num_senders)
        return _AllReduceSum.apply(t, self, "allreduce", ledger_layer)

    def all_reduce_max(self, t: torch.Tensor) -> torch.Tensor:
        out = t.detach().clone().contiguous()
        self._run("all-reduce (max)", None, lambda: dist.all_reduce(out, op=dist.ReduceOp.MAX, group=self.group))
        self._record_ring("scalars", out)
        return out

    def watch_gradients(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Sum the gradients of ``params`` over workers during every backward (``comm.grad_buckets``), on a
        process group of their own (collective: every worker calls it once, in the same order)."""
        if self.num_workers == 1:
            return
        ranks = None if self.group is None else dist.get_process_group_ranks(self.group)
        group = dist.new_group(ranks=ranks, backend=dist.get_backend(self.group), timeout=self.timeout)
        self._buckets = GradientBuckets(list(params), group, lambda flat: self._record_ring("params", flat))

    def all_reduce_grads(self, params: Iterable[torch.nn.Parameter]) -> None:
        if self._buckets is not None:
            self._run("gradient all-reduce", None, self._buckets.finish)
            return
        grads = [p.grad for p in params if p.grad is not None]
        bucket: list[torch.Tensor] = []
        for g in [*grads, None]:
            if g is not None:
                bucket.append(g)
            if bucket and (g is None or sum(b.numel() for b in bucket) >= BUCKET_NUMEL):
                flat = torch.cat([b.reshape(-1) for b in bucket])
                self.raw_all_reduce(flat, "params")
                offset = 0
                for b in bucket:
                    b.copy_(flat[offset : offset + b.numel()].view_as(b))
                    offset += b.numel()
                bucket = []

    def gather_objects(self, obj: Any) -> list[Any] | None:
        out: list[Any] | None = [None] * self.num_workers if self.rank == 0 else None
        self._run("gather", None, lambda: dist.gather_object(obj, out, dst=self._global_rank(0), group=self.group))
        if out is not None:  # counted by the receiver: what the other workers sent it
            self.ledger.record_physical("gather", 0, 0, self.num_workers - 1, sum(map(_pickled_size, out[1:])))
        return out

    def broadcast_object(self, obj: Any) -> Any:
        box = [obj]
        self._run(
            "broadcast",
            [0],
            lambda: dist.broadcast_object_list(box, src=self._global_rank(0), group=self.group),
        )
        if self.is_coordinator:
            num_peers = self.num_workers - 1
            self.ledger.record_physical("broadcast", 0, 0, num_peers, num_peers * _pickled_size(obj))
        return box[0]

    def barrier(self) -> None:
        self._run("barrier", None, lambda: dist.barrier(group=self.group))
