"""The local backend: every agent in one process; a round is one sparse matrix product.

It is the fast path and the oracle every distributed backend is tested against. Logical traffic is
recorded as if each agent had sent its vector to each neighbour; no byte crosses a process, so the
physical counters stay 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import networkx as nx
import numpy as np
import torch

from .mixer import Mixer


class _RecordedShift(torch.autograd.Function):
    """y = S x with x all n agents' rows; backward g ↦ Sᵀ g along the reversed edges (recorded)."""

    @staticmethod
    def forward(ctx: Any, x_ND: torch.Tensor, mixer: LocalMixer, layer: int, hop: int, live_N: np.ndarray | None):
        ctx.mixer, ctx.layer, ctx.hop, ctx.live_N = mixer, layer, hop, live_N
        assert mixer.s_NN is not None
        return mixer.s_NN @ x_ND

    @staticmethod
    def backward(ctx: Any, g_ND: torch.Tensor):
        m = ctx.mixer
        m.record_round("backward", ctx.layer, ctx.hop, ctx.live_N, g_ND.shape[1], g_ND.element_size())
        return m.s_NN.t() @ g_ND, None, None, None, None


class LocalMixer(Mixer):
    """All n agents in this process (worker 0 of 1)."""

    def __init__(self, num_agents: int, *, semantics: str = "zero", device: torch.device | str = "cpu") -> None:
        super().__init__(
            agents=np.arange(num_agents), num_agents=num_agents, rank=0, num_workers=1, semantics=semantics
        )
        self.device = torch.device(device)
        self.s_NN: torch.Tensor | None = None

    def set_graph(self, graph: nx.Graph, s_NN: torch.Tensor, placement: list[np.ndarray] | None = None) -> None:
        super().set_graph(graph, s_NN)
        # a dense product is faster than sparse up to a few hundred agents
        s_NN = s_NN.to(self.device)
        self.s_NN = s_NN.to_sparse_csr() if self.num_agents > 512 else s_NN.clone()

    def shift(self, x_AD: torch.Tensor, *, layer: int, hop: int, silent_N: torch.Tensor | None = None) -> torch.Tensor:
        assert self.s_NN is not None, "set_graph() first"
        live_N = None if silent_N is None else ~silent_N
        x_eff = self.stale_or_zero(x_AD, live_N, hop)
        live_np = None if live_N is None else live_N.numpy()
        self.record_round("forward", layer, hop, live_np, x_AD.shape[1], x_AD.element_size())
        if torch.is_grad_enabled() and x_eff.requires_grad:
            return _RecordedShift.apply(x_eff, self, layer, hop, live_np)
        return self.s_NN @ x_eff

    def all_reduce_sum(self, t: torch.Tensor, *, ledger_layer: int | None = None, num_senders: int = 0) -> torch.Tensor:
        if ledger_layer is not None:
            self.record_all_reduce(ledger_layer, t, num_senders)
        return t

    def all_reduce_grads(self, params: Iterable[torch.nn.Parameter]) -> None:
        return None

    def gather_objects(self, obj: Any) -> list[Any]:
        return [obj]

    def broadcast_object(self, obj: Any) -> Any:
        return obj
