"""A Ray head plus a second raylet on one host, running what ``docker/compose.ray.yml``'s containers run.

The head's, the worker node's and the job's commands and environments are read from the compose file:
``head:6379`` becomes ``127.0.0.1`` and a free port, ``/runs/...`` a temporary directory, and every process
gets the compose file's token authentication (``RAY_AUTH_MODE=token`` and one ``RAY_AUTH_TOKEN``).

This module holds no Ray session in the test process. It never calls ``ray stop``, which would stop every
Ray on the machine: each ``ray start --block`` runs in a session of its own, and teardown sends it SIGTERM
(it drains and stops its node) and then SIGKILLs whatever is left in that session.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from _compose import SMALL_SMOKE, healthcheck_command, on_host, service_command, service_environment, shell_steps
from _ray_support import assert_same_run, local_summary

from surf_dist.runtime.supervisor import free_port

pytestmark = [pytest.mark.ray, pytest.mark.slow]

COMPOSE = "compose.ray.yml"
START_TIMEOUT_S = 90
RUN_TIMEOUT_S = 200

# a driver of the cluster that prints its nodes, or with "actors" the nodes that hosted surf-dist's workers
CHECK = """
import json, sys, time
import ray
from ray._private import state
ray.init(address=sys.argv[1], logging_level="ERROR")
if sys.argv[2] == "nodes":
    deadline = time.monotonic() + float(sys.argv[3])
    while True:
        nodes = [n for n in ray.nodes() if n["Alive"]]
        if len(nodes) >= int(sys.argv[4]) or time.monotonic() > deadline:
            break
        time.sleep(1)
    print(json.dumps({n["NodeID"]: n["Resources"].get("CPU", 0) for n in nodes}))
else:
    actors = state.actors().values()
    print(json.dumps(sorted(a["Address"]["NodeID"] for a in actors if a["ActorClassName"].endswith("RayWorker"))))
