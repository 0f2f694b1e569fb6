"""``network.emulate``: hold every round of a forward pass for its modelled time, on a virtual clock.

The Mixer calls ``hold(layer, hop, num_bytes)`` after each exchange through its ``on_round`` hook (set by the
training job); the emulator knows nothing of processes and the Mixer nothing of the network model.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from ..graph import Graph
from .model import NetworkModel


class Emulator:
    """Holds every round of a forward pass until its modelled end (``network.emulate``), on a virtual clock.

    The pass starts at wall time t₀ with virtual time V = 0. A worker's round ends when the slowest message into
    its hosted agents has arrived (cut at the deadline): V grows by that time and the worker sleeps until
    t₀ + V; after a layer's last round V grows by its slowest hosted local update, whose real computation then
    runs in that virtual time (the last layer's is waited for at once). Real work that is faster than the
    model is hidden, slower work shows; workers meet at every exchange, so a round's wall time is the slowest
    worker's, as in the model.
    """

    def __init__(self, model: NetworkModel) -> None:
        self.model = model
        self._pass: tuple[Graph, np.ndarray, str, int, int, int, int, Any] | None = None
        self._started, self._virtual = 0.0, 0.0

    def begin(
        self,
        graph: Graph,
        agents: np.ndarray,
        phase: str,
        step: int,
        num_layers: int,
        num_hops: int,
        num_updates: int,
        exchanges: Any,
    ) -> None:
        """A forward pass starts now: its graph, the hosted agents, its keys, and who sends and computes in each
        exchange (``quiet(layer, hop)``, ``idle(layer)``: the injected silent sets, the star's non-uploaders)."""
        self._pass = (graph, agents, phase, step, num_layers, num_hops, num_updates, exchanges)
        self._started, self._virtual = time.perf_counter(), 0.0

    def round_seconds(self, layer: int, hop: int, num_bytes: int) -> tuple[float, float]:
        """(the round's message time, the local update after it: 0 unless it is the layer's last round)."""
        if self._pass is None:
            return 0.0, 0.0
        graph, agents, phase, step, _, num_hops, num_updates, exchanges = self._pass
        silent = exchanges.quiet(layer, hop)
        rows, senders = graph.edges_of(agents)  # the edges into the hosted agents (the graph is symmetric)
        receivers = agents[rows]
        if silent is not None:
            live = ~silent.mask(torch.as_tensor(senders)).numpy()
            senders, receivers = senders[live], receivers[live]
        tau = self.model.link_seconds(senders, receivers, num_bytes)
        tau = tau * self.model.jitter_factor(senders, phase, step, layer)
        message = min(self.model.deadline_s, float(tau.max(initial=0.0)))
        if hop < num_hops:
            return message, 0.0
        idle = exchanges.idle(layer)
        hosted = agents if idle is None else agents[~idle.mask(torch.as_tensor(agents)).numpy()]
        compute = self.model.compute_seconds(hosted, phase, step, layer, num_updates)
        return message, min(self.model.deadline_s, float(compute.max(initial=0.0)))

    def hold(self, layer: int, hop: int, num_bytes: int) -> None:
        """The round (layer, hop) has been exchanged: wait until its modelled end."""
        if self._pass is None:
            return
        message, update = self.round_seconds(layer, hop, num_bytes)
        self._virtual += message
        last = layer == self._pass[4] and hop == self._pass[5]
        if last:
            self._virtual += update
        time.sleep(max(0.0, self._started + self._virtual - time.perf_counter()))
        if not last:
            self._virtual += update
