"""Simulated seconds and deadlines of a forward pass, from the network model (``comm.network``).

``network_model(cfg, n)`` builds the model of a config. ``LateOrSilent`` is the silent set of one layer once
the deadline is applied: the injected silent agents (failures) and the agents that miss the deadline.
``pass_seconds`` gives the simulated duration of every layer (or baseline round) of one pass and the number of
agents that missed the deadline in it: each worker takes the maxima over its hosted agents, one all-reduce
(max) makes them global.

A layer of K rounds lasts Σ_k min(d, T_k) + min(d, C), where T_k is the slowest message of any agent that sends
in round k (not silent; on a star, an uploader or the server) and C the slowest local update (U-DGD: one;
DFedAvgM and FedAvg: Q local steps; DGD and DSGD: one gradient step).
With uniform links, no compute time and no deadline: l·K·(latency + D·itemsize·8 / bandwidth) after l layers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import numpy as np
import torch

from ..comm.mixer import Mixer
from ..config import Config
from ..core.protocol import SilentAgents
from ..graph import Graph
from ..network.model import NetworkModel, read_links
from .exchanges import Exchanges


def network_model(cfg: Config, num_agents: int) -> NetworkModel:
    """The network model of ``cfg.network`` for a graph of ``num_agents`` agents."""
    net = cfg.network
    links = read_links(net.links, num_agents) if net.links else None
    return NetworkModel(
        seed=cfg.seed,
        num_agents=num_agents,
        latency_s=net.latency_ms / 1e3,
        bandwidth_bps=net.bandwidth_mbps * 1e6 if net.bandwidth_mbps > 0 else math.inf,
        link_spread=net.link_spread,
        compute_s=net.compute_ms / 1e3,
        compute_spread=net.compute_spread,
        jitter=net.jitter,
        deadline_s=net.deadline_ms / 1e3 if net.deadline_ms > 0 else math.inf,
        **({} if links is None else dict(zip(("link_keys", "link_latency_s", "link_bandwidth_bps"), links))),
    )


GraphOf: TypeAlias = Graph | Callable[[int, int], Graph]
"""A pass's graph: one for every round, or (layer, exchange) ↦ the graph of that round (a changing network)."""


def graph_at(graph: GraphOf, layer: int, exchange: int = 1) -> Graph:
    """The graph of exchange ``exchange`` of layer (or round) ``layer``."""
    return graph if isinstance(graph, Graph) else graph(layer, exchange)


class LateOrSilent:
    """Silent at one layer: injected (``injected``) or late for the deadline."""

    def __init__(
        self,
        model: NetworkModel,
        graph: GraphOf,
        num_bytes: int,
        where: tuple[str, int, int],
        injected: SilentAgents | None,
        num_updates: int = 1,
    ) -> None:
        self.model, self.graph, self.num_bytes, self.where = model, graph, num_bytes, where
        self.injected, self.num_updates = injected, num_updates

    def late(self, agents: np.ndarray) -> np.ndarray:
        phase, step, layer = self.where
        return self.model.late(
            graph_at(self.graph, layer), agents, self.num_bytes, phase, step, layer, self.num_updates
        )

    def mask(self, agents: torch.Tensor) -> torch.Tensor:
        late = torch.as_tensor(self.late(agents.numpy().astype(np.int64)))
        return late if self.injected is None else late | self.injected.mask(agents)


def with_deadline(
    model: NetworkModel,
    graph: GraphOf,
    num_bytes: int,
    phase: str,
    step: int,
    injected: list[SilentAgents | None] | None,
    num_layers: int,
    num_updates: int = 1,
) -> list[SilentAgents | None] | None:
    """The silent sets of a pass once late agents are added (``injected`` as is without a deadline)."""
    if not model.has_deadline:
        return injected
    return [
        LateOrSilent(
            model,
            graph,
            num_bytes,
            (phase, step, layer),
            None if injected is None else injected[layer - 1],
            num_updates,
        )
        for layer in range(1, num_layers + 1)
    ]


def pass_seconds(
    mixer: Mixer,
    model: NetworkModel,
    graph: GraphOf,
    num_bytes: int,
    phase: str,
    step: int,
    exchanges: Exchanges,
    num_layers: int,
    num_hops: int,
    num_updates: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """``exchange_seconds`` of a pass of ``num_layers`` layers of ``num_hops`` exchanges of ``num_bytes``
    messages each (U-DGD's)."""
    rounds = [
        [(exchanges.quiet(layer, hop), num_bytes) for hop in range(1, num_hops + 1)]
        for layer in range(1, num_layers + 1)
    ]
    idle = [exchanges.idle(layer) for layer in range(1, num_layers + 1)]
    return exchange_seconds(mixer, model, graph, phase, step, rounds, idle, num_updates)


def exchange_seconds(
    mixer: Any,
    model: NetworkModel,
    graph: GraphOf,
    phase: str,
    step: int,
    rounds: Sequence[Sequence[tuple[SilentAgents | None, int]]],
    idle: Sequence[SilentAgents | None],
    num_updates: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """(seconds of each layer or round, agents that missed the deadline in each), global. ``mixer``: anything with
    the hosted ``agents`` (and ``agents_t``) of the pass's graph and ``all_reduce_max`` / ``all_reduce_sum``.

    ``rounds[l-1]``: the exchanges of layer (round) l, each as (who sends nothing in it, bytes per message);
    ``idle[l-1]``: who runs no local update in it. Exchange k of layer l lasts min(d, the slowest message of an
    agent that sends in it); the layer's ``num_updates`` local updates min(d, the slowest agent not idle). The
    quiet sets hold the injected silent agents only: late agents hold an exchange up until the deadline. Zeros,
    and no all-reduce, when nothing takes time."""
    num_layers = len(rounds)
    if not model.active:
        return np.zeros(num_layers), np.zeros(num_layers, dtype=np.int64)
    d = model.deadline_s
    sends, computes, missed = [], np.zeros(num_layers), np.zeros(num_layers)
    for layer, exchanges in enumerate(rounds, start=1):
        late = np.zeros(0, dtype=np.int64)
        for k, (quiet, num_bytes) in enumerate(exchanges, start=1):
            senders = _not_in(quiet, mixer)
            send = model.send_seconds(graph_at(graph, layer, k), senders, num_bytes, phase, step, layer)
            sends.append(send.max(initial=0.0))
            late = np.union1d(late, senders[send > d])
        workers = _not_in(idle[layer - 1], mixer)
        compute = model.compute_seconds(workers, phase, step, layer, num_updates)
        computes[layer - 1] = compute.max(initial=0.0)
        missed[layer - 1] = len(np.union1d(late, workers[compute > d]))
    slowest = mixer.all_reduce_max(torch.as_tensor(np.concatenate([np.asarray(sends, dtype=np.float64), computes])))
    slowest_np = np.minimum(d, slowest.numpy())
    misses = mixer.all_reduce_sum(torch.as_tensor(missed)).numpy()
    offsets = np.cumsum([0, *(len(e) for e in rounds)])
    seconds = np.array(  # per layer: its exchanges, then its local updates
        [
            np.append(slowest_np[offsets[i] : offsets[i + 1]], slowest_np[len(sends) + i]).sum()
            for i in range(num_layers)
        ]
    )
    return seconds, misses.round().astype(np.int64)


def _not_in(quiet: SilentAgents | None, mixer: Any) -> np.ndarray:
    """The hosted agents outside ``quiet``."""
    return mixer.agents if quiet is None else mixer.agents[~quiet.mask(mixer.agents_t).numpy()]
