"""Two torchrun "nodes" on one host, running what ``docker/compose.torchrun.yml``'s containers run.

Each node's command is read from the compose file; ``node0:29500`` becomes ``127.0.0.1`` and a free port
(the c10d rendezvous store), ``/runs/...`` one directory both nodes see, as the shared volume is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from _chaos import assert_survived, chaos_sets, clean_run
from _compose import SMALL_SMOKE, on_host, service_command
from _processes import descendants

from surf_dist.config import load_config
from surf_dist.runtime.launch import run_local
from surf_dist.runtime.supervisor import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RUN_TIMEOUT_S = 180
LOSS_RTOL = 1e-5  # float32


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


@pytest.mark.timeout(RUN_TIMEOUT_S + 120)
def test_two_torchrun_nodes_with_c10d_rendezvous(tmp_path: Path) -> None:
    """Catches a broken two-node torchrun job as the compose file runs it (c10d rendezvous, node ranks by
    arrival, rank 0 writing the shared run directory) or one that trains differently from the local backend."""
    # Prepare: both nodes' commands, the container names mapped onto this host
    port = free_port()
    sets = [arg for s in SMALL_SMOKE for arg in ("--set", s)]
    commands = [
        on_host(
            service_command("compose.torchrun.yml", node),
            hosts={"node0:29500": f"127.0.0.1:{port}"},
            runs_dir=tmp_path / "runs",
            # fail fast here (the containers restart up to 3 times); the smoke job, not the main one
            values={"--max-restarts": "0", "--preset": "smoke"},
            extra=[*sets, "--quiet"],
        )
        for node in ("node0", "node1")
    ]
    assert commands[0] == commands[1], "both nodes run the same command; torchrun assigns the ranks"
    joined = " ".join(commands[0])
    for part in ("--nnodes 2", "--nproc-per-node 1", f"--rdzv-backend c10d --rdzv-endpoint 127.0.0.1:{port}"):
        assert part in joined, f"{part!r} not in {joined}"
    run_dir = Path(commands[0][commands[0].index("--out") + 1])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "GLOO_SOCKET_IFNAME"):
        env.pop(name, None)  # not a rank of an outer launcher; gloo finds the loopback interface itself

    # Execute: the two nodes concurrently, each in its own session so that a hang can be killed whole
    logs = [tmp_path / f"node{i}.log" for i in range(2)]
    procs = []
    for command, log in zip(commands, logs):
        with log.open("w") as out:
            procs.append(
                subprocess.Popen(
                    command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
    deadline = time.monotonic() + RUN_TIMEOUT_S
    try:
        codes = [proc.wait(timeout=max(1.0, deadline - time.monotonic())) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    local = run_local(
        load_config("smoke", None, [*SMALL_SMOKE, "run.backend=local", "run.workers=1"]),
        tmp_path / "local",
        progress=False,
    )

    # Assert
    report = "\n".join(f"--- node{i} exited {code}:\n{logs[i].read_text()[-4000:]}" for i, code in enumerate(codes))
    assert codes == [0, 0], report
    summary = json.loads((run_dir / "summary.json").read_text())
    assert local is not None
    assert (summary["backend"], summary["workers"]) == ("torch", 2)
    la, lb = summary["train"]["loss_per_step"], local["train"]["loss_per_step"]
    assert len(la) == len(lb) == 3
    assert max(_rel(a, b) for a, b in zip(la, lb)) <= LOSS_RTOL, f"losses: 2 nodes {la} vs local {lb}"
    na, nb = summary["train"]["final_param_norms"], local["train"]["final_param_norms"]
    assert set(na) == set(nb) and all(_rel(na[k], nb[k]) <= LOSS_RTOL for k in na), f"norms: {na} vs {nb}"
    assert summary["comm"]["physical"]["bytes"] > 0, "the two ranks exchanged nothing"


def _rows(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.timeout(3 * RUN_TIMEOUT_S + 120)
def test_a_lost_torchrun_node_is_survived_by_the_rerun(tmp_path: Path) -> None:
    """Catches a two-node torchrun job that hangs when a whole node goes (its agent and its rank SIGKILLed) instead
    of ending its other node with the lost worker named, or whose rerun on two nodes (what a cluster manager or the
    compose file's restart policy does) does not resume from the last checkpoint to the numbers of a run never
    disturbed."""
    # Prepare: the compose file's command; a run long enough to lose a node in
    port = free_port()
    num_steps = 1500  # about 25 s: the loss must land mid-run
    sets = [arg for s in [*chaos_sets(num_steps), "run.timeout_s=30"] for arg in ("--set", s)]
    command = on_host(
        service_command("compose.torchrun.yml", "node0"),
        hosts={"node0:29500": f"127.0.0.1:{port}"},
        runs_dir=tmp_path / "runs",
        values={"--max-restarts": "0", "--preset": "smoke"},
        extra=[*sets, "--quiet"],
    )
    run_dir = Path(command[command.index("--out") + 1])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "GLOO_SOCKET_IFNAME"):
        env.pop(name, None)
    procs: list[subprocess.Popen] = []

    def node(log: str) -> subprocess.Popen:
        with (tmp_path / log).open("w") as out:
            procs.append(subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True))  # fmt: skip
        return procs[-1]

    try:
        first, second = node("node-a.log"), node("node-b.log")
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while _rows(run_dir) < 30:
            assert first.poll() is None and second.poll() is None, (tmp_path / "node-a.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the job never trained"
            time.sleep(0.05)

        # Execute: one node goes whole (its agent and its rank, which torchrun starts in a session of its own) ...
        for pid in [second.pid, *descendants(second.pid)]:
            os.kill(pid, signal.SIGKILL)
        second.wait(timeout=30)
        at_loss = _rows(run_dir)
        survivor_code = first.wait(timeout=RUN_TIMEOUT_S)  # ... its peer fails, naming it, within the timeout ...
        # ... and the job runs again on two nodes
        codes = [p.wait(timeout=2 * RUN_TIMEOUT_S) for p in (node("node-c.log"), node("node-d.log"))]
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    clean_run(chaos_sets(num_steps), tmp_path / "clean")

    # Assert
    logs = "\n".join(f"--- {p.name}:\n{p.read_text()[-3000:]}" for p in sorted(tmp_path.glob("node-*.log")))
    assert 30 <= at_loss < num_steps, "the node was not lost mid-run"
    assert survivor_code != 0 and "suspected hung or dead: worker(s) [1]" in (tmp_path / "node-a.log").read_text(), logs
    assert codes == [0, 0], logs
    assert_survived(run_dir, tmp_path / "clean", [], attempts=2)
