"""Failure injection: real process kills and hangs (silent agents are ``train.silent``).

Process kills. ``kill = ["W@S"]`` SIGKILLs worker W when it reaches meta-training step S; ``"0@S:checkpoint"``
kills the coordinator inside the checkpoint of step S (between setting the previous one aside and renaming the
new one into place, the worst moment); ``"W@T:eval"`` kills worker W in the final evaluation at evaluated task T.
``kill_mtbf_steps`` kills a keyed random worker with probability 1/mtbf per step. ``hang`` makes a worker sleep
for ever, ``stop`` makes it SIGSTOP itself (frozen, as by a debugger or an overloaded node). Before it fires, the
victim writes a marker under ``RUN/failures/`` (atomically), so a restarted run does not fire the same fault
again and the summary lists exactly the kills that happened.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import torch

from ..config import FailureConfig, parse_kill
from ..config.faults import parse_fault
from ..core.rng import torch_generator
from ..rundir.atomic import write_json_atomic


class KillInjector:
    """Fires each configured kill exactly once over all restarts of a run (markers in ``RUN/failures``)."""

    def __init__(self, cfg: FailureConfig, *, seed: int, num_workers: int, run_dir: str | Path | None) -> None:
        self.seed, self.num_workers, self.mtbf = seed, num_workers, cfg.kill_mtbf_steps
        faults = [parse_fault(k) for k in cfg.kill]
        self.planned = [(w, s) for w, s, point in faults if point == "step"]
        self.at_points = {(w, s, point) for w, s, point in faults if point != "step"}
        self.hangs = [parse_kill(k) for k in cfg.hang]
        self.stops = [parse_kill(k) for k in cfg.stop]
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

    def _marker(self, worker: int, step: int, point: str = "step") -> Path:
        assert self.dir is not None
        return self.dir / (f"kill-{worker}@{step}.json" if point == "step" else f"kill-{worker}@{step}-{point}.json")

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
        if (rank, step) in self.stops:
            marker = self.dir / f"stop-{rank}@{step}.json"
            if not marker.exists():
                self._write_marker(marker, {"worker": rank, "step": step, "pid": os.getpid(), "signal": "SIGSTOP"})
                os.kill(os.getpid(), signal.SIGSTOP)  # frozen here until someone kills (or continues) it
        if self._victim(step) == rank:
            self._kill(rank, step)

    def maybe_kill_at(self, point: str, rank: int, step: int) -> None:
        """SIGKILL this process if ``failures.kill`` names (rank, step) at ``point`` (``checkpoint``, ``eval``) and
        that kill has not fired before."""
        if self.dir is not None and (rank, step, point) in self.at_points:
            self._kill(rank, step, point)

    def _kill(self, rank: int, step: int, point: str = "step") -> None:
        marker = self._marker(rank, step, point)
        if marker.exists():
            return
        record = {"worker": rank, "step": step, "pid": os.getpid(), "signal": "SIGKILL"}
        self._write_marker(marker, record if point == "step" else {**record, "point": point})
        os.kill(os.getpid(), signal.SIGKILL)


def kills_fired(run_dir: Path | None) -> list[dict]:
    """Every kill that actually happened in this run directory, in step order."""
    markers = [] if run_dir is None else (run_dir / "failures").glob("kill-*.json")
    order = {"step": 0, "checkpoint": 0, "eval": 1}  # those of meta-training first, then the evaluation's
    return sorted(
        (json.loads(p.read_text()) for p in markers), key=lambda r: (order[r.get("point", "step")], r["step"])
    )
