"""The mixing protocol: all that the math needs from the processes that host the agents.

``core`` computes on a block of A hosted agents and talks to the rest of the graph only through an object
with these members (``surf_dist.comm.Mixer`` implements them on every backend):

* ``num_agents``: n, the agents of the whole graph; ``agents_t``: the hosted agents' global ids (A, sorted);
* ``shift(x_AD, layer=, hop=, silent=, wire=)``: the hosted rows of S·X, one round, differentiable (``wire``: the
  rows compressed, see ``core.compression``);
* ``hosted_live(silent)``: which hosted agents are live (not in the silent set), A bools on the device;
* ``all_reduce_sum(t, ledger_layer=, num_senders=)``: the sum over workers, differentiable; with
  ``ledger_layer`` it is part of the method (e.g. agent-batch normalisation) and is counted as such;
* ``reset_stale()``: forget what silent senders last sent (at the start of an unrolled forward pass);
* ``recompute_contexts()``: the two context managers of a ``torch.utils.checkpoint`` region (its forward, its
  recomputation), so that a recomputed layer sees the state its first forward saw and is not counted twice.

A silent set (``SilentAgents``) answers, for any global agent ids, which of them are silent at one layer;
any worker can ask it about its own agents and its halo without ever forming an n-long mask.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

import torch


class SilentAgents(Protocol):
    """The agents that are silent at one layer (or round): they neither send nor update."""

    def mask(self, agents: torch.Tensor) -> torch.Tensor:
        """True for each global id in ``agents`` (int64, CPU) that is silent; same shape, bool, CPU."""
        ...


class Mixing(Protocol):
    num_agents: int
    agents_t: torch.Tensor

    def shift(
        self,
        x_AD: torch.Tensor,
        *,
        layer: int,
        hop: int,
        silent: SilentAgents | None = None,
        wire: tuple[Any, tuple[torch.Tensor, ...]] | None = None,
    ) -> torch.Tensor: ...

    def hosted_live(self, silent: SilentAgents | None) -> torch.Tensor: ...

    def all_reduce_sum(
        self, t: torch.Tensor, *, ledger_layer: int | None = None, num_senders: int = 0
    ) -> torch.Tensor: ...

    def reset_stale(self) -> None: ...

    def recompute_contexts(self) -> tuple[AbstractContextManager[Any], AbstractContextManager[Any]]: ...
