"""The mixing protocol: all that the math needs from the processes that host the agents.

``core`` computes on a block of A hosted agents and talks to the rest of the graph only through an object
with these members (``surf_dist.comm.Mixer`` implements them on every backend):

* ``num_agents``: n, the agents of the whole graph;
* ``shift(x_AD, layer=, hop=, silent_N=)``: the hosted rows of S·X, one round, differentiable;
* ``all_reduce_sum(t, ledger_layer=, num_senders=)``: the sum over workers, differentiable; with
  ``ledger_layer`` it is part of the method (e.g. agent-batch normalisation) and is counted as such;
* ``local_rows(t_N)``: the hosted agents' rows of a tensor indexed by global agent id;
* ``reset_stale()``: forget what silent senders last sent (at the start of an unrolled forward pass).
"""

from __future__ import annotations

from typing import Protocol

import torch


class Mixing(Protocol):
    num_agents: int

    def shift(
        self, x_AD: torch.Tensor, *, layer: int, hop: int, silent_N: torch.Tensor | None = None
    ) -> torch.Tensor: ...

    def all_reduce_sum(
        self, t: torch.Tensor, *, ledger_layer: int | None = None, num_senders: int = 0
    ) -> torch.Tensor: ...

    def local_rows(self, t_N: torch.Tensor) -> torch.Tensor: ...

    def reset_stale(self) -> None: ...
