"""The network model: how long messages and local updates take, in simulated seconds.

Every directed link (sender j → receiver i) has a latency and a bandwidth, every agent a compute time for one
local update:

    τ_ji = (latency_ji + bits / bandwidth_ji) · ξ_j        c_j = compute · κ_j · ξ_j

* ``latency`` and ``bandwidth`` are the same on every link, times a log-normal factor per link (``link_spread``
  σ, mean 1, drawn from (seed, sender, receiver) so every worker agrees), or given per link by a CSV
  (``links``: ``sender,receiver,latency_ms,bandwidth_mbps``); bandwidth 0 means infinite;
* κ_j is a log-normal factor per agent fixed over the run (``compute_spread``: slow devices), ξ_j a log-normal
  factor per (forward pass, layer, agent) on both (``jitter``: stragglers that come and go).

A synchronous round lasts as long as its slowest message, and a layer's last round is followed by its local
update, which lasts as long as the slowest agent's. With a deadline d (``deadline_ms``), a round lasts at most
d: an agent any of whose messages would arrive after d, or whose update would finish after d, is *late*: it is
silent for that layer (the failure ``semantics`` apply: its neighbours see zeros or its stale value), and the
others wait for the deadline. Silent agents (failures) send nothing and do not delay anyone.

Every quantity of an agent is a pure function of (seed, its id, its edges, the pass and layer), so a worker
computes it for its hosted agents and its halo only.

Shapes: A agents asked about, E their directed edges.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.rng import keyed_seed, normal_rows
from ..graph import Graph

TIMED_KEYS = ("latency_ms", "bandwidth_mbps", "compute_ms", "links")


def models_time(network: Mapping[str, Any] | None) -> bool:
    """Whether a ``[network]`` section (``network.*`` of a config, as a dict) makes anything take simulated time:
    a latency, a bandwidth, a file of links or a compute time. Without one every simulated second is 0 and means
    "no time model", not "instant": tables show "—" and figures of seconds leave the run out. A deadline, a spread
    or a jitter alone times nothing (they scale or cut times that are all 0)."""
    if not network:
        return False
    return any(network.get(key) for key in TIMED_KEYS)


@dataclass(frozen=True)
class NetworkModel:
    """Times in seconds, bandwidth in bit/s (math.inf: infinite), deadline math.inf when there is none."""

    seed: int
    num_agents: int
    latency_s: float = 0.0
    bandwidth_bps: float = math.inf
    link_spread: float = 0.0
    compute_s: float = 0.0
    compute_spread: float = 0.0
    jitter: float = 0.0
    deadline_s: float = math.inf
    link_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # sorted sender·n+receiver
    link_latency_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    link_bandwidth_bps: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def links_take_time(self) -> bool:
        """Whether messages take time (otherwise every message time is 0)."""
        return bool(self.latency_s or self.bandwidth_bps < math.inf or len(self.link_keys))

    @property
    def active(self) -> bool:
        """Whether anything takes time (otherwise every time is 0)."""
        return self.links_take_time or bool(self.compute_s)

    @property
    def has_deadline(self) -> bool:
        return self.deadline_s < math.inf

    def _lognormal(self, what: str, keys: np.ndarray, columns: int, sigma: float) -> np.ndarray:
        """A × columns factors exp(σ z − σ²/2) (mean 1), z keyed by (seed, what, key)."""
        if sigma == 0:
            return np.ones((len(keys), columns))
        z = normal_rows(keyed_seed(self.seed, "network", what), torch.as_tensor(keys), columns).numpy()
        return np.exp(sigma * z - sigma**2 / 2)

    def link_seconds(self, sender_E: np.ndarray, receiver_E: np.ndarray, num_bytes: int) -> np.ndarray:
        """τ before jitter: latency + bits / bandwidth of each directed link."""
        keys = sender_E.astype(np.int64) * self.num_agents + receiver_E
        factor = self._lognormal("link", keys, 2, self.link_spread)
        latency = self.latency_s * factor[:, 0]
        bandwidth = self.bandwidth_bps * factor[:, 1]
        if len(self.link_keys):
            at = np.minimum(np.searchsorted(self.link_keys, keys), len(self.link_keys) - 1)
            listed = self.link_keys[at] == keys
            latency = np.where(listed, self.link_latency_s[at], latency)
            bandwidth = np.where(listed, self.link_bandwidth_bps[at], bandwidth)
        return latency + 8.0 * num_bytes / bandwidth

    def jitter_factor(self, agents: np.ndarray, phase: str, step: int, layer: int) -> np.ndarray:
        """ξ_j of the agents in one layer of one forward pass (1 without jitter)."""
        if self.jitter == 0:
            return np.ones(len(agents))
        key = keyed_seed(self.seed, "network", "jitter", phase, step, layer)
        z = normal_rows(key, torch.as_tensor(agents, dtype=torch.int64), 1).numpy()[:, 0]
        return np.exp(self.jitter * z - self.jitter**2 / 2)

    def compute_seconds(
        self, agents: np.ndarray, phase: str, step: int, layer: int, num_updates: int = 1
    ) -> np.ndarray:
        """c_j of each agent for ``num_updates`` local updates in one layer (or baseline round)."""
        if self.compute_s == 0:
            return np.zeros(len(agents))
        speed = self._lognormal("compute", agents.astype(np.int64), 1, self.compute_spread)[:, 0]
        return num_updates * self.compute_s * speed * self.jitter_factor(agents, phase, step, layer)

    def send_seconds(
        self, graph: Graph, agents: np.ndarray, num_bytes: int, phase: str, step: int, layer: int
    ) -> np.ndarray:
        """Per agent: the time its slowest message of a round takes (0 for an agent without neighbours)."""
        if not self.links_take_time:
            return np.zeros(len(agents))
        rows, receivers = graph.edges_of(agents)
        tau = self.link_seconds(agents[rows], receivers, num_bytes)
        slowest = np.zeros(len(agents))
        np.maximum.at(slowest, rows, tau)
        return slowest * self.jitter_factor(agents, phase, step, layer)

    def late(
        self, graph: Graph, agents: np.ndarray, num_bytes: int, phase: str, step: int, layer: int, num_updates: int = 1
    ) -> np.ndarray:
        """Which agents miss the deadline in this layer (all False without a deadline)."""
        if not self.has_deadline:
            return np.zeros(len(agents), dtype=bool)
        send = self.send_seconds(graph, agents, num_bytes, phase, step, layer)
        compute = self.compute_seconds(agents, phase, step, layer, num_updates)
        return (send > self.deadline_s) | (compute > self.deadline_s)


def read_links(path: str | Path, num_agents: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``sender,receiver,latency_ms,bandwidth_mbps`` rows (a header line) as sorted keys and values in s, bit/s
    (bandwidth 0: infinite). Validated by ``config.validate`` before any process starts."""
    rows = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            bandwidth = float(row["bandwidth_mbps"])
            rows.append(
                (
                    int(row["sender"]) * num_agents + int(row["receiver"]),
                    float(row["latency_ms"]) / 1e3,
                    bandwidth * 1e6 if bandwidth > 0 else math.inf,
                )
            )
    rows.sort()
    keys = np.array([r[0] for r in rows], dtype=np.int64)
    return keys, np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