"""


def _session_pids(sid: int) -> list[int]:
    """The processes of session ``sid``: a node's daemons and the Ray workers it forked (own process groups)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[3]) == sid:  # after the command: state, ppid, pgrp, session
            pids.append(int(stat.parent.name))
    return pids


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # `ray start --block` drains its node and stops its processes
        try:
            proc.wait(timeout=45)
        except subprocess.TimeoutExpired:
            pass
    for pid in _session_pids(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if proc.poll() is None:
        proc.wait(timeout=10)


@dataclass
class _Nodes:
    """The compose file's head and worker services as commands on this host: ``head:6379`` on a free port,
    ``/runs/...`` under ``runs``, and a short session directory (the nodes share this host's Unix sockets)."""

    hosts: dict[str, str]
    runs: Path
    temp_dir: str
    head_cmd: list[str]
    worker_cmd: list[str]
    health_cmd: list[str]

    @property
    def address(self) -> str:
        return self.hosts["head:6379"]


def _nodes(runs: Path) -> _Nodes:
    port = free_port()
    hosts = {"head:6379": f"127.0.0.1:{port}"}
    temp_dir = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    head_cmd = on_host(
        service_command(COMPOSE, "head"), hosts=hosts, runs_dir=runs, values={"--port": str(port)},
        extra=["--temp-dir", temp_dir],
    )  # fmt: skip
    worker_cmd = on_host(service_command(COMPOSE, "worker"), hosts=hosts, runs_dir=runs)
    health_cmd = on_host(healthcheck_command(COMPOSE, "head"), hosts=hosts, runs_dir=runs)
    return _Nodes(hosts, runs, temp_dir, head_cmd, worker_cmd, health_cmd)


@pytest.fixture
def cluster_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of the compose file's Ray processes, on this host, with a fresh token and HOME."""
    variables = {"RAY_AUTH_TOKEN": secrets.token_hex(32)}
    compose_env = {s: service_environment(COMPOSE, s, variables) for s in ("head", "worker", "job")}
    assert compose_env["head"] == compose_env["worker"] == compose_env["job"], "one environment for all"
    assert compose_env["head"]["RAY_AUTH_MODE"] == "token"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "RAY_ADDRESS"))}
    env.update(compose_env["head"])
    env.pop("GLOO_SOCKET_IFNAME")  # the containers' eth0; on one host gloo finds the loopback itself
    (tmp_path / "home").mkdir()
    # no ~/.ray/auth_token from other runs: only the environment decides (a token file enables auth on a head)
    env.update(HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    yield env


@pytest.mark.timeout(START_TIMEOUT_S + 2 * RUN_TIMEOUT_S + 120)
def test_ray_head_and_second_node_with_token_auth(tmp_path: Path, cluster_env: dict[str, str]) -> None:
    """Catches a broken Ray cluster job as the compose file runs it: a head, a second raylet joined with
    `ray start --address`, token authentication that lets in the holders of the token and refuses a driver
    without it, a driver (--ray-address) whose 2 actors do not span both nodes, or a run that differs from
    the local backend."""
    # Prepare: the compose services' commands and environments on this host
    cluster = _nodes(tmp_path / "runs")
    hosts, runs, temp_dir, env = cluster.hosts, cluster.runs, cluster.temp_dir, cluster_env
    head_cmd, worker_cmd, health_cmd, address = (
        cluster.head_cmd,
        cluster.worker_cmd,
        cluster.health_cmd,
        cluster.address,
    )
    join, drive = shell_steps(service_command(COMPOSE, "job"))
    # container-only: the job joins as a node without CPUs (a driver needs a raylet on its own machine);
    # here the driver shares the head's machine and uses its raylet
    assert join == ["ray", "start", "--address", "head:6379", "--num-cpus", "0", "--num-gpus", "0"]
    sets = [arg for s in [*SMALL_SMOKE, "run.ray_cpus_per_worker=1"] for arg in ("--set", s)]
    driver_cmd = on_host(drive, hosts=hosts, runs_dir=runs, values={"--preset": "smoke"}, extra=[*sets, "--quiet"])
    nodes: list[subprocess.Popen] = []

    def start(cmd: list[str], log: str) -> None:
        with (tmp_path / log).open("w") as out:
            nodes.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True))

    def check(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", CHECK, address, *args], env=env, capture_output=True, text=True, timeout=120
        )

    try:
        # Execute: the head, until its health check (the compose file's) passes; then the second node
        start(head_cmd, "head.log")
        deadline = time.monotonic() + START_TIMEOUT_S
        while subprocess.run(health_cmd, env=env, capture_output=True, timeout=60).returncode != 0:
            assert nodes[0].poll() is None, (tmp_path / "head.log").read_text()[-4000:]
            assert time.monotonic() < deadline, "the head's health check never passed"
            time.sleep(2)
        start(worker_cmd, "worker.log")
        listed = check("nodes", str(START_TIMEOUT_S), "2")
        assert listed.returncode == 0, listed.stderr[-3000:]
        cpus = json.loads(listed.stdout.strip().splitlines()[-1])
        assert sorted(cpus.values()) == [1, 1], f"expected 2 nodes of 1 CPU, got {cpus}"

        # a driver without the token (no RAY_AUTH_MODE, no RAY_AUTH_TOKEN) is refused, with the fix
        no_token = {k: v for k, v in env.items() if not k.startswith("RAY_AUTH")}
        refused_cmd = [str(runs / "refused") if arg == str(runs / "ray") else arg for arg in driver_cmd]
        refused = subprocess.run(refused_cmd, env=no_token, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)

        # the job's driver, with the token
        job = subprocess.run(driver_cmd, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        placed = check("actors")
    finally:
        for node in reversed(nodes):  # the worker node first, then the head
            _stop(node)
        shutil.rmtree(temp_dir, ignore_errors=True)
    local = local_summary(["run.ray_cpus_per_worker=1"], tmp_path / "local")

    # Assert
    assert refused.returncode == 1, refused.stdout[-2000:] + refused.stderr[-3000:]
    assert "InvalidAuthToken" in refused.stderr and "RAY_AUTH_MODE=token" in refused.stderr, refused.stderr[-3000:]
    assert not (runs / "refused" / "summary.json").exists()
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-6000:]
    assert placed.returncode == 0, placed.stderr[-3000:]
    actor_nodes = json.loads(placed.stdout.strip().splitlines()[-1])
    assert len(actor_nodes) == 2 and set(actor_nodes) == set(cpus), f"actors on {actor_nodes}, nodes {cpus}"
    summary = json.loads((runs / "ray" / "summary.json").read_text())
    assert (summary["backend"], summary["workers"]) == ("ray", 2)
    assert_same_run(summary, local)


