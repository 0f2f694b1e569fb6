"""The images of docker/ built, and surf-dist's jobs in containers, each compared with the same job on this host.

The CPU image: three jobs, all the smoke preset (seconds): one container (no network), the two-node
torchrun compose job and the Ray compose cluster (head, worker, driver). The compose jobs run on the host's
network with every address on 127.0.0.1 (``docker/compose.*.host.yml``); the bridge-network files
(``compose.*.yml``) run too with ``SURF_CONTAINERS_BRIDGE=1`` (traffic then crosses a compose network, off
127.0.0.1). Each job's run directory must agree with the local run (``surf-dist compare``: losses, final
parameters, accuracies, ledger).
The CUDA image is built last, and checked without a GPU (it cannot run a job here).

Without a Docker daemon this module skips at import, in one line saying why.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _containers import Project, compare, ensure, record, unavailable

pytestmark = [pytest.mark.containers, pytest.mark.timeout(1800)]  # the first test builds the image
_REASON = unavailable()
if _REASON:
    pytest.skip(_REASON, allow_module_level=True)

JOB_TIMEOUT_S = 300


def _only_on_request(file: str) -> None:
    """The bridge-network files run with SURF_CONTAINERS_BRIDGE=1 only (one skip line for all of them)."""
    if not file.endswith(".host.yml") and os.environ.get("SURF_CONTAINERS_BRIDGE") != "1":
        pytest.skip("bridge-network compose files: SURF_CONTAINERS_BRIDGE=1 runs them (traffic off 127.0.0.1)")


def _docker(docker: list[str], *args: str, timeout: float = JOB_TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run([*docker, *args], capture_output=True, text=True, timeout=timeout)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cpu_image_runs_surf_dist_as_a_user_with_cpu_torch(docker: list[str], cpu_image: str) -> None:
    """Catches a CPU image that does not run surf-dist, runs it as root, carries a CUDA build of torch (the
    gigabytes the CPU image is meant to leave out), or keeps a CA bundle or pip configuration from its build."""
    probe = (
        "import os, torch, ray, surf_dist.cli; "
        "print(os.getuid(), torch.__version__, torch.version.cuda, ray.__version__); "
        "print(sorted(os.listdir('/run/secrets')) if os.path.isdir('/run/secrets') else [])"
    )
    proc = _docker(docker, "run", "--rm", "--network", "none", cpu_image, "python", "-c", probe)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (uid, torch_version, cuda, _ray), secret_files = proc.stdout.split("\n")[0].split(), proc.stdout.split("\n")[1]
    assert uid != "0", "the image runs as root"
    assert cuda == "None", f"torch {torch_version} is a CUDA build (CUDA {cuda}): the CPU image should not carry it"
    assert secret_files == "[]", f"build secrets left in the image: {secret_files}"
    help_ = _docker(docker, "run", "--rm", "--network", "none", cpu_image)  # CMD: surf-dist --help
    assert help_.returncode == 0 and "train" in help_.stdout, help_.stdout + help_.stderr
    # another uid (docker run --user) gets a matplotlib cache too, not a warning per process
    anyone = _docker(
        docker, "run", "--rm", "--network", "none", "--user", "4321:4321", cpu_image,
        "python", "-c", "import matplotlib; print(matplotlib.get_configdir())",
    )  # fmt: skip
    assert anyone.returncode == 0 and anyone.stdout.strip() == "/tmp/matplotlib", anyone.stdout + anyone.stderr
    assert not anyone.stderr.strip(), anyone.stderr
    check = "find /tmp -mindepth 1; test ! -e /etc/pip.conf && echo clean"
    leftovers = _docker(docker, "run", "--rm", "--network", "none", cpu_image, "sh", "-c", check)
    assert leftovers.stdout.strip() == "clean", f"left by the build: {leftovers.stdout}"


def test_smoke_job_in_a_container_agrees_with_the_local_run(
    docker: list[str], cpu_image: str, local_smoke: Path, runs: Path
) -> None:
    """Catches an image whose surf-dist trains differently from this checkout on this host."""
    start = time.monotonic()
    proc = _docker(
        docker, "run", "--rm", "--network", "none", "-v", f"{runs}:/runs", cpu_image,
        "surf-dist", "train", "--preset", "smoke", "--out", "/runs/smoke", "--quiet",
    )  # fmt: skip
    seconds = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    compare(runs / "smoke", local_smoke)
    record("smoke job, one container", seconds, "agrees with the local run")


@pytest.mark.parametrize("file", ["compose.torchrun.host.yml", "compose.torchrun.yml"])
def test_two_torchrun_nodes_in_containers_agree_with_the_local_run(
    file: str, cpu_image: str, local_smoke: Path, runs: Path, project: Callable[..., Project]
) -> None:
    """Catches a two-node torchrun compose job that does not form one process group (rendezvous, node
    addresses, pid namespaces), fails, or trains differently from the local backend."""
    _only_on_request(file)
    variables = {"SURF_IMAGE": cpu_image, "SURF_PRESET": "smoke", "SURF_RUNS": str(runs)}
    if file.endswith(".host.yml"):
        variables["SURF_RDZV_ENDPOINT"] = f"127.0.0.1:{_free_port()}"
    job = project(file, **variables)
    # `up` returns when both nodes have exited: --abort-on-container-exit could stop rank 0 mid-write
    proc, seconds = job.up(timeout=JOB_TIMEOUT_S)
    codes = job.exit_codes()
    assert proc is not None and codes == {"node0": 0, "node1": 0}, job.report(proc, JOB_TIMEOUT_S)
    summary = json.loads((runs / "torchrun" / "summary.json").read_text())
    assert (summary["backend"], summary["workers"]) == ("torch", 2)
    assert summary["comm"]["physical"]["bytes"] > 0, "the two nodes exchanged nothing"
    compare(runs / "torchrun", local_smoke)
    record(f"torchrun, 2 nodes ({file})", seconds, "agrees with the local run")


@pytest.mark.parametrize("file", ["compose.ray.host.yml", "compose.ray.yml"])
def test_ray_cluster_in_containers_agrees_with_the_local_run(
    file: str, cpu_image: str, local_smoke: Path, runs: Path, project: Callable[..., Project]
) -> None:
    """Catches a Ray compose cluster (head, worker, driver, token authentication) that does not run the job
    on two actors, fails, or trains differently from the local backend."""
    _only_on_request(file)
    variables = {
        "SURF_IMAGE": cpu_image,
        "SURF_PRESET": "smoke",
        "SURF_RUNS": str(runs),
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
    }
    if file.endswith(".host.yml"):
        variables["RAY_PORT"] = str(_free_port())
    job = project(file, **variables)
    proc, seconds = job.up("--abort-on-container-exit", "--exit-code-from", "job", timeout=JOB_TIMEOUT_S)
    assert proc is not None and proc.returncode == 0, job.report(proc, JOB_TIMEOUT_S)
    summary = json.loads((runs / "ray" / "summary.json").read_text())
    assert (summary["backend"], summary["workers"]) == ("ray", 2)
    assert summary["comm"]["physical"]["bytes"] > 0, "the two actors exchanged nothing"
    compare(runs / "ray", local_smoke)
    record(f"Ray head + worker + driver ({file})", seconds, "agrees with the local run")


def test_cuda_image_builds_with_a_cuda_torch(docker: list[str], logs: Path) -> None:
    """Catches a CUDA image that does not build, or whose torch has no CUDA, or whose torchvision, Ray or
    surf-dist does not import (checked without a GPU: importing needs none)."""
    image = ensure("cuda", logs)
    probe = "import os, torch, torchvision, ray, surf_dist.cli; print(os.getuid(), torch.version.cuda)"
    proc = subprocess.run(
        [*docker, "run", "--rm", "--network", "none", image.tag, "python", "-c", probe],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    uid, cuda = proc.stdout.split()
    assert uid != "0" and cuda != "None", proc.stdout
