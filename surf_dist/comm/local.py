"""The local backend: every agent in one process; a round is one product with S (dense under 512 agents,
sparse CSR above).

It is the fast path and the oracle every distributed backend is tested against. Logical traffic is
recorded as if each agent had sent its vector to each neighbour; no byte crosses a process, so the
physical counters stay 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch

from ..core.compression import Codec
from ..core.protocol import SilentAgents
from ..graph import Graph, ShiftOperator
from .ledger import Ledger
from .mixer import Mixer, Wiring
from .operator import RowsOperator


class _RecordedShift(torch.autograd.Function):
    """y = S x with x all n agents' rows; backward g ↦ Sᵀ g along the reversed edges (recorded)."""

    @staticmethod
    def forward(ctx: Any, x_ND: torch.Tensor, mixer: LocalMixer, layer: int, hop: int, silent: Any):
        ctx.mixer, ctx.layer, ctx.hop, ctx.silent = mixer, layer, hop, silent
        ctx.wiring = mixer.wiring  # this round's graph, whatever round the backward finds the mixer in
        ctx.s = mixer.operator(x_ND.dtype)
        return ctx.s.matrix @ x_ND

    @staticmethod
    def backward(ctx: Any, g_ND: torch.Tensor):
        m = ctx.mixer
        nbytes = g_ND.shape[1] * g_ND.element_size()
        m.record_round("backward", ctx.layer, ctx.hop, ctx.silent, nbytes, wiring=ctx.wiring)
        return ctx.s.transpose_matmul(g_ND.contiguous()), None, None, None, None


@dataclass(eq=False)
class _LocalWiring(Wiring):
    operators: dict[torch.dtype, RowsOperator] = field(default_factory=dict)  # S per dtype, made on first use


class LocalMixer(Mixer):
    """All n agents in this process (worker 0 of 1)."""

    def __init__(
        self,
        num_agents: int,
        *,
        semantics: str = "zero",
        device: torch.device | str = "cpu",
        ledger: Ledger | None = None,
    ) -> None:
        super().__init__(
            agents=np.arange(num_agents),
            num_agents=num_agents,
            rank=0,
            num_workers=1,
            semantics=semantics,
            ledger=ledger,
        )
        self.device = torch.device(device)

    def _make_wiring(self, key: Any, graph: Graph, shift: ShiftOperator) -> _LocalWiring:
        base = super()._make_wiring(key, graph, shift)
        return _LocalWiring(**{f.name: getattr(base, f.name) for f in fields(Wiring)})

    def operator(self, dtype: torch.dtype) -> RowsOperator:
        """S of the current round in ``dtype`` on this worker's device (built once per graph and dtype)."""
        w = self.wiring
        assert isinstance(w, _LocalWiring), "set_graph() first"
        if dtype not in w.operators:
            s = w.shift
            w.operators[dtype] = RowsOperator(
                s.indptr, s.indices, s.values, self.num_agents, dtype=dtype, device=self.device
            )
        return w.operators[dtype]

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
        live = None if silent is None else self.hosted_live(silent)
        x_eff = self.stale_or_zero(x_AD, live, hop)
        self.record_round("forward", layer, hop, silent, self.message_bytes(x_AD, wire))
        if torch.is_grad_enabled() and x_eff.requires_grad:
            return _RecordedShift.apply(x_eff, self, layer, hop, silent)
        return self.operator(x_eff.dtype).matrix @ x_eff

    def widened(self, placement: list[np.ndarray], num_agents: int, ledger: Ledger) -> LocalMixer:
        return LocalMixer(num_agents, semantics=self.semantics, device=self.device, ledger=ledger)

    def all_reduce_sum(self, t: torch.Tensor, *, ledger_layer: int | None = None, num_senders: int = 0) -> torch.Tensor:
        if ledger_layer is not None:
            self.record_all_reduce(ledger_layer, t, num_senders)
        return t

    def all_reduce_max(self, t: torch.Tensor) -> torch.Tensor:
        return t

    def all_reduce_grads(self, params: Iterable[torch.nn.Parameter]) -> None:
        return None

    def gather_objects(self, obj: Any) -> list[Any]:
        return [obj]

    def broadcast_object(self, obj: Any) -> Any:
        return obj
