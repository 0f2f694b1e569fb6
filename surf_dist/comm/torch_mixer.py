"""The torch.distributed backend: agents spread over ranks, rounds as differentiable halo exchanges.

Each rank hosts a block of agents (the placement). For a task's graph, ``graph.halo_plan`` says
which hosted rows every other rank needs; a round sends each neighbouring rank those rows once, with
point-to-point isend/irecv on an explicit ProcessGroup (gloo on CPU, nccl on GPUs). The exchange is a
``torch.autograd.Function`` whose backward sends the gradients of the received rows back along the
reversed edges and adds them into the senders' rows: the meta-gradient flows through the messages.

Shapes: A hosted agents, H halo rows (received), D model dimension; ``operator()`` holds the hosted rows of S
restricted to the columns C = [hosted agents, halo agents] (``comm.operator``: dense when small, else CSR).
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

from ..core.protocol import SilentAgents
from ..errors import WorkerTimeout
from ..graph import Graph, ShiftOperator, halo_plan
from .grad_buckets import BUCKET_NUMEL, GradientBuckets
from .ledger import Ledger
from .mixer import Mixer
from .operator import RowsOperator
from .quiet import fd2_silenced


def _pickled_size(obj: Any) -> int:
    return len(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


class _HaloExchange(torch.autograd.Function):
    """x_eff (A × D) ↦ halo (H × D): the live rows neighbouring ranks sent this round (zeros for silent ones)."""

    @staticmethod
    def forward(ctx: Any, x_AD: torch.Tensor, mixer: TorchMixer, layer: int, hop: int, silent: Any):
        ctx.mixer, ctx.layer, ctx.hop, ctx.silent = mixer, layer, hop, silent
        return mixer.exchange(x_AD, "forward", layer, hop, silent)

    @staticmethod
    def backward(ctx: Any, g_HD: torch.Tensor):
        m = ctx.mixer
        return m.exchange_back(g_HD.contiguous(), ctx.layer, ctx.hop, ctx.silent), None, None, None, None


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; backward sums the upstream gradients over ranks (exact for any downstream use).
    ``direction``: ``allreduce`` for the method's own collectives (layer ``layer``), ``scalars`` for the
    simulator's (losses, norms, accuracies)."""

    @staticmethod
    def forward(ctx: Any, t: torch.Tensor, mixer: TorchMixer, direction: str, layer: int):
        ctx.mixer, ctx.direction, ctx.layer = mixer, direction, layer
        out = t.detach().clone().contiguous()
        mixer.raw_all_reduce(out, direction, layer)
        return out

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor):
        out = g.detach().clone().contiguous()
        ctx.mixer.raw_all_reduce(out, ctx.direction, ctx.layer)
        return out, None, None, None


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
        self.device = torch.device(device)
        self.send_rows: dict[int, np.ndarray] = {}  # peer -> global ids this rank sends to peer every round
        self.send_pos: dict[int, np.ndarray] = {}  # peer -> their rows among the hosted agents
        self.recv_rows: dict[int, np.ndarray] = {}  # peer -> global ids received from peer (halo order)
        self.halo_agents = np.zeros(0, dtype=np.int64)
        self._rows: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # S_AC as CSR parts
        self._operators: dict[torch.dtype, RowsOperator] = {}
        self._halo_stale: dict[int, torch.Tensor] = {}
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
    def set_graph(self, graph: Graph, shift: ShiftOperator, placement: list[np.ndarray] | None = None) -> None:
        super().set_graph(graph, shift, placement)
        if placement is not None:
            self.placement = placement
        plan = halo_plan(graph, self.placement)
        self.send_rows = {dst: rows for (src, dst), rows in plan.send.items() if src == self.rank}
        self.send_pos = {peer: np.searchsorted(self.agents, rows) for peer, rows in self.send_rows.items()}
        self.recv_rows = {src: rows for (src, dst), rows in plan.send.items() if dst == self.rank}
        halo = [self.recv_rows[p] for p in sorted(self.recv_rows)]
        self.halo_agents = np.concatenate(halo) if halo else np.zeros(0, dtype=np.int64)
        self._rows = shift.rows(self.agents, np.concatenate([self.agents, self.halo_agents]))
        self._operators = {}
        self.reset_stale()

    def operator(self, dtype: torch.dtype) -> RowsOperator:
        """S_AC (hosted rows; columns: hosted agents, then the halo) in ``dtype`` on this worker's device."""
        assert self._rows is not None, "set_graph() first"
        if dtype not in self._operators:
            crow, col, value = self._rows
            num_cols = len(self.agents) + len(self.halo_agents)
            self._operators[dtype] = RowsOperator(crow, col, value, num_cols, dtype=dtype, device=self.device)
        return self._operators[dtype]

    def reset_stale(self) -> None:
        super().reset_stale()
        self._halo_stale = {}

    def stale_state(self) -> dict[str, dict[int, torch.Tensor]]:
        return {**super().stale_state(), "halo": dict(self._halo_stale)}

    def load_stale_state(self, state: dict[str, dict[int, torch.Tensor]]) -> None:
        super().load_stale_state(state)
        self._halo_stale = dict(state["halo"])

    # -- the round ------------------------------------------------------------------------------------
    def _sent(self, silent: SilentAgents | None, peer: int) -> np.ndarray:
        """Positions (among the hosted agents) of the rows sent to ``peer`` this round: the live ones."""
        live = self.live_of(silent, ("send", peer), self.send_rows[peer])
        return self.send_pos[peer] if live is None else self.send_pos[peer][live]

    def _received(self, silent: SilentAgents | None) -> list[tuple[int, np.ndarray]]:
        """(peer, positions in the halo) of the rows each peer sends this round, peers in halo order."""
        out, offset = [], 0
        for peer in sorted(self.recv_rows):
            rows = self.recv_rows[peer]
            live = self.live_of(silent, ("recv", peer), rows)
            positions = offset + np.arange(len(rows))
            out.append((peer, positions if live is None else positions[live]))
            offset += len(rows)
        return out

    def _p2p(self, sends: dict[int, torch.Tensor], recvs: dict[int, torch.Tensor]) -> None:
        ops = [dist.P2POp(dist.isend, t, self._global_rank(p), self.group) for p, t in sends.items() if t.numel()]
        ops += [dist.P2POp(dist.irecv, t, self._global_rank(p), self.group) for p, t in recvs.items() if t.numel()]
        if not ops:
            return

        def go() -> None:
            for work in dist.batch_isend_irecv(ops):
                work.wait()

        self._run("halo exchange", sorted(set(sends) | set(recvs)), go)

    def exchange(self, x_AD: torch.Tensor, direction: str, layer: int, hop: int, silent: SilentAgents | None):
        """Send each peer the live rows it needs; return the halo rows (H × D, zeros where silent)."""
        x = x_AD.detach()
        sends = {
            peer: x[torch.as_tensor(self._sent(silent, peer), device=x.device)].contiguous() for peer in self.send_rows
        }
        received = self._received(silent)
        recvs = {peer: x.new_empty((len(positions), x.shape[1])) for peer, positions in received}
        self._p2p(sends, recvs)
        self._record_physical(direction, layer, hop, sends)
        halo_HD = x.new_zeros((len(self.halo_agents), x.shape[1]))
        for peer, positions in received:
            halo_HD[torch.as_tensor(positions, device=x.device)] = recvs[peer]
        return halo_HD

    def exchange_back(self, g_HD: torch.Tensor, layer: int, hop: int, silent: SilentAgents | None) -> torch.Tensor:
        """Backward of ``exchange``: return each received row's gradient to its owner; sum into own rows."""
        self.record_round("backward", layer, hop, silent, g_HD.shape[1], g_HD.element_size())
        sends = {
            peer: g_HD[torch.as_tensor(positions, device=g_HD.device)].contiguous()
            for peer, positions in self._received(silent)
        }
        recvs = {peer: g_HD.new_empty((len(self._sent(silent, peer)), g_HD.shape[1])) for peer in self.send_rows}
        self._p2p(sends, recvs)
        self._record_physical("backward", layer, hop, sends)
        grad_AD = g_HD.new_zeros((len(self.agents), g_HD.shape[1]))
        for peer in self.send_rows:
            grad_AD.index_add_(0, torch.as_tensor(self._sent(silent, peer), device=g_HD.device), recvs[peer])
        return grad_AD

    def _record_physical(self, direction: str, layer: int, hop: int, sends: dict[int, torch.Tensor]) -> None:
        sent = [t for t in sends.values() if t.numel()]
        direction = "recompute" if self.recomputing else direction
        self.ledger.record_physical(direction, layer, hop, len(sent), sum(t.numel() * t.element_size() for t in sent))

    def shift(self, x_AD: torch.Tensor, *, layer: int, hop: int, silent: SilentAgents | None = None) -> torch.Tensor:
        live_A = None if silent is None else self.hosted_live(silent)
        x_eff = self.stale_or_zero(x_AD, live_A, hop)
        self.record_round("forward", layer, hop, silent, x_AD.shape[1], x_AD.element_size())
        if torch.is_grad_enabled() and x_eff.requires_grad:
            halo = _HaloExchange.apply(x_eff, self, layer, hop, silent)
        else:
            halo = self.exchange(x_eff, "forward", layer, hop, silent)
        if self.semantics == "stale" and len(self.halo_agents):
            # receivers keep the last value each neighbour sent in this hop; silent senders' rows come from it
            live_H = self.live_of(silent, "halo", self.halo_agents)
            if live_H is not None:
                fill = self._halo_stale.get(hop, torch.zeros_like(halo))
                halo = torch.where(torch.as_tensor(live_H, device=halo.device)[:, None], halo, fill)
            self._halo_stale[hop] = halo
        out = self.operator(x_eff.dtype) @ torch.cat([x_eff, halo], dim=0)
        if self.on_round is not None and not self.recomputing:  # e.g. the emulator: the round ends when the model says
            self.on_round(layer, hop, x_AD.shape[1] * x_AD.element_size())
        return out

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
