"""Nothing listens where it should not: while a local torch run and a local Ray run train, every listening socket of
their processes (the rendezvous store, gloo's pairs, Ray's GCS, raylet, object manager, agents and workers) is on
loopback. Process groups have no authentication: a listener on the network would let anyone on it join a run."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from _processes import clean_env, descendants, is_loopback, listeners, train_command

pytestmark = [pytest.mark.e2e]

RUN_TIMEOUT_S = 240
# long enough to be seen training (each step is a few ms), short enough for the fast tier
CASES = [
    pytest.param(["--backend", "torch", "--workers", "2", "--set", "train.epochs=30"], id="torch"),
    pytest.param(
        ["--backend", "ray", "--workers", "2", "--set", "train.epochs=30", "--set", "run.ray_cpus_per_worker=0.5"],
        id="ray",
        marks=[
            pytest.mark.ray,
            pytest.mark.skipif(not importlib.util.find_spec("ray"), reason="needs Ray: pip install 'surf-dist[ray]'"),
        ],
    ),
]


def _rows(out: Path) -> int:
    path = out / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.timeout(RUN_TIMEOUT_S + 60)
@pytest.mark.parametrize("args", CASES)
def test_a_local_run_listens_on_loopback_only(tmp_path: Path, args: list[str]) -> None:
    """Catches a rendezvous store, a gloo pair or a Ray daemon of a run on one machine bound to the wildcard or to
    a network interface's address (torch's store binds every interface unless handed a bound socket; Ray turns
    127.0.0.1 into the network address on Linux), or a worker started at a lower priority than the command
    (Ray starts its workers at nice 15: beside a busy loop on every core they all but stopped)."""
    # Prepare
    out = tmp_path / "run"
    proc = subprocess.Popen(
        train_command(out, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(),
        start_new_session=True,
    )  # fmt: skip
    seen: set[tuple[str, int, int]] = set()
    names: dict[int, str] = {}
    niceness: dict[str, int] = {}  # "comm pid": nice, of every process of the run seen
    polls_while_training = 0

    # Execute: list the listeners of the run's whole process tree until it ends
    deadline = time.monotonic() + RUN_TIMEOUT_S
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            tree = {proc.pid, *descendants(proc.pid)}
            now = listeners(tree)
            for _, _, pid in now - seen:
                try:
                    names[pid] = Path(f"/proc/{pid}/comm").read_text().strip()
                except OSError:
                    names[pid] = "?"
            seen |= now
            for pid in tree:
                try:
                    comm, stat = (Path(f"/proc/{pid}/{f}").read_text().strip() for f in ("comm", "stat"))
                except OSError:
                    continue
                niceness[f"{comm} {pid}"] = int(stat.rsplit(")", 1)[1].split()[16])  # field 19 of proc(5)
            polls_while_training += _rows(out) > 0
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=60)

    # Assert
    assert proc.returncode == 0, err[-3000:]
    assert json.loads((out / "summary.json").read_text())["workers"] == 2
    assert polls_while_training >= 3, "the run was not seen training: the check proves nothing"
    assert seen, "no listener found at all: the check cannot see the run's sockets"
    outside = sorted(f"{a}:{port} ({names.get(pid, '?')}, pid {pid})" for a, port, pid in seen if not is_loopback(a))
    assert not outside, f"listening outside 127.0.0.0/8: {outside}"
    assert len(niceness) >= 3, niceness  # the command and two workers at least
    assert all(n == 0 for n in niceness.values()), f"processes below the command's priority: {niceness}"
