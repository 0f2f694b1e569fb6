"""The container tier (marker ``containers``): the images of ``docker/`` built and their jobs run in containers.

Where a Docker daemon answers (``.ci/run`` starts one with ``docker/ci-daemon.sh``), the session builds the
CPU image with ``docker/build.py`` (this machine's pip configuration; an image of the same inputs is reused),
runs the smoke job once on this host (the local run every container job is compared with, by
``surf-dist compare``), and reports each image and job in the terminal summary. Where no daemon can be
had, the tier's module skips in one line saying why (``_containers.unavailable``). ``-m "not containers"``
leaves the tier out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _containers import RECORDS, REPO, Project, build, ensure, host_env, record, unavailable

LOCAL_TIMEOUT_S = 300


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if RECORDS:
        terminalreporter.section("containers")
        for r in RECORDS:
            terminalreporter.write_line(f"{r.what:<52} {r.seconds:6.1f} s  {r.result}")


@pytest.fixture(scope="session")
def docker() -> list[str]:
    """The docker client command line (the tier's modules skip at import without a daemon)."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    return build.docker_client()


@pytest.fixture(scope="session")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build logs, kept for a failure's report."""
    return tmp_path_factory.mktemp("container-logs")


@pytest.fixture(scope="session")
def cpu_image(docker: list[str], logs: Path) -> str:
    return ensure("cpu", logs).tag


@pytest.fixture(scope="session")
def local_smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke job on this host's local backend: what every container job must agree with."""
    out = tmp_path_factory.mktemp("local") / "smoke"
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "surf_dist", "train", "--preset", "smoke", "--out", str(out), "--quiet"],
        cwd=out.parent,
        env=host_env(),
        capture_output=True,
        text=True,
        timeout=LOCAL_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record("smoke job, local backend on this host", time.monotonic() - start, "the reference")
    return out


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """A run directory the containers' user (uid 1000) can write, mounted at /runs."""
    path = tmp_path / "runs"
    path.mkdir()
    path.chmod(0o777)
    return path


@pytest.fixture(scope="session")
def compose(docker: list[str]) -> list[str]:
    """Docker Compose: Debian's docker-compose (1.29), or the docker compose plugin."""
    binary = shutil.which("docker-compose")
    if binary:
        return [binary]
    if subprocess.run([*docker, "compose", "version"], capture_output=True).returncode == 0:
        return [*docker, "compose"]
    pytest.skip("containers: no Docker Compose (apt-get install docker-compose; .ci/run does)")


@pytest.fixture
def project(compose: list[str], docker: list[str], tmp_path: Path) -> Iterator[Callable[..., Project]]:
    """``project(FILE, **variables)``: a compose project of its own for ``docker/FILE`` (an empty
    ``--env-file``: never a developer's docker/.env), killed and taken down with its volumes after the test."""
    made: list[Project] = []
    empty = tmp_path / "empty.env"
    empty.touch()

    def make(file: str, **variables: str) -> Project:
        name = f"surftest{os.getpid()}n{len(made)}{''.join(c for c in tmp_path.name if c.isalnum())[-10:].lower()}"
        cmd = [*compose, "-p", name, "--env-file", str(empty), "-f", str(REPO / "docker" / file)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SURF_", "RAY_", "COMPOSE_", "GLOO_"))}
        made.append(Project(cmd, {**env, **variables}, docker))
        return made[-1]

    yield make
    for p in made:
        p.run("kill", timeout=60)
        p.run("down", "-v", "--remove-orphans", "-t", "5", timeout=120)
