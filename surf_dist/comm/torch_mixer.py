"""The torch.distributed backend: agents spread over ranks, rounds as differentiable halo exchanges.

Each rank hosts a block of agents (the placement). For a task's graph, ``graph.halo_plan`` says
which hosted rows every other rank needs; a round sends each neighbouring rank those rows once, with
point-to-point isend/irecv on an explicit ProcessGroup (gloo on CPU, nccl on GPUs). The exchange is a
``torch.autograd.Function`` whose backward sends the gradients of the received rows back along the
reversed edges and adds them into the senders' rows: the meta-gradient flows through the messages.

Shapes: A hosted agents, H halo rows (received), D model dimension; ``s_AC`` holds the hosted rows of S
restricted to the columns C = [hosted agents, halo agents].
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from typing import Any

import networkx as nx
import numpy as np
import torch
import torch.distributed as dist

from ..graph import halo_plan
from .mixer import Mixer
from .quiet import fd2_silenced

BUCKET_NUMEL = 4 * 1024 * 1024  # parameter gradients are all-reduced in flat buckets of this many elements


class WorkerTimeout(RuntimeError):
    """A collective or an exchange did not complete within ``run.timeout_s``; names the worker(s) behind."""


class _HaloExchange(torch.autograd.Function):
    """x_eff (A × D) ↦ halo (H × D): the live rows neighbouring ranks sent this round (zeros for silent ones)."""

    @staticmethod
    def forward(ctx: Any, x_AD: torch.Tensor, mixer: TorchMixer, layer: int, hop: int, live_N: np.ndarray | None):
        ctx.mixer, ctx.layer, ctx.hop, ctx.live_N = mixer, layer, hop, live_N
        return mixer.exchange(x_AD, "forward", layer, hop, live_N)

    @staticmethod
    def backward(ctx: Any, g_HD: torch.Tensor):
        m = ctx.mixer
        return m.exchange_back(g_HD.contiguous(), ctx.layer, ctx.hop, ctx.live_N), None, None, None, None


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; backward sums the upstream gradients over ranks (exact for any downstream use)."""

    @staticmethod
    def forward(ctx: Any, t: torch.Tensor, mixer: TorchMixer):
        ctx.mixer = mixer
        out = t.detach().clone().contiguous()
        mixer.raw_all_reduce(out, "scalars")
        return out

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor):
        out = g.detach().clone().contiguous()
        ctx.mixer.raw_all_reduce(out, "scalars")
        return out, None


