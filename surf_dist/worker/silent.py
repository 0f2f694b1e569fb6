"""Silent (asynchronous) agents: at each layer a set of agents neither updates nor sends; what their
neighbours use instead is the Mixer's ``semantics`` (``zero`` or ``stale``).

A silent set is drawn per (phase, step, layer) from generators keyed by the seed and that position, and is
*queried*, never materialised over all n agents: a worker asks which of its hosted agents and of its halo are
silent (``mask(ids)``), so every worker agrees without talking at a cost O(hosted + halo):

* ``num_async``: exactly that many agents per layer, uniformly without replacement (NumPy's ``choice``, O(k)
  for k ≪ n): the set is its k ids;
* ``async_rate``: each agent independently with that probability, and with ``async_correlation`` c an agent
  silent at layer l−1 stays silent at l with probability max(c, rate) (a two-state Markov chain), from one
  keyed uniform per (agent, layer), so any agent's chain is computed from its id alone;
* ``trace``: a CSV of ``step,layer,agent`` rows (``phase`` column optional) naming the silent agents.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from functools import cached_property

import numpy as np
import torch

from ..config import FailureConfig
from ..core.protocol import SilentAgents
from ..core.rng import keyed_seed, numpy_rng, uniform_rows


class SilentIds:
    """A silent set given by its global ids."""

    def __init__(self, ids: np.ndarray | list[int]) -> None:
        self.ids = torch.as_tensor(np.unique(np.asarray(ids, dtype=np.int64)))

    def mask(self, agents: torch.Tensor) -> torch.Tensor:
        return torch.isin(agents, self.ids)


class AllBut:
    """Every agent except ``ids``: e.g. the clients that do not upload in a star round (the muted ones)."""

    def __init__(self, ids: np.ndarray | list[int]) -> None:
        self.ids = torch.as_tensor(np.unique(np.asarray(ids, dtype=np.int64)))

    def mask(self, agents: torch.Tensor) -> torch.Tensor:
        return ~torch.isin(agents, self.ids)


class Either:
    """The union of two sets (either may be None)."""

    def __init__(self, a: SilentAgents | None, b: SilentAgents | None) -> None:
        self.a, self.b = a, b

    def mask(self, agents: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(agents.shape, dtype=torch.bool)
        for part in (self.a, self.b):
            if part is not None:
                out |= part.mask(agents)
        return out


def uploaders(seed: int, phase: str, step: int, layer: int, num_agents: int, num_uploads: int) -> np.ndarray:
    """The ``num_uploads`` clients (agents 1..n-1 of a star) that upload to the server in one round, keyed by
    (seed, phase, step, layer) and drawn uniformly without replacement (O(M) for M ≪ n)."""
    rng = numpy_rng(seed, "uploads", phase, step, layer)
    return np.sort(rng.choice(num_agents - 1, size=num_uploads, replace=False) + 1)


class SilentChain:
    """Layer ``layer`` of the rate model: each agent's Markov chain over layers 1..layer, from its id."""

    def __init__(self, seed: int, phase: str, step: int, layer: int, rate: float, stay: float) -> None:
        self.keys = [keyed_seed(seed, "silent", phase, step, j) for j in range(1, layer + 1)]
        self.rate, self.stay = rate, stay

    def mask(self, agents: torch.Tensor) -> torch.Tensor:
        silent = torch.zeros(agents.shape, dtype=torch.bool)
        for key in self.keys:
            u = uniform_rows(key, agents.reshape(-1), 1)[:, 0].reshape(agents.shape)
            silent = torch.where(silent, u < self.stay, u < self.rate)
        return silent


class SilentSchedule:
    """The silent sets of one forward pass: one per layer (or per round), None when nobody is silent."""

    def __init__(self, cfg: FailureConfig, *, seed: int, num_agents: int) -> None:
        self.cfg, self.seed, self.num_agents = cfg, seed, num_agents

    @property
    def active(self) -> bool:
        return bool(self.cfg.num_async or self.cfg.async_rate or self.cfg.trace)

    @cached_property
    def _trace(self) -> dict[tuple[str, int, int], list[int]]:
        table: dict[tuple[str, int, int], list[int]] = defaultdict(list)
        with open(self.cfg.trace or "", newline="") as fh:
            for row in csv.DictReader(fh):
                key = (row.get("phase") or "*", int(row["step"]), int(row["layer"]))
                table[key].append(int(row["agent"]))
        return table

    def layer(self, phase: str, step: int, layer: int) -> SilentAgents:
        """The silent set of ``layer`` (counted from 1) of the forward pass of (phase, step)."""
        if self.cfg.trace:
            return SilentIds(self._trace.get((phase, step, layer), []) + self._trace.get(("*", step, layer), []))
        if self.cfg.num_async:
            rng = numpy_rng(self.seed, "silent", phase, step, layer)
            return SilentIds(rng.choice(self.num_agents, size=self.cfg.num_async, replace=False))
        stay = max(self.cfg.async_correlation, self.cfg.async_rate)
        return SilentChain(self.seed, phase, step, layer, self.cfg.async_rate, stay)

    def layers(self, phase: str, step: int, num_layers: int) -> list[SilentAgents | None] | None:
        """The sets of layers 1..num_layers of one forward pass (None: everybody live)."""
        if not self.active:
            return None
        return [self.layer(phase, step, layer) for layer in range(1, num_layers + 1)]
