"""The communication ledger: every round's traffic, logical and physical, by round and by directed edge.

*Logical* traffic is what real devices would send: in a round every live agent sends its vector (D floats)
to each of its neighbours, one message per directed edge (self-loops excluded). The backward pass of
meta-training sends gradients back along the reversed edges: the same count in the ``backward`` direction,
filed under the forward edge it reverses. *Physical* traffic is what actually crossed a process boundary:
the rows a worker sent to another worker (0 under the local backend).

Each worker records only what its own agents and its own process sent, so ledgers of all workers add up
without double counting (``Ledger.merge``).

Keys of the round counters: (phase, direction, layer, hop). ``phase`` names what was running ("train",
"validate", "eval/udgd", "eval/dgd", ...); layer and hop start at 1 for U-DGD and the baselines count every
round as layer = round, hop = 1.

Per-edge counters cost O(|E| hosted) per round: a vector over the current graph's directed edges whose
sender this worker hosts. When the graph changes (a new task), that vector is folded into a run-wide table
keyed by (sender, receiver) pairs, coalesced lazily, so the cost of a run is O(distinct pairs seen).
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..rundir.atomic import write_text_atomic

Key = tuple[str, str, int, int]
FIELDS = ("logical_messages", "logical_bytes", "physical_messages", "physical_bytes")
EDGE_DIRECTIONS = ("forward", "backward")
# Every direction is one kind of traffic:
#   agent         what agents send each other: neighbour messages, forward and backward
#   coordination  collectives the method itself needs (agent-batch normalisation's all-reduces)
#   simulator     what only the simulation needs: Θ's gradient all-reduce, the scalar all-reduces of losses,
#                 norms and accuracies, re-sent rows of recomputed layers, gathers, broadcasts, checkpoints
KIND_OF_DIRECTION = {
    "forward": "agent",
    "backward": "agent",
    "allreduce": "coordination",
    "params": "simulator",
    "scalars": "simulator",
    "recompute": "simulator",
    "gather": "simulator",
    "broadcast": "simulator",
    "checkpoint": "simulator",
}
KINDS = ("agent", "coordination", "simulator")


def _zero_row() -> np.ndarray:
    return np.zeros(len(FIELDS), dtype=np.int64)


class EdgeCounts:
    """Messages per directed edge (sender, receiver) and direction, keyed by ``sender · n + receiver``."""

    def __init__(self, num_agents: int) -> None:
        self.num_agents = num_agents
        self.keys = np.zeros(0, dtype=np.int64)  # sorted, unique
        self.counts = np.zeros((0, len(EDGE_DIRECTIONS)), dtype=np.int64)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._num_pending = 0

    def add(self, keys: np.ndarray, counts: np.ndarray) -> None:
        """Add ``counts`` (K × 2) to the pairs ``keys`` (K, any order, repeats allowed)."""
        if len(keys):
            self._pending.append((keys, counts))
            self._num_pending += len(keys)
            if self._num_pending > max(4 * len(self.keys), 1 << 20):
                self.coalesce()

    def coalesce(self) -> None:
        if not self._pending:
            return
        keys = np.concatenate([self.keys, *(k for k, _ in self._pending)])
        counts = np.concatenate([self.counts, *(c for _, c in self._pending)])
        self.keys, inverse = np.unique(keys, return_inverse=True)
        self.counts = np.zeros((len(self.keys), counts.shape[1]), dtype=np.int64)
        np.add.at(self.counts, inverse, counts)
        self._pending, self._num_pending = [], 0

    def state(self) -> dict[str, np.ndarray]:
        self.coalesce()
        return {"keys": self.keys.copy(), "counts": self.counts.copy()}


class Ledger:
    """Counts messages and bytes by (phase, direction, layer, hop) and by directed edge."""

    def __init__(self, num_agents: int) -> None:
        self.num_agents = num_agents
        self.counts: dict[Key, np.ndarray] = defaultdict(_zero_row)
        self.edges = EdgeCounts(num_agents)
        # the current graph's directed edges sent by this worker's agents, and their counters
        self._edge_keys = np.zeros(0, dtype=np.int64)
        self._edge_counts = np.zeros((0, len(EDGE_DIRECTIONS)), dtype=np.int64)
        self.phase = "train"

    @contextlib.contextmanager
    def in_phase(self, phase: str) -> Iterator[None]:
        """Attribute everything recorded inside the block to ``phase``."""
        previous, self.phase = self.phase, phase
        try:
            yield
        finally:
            self.phase = previous

    def set_edges(self, sender_E: np.ndarray, receiver_E: np.ndarray) -> None:
        """From now on, rounds are recorded on these directed edges (a new graph): ``current_edges``."""
        self._fold()
        self._edge_keys = sender_E.astype(np.int64) * self.num_agents + receiver_E
        self._edge_counts = np.zeros((len(sender_E), len(EDGE_DIRECTIONS)), dtype=np.int64)

    @property
    def current_edges(self) -> np.ndarray:
        """The keys (sender·n + receiver) of the edges ``set_edges`` gave: counted in place, the fast path."""
        return self._edge_keys

    def _fold(self) -> None:
        used = self._edge_counts.any(axis=1)
        self.edges.add(self._edge_keys[used], self._edge_counts[used])
        self._edge_counts[:] = 0

    def record_logical(
        self,
        direction: str,
        layer: int,
        hop: int,
        live_E: np.ndarray | None,
        bytes_per_message: int,
        edges: np.ndarray | None = None,
    ) -> int:
        """Record one round on the edges ``edges`` (keys; default the current ones): every edge sends one message,
        or only those with ``live_E[e]`` True. Returns the count."""
        keys = self._edge_keys if edges is None else edges
        num_messages = len(keys) if live_E is None else int(np.count_nonzero(live_E))
        row = self.counts[(self.phase, direction, layer, hop)]
        row[0] += num_messages
        row[1] += num_messages * bytes_per_message
        if keys is not self._edge_keys:  # a round graph of a changing network: its edges are added as they come
            sent = keys if live_E is None else keys[live_E]
            counts = np.zeros((len(sent), len(EDGE_DIRECTIONS)), dtype=np.int64)
            counts[:, EDGE_DIRECTIONS.index(direction)] = 1
            self.edges.add(sent, counts)
            return num_messages
        column = self._edge_counts[:, EDGE_DIRECTIONS.index(direction)]
        if live_E is None:
            column += 1
        else:
            column += live_E
        return num_messages

    def record_physical(self, direction: str, layer: int, hop: int, num_messages: int, num_bytes: int) -> None:
        """Record ``num_bytes`` in ``num_messages`` point-to-point sends that left this process."""
        row = self.counts[(self.phase, direction, layer, hop)]
        row[2] += num_messages
        row[3] += num_bytes

    # -- aggregation -------------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """A picklable copy (to gather ledgers of all workers on the coordinator, or to checkpoint)."""
        self._fold()
        return {"counts": {k: v.copy() for k, v in self.counts.items()}, "edges": self.edges.state()}

    def merge(self, state: dict[str, Any]) -> None:
        """Add another worker's counts (``state()``) into this ledger."""
        for key, row in state["counts"].items():
            self.counts[key] += row
        self.edges.add(state["edges"]["keys"], state["edges"]["counts"])

    def absorb(self, other: Ledger, num_agents: int) -> None:
        """Add ``other``'s counts, a ledger of a batch of tasks (agent b·n + i of task b is agent i here): its
        edges fold onto this graph's agents."""
        state = other.state()
        for key, row in state["counts"].items():
            self.counts[key] += row
        keys = state["edges"]["keys"]
        sender, receiver = np.divmod(keys, other.num_agents)
        self.edges.add((sender % num_agents) * self.num_agents + receiver % num_agents, state["edges"]["counts"])

    def load_state(self, state: dict[str, Any]) -> None:
        """Replace the counts with a saved state (resuming a run)."""
        self.counts.clear()
        self.edges = EdgeCounts(self.num_agents)
        self._edge_counts[:] = 0
        self.merge(state)

    def totals(self, phase_prefix: str | None = None, direction: str | None = None) -> dict[str, int]:
        """Sum of every counter, optionally restricted to phases starting with ``phase_prefix`` or one direction."""
        return self._sum(
            lambda key: (
                (phase_prefix is None or key[0].startswith(phase_prefix)) and (direction is None or key[1] == direction)
            )
        )

    def by_phase(self) -> dict[str, dict[str, int]]:
        """Every counter summed per phase (all kinds of traffic; the phases partition the total)."""
        phases = sorted({k[0] for k in self.counts})
        return {p: self._sum(lambda key, p=p: key[0] == p) for p in phases}

    def by_direction(self) -> dict[str, dict[str, int]]:
        """Every counter summed per direction (the directions partition the total)."""
        directions = sorted({k[1] for k in self.counts})
        return {d: self._sum(lambda key, d=d: key[1] == d) for d in directions}

    def by_kind(self) -> dict[str, dict[str, int]]:
        """Every counter summed per kind of traffic: agent, coordination, simulator (``KIND_OF_DIRECTION``)."""
        return {kind: self._sum(lambda key, kind=kind: KIND_OF_DIRECTION[key[1]] == kind) for kind in KINDS}

    def _sum(self, keep: Any) -> dict[str, int]:
        total = np.zeros(len(FIELDS), dtype=np.int64)
        for key, row in self.counts.items():
            if keep(key):
                total += row
        return dict(zip(FIELDS, (int(v) for v in total)))

    def per_layer(self, phase: str, direction: str = "forward", field: str = "logical_bytes") -> dict[int, int]:
        """One counter of ``phase`` and ``direction`` summed over hops, per layer (per round for baselines)."""
        column = FIELDS.index(field)
        out: dict[int, int] = defaultdict(int)
        for (p, d, layer, _), row in self.counts.items():
            if p == phase and d == direction:
                out[layer] += int(row[column])
        return dict(out)

    def edge_messages(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sender, receiver, counts K × 2 [forward, backward]) of every directed edge that carried a message."""
        self._fold()
        self.edges.coalesce()
        sender, receiver = np.divmod(self.edges.keys, self.num_agents)
        return sender, receiver, self.edges.counts

    def write_csv(self, path: str | Path) -> None:
        """``comm.csv``: one row per (phase, direction, layer, hop) with the four counters."""
        fh = io.StringIO(newline="")
        writer = csv.writer(fh)
        writer.writerow(("phase", "direction", "layer", "hop", *FIELDS))
        for key in sorted(self.counts):
            writer.writerow((*key, *(int(v) for v in self.counts[key])))
        write_text_atomic(path, fh.getvalue())

    def write_edges_csv(self, path: str | Path) -> None:
        """``comm_edges.csv``: messages per directed edge (sender, receiver) and direction over the run."""
        sender, receiver, counts = self.edge_messages()
        fh = io.StringIO(newline="")
        writer = csv.writer(fh)
        writer.writerow(("sender", "receiver", "forward_messages", "backward_messages"))
        writer.writerows(zip(sender.tolist(), receiver.tolist(), *counts.T.tolist(), strict=True))
        write_text_atomic(path, fh.getvalue())
