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

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from ..core.compression import Codec
from ..core.protocol import SilentAgents
from ..graph import Graph, ShiftOperator, halo_plan
from .group import GroupMixer
from .ledger import Ledger
from .mixer import Wiring
from .operator import RowsOperator


class _HaloExchange(torch.autograd.Function):
    """x_eff (A × D) ↦ halo (H × D): the live rows neighbouring ranks sent this round (zeros for silent ones)."""

    @staticmethod
    def forward(ctx: Any, x_AD: torch.Tensor, mixer: TorchMixer, layer: int, hop: int, silent: Any):
        ctx.mixer, ctx.layer, ctx.hop, ctx.silent = mixer, layer, hop, silent
        ctx.wiring = mixer.halo  # this round's halo plan, whatever round the backward finds the mixer in
        return mixer.exchange(x_AD, "forward", layer, hop, silent)

    @staticmethod
    def backward(ctx: Any, g_HD: torch.Tensor):
        m = ctx.mixer
        return m.exchange_back(g_HD.contiguous(), ctx.layer, ctx.hop, ctx.silent, ctx.wiring), None, None, None, None


@dataclass(eq=False)
class HaloWiring(Wiring):
    """A graph's halo plan on this rank: ``send_rows[peer]`` the global ids it sends ``peer`` every round
    (``send_pos``: their positions among the hosted agents), ``recv_rows[peer]`` those it receives (halo order),
    ``halo_agents`` all received ids, and ``rows`` S_AC as CSR parts (columns: hosted agents, then the halo)."""

    send_rows: dict[int, np.ndarray] = field(default_factory=dict)
    send_pos: dict[int, np.ndarray] = field(default_factory=dict)
    recv_rows: dict[int, np.ndarray] = field(default_factory=dict)
    halo_agents: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    rows: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    operators: dict[torch.dtype, RowsOperator] = field(default_factory=dict)