class TorchMixer(Mixer):
    """A rank's block of agents; rounds are halo exchanges over ``group``."""

    def __init__(
        self,
        *,
        placement: list[np.ndarray],
        num_agents: int,
        group: Any = None,
        semantics: str = "zero",
        device: torch.device | str = "cpu",
    ) -> None:
        rank, world = dist.get_rank(group), dist.get_world_size(group)
        if len(placement) != world:
            raise ValueError(f"placement has {len(placement)} workers but the process group has {world} ranks")
        super().__init__(
            agents=placement[rank], num_agents=num_agents, rank=rank, num_workers=world, semantics=semantics
        )
        self.placement, self.group = placement, group
        self.device = torch.device(device)
        self.position = np.full(num_agents, -1, dtype=np.int64)  # global id -> row among hosted agents
        self.position[self.agents] = np.arange(len(self.agents))
        self.send_rows: dict[int, np.ndarray] = {}  # peer -> global ids this rank sends to peer every round
        self.recv_rows: dict[int, np.ndarray] = {}  # peer -> global ids received from peer (halo order)
        self.halo_agents = np.zeros(0, dtype=np.int64)
        self.s_AC: torch.Tensor | None = None
        self._halo_stale: dict[int, torch.Tensor] = {}
        self.comm_seconds = 0.0
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
        suspects = [r for r in (behind or peers or []) if r != self.rank]
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

    # -- graph ----------------------------------------------------------------------------------------
    def set_graph(self, graph: nx.Graph, s_NN: torch.Tensor, placement: list[np.ndarray] | None = None) -> None:
        super().set_graph(graph, s_NN, placement)
        if placement is not None:
            self.placement = placement
            self.position[:] = -1
            self.position[self.agents] = np.arange(len(self.agents))
        plan = halo_plan(graph, self.placement)
        self.send_rows = {dst: rows for (src, dst), rows in plan.send.items() if src == self.rank}
        self.recv_rows = {src: rows for (src, dst), rows in plan.send.items() if dst == self.rank}
        halo = [self.recv_rows[p] for p in sorted(self.recv_rows)]
        self.halo_agents = np.concatenate(halo) if halo else np.zeros(0, dtype=np.int64)
        columns = np.concatenate([self.agents, self.halo_agents])
        self.s_AC = s_NN[self.agents_t][:, torch.as_tensor(columns)].to(self.device)
        self.reset_stale()

    def reset_stale(self) -> None:
        super().reset_stale()
        self._halo_stale = {}

    # -- the round ------------------------------------------------------------------------------------
    def _live_rows(self, rows: np.ndarray, live_N: np.ndarray | None) -> np.ndarray:
        """Boolean mask over ``rows``: which of them are sent this round."""
        return np.ones(len(rows), dtype=bool) if live_N is None else live_N[rows]

    def _p2p(self, sends: dict[int, torch.Tensor], recvs: dict[int, torch.Tensor]) -> None:
        ops = [dist.P2POp(dist.isend, t, self._global_rank(p), self.group) for p, t in sends.items() if t.numel()]
        ops += [dist.P2POp(dist.irecv, t, self._global_rank(p), self.group) for p, t in recvs.items() if t.numel()]
        if not ops:
            return

        def go() -> None:
            for work in dist.batch_isend_irecv(ops):
                work.wait()

        self._run("halo exchange", sorted(set(sends) | set(recvs)), go)

    def exchange(self, x_AD: torch.Tensor, direction: str, layer: int, hop: int, live_N: np.ndarray | None):
        """Send each peer the live rows it needs; return the halo rows (H × D, zeros where silent)."""
        x = x_AD.detach()
        sends, recvs = {}, {}
        for peer, rows in self.send_rows.items():
            rows = rows[self._live_rows(rows, live_N)]
            sends[peer] = x[torch.as_tensor(self.position[rows], device=x.device)].contiguous()
        for peer, rows in self.recv_rows.items():
            recvs[peer] = x.new_empty((int(self._live_rows(rows, live_N).sum()), x.shape[1]))
        self._p2p(sends, recvs)
        self._record_physical(direction, layer, hop, sends)
        halo_HD = x.new_zeros((len(self.halo_agents), x.shape[1]))
        offset = 0
        for peer in sorted(self.recv_rows):
            rows = self.recv_rows[peer]
            live = self._live_rows(rows, live_N)
            idx = torch.as_tensor(offset + np.nonzero(live)[0], device=x.device)
            halo_HD[idx] = recvs[peer]
            offset += len(rows)
        return halo_HD

    def exchange_back(self, g_HD: torch.Tensor, layer: int, hop: int, live_N: np.ndarray | None) -> torch.Tensor:
        """Backward of ``exchange``: return each received row's gradient to its owner; sum into own rows."""
        self.record_round("backward", layer, hop, live_N, g_HD.shape[1], g_HD.element_size())
        sends, recvs, offset = {}, {}, 0
        for peer in sorted(self.recv_rows):
            rows = self.recv_rows[peer]
            live = self._live_rows(rows, live_N)
            sends[peer] = g_HD[torch.as_tensor(offset + np.nonzero(live)[0], device=g_HD.device)].contiguous()
            offset += len(rows)
        for peer, rows in self.send_rows.items():
            recvs[peer] = g_HD.new_empty((int(self._live_rows(rows, live_N).sum()), g_HD.shape[1]))
        self._p2p(sends, recvs)
        self._record_physical("backward", layer, hop, sends)
        grad_AD = g_HD.new_zeros((len(self.agents), g_HD.shape[1]))
        for peer, rows in self.send_rows.items():
            rows = rows[self._live_rows(rows, live_N)]
            grad_AD.index_add_(0, torch.as_tensor(self.position[rows], device=g_HD.device), recvs[peer])
        return grad_AD

    def _record_physical(self, direction: str, layer: int, hop: int, sends: dict[int, torch.Tensor]) -> None:
        sent = [t for t in sends.values() if t.numel()]
        self.ledger.record_physical(direction, layer, hop, len(sent), sum(t.numel() * t.element_size() for t in sent))

    def shift(self, x_AD: torch.Tensor, *, layer: int, hop: int, silent_N: torch.Tensor | None = None) -> torch.Tensor:
        assert self.s_AC is not None, "set_graph() first"
        live_N = None if silent_N is None else (~silent_N).numpy()
        x_eff = self.stale_or_zero(x_AD, None if live_N is None else torch.as_tensor(live_N[self.agents]), hop)
        self.record_round("forward", layer, hop, live_N, x_AD.shape[1], x_AD.element_size())
        if torch.is_grad_enabled() and x_eff.requires_grad:
            halo = _HaloExchange.apply(x_eff, self, layer, hop, live_N)
        else:
            halo = self.exchange(x_eff, "forward", layer, hop, live_N)
        if self.semantics == "stale" and len(self.halo_agents):
            # receivers keep the last value each neighbour sent in this hop; silent senders' rows come from it
            if live_N is not None:
                fill = self._halo_stale.get(hop, torch.zeros_like(halo))
                live_H = torch.as_tensor(live_N[self.halo_agents], device=halo.device)
                halo = torch.where(live_H[:, None], halo, fill)
            self._halo_stale[hop] = halo
        return self.s_AC @ torch.cat([x_eff, halo], dim=0)

    # -- reductions -----------------------------------------------------------------------------------
    def raw_all_reduce(self, t: torch.Tensor, direction: str) -> None:
        """In-place sum over ranks; physical bytes estimated as a ring all-reduce sends, 2 (W−1)/W × size."""
        self._run(f"all-reduce ({direction})", None, lambda: dist.all_reduce(t, group=self.group))
        nbytes = t.numel() * t.element_size()
        self.ledger.record_physical(
            direction,
            0,
            0,
            2 * (self.num_workers - 1),
            int(2 * (self.num_workers - 1) / self.num_workers * nbytes),
        )

    def all_reduce_sum(self, t: torch.Tensor, *, ledger_layer: int | None = None, num_senders: int = 0) -> torch.Tensor:
        if ledger_layer is not None:
            self.record_all_reduce(ledger_layer, t, num_senders)
        return _AllReduceSum.apply(t, self)

    def all_reduce_grads(self, params: Iterable[torch.nn.Parameter]) -> None:
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
        out = [None] * self.num_workers if self.rank == 0 else None
        self._run("gather", None, lambda: dist.gather_object(obj, out, dst=self._global_rank(0), group=self.group))
        return out

    def broadcast_object(self, obj: Any) -> Any:
        box = [obj]
        self._run(
            "broadcast",
            [0],
            lambda: dist.broadcast_object_list(box, src=self._global_rank(0), group=self.group),
        )
        return box[0]

    def barrier(self) -> None:
        self._run("barrier", None, lambda: dist.barrier(group=self.group))