@pytest.mark.timeout(START_TIMEOUT_S * 2 + RUN_TIMEOUT_S * 2 + 120)
def test_a_lost_raylet_is_survived_once_a_node_returns(tmp_path: Path, cluster_env: dict[str, str]) -> None:
    """Catches a driver that gives up when a whole node goes (its raylet and the actor on it SIGKILLed), that does
    not wait for the cluster to have room again, or whose resumed run differs from a run never disturbed."""
    # Prepare: the compose file's head and worker node, and a driver of a run long enough to lose a node in
    from _chaos import assert_survived, chaos_sets, clean_run

    cluster = _nodes(tmp_path / "runs")
    runs, temp_dir, env = cluster.runs, cluster.temp_dir, cluster_env
    head_cmd, worker_cmd, health_cmd, address = (
        cluster.head_cmd,
        cluster.worker_cmd,
        cluster.health_cmd,
        cluster.address,
    )
    sets = [*chaos_sets(300), "run.ray_cpus_per_worker=1", "run.timeout_s=30", "failures.max_restarts=3"]
    out = runs / "ray"
    driver_cmd = [sys.executable, "-m", "surf_dist", "train", "--backend", "ray", "--workers", "2", "--preset",
                  "smoke", "--ray-address", address, *(a for s in sets for a in ("--set", s)), "--out", str(out),
                  "--quiet"]  # fmt: skip
    nodes: list[subprocess.Popen] = []

    def start(cmd: list[str], log: str) -> subprocess.Popen:
        with (tmp_path / log).open("w") as sink:
            nodes.append(subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True))
        return nodes[-1]

    def rows() -> int:
        path = out / "metrics.jsonl"
        return len(path.read_text().splitlines()) if path.exists() else 0

    try:
        start(head_cmd, "head.log")
        deadline = time.monotonic() + START_TIMEOUT_S
        while subprocess.run(health_cmd, env=env, capture_output=True, timeout=60).returncode != 0:
            assert time.monotonic() < deadline, "the head's health check never passed"
            time.sleep(2)
        lost = start(worker_cmd, "worker.log")
        listed = subprocess.run([sys.executable, "-c", CHECK, address, "nodes", str(START_TIMEOUT_S), "2"], env=env,
                                capture_output=True, text=True, timeout=START_TIMEOUT_S + 60)  # fmt: skip
        assert listed.returncode == 0, listed.stderr[-3000:]
        with (tmp_path / "driver.log").open("w") as sink:
            driver = subprocess.Popen(driver_cmd, env=env, stdout=sink, stderr=subprocess.STDOUT)

        # Execute: once it trains, the worker node goes whole (raylet, object store, the actor on it) ...
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while rows() < 30:
            assert driver.poll() is None, (tmp_path / "driver.log").read_text()[-4000:]
            assert time.monotonic() < deadline, "the run never trained"
            time.sleep(0.2)
        for pid in _session_pids(lost.pid):
            os.kill(pid, signal.SIGKILL)
        lost.wait(timeout=30)
        at_loss = rows()
        # ... and a fresh node joins, as a cluster manager would bring one back
        start(worker_cmd, "worker2.log")
        code = driver.wait(timeout=RUN_TIMEOUT_S * 2)
    finally:
        for node in reversed(nodes):
            _stop(node)
        shutil.rmtree(temp_dir, ignore_errors=True)
    clean_run(chaos_sets(300), tmp_path / "clean")

    # Assert
    log = (tmp_path / "driver.log").read_text()
    assert code == 0, log[-4000:]
    assert 30 <= at_loss < 300, "the node was not lost mid-run"
    assert re.search(r"Ray actor \d (died|timed out)", log), log[-3000:]
    assert_survived(out, tmp_path / "clean", [], attempts=2)
