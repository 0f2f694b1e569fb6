"""Who sends, and who computes, in each exchange of a forward pass (U-DGD's layers, or a method's rounds).

Decentralised: everybody but the silent agents, in every exchange. Star variant (``model.variant=star``): in layer
l of U-DGD only the server (agent 0) and the clients drawn to upload in that round send (senders ``all``), and
every client computes; a star method names the senders of each of its exchanges (FedAvg: ``uploaders``, then
``server``) and who computes (``uploaders``). Silent agents (failures, late agents) never send.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..core.protocol import SilentAgents
from .silent import AllBut, Either, SilentIds


class Exchanges:
    """The quiet sets of a pass: ``base[l-1]`` (silent agents, or None) plus the star's non-senders.

    ``senders``: who sends in each exchange of a layer (round), cycled over its hops; ``computes``: who runs the
    local updates (``all``: every client; ``uploaders``: only those that upload)."""

    def __init__(
        self,
        base: Sequence[SilentAgents | None] | None,
        uploads: Callable[[int], np.ndarray] | None = None,
        *,
        senders: Sequence[str] = ("all",),
        computes: str = "all",
    ) -> None:
        self.base, self.uploads = base, uploads
        self.senders, self.computes = tuple(senders) or ("all",), computes

    def _base(self, layer: int) -> SilentAgents | None:
        return None if self.base is None else self.base[layer - 1]

    def quiet_for(self, layer: int, kind: str, base: SilentAgents | None) -> SilentAgents | None:
        """Agents that send nothing in an exchange of ``layer`` whose senders are ``kind``, given its silent set."""
        if self.uploads is None:
            return base
        uploaders = self.uploads(layer)
        senders = {
            "all": np.concatenate([[0], uploaders]),
            "uploaders": uploaders,
            "server": np.zeros(1, dtype=np.int64),
        }[kind]
        return Either(AllBut(senders), base)

    def quiet(self, layer: int, hop: int) -> SilentAgents | None:
        """Agents that send nothing in exchange ``hop`` of ``layer`` (or baseline round)."""
        return self.quiet_for(layer, self.senders[(hop - 1) % len(self.senders)], self._base(layer))

    def idle(self, layer: int) -> SilentAgents | None:
        """Agents that run no local update (or local step) in ``layer``."""
        if self.uploads is None:
            return self._base(layer)
        busy = AllBut(self.uploads(layer)) if self.computes == "uploaders" else SilentIds([0])
        return Either(busy, self._base(layer))

    def muted_layers(self, num_layers: int) -> list[SilentAgents | None] | None:
        """``quiet(l, 1)`` for every layer, as U-DGD takes them (None when nobody is quiet)."""
        if self.uploads is None and self.base is None:
            return None
        return [self.quiet(layer, 1) for layer in range(1, num_layers + 1)]
