"""The communication ledger: every round's traffic, logical and physical.

*Logical* traffic is what real devices would send: in a round every live agent sends its vector
(D floats) to each of its neighbours, one message per directed edge (self-loops excluded). The
backward pass of meta-training sends gradients back along the reversed edges: the same count in the
``backward`` direction. *Physical* traffic is what actually crossed a process boundary: the rows a
worker sent to another worker (0 under the local backend).

Each worker records only what its own agents and its own process sent, so ledgers of all workers
add up without double counting (``Ledger.merge``).

Keys of the counters: (phase, direction, layer, hop). ``phase`` names what was running
("train", "validate", "eval/udgd", "eval/dgd", ...); layer and hop start at 1 for U-DGD and the
baselines count every round as layer = round, hop = 1.
"""

from __future__ import annotations

import contextlib
import csv
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

Key = tuple[str, str, int, int]
FIELDS = ("logical_messages", "logical_bytes", "physical_messages", "physical_bytes")


class Ledger:
    """Counts messages and bytes by (phase, direction, layer, hop) and by directed edge."""

    def __init__(self, num_agents: int) -> None:
        self.num_agents = num_agents
        self.counts: dict[Key, np.ndarray] = defaultdict(lambda: np.zeros(len(FIELDS), dtype=np.int64))
        # messages per directed edge (sender, receiver), per direction, over the whole run
        self.edge_messages = {d: np.zeros((num_agents, num_agents), dtype=np.int64) for d in ("forward", "backward")}
        self.phase = "train"

    @contextlib.contextmanager
    def in_phase(self, phase: str) -> Iterator[None]:
        """Attribute everything recorded inside the block to ``phase``."""
        previous, self.phase = self.phase, phase
        try:
            yield
        finally:
            self.phase = previous

    def record_logical(self, direction: str, layer: int, hop: int, edges_NN: np.ndarray, bytes_per_message: int) -> int:
        """Record one round: ``edges_NN[j, i]`` is True when agent j sent a message to agent i. Returns the count."""
        num_messages = int(edges_NN.sum())
        row = self.counts[(self.phase, direction, layer, hop)]
        row[0] += num_messages
        row[1] += num_messages * bytes_per_message
        self.edge_messages[direction] += edges_NN
        return num_messages

    def record_physical(self, direction: str, layer: int, hop: int, num_messages: int, num_bytes: int) -> None:
        """Record ``num_bytes`` in ``num_messages`` point-to-point sends that left this process."""
        row = self.counts[(self.phase, direction, layer, hop)]
        row[2] += num_messages
        row[3] += num_bytes

    # -- aggregation -------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """A picklable copy (to gather ledgers of all workers on the coordinator)."""
        return {
            "counts": {k: v.copy() for k, v in self.counts.items()},
            "edge_messages": {d: m.copy() for d, m in self.edge_messages.items()},
        }

    def merge(self, state: dict[str, Any]) -> None:
        """Add another worker's counts (``state()``) into this ledger."""
        for key, row in state["counts"].items():
            self.counts[key] += row
        for direction, m in state["edge_messages"].items():
            self.edge_messages[direction] += m

    def load_state(self, state: dict[str, Any]) -> None:
        """Replace the counts with a saved state (resuming a run)."""
        self.counts.clear()
        self.edge_messages = {
            d: np.zeros((self.num_agents, self.num_agents), dtype=np.int64) for d in ("forward", "backward")
        }
        self.merge(state)

    def totals(self, phase_prefix: str | None = None, direction: str | None = None) -> dict[str, int]:
        """Sum of every counter, optionally restricted to phases starting with ``phase_prefix`` or one direction."""
        total = np.zeros(len(FIELDS), dtype=np.int64)
        for (phase, d, _, _), row in self.counts.items():
            if (phase_prefix is None or phase.startswith(phase_prefix)) and (direction is None or d == direction):
                total += row
        return dict(zip(FIELDS, (int(v) for v in total)))

    def by_phase(self) -> dict[str, dict[str, int]]:
        phases = sorted({k[0] for k in self.counts})
        return {p: self.totals(phase_prefix=p) for p in phases}

    def write_csv(self, path: str | Path) -> None:
        """``comm.csv``: one row per (phase, direction, layer, hop) with the four counters."""
        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(("phase", "direction", "layer", "hop", *FIELDS))
            for key in sorted(self.counts):
                writer.writerow((*key, *(int(v) for v in self.counts[key])))

    def write_edges_csv(self, path: str | Path) -> None:
        """``comm_edges.csv``: messages per directed edge (sender, receiver) and direction over the run."""
        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(("sender", "receiver", "forward_messages", "backward_messages"))
            fwd, bwd = self.edge_messages["forward"], self.edge_messages["backward"]
            for j, i in zip(*np.nonzero(fwd + bwd)):
                writer.writerow((int(j), int(i), int(fwd[j, i]), int(bwd[j, i])))