class TorchMixer(GroupMixer):
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
        super().__init__(
            placement=placement,
            num_agents=num_agents,
            group=group,
            semantics=semantics,
            timeout_s=timeout_s,
            ledger=ledger,
        )
        self.device = torch.device(device)
        self._halo_stale: dict[int, torch.Tensor] = {}

    def widened(self, placement: list[np.ndarray], num_agents: int, ledger: Ledger) -> TorchMixer:
        """The same ranks (the same process group) over a batch graph."""
        wide = TorchMixer(
            placement=placement,
            num_agents=num_agents,
            group=self.group,
            semantics=self.semantics,
            device=self.device,
            timeout_s=None if self.timeout is None else self.timeout.total_seconds(),
            ledger=ledger,
        )
        wide.step = self.step
        return wide

    # -- graph ----------------------------------------------------------------------------------------
    def set_graph(self, graph: Graph, shift: ShiftOperator, placement: list[np.ndarray] | None = None) -> None:
        if placement is not None:
            self.placement = placement
        super().set_graph(graph, shift, placement)

    def _make_wiring(self, key: Any, graph: Graph, shift: ShiftOperator) -> HaloWiring:
        base = super()._make_wiring(key, graph, shift)
        w = HaloWiring(**{f.name: getattr(base, f.name) for f in fields(Wiring)})
        plan = halo_plan(graph, self.placement)
        w.send_rows = {dst: rows for (src, dst), rows in plan.send.items() if src == self.rank}
        w.send_pos = {peer: np.searchsorted(self.agents, rows) for peer, rows in w.send_rows.items()}
        w.recv_rows = {src: rows for (src, dst), rows in plan.send.items() if dst == self.rank}
        halo = [w.recv_rows[p] for p in sorted(w.recv_rows)]
        w.halo_agents = np.concatenate(halo) if halo else np.zeros(0, dtype=np.int64)
        w.rows = shift.rows(self.agents, np.concatenate([self.agents, w.halo_agents]))
        return w

    @property
    def halo(self) -> HaloWiring:
        """The current round's halo plan."""
        w = self.wiring
        assert isinstance(w, HaloWiring), "set_graph() first"
        return w

    @property
    def send_rows(self) -> dict[int, np.ndarray]:
        return self.halo.send_rows

    @property
    def recv_rows(self) -> dict[int, np.ndarray]:
        return self.halo.recv_rows

    @property
    def halo_agents(self) -> np.ndarray:
        return self.halo.halo_agents

    def operator(self, dtype: torch.dtype) -> RowsOperator:
        """S_AC of the current round (hosted rows; columns: hosted agents, then the halo) in ``dtype`` on this
        worker's device."""
        w = self.halo
        assert w.rows is not None
        if dtype not in w.operators:
            crow, col, value = w.rows
            num_cols = len(self.agents) + len(w.halo_agents)
            w.operators[dtype] = RowsOperator(crow, col, value, num_cols, dtype=dtype, device=self.device)
        return w.operators[dtype]

    def reset_stale(self) -> None:
        super().reset_stale()
        self._halo_stale = {}

    def stale_state(self) -> dict[str, dict[int, torch.Tensor]]:
        return {**super().stale_state(), "halo": dict(self._halo_stale)}

    def load_stale_state(self, state: dict[str, dict[int, torch.Tensor]]) -> None:
        super().load_stale_state(state)
        self._halo_stale = dict(state["halo"])

    # -- the round ------------------------------------------------------------------------------------
    def _sent(self, silent: SilentAgents | None, peer: int, w: HaloWiring) -> np.ndarray:
        """Positions (among the hosted agents) of the rows sent to ``peer`` this round: the live ones."""
        live = self.live_of(silent, ("send", peer, w.key), w.send_rows[peer])
        return w.send_pos[peer] if live is None else w.send_pos[peer][live]

    def _received(self, silent: SilentAgents | None, w: HaloWiring) -> list[tuple[int, np.ndarray]]:
        """(peer, positions in the halo) of the rows each peer sends this round, peers in halo order."""
        out, offset = [], 0
        for peer in sorted(w.recv_rows):
            rows = w.recv_rows[peer]
            live = self.live_of(silent, ("recv", peer, w.key), rows)
            positions = offset + np.arange(len(rows))
            out.append((peer, positions if live is None else positions[live]))
            offset += len(rows)
        return out

    def _p2p(self, sends: dict[Any, torch.Tensor], recvs: dict[Any, torch.Tensor]) -> None:
        """Every send and receive at once; keys are peers, or (peer, part) for messages in several tensors (the
        part is the tag, so the parts of one message pair up whatever order they travel in)."""

        def op(kind: Any, key: Any, t: torch.Tensor) -> dist.P2POp:
            peer, tag = key if isinstance(key, tuple) else (key, 0)
            return dist.P2POp(kind, t, self._global_rank(peer), self.group, tag)

        ops = [op(dist.isend, key, t) for key, t in sends.items() if t.numel()]
        ops += [op(dist.irecv, key, t) for key, t in recvs.items() if t.numel()]
        if not ops:
            return

        def go() -> None:
            for work in dist.batch_isend_irecv(ops):
                work.wait()

        peers = {k[0] if isinstance(k, tuple) else k for k in (*sends, *recvs)}
        self._run("halo exchange", sorted(peers), go)

    def exchange(
        self,
        x_AD: torch.Tensor,
        direction: str,
        layer: int,
        hop: int,
        silent: SilentAgents | None,
        wire: tuple[Codec, tuple[torch.Tensor, ...]] | None = None,
    ):
        """Send each peer the live rows it needs; return the halo rows (H × D, zeros where silent). With ``wire``
        (a codec and the hosted rows encoded) the encoded rows travel and the receiver decodes them."""
        x, w = x_AD.detach(), self.halo
        received = self._received(silent, w)
        sends: dict[Any, torch.Tensor]
        recvs: dict[Any, torch.Tensor]
        if wire is None:
            sends = {
                peer: x[torch.as_tensor(self._sent(silent, peer, w), device=x.device)].contiguous()
                for peer in w.send_rows
            }
            recvs = {peer: x.new_empty((len(positions), x.shape[1])) for peer, positions in received}
            self._p2p(sends, recvs)
            self._record_physical(direction, layer, hop, sends)
            rows = recvs
        else:
            codec, parts = wire
            sends, recvs = {}, {}
            messages = 0
            for peer in w.send_rows:
                at = torch.as_tensor(self._sent(silent, peer, w), device=x.device)
                sends.update({(peer, i): t for i, t in enumerate(codec.rows(parts, at))})
                messages += bool(len(at))
            for peer, positions in received:
                recvs.update({(peer, i): p.new_empty((len(positions), *p.shape[1:])) for i, p in enumerate(parts)})
            self._p2p(sends, recvs)
            self._record_physical(
                direction, layer, hop, sends, messages=len({k[0] for k, t in sends.items() if t.numel()})
            )
            rows = {
                peer: codec.decode(tuple(recvs[(peer, i)] for i in range(len(parts))), x.shape[1])
                for peer, _ in received
            }
        halo_HD = x.new_zeros((len(w.halo_agents), x.shape[1]))
        for peer, positions in received:
            halo_HD[torch.as_tensor(positions, device=x.device)] = rows[peer]
        return halo_HD

    def exchange_back(
        self, g_HD: torch.Tensor, layer: int, hop: int, silent: SilentAgents | None, w: HaloWiring
    ) -> torch.Tensor:
        """Backward of ``exchange`` over the round's plan ``w``: return each received row's gradient to its owner;
        sum into own rows."""
        self.record_round("backward", layer, hop, silent, g_HD.shape[1] * g_HD.element_size(), wiring=w)
        sends = {
            peer: g_HD[torch.as_tensor(positions, device=g_HD.device)].contiguous()
            for peer, positions in self._received(silent, w)
        }
        recvs = {peer: g_HD.new_empty((len(self._sent(silent, peer, w)), g_HD.shape[1])) for peer in w.send_rows}
        self._p2p(sends, recvs)
        self._record_physical("backward", layer, hop, sends)
        grad_AD = g_HD.new_zeros((len(self.agents), g_HD.shape[1]))
        for peer in w.send_rows:
            grad_AD.index_add_(0, torch.as_tensor(self._sent(silent, peer, w), device=g_HD.device), recvs[peer])
        return grad_AD

    def _record_physical(
        self, direction: str, layer: int, hop: int, sends: dict[Any, torch.Tensor], messages: int | None = None
    ) -> None:
        """What this worker sent in one round: a message per peer (``messages`` when one travels in parts)."""
        sent = [t for t in sends.values() if t.numel()]
        direction = "recompute" if self.recomputing else direction
        count = len(sent) if messages is None else messages
        self.ledger.record_physical(direction, layer, hop, count, sum(t.numel() * t.element_size() for t in sent))

    def shift(
        self,
        x_AD: torch.Tensor,
        *,
        layer: int,
        hop: int,
        silent: SilentAgents | None = None,
        wire: tuple[Codec, tuple[torch.Tensor, ...]] | None = None,
    ) -> torch.Tensor:
        self.enter_round(layer, hop)
        live_A = None if silent is None else self.hosted_live(silent)
        x_eff = self.stale_or_zero(x_AD, live_A, hop)
        self.record_round("forward", layer, hop, silent, self.message_bytes(x_AD, wire))
        if torch.is_grad_enabled() and x_eff.requires_grad:
            assert wire is None, "compressed exchanges are not differentiable"
            halo = _HaloExchange.apply(x_eff, self, layer, hop, silent)
        else:
            halo = self.exchange(x_eff, "forward", layer, hop, silent, wire)
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
