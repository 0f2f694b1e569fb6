"""What the container tests share: docker/build.py, the tier's summary lines, the comparison with the local
run, and compose projects."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
STATUS_FILE = Path(os.environ.get("SURF_DOCKER_STATUS", "/tmp/surf-dist-docker.status"))  # docker/ci-daemon.sh's
COMPARE_TIMEOUT_S = 300


def _load_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("surf_dist_docker_build", REPO / "docker" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


build = _load_build()


def unavailable() -> str | None:
    """Why the tier cannot run here (no docker client, no daemon, no client that builds with BuildKit), else
    None. With docker/ci-daemon.sh's own reason when it left one."""
    status = STATUS_FILE.read_text().strip() if STATUS_FILE.is_file() else ""
    why = f"; docker/ci-daemon.sh: {status}" if status else "; .ci/run starts one with docker/ci-daemon.sh"
    if not shutil.which("docker"):
        return f"containers: no docker client (apt-get install docker.io){why}"
    problem = build.daemon_problem()
    if problem:
        return f"containers: no Docker daemon ({problem}){why}"
    try:
        build.docker_client()
    except build.BuildError as exc:
        return f"containers: {exc}{why}"
    return None


@dataclass
class Record:
    what: str
    seconds: float
    result: str


RECORDS: list[Record] = []


def record(what: str, seconds: float, result: str) -> None:
    """One line of the tier's terminal summary (``conftest.pytest_terminal_summary``)."""
    RECORDS.append(Record(what, seconds, result))


def host_env() -> dict[str, str]:
    """This checkout's surf-dist on this host (not another installed copy), one thread per process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "RANK", "WORLD_SIZE", "MASTER_"))}
    return {**env, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def ensure(kind: str, logs: Path) -> build.Image:
    """The image of ``docker/Dockerfile.KIND`` (reused or built), recorded in the summary. Skips when there is
    no base image to build on; fails when the build fails."""
    try:
        image = build.ensure_image(kind, log=logs / f"build-{kind}.log")
    except build.NoBaseImage as exc:
        pytest.skip(f"containers: {exc} (docker/ci-daemon.sh makes a local one)")
    except build.BuildError as exc:
        pytest.fail(str(exc), pytrace=False)
    how = "built" if image.built else "reused (same inputs)"
    record(f"{kind} image {image.tag}", image.seconds, f"{how}, {image.size / 1e9:.2f} GB")
    return image


def compare(run: Path, local: Path) -> str:
    """``surf-dist compare RUN LOCAL``; fails the test unless the runs agree. Returns its report."""
    proc = subprocess.run(
        [sys.executable, "-m", "surf_dist", "compare", str(run), str(local)],
        cwd=local.parent,
        env=host_env(),
        capture_output=True,
        text=True,
        timeout=COMPARE_TIMEOUT_S,
    )
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "runs agree" in proc.stdout, f"{run} vs the local run {local}:\n{report}"
    return report


@dataclass
class Project:
    """One compose project: ``-p NAME --env-file EMPTY -f FILE`` and the environment its variables come from."""

    cmd: list[str]
    env: dict[str, str]
    docker: list[str]

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self.cmd, *args], env=self.env, capture_output=True, text=True, timeout=timeout, cwd=REPO
        )

    def up(self, *args: str, timeout: float) -> tuple[subprocess.CompletedProcess | None, float]:
        """``up ARGS`` (attached); returns the process (None when it ran past ``timeout``) and its seconds."""
        start = time.monotonic()
        try:
            proc: subprocess.CompletedProcess | None = self.run("up", "--no-color", *args, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc = None
        return proc, time.monotonic() - start

    def exit_codes(self) -> dict[str, int]:
        """Each container's exit code, by service."""
        ids = self.run("ps", "-q").stdout.split()
        if not ids:
            return {}
        fmt = '{{index .Config.Labels "com.docker.compose.service"}} {{.State.ExitCode}}'
        out = subprocess.run([*self.docker, "inspect", "--format", fmt, *ids], capture_output=True, text=True)
        return {service: int(code) for service, code in (line.split() for line in out.stdout.splitlines())}

    def logs(self) -> str:
        return self.run("logs", "--no-color").stdout

    def report(self, proc: subprocess.CompletedProcess | None, timeout: float) -> str:
        """Why a job failed: how ``up`` ended, each container's exit code, the end of the logs."""
        head = f"did not finish in {timeout:.0f} s" if proc is None else f"up exited {proc.returncode}"
        return f"{head}; exit codes {self.exit_codes()}\n{self.logs()[-6000:]}"
