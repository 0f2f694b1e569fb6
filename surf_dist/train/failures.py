"""Failure injection: silent (asynchronous) agents inside the unrolled network, and real process kills.

Silent agents. At each layer a set of agents is silent: it neither updates nor sends (what neighbours
use instead is the Mixer's ``semantics``). The set is drawn for all n agents from a generator keyed by
(seed, phase, step, layer), so every worker agrees without talking:

* ``num_async``: exactly that many agents, uniformly at random, per layer;
* ``async_rate``: each agent independently with that probability, and with ``async_correlation`` c an
  agent silent at layer l−1 stays silent at l with probability max(c, rate) (a two-state Markov chain);
* ``trace``: a CSV of ``step,layer,agent`` rows (``phase`` column optional) naming the silent agents.

Process kills. ``kill = ["W@S"]`` SIGKILLs worker W when it reaches meta-training step S;
``kill_mtbf_steps`` kills a keyed random worker with probability 1/mtbf per step. Before it dies, the
victim writes a marker under ``RUN/failures/`` (atomically), so a restarted run does not fire the same
kill again and the summary lists exactly the kills that happened.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import time
from collections import defaultdict
from functools import cached_property
from pathlib import Path

import torch

from ..atomic import write_json_atomic
from ..config import FailureConfig, parse_kill
from ..data.rng import torch_generator


class SilentSchedule:
    """Silent-agent masks per (phase, step, layer): N-long bool tensors, or None when nobody is silent."""

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

    def masks(self, phase: str, step: int, num_layers: int) -> list[torch.Tensor | None] | None:
        """Masks for layers 1..num_layers of one forward pass (None: everybody live)."""
        if not self.active:
            return None
        out: list[torch.Tensor | None] = []
        previous = torch.zeros(self.num_agents, dtype=torch.bool)
        for layer in range(1, num_layers + 1):
            mask = torch.zeros(self.num_agents, dtype=torch.bool)
            if self.cfg.trace:
                agents = self._trace.get((phase, step, layer), []) + self._trace.get(("*", step, layer), [])
                mask[torch.as_tensor(agents, dtype=torch.long)] = True
            else:
                g = torch_generator(self.seed, "silent", phase, step, layer)
                if self.cfg.num_async:
                    mask[torch.randperm(self.num_agents, generator=g)[: self.cfg.num_async]] = True
                else:
                    u = torch.rand(self.num_agents, generator=g, dtype=torch.float64)
                    stay = max(self.cfg.async_correlation, self.cfg.async_rate)
                    mask = torch.where(previous, u < stay, u < self.cfg.async_rate)
            out.append(mask)
            previous = mask
        return out


class KillInjector:
    """Fires each configured kill exactly once over all restarts of a run (markers in ``RUN/failures``)."""

    def __init__(self, cfg: FailureConfig, *, seed: int, num_workers: int, run_dir: str | Path | None) -> None:
        self.seed, self.num_workers, self.mtbf = seed, num_workers, cfg.kill_mtbf_steps
        self.planned = [parse_kill(k) for k in cfg.kill]
        self.hangs = [parse_kill(k) for k in cfg.hang]
        self.dir = Path(run_dir) / "failures" if run_dir is not None else None

    def _victim(self, step: int) -> int | None:
        """The worker killed at ``step``: a planned kill, or a keyed random draw with rate 1 / mtbf."""
        for worker, at in self.planned:
            if at == step:
                return worker
        if self.mtbf > 0:
            g = torch_generator(self.seed, "kill", step)
            if torch.rand(1, generator=g, dtype=torch.float64).item() < 1.0 / self.mtbf:
                return int(torch.randint(self.num_workers, (1,), generator=g).item())
        return None

    def _marker(self, worker: int, step: int) -> Path:
        assert self.dir is not None
        return self.dir / f"kill-{worker}@{step}.json"

    def _write_marker(self, path: Path, record: dict) -> None:
        assert self.dir is not None
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, record)

    def maybe_kill(self, rank: int, step: int) -> None:
        """SIGKILL this process if it is the victim at ``step`` and the kill has not fired before;
        stop answering (sleep) if a hang is planned for it here."""
        if self.dir is None:
            return
        if (rank, step) in self.hangs:
            marker = self.dir / f"hang-{rank}@{step}.json"
            if not marker.exists():
                self._write_marker(marker, {"worker": rank, "step": step, "pid": os.getpid(), "fault": "hang"})
                while True:
                    time.sleep(3600)
        if self._victim(step) != rank or self._marker(rank, step).exists():
            return
        self._write_marker(
            self._marker(rank, step), {"worker": rank, "step": step, "pid": os.getpid(), "signal": "SIGKILL"}
        )
        os.kill(os.getpid(), signal.SIGKILL)


def kills_fired(run_dir: Path | None) -> list[dict]:
    """Every kill that actually happened in this run directory, in step order."""
    markers = [] if run_dir is None else (run_dir / "failures").glob("kill-*.json")
    return sorted((json.loads(p.read_text()) for p in markers), key=lambda r: r["step"])
