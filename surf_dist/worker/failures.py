"""Failure injection: real process kills and hangs (silent agents are ``train.silent``).

Process kills. ``kill = ["W@S"]`` SIGKILLs worker W when it reaches meta-training step S;
``kill_mtbf_steps`` kills a keyed random worker with probability 1/mtbf per step. Before it dies, the
victim writes a marker under ``RUN/failures/`` (atomically), so a restarted run does not fire the same
kill again and the summary lists exactly the kills that happened.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import torch

from ..config import FailureConfig, parse_kill
from ..core.rng import torch_generator
from ..rundir.atomic import write_json_atomic


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
