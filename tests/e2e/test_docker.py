"""docker/: the compose files render and run the cluster jobs; the Dockerfiles install this project.

No Docker daemon is needed: Debian's ``docker-compose`` (1.29) renders a file with ``config`` alone
(``.ci/run`` installs it). What the containers run is exercised on one host by
``tests/e2e/test_torchrun_nodes.py`` and ``tests/ray/test_ray_cluster_nodes.py``, and in containers, where a
Docker daemon can be had, by ``tests/containers/``.
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
from _compose import DOCKER, REPO, interpolate, load_compose, service_command, shell_steps

pytestmark = pytest.mark.e2e

COMPOSE_FILES = ["compose.torchrun.yml", "compose.ray.yml", "compose.torchrun.host.yml", "compose.ray.host.yml"]
RAY_FILES = [name for name in COMPOSE_FILES if "ray" in name]
HOST_FILES = [name for name in COMPOSE_FILES if name.endswith(".host.yml")]
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
    prefixes = ("RAY_", "COMPOSE_", "DOCKER_", "SURF_", "GLOO_")  # the files' variables, and compose's own
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


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
        assert spec["image"] == "surf-dist:cpu", service
        if name in RAY_FILES:
            assert spec["environment"]["RAY_AUTH_TOKEN"] == "0123abcd", service


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_variables_choose_image_job_and_runs(name: str, tmp_path: Path) -> None:
    """Catches a compose file whose image, job (preset) or run directories cannot be chosen from the
    environment, as tests/containers and docker/README.md choose them."""
    env = {**_clean_env(), "RAY_AUTH_TOKEN": "0123abcd", "SURF_IMAGE": "surf-dist:cpu-test", "SURF_PRESET": "smoke"}
    proc = _compose_config(name, tmp_path, {**env, "SURF_RUNS": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    for service, spec in yaml.safe_load(proc.stdout)["services"].items():
        assert spec["image"] == "surf-dist:cpu-test", service
        assert f"{tmp_path}:/runs:rw" in spec["volumes"], service
        command = " ".join(str(a) for a in spec["command"])
        if "train" in command:
            assert "--preset smoke" in command, service


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", RAY_FILES)
def test_ray_compose_refuses_to_render_without_a_token(name: str, tmp_path: Path) -> None:
    """Catches a Ray compose file that would start a cluster without token authentication (or with an
    empty token) when RAY_AUTH_TOKEN is not set."""
    proc = _compose_config(name, tmp_path, _clean_env())
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
        assert "runs:/runs" in _volumes(spec) and "GLOO_SOCKET_IFNAME" in spec["environment"], name


def _volumes(spec: dict) -> list[str]:
    return [interpolate(str(v)) for v in spec["volumes"]]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", HOST_FILES)
def test_host_network_compose_is_the_bridge_one_on_127_0_0_1(name: str) -> None:
    """Catches a host-network compose file that drifted from its bridge twin (services, the job), that leaves
    an address to Ray or torchrun (they pick the machine's interface, not 127.0.0.1), or two torchrun nodes
    in separate pid namespaces (on one address torchrun tells nodes apart by pid: the rendezvous hangs)."""
    bridge = name.replace(".host.yml", ".yml")
    services, twins = load_compose(name)["services"], load_compose(bridge)["services"]
    assert set(services) == set(twins), f"{name} vs {bridge}"
    for service, spec in services.items():
        assert spec["network_mode"] == "host" and "hostname" not in spec, service
        assert "runs:/runs" in _volumes(spec), service
        assert interpolate(str(spec["environment"]["GLOO_SOCKET_IFNAME"])) == "lo", service
        command = service_command(name, service)
        steps = shell_steps(command) if command[:2] == ["sh", "-c"] else [command]
        for step in steps:
            flags = {"--rdzv-endpoint", "--address", "--ray-address"}
            hosts = [step[i + 1] for i, a in enumerate(step[:-1]) if a in flags]
            assert all(h.split(":")[0] == "127.0.0.1" for h in hosts), f"{service}: {step}"
            if step[0] == "torchrun":
                assert step[step.index("--local-addr") + 1] == "127.0.0.1", service
            if step[:2] == ["ray", "start"]:
                assert step[step.index("--node-ip-address") + 1] == "127.0.0.1", service
        twin = service_command(bridge, service)
        if command[0] == "torchrun":
            assert spec["pid"] == "host", f"{service}: two nodes on one address need one pid namespace"
            assert command[command.index("-m") :] == twin[twin.index("-m") :], f"{service}: another job"
        if command[:2] == ["sh", "-c"]:
            drive, twin_drive = shell_steps(command)[-1], shell_steps(twin)[-1]
            flags = ("--backend", "--workers", "--preset", "--out")
            assert [drive[drive.index(f) + 1] for f in flags] == [twin_drive[twin_drive.index(f) + 1] for f in flags]


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
        assert "runs:/runs" in _volumes(spec), service


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    text = "\n".join(lines).replace("\\\n", " ")
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines() if line.strip()]


def _ignored(path: str) -> bool:
    """Whether .dockerignore keeps ``path`` (or a folder above it) out of the build context: the last
    pattern that matches decides, ``!PATTERN`` letting it back in (Docker's rules, without ``**`` in the middle)."""
    patterns = [p.strip() for p in (REPO / ".dockerignore").read_text().splitlines()]
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in (p for p in patterns if p and not p.startswith("#")):
        negated, glob = pattern.startswith("!"), pattern.removeprefix("!").removeprefix("**/")
        deep = pattern.removeprefix("!").startswith("**/")
        if any(fnmatch.fnmatch(p.split("/")[-1] if deep else p, glob) for p in prefixes):
            ignored = not negated
    return ignored


def _pip_runs(steps: list[tuple[str, str]]) -> list[str]:
    return [args for kind, args in steps if kind == "RUN" and "pip-install.sh" in args]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_installs_the_project(name: str) -> None:
    """Catches a Dockerfile that copies or mounts a path that does not exist (or that .dockerignore drops),
    copies too little to install the project, installs torch after the project (which would pull PyPI's CUDA
    torch into the CPU image), no longer installs surf-dist with the Ray extra, bakes pip's secrets into a
    layer, or runs as root."""
    steps = _instructions(DOCKER / name)
    kinds = [kind for kind, _ in steps]
    assert "FROM" in kinds and set(kinds[: kinds.index("FROM")]) <= {"ARG"}, f"{name}: FROM comes first"
    args = dict(a.split("=", 1) for kind, a in steps if kind == "ARG" and "=" in a)
    assert args["BASE"] == "python:3.11-slim" and steps[kinds.index("FROM")][1] == "${BASE}", name
    copied = []
    for kind, rest in steps:
        sources = rest.split()[:-1] if kind == "COPY" else re.findall(r"--mount=type=bind,source=([^, ]+)", rest)
        for source in sources:
            assert (REPO / source).exists(), f"{name}: {kind} {source}: not in the repository"
            assert not _ignored(source), f"{name}: {kind} {source}: excluded by .dockerignore"
            copied.append(source.rstrip("/"))
    assert {"pyproject.toml", "README.md", "surf_dist", "docker/pip-install.sh"} <= set(copied), name
    assert not _ignored("surf_dist/api.py") and _ignored("tests") and _ignored("runs") and _ignored(".git")
    pip = _pip_runs(steps)
    assert len(pip) == 3, f"{name}: torch, the requirements, the project"
    torch, requirements, project = pip
    assert "$TORCH" in torch and "TORCH_INDEX_URL" in torch and "torch-constraints.txt" in torch
    assert "optional-dependencies']['ray']" in requirements and "-c /opt/venv/torch-constraints.txt" in requirements
    assert "pip-install.sh --no-deps ." in project
    for run in pip:  # pip's secrets are mounted for the step, never copied; the URLs are build arguments
        assert "--mount=type=secret,id=ca_certs" in run and "--mount=type=secret,id=pip_conf" in run
    assert not any(kind == "COPY" and ("cert" in rest or "pip.conf" in rest) for kind, rest in steps)
    declared = {a.split("=")[0] for k, a in steps if k == "ARG"}
    assert {"PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CONSTRAINT"} <= declared
    users = [rest for kind, rest in steps if kind == "USER"]
    assert users and users[-1] not in {"root", "0"}, f"{name}: runs as root"
    if name == "Dockerfile.cpu":
        assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    else:
        assert args["TORCH_INDEX_URL"] == '""', "the CUDA image takes PyPI's torch (CUDA libraries included)"
        assert "torch.version.cuda" in project


def _build_module():
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("surf_dist_docker_build", DOCKER / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(30)
def test_build_serves_local_pip_folders_and_passes_the_ca_bundle(tmp_path: Path) -> None:
    """Catches docker/build.py handing a build this machine's local pip folders as paths (which a build cannot
    read) instead of 127.0.0.1 URLs, dropping the CA bundle or the constraints, or missing a local CPU torch."""
    build = _build_module()
    (tmp_path / "index" / "simple" / "torch").mkdir(parents=True)
    (tmp_path / "index" / "files").mkdir()
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").touch()
    (tmp_path / "wheels" / "torch-2.9.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").touch()
    (tmp_path / "constraints.txt").write_text("torch<=2.14.1\n")
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    config = {
        "extra-index-url": f"file://{tmp_path}/index/simple https://mirror.example/simple",
        "find-links": str(tmp_path / "wheels"),
        "constraint": str(tmp_path / "constraints.txt"),
        "cert": str(tmp_path / "ca.pem"),
    }
    index = build.LocalIndex(port=build.free_port())
    sources = build.pip_sources(index, config)
    port = index.port
    extra = sources.args["PIP_EXTRA_INDEX_URL"].split()
    assert extra[0].startswith(f"http://127.0.0.1:{port}/") and extra[0].endswith("/simple/")
    assert extra[1] == "https://mirror.example/simple", "remote indexes pass unchanged, in order"
    assert sources.args["PIP_FIND_LINKS"].startswith(f"http://127.0.0.1:{port}/")
    assert sources.args["PIP_CONSTRAINT"].endswith("/constraints.txt") and "torch<=2.14.1" in sources.constraints
    assert sources.args["PIP_TRUSTED_HOST"] == "127.0.0.1" and sources.ca_certs == tmp_path / "ca.pem"
    assert build.local_cpu_torch(sources.wheel_dirs) == "torch==2.13.0+cpu"
    import urllib.request

    with index.serving():  # the build reads them over HTTP: the index pages' relative links resolve
        page = urllib.request.urlopen(sources.args["PIP_FIND_LINKS"], timeout=10).read().decode()
        assert "torch-2.13.0%2Bcpu" in page or "torch-2.13.0+cpu" in page
        constraints = urllib.request.urlopen(sources.args["PIP_CONSTRAINT"], timeout=10).read().decode()
        assert constraints == "torch<=2.14.1\n"


@pytest.mark.timeout(30)
def test_build_tags_change_with_the_sources_only(tmp_path: Path) -> None:
    """Catches an image tag (docker/build.py's digest) that misses a change of what the image holds, or that
    changes with what it does not (so a second CI run would rebuild for nothing)."""
    build = _build_module()
    sources = build.context_sources(DOCKER / "Dockerfile.cpu")
    assert set(sources) == {"pyproject.toml", "README.md", "surf_dist", "launch", "topologies", "docker/pip-install.sh"}
    one = build.input_hash("cpu", "sha256:base", {"TORCH": "torch==2.13.0+cpu"})
    assert one == build.input_hash("cpu", "sha256:base", {"TORCH": "torch==2.13.0+cpu"})
    assert one != build.input_hash("cpu", "sha256:other", {"TORCH": "torch==2.13.0+cpu"})
    assert one != build.input_hash("cpu", "sha256:base", {})
    assert one != build.input_hash("cuda", "sha256:base", {"TORCH": "torch==2.13.0+cpu"})
    # a file the image copies changes the digest; a cache file beside it (.dockerignore drops it) does not
    monkey = build.REPO
    try:
        copy = tmp_path / "repo"
        for source in sources:
            src, dst = REPO / source, copy / source
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(src, dst) if src.is_dir() else shutil.copy2(src, dst)
        build.REPO = copy
        assert build.input_hash("cpu", "sha256:base", {"TORCH": "torch==2.13.0+cpu"}) == one
        (copy / "surf_dist" / "__pycache__").mkdir(exist_ok=True)
        (copy / "surf_dist" / "__pycache__" / "probe.cpython-311.pyc").write_bytes(b"x")
        assert build.input_hash("cpu", "sha256:base", {"TORCH": "torch==2.13.0+cpu"}) == one
        (copy / "surf_dist" / "api.py").write_text((copy / "surf_dist" / "api.py").read_text() + "\n# changed\n")
        assert build.input_hash("cpu", "sha256:base", {"TORCH": "torch==2.13.0+cpu"}) != one
    finally:
        build.REPO = monkey
