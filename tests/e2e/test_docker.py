"""docker/: the compose files render and run the cluster jobs; the Dockerfiles install this project.

No Docker daemon is needed: Debian's ``docker-compose`` (1.29) renders a file with ``config`` alone
(``.ci/run`` installs it). What the containers run is exercised on one host by
``tests/e2e/test_torchrun_nodes.py`` and ``tests/ray/test_ray_cluster_nodes.py``.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from _compose import DOCKER, REPO, load_compose, service_command, shell_steps

pytestmark = pytest.mark.e2e

COMPOSE_FILES = ["compose.torchrun.yml", "compose.ray.yml"]
DOCKERFILES = ["Dockerfile.cpu", "Dockerfile.cuda"]


def _compose_config(name: str, tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose; .ci/run does)")
    empty = tmp_path / "empty.env"
    empty.touch()  # never a developer's docker/.env
    return subprocess.run(
        [binary, "--env-file", str(empty), "-f", str(DOCKER / name), "config"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "COMPOSE_", "DOCKER_"))}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_file_renders(name: str, tmp_path: Path) -> None:
    """Catches a compose file that docker-compose rejects (syntax, schema, interpolation) or whose rendered
    commands differ from the ones the on-host cluster tests run."""
    # Execute
    proc = _compose_config(name, tmp_path, {**_clean_env(), "RAY_AUTH_TOKEN": "0123abcd"})

    # Assert
    assert proc.returncode == 0, proc.stderr
    rendered = yaml.safe_load(proc.stdout)["services"]
    assert set(rendered) == set(load_compose(name)["services"])
    for service, spec in rendered.items():
        assert [str(a) for a in spec["command"]] == service_command(name, service), service
        assert any(str(v).startswith("runs:/runs") for v in spec["volumes"]), f"{service}: no shared /runs"
        assert (REPO / spec["build"]["context"] / spec["build"]["dockerfile"]).is_file(), service
        assert Path(spec["build"]["context"]).resolve() == REPO, f"{service}: build context is not the repository"
        if name == "compose.ray.yml":
            assert spec["environment"]["RAY_AUTH_TOKEN"] == "0123abcd", service


@pytest.mark.timeout(60)
def test_ray_compose_refuses_to_render_without_a_token(tmp_path: Path) -> None:
    """Catches a Ray compose file that would start a cluster without token authentication (or with an
    empty token) when RAY_AUTH_TOKEN is not set."""
    proc = _compose_config("compose.ray.yml", tmp_path, _clean_env())
    assert proc.returncode != 0 and "RAY_AUTH_TOKEN" in proc.stderr, proc.stdout + proc.stderr


@pytest.mark.timeout(30)
def test_torchrun_compose_runs_a_two_node_c10d_job() -> None:
    """Catches node services that stopped forming one c10d job: different commands, a rendezvous host no
    node is called, a job that is not `-m surf_dist train --backend torch`, or a run directory off the
    shared volume."""
    services = load_compose("compose.torchrun.yml")["services"]
    assert set(services) == {"node0", "node1"}
    commands = {name: service_command("compose.torchrun.yml", name) for name in services}
    assert commands["node0"] == commands["node1"], "the nodes must run one command"
    cmd = commands["node0"]
    joined = " ".join(cmd)
    assert cmd[0] == "torchrun" and "--nnodes 2" in joined and "--rdzv-backend c10d" in joined
    host, port = cmd[cmd.index("--rdzv-endpoint") + 1].split(":")
    assert host in {spec.get("hostname") for spec in services.values()} and port.isdigit()
    assert "--rdzv-id" in cmd
    assert "-m surf_dist train --backend torch" in joined
    assert cmd[cmd.index("--out") + 1].startswith("/runs/")
    for name, spec in services.items():
        assert spec["hostname"] == name, f"{name}: torchrun publishes host names; they must resolve"
        assert "runs:/runs" in spec["volumes"] and "GLOO_SOCKET_IFNAME" in spec["environment"], name


@pytest.mark.timeout(30)
def test_ray_compose_runs_head_workers_and_a_driver_with_token_auth() -> None:
    """Catches a Ray compose file whose nodes do not join the head's port, whose driver is not
    `surf-dist train --backend ray --ray-address HEAD`, asks for more actors than the nodes offer CPUs, or
    whose processes lack token authentication."""
    name = "compose.ray.yml"
    services = load_compose(name)["services"]
    assert set(services) == {"head", "worker", "job"}
    head, worker = service_command(name, "head"), service_command(name, "worker")
    assert head[:3] == ["ray", "start", "--head"] and "--block" in head
    address = f"{services['head']['hostname']}:{head[head.index('--port') + 1]}"
    assert worker[:4] == ["ray", "start", "--address", address] and "--block" in worker
    assert address in services["head"]["healthcheck"]["test"]
    join, drive = shell_steps(service_command(name, "job"))
    assert join[:4] == ["ray", "start", "--address", address] and join[join.index("--num-cpus") + 1] == "0"
    assert drive[:4] == ["surf-dist", "train", "--backend", "ray"]
    assert drive[drive.index("--ray-address") + 1] == address
    assert drive[drive.index("--out") + 1].startswith("/runs/")
    offered = sum(float(c[c.index("--num-cpus") + 1]) for c in (head, worker))
    assert int(drive[drive.index("--workers") + 1]) <= offered, "more actors (1 CPU each) than CPUs offered"
    for service, spec in services.items():
        env = spec["environment"]
        assert env["RAY_AUTH_MODE"] == "token", service
        assert re.fullmatch(r"\$\{RAY_AUTH_TOKEN:\?[^}]+\}", env["RAY_AUTH_TOKEN"]), service
        assert "runs:/runs" in spec["volumes"], service


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    text = "\n".join(lines).replace("\\\n", " ")
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines() if line.strip()]


def _ignored(path: str) -> bool:
    patterns = [p.strip() for p in (REPO / ".dockerignore").read_text().splitlines()]
    return any(p and not p.startswith("#") and fnmatch.fnmatch(path, p.removeprefix("**/")) for p in patterns)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_installs_the_project(name: str) -> None:
    """Catches a Dockerfile that copies a path that does not exist (or that .dockerignore drops), copies too
    little for `pip install -e`, or no longer installs surf-dist with the Ray extra."""
    steps = _instructions(DOCKER / name)
    kinds = [kind for kind, _ in steps]
    assert "FROM" in kinds and set(kinds[: kinds.index("FROM")]) <= {"ARG"}, f"{name}: FROM comes first"
    copied = []
    for kind, args in steps:
        if kind == "COPY":
            *sources, _dest = args.split()
            for source in sources:
                assert (REPO / source).exists(), f"{name}: COPY {source}: not in the repository"
                assert not _ignored(source), f"{name}: COPY {source}: excluded by .dockerignore"
                copied.append(source.rstrip("/"))
    assert {"pyproject.toml", "README.md", "surf_dist"} <= set(copied), f"{name}: pip install -e needs them"
    runs = [args for kind, args in steps if kind == "RUN"]
    install = [i for i, run in enumerate(runs) if re.search(r"pip install -e '?\.\[ray\]'?", run)]
    assert install, f"{name}: no `pip install -e '.[ray]'`"
    if name == "Dockerfile.cpu":
        assert steps[0] == ("FROM", "python:3.11-slim")
        torch = [i for i, run in enumerate(runs) if "download.pytorch.org/whl/cpu" in run and "torch" in run]
        assert torch and torch[0] < install[0], "CPU torch must be installed before the project pulls CUDA torch"
    else:
        base = dict(args.split("=", 1) for kind, args in steps if kind == "ARG" and "=" in args)["BASE"]
        assert "cuda" in base and steps[kinds.index("FROM")][1] == "${BASE}"
