"""Who sends, and who computes, in each exchange of a forward pass.

Decentralised: everybody but the silent agents, in every round. Star variant (``model.variant=star``): in layer
l only the server (agent 0) and the clients drawn to upload in that round send (U-DGD, one exchange per layer);
FedAvg's round has two exchanges, the uploads (only the uploaders send) and the broadcast (only the server
sends), and only the uploaders run local steps. Silent agents (failures, late agents) never send.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..core.protocol import SilentAgents
from .silent import AllBut, Either, SilentIds


class Exchanges:
    """The quiet sets of a pass: ``base[l-1]`` (silent agents, or None) plus the star's non-uploaders."""

    def __init__(
        self,
        base: Sequence[SilentAgents | None] | None,
        uploads: Callable[[int], np.ndarray] | None = None,
        fedavg: bool = False,
    ) -> None:
        self.base, self.uploads, self.fedavg = base, uploads, fedavg

    def _base(self, layer: int) -> SilentAgents | None:
        return None if self.base is None else self.base[layer - 1]

    def quiet(self, layer: int, hop: int) -> SilentAgents | None:
        """Agents that send nothing in exchange ``hop`` of ``layer`` (or baseline round)."""
        if self.uploads is None:
            return self._base(layer)
        uploaders = self.uploads(layer)
        if not self.fedavg:
            return Either(AllBut(np.concatenate([[0], uploaders])), self._base(layer))
        return Either(AllBut(uploaders if hop == 1 else np.zeros(1, dtype=np.int64)), self._base(layer))

    def idle(self, layer: int) -> SilentAgents | None:
        """Agents that run no local update (or local step) in ``layer``."""
        if self.uploads is None:
            return self._base(layer)
        return Either(AllBut(self.uploads(layer)) if self.fedavg else SilentIds([0]), self._base(layer))

    def muted_layers(self, num_layers: int) -> list[SilentAgents | None] | None:
        """``quiet(l, 1)`` for every layer, as U-DGD takes them (None when nobody is quiet)."""
        if self.uploads is None and self.base is None:
            return None
        return [self.quiet(layer, 1) for layer in range(1, num_layers + 1)]
