"""The commands the containers of ``docker/compose.*.yml`` run, read from those files, and run on one host.

The on-host cluster tests take a service's ``command`` from the compose file itself, so that a compose
file and its test cannot drift apart, then map what only exists inside containers onto this machine:
host names (``node0:29500``, ``head:6379``) become ``127.0.0.1`` and a free port, ``/runs/...`` a
temporary directory, and ``torchrun``, ``ray`` and ``surf-dist`` this interpreter's modules.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml  # Ray depends on PyYAML, and the test tools include Ray

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"

# the smoke preset made smaller (3 meta-training steps, one validation and one meta-test task, no
# baselines), as in tests/ray/_ray_support.py: appended to the containers' main job on one host
SMALL_SMOKE = [
    "data.num_meta_train=3",
    "train.epochs=1",
    "data.num_meta_val=1",
    "data.num_meta_test=1",
    "eval.baselines=[]",
]

# the programs of the images, as modules of the interpreter that runs the tests
PROGRAMS = {
    "torchrun": [sys.executable, "-m", "torch.distributed.run"],
    "ray": [sys.executable, "-m", "ray.scripts.scripts"],
    "surf-dist": [sys.executable, "-m", "surf_dist"],
}


def load_compose(name: str) -> dict[str, Any]:
    """``docker/NAME`` as YAML (merge keys resolved, ``${...}`` left as written)."""
    data = yaml.safe_load((DOCKER / name).read_text())
    assert isinstance(data, dict) and "services" in data, f"docker/{name}: no services"
    return data


_DEFAULTED = re.compile(r"\$\{(\w+):-([^}]*)\}")  # ${NAME:-default}; ${NAME:?error} is left as written


def interpolate(text: str, variables: dict[str, str] | None = None) -> str:
    """``text`` with each ``${NAME:-default}`` as compose renders it: ``variables[NAME]``, else the default."""
    variables = variables or {}
    return _DEFAULTED.sub(lambda m: variables.get(m.group(1)) or m.group(2), text)


def service_command(name: str, service: str, variables: dict[str, str] | None = None) -> list[str]:
    """The ``command`` of ``service`` in ``docker/NAME``, as an argument list (``${NAME:-default}`` resolved)."""
    command = load_compose(name)["services"][service]["command"]
    if isinstance(command, str):
        return shlex.split(interpolate(command, variables))
    return [interpolate(str(arg), variables) for arg in command]


def healthcheck_command(name: str, service: str) -> list[str]:
    """The health check of ``service`` in ``docker/NAME`` (``test: [CMD, ...]``), as an argument list."""
    test = [interpolate(str(arg)) for arg in load_compose(name)["services"][service]["healthcheck"]["test"]]
    assert test[0] == "CMD", f"docker/{name}: {service}'s health check is not [CMD, ...]: {test}"
    return test[1:]


def shell_steps(command: list[str]) -> list[list[str]]:
    """The steps of ``sh -c "A && exec B"`` (the only shell form the compose files use), each split."""
    assert command[:2] == ["sh", "-c"] and len(command) == 3, f"not sh -c SCRIPT: {command}"
    return [shlex.split(step.removeprefix("exec ")) for step in command[2].split(" && ")]


def on_host(
    command: list[str],
    *,
    hosts: dict[str, str],
    runs_dir: Path,
    values: dict[str, str] | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """``command`` for this machine.

    ``hosts`` maps container addresses to local ones (``{"head:6379": "127.0.0.1:41234"}``); ``/runs/X``
    becomes ``runs_dir/X``; ``values`` replaces the value after a flag (``{"--max-restarts": "0"}``);
    ``extra`` is appended (host-only flags such as ``--temp-dir``, or a smaller config).
    """
    values = values or {}
    program, *args = command
    out = list(PROGRAMS.get(program, [program]))
    for i, arg in enumerate(args):
        if i > 0 and args[i - 1] in values:
            arg = values[args[i - 1]]
        for container, local in hosts.items():
            arg = arg.replace(container, local)
        if arg.startswith("/runs/"):
            arg = str(runs_dir / arg.removeprefix("/runs/"))
        out.append(arg)
    missing = set(values) - set(args)
    assert not missing, f"{command}: no flag {sorted(missing)} to set"
    return [*out, *extra]


def service_environment(name: str, service: str, variables: dict[str, str]) -> dict[str, str]:
    """The ``environment`` of ``service`` with each ``${VAR...}`` taken from ``variables`` (all must be given)."""
    env = load_compose(name)["services"][service].get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)

    def value(match: re.Match[str]) -> str:
        assert match.group(1) in variables, f"docker/{name}: {service} needs ${{{match.group(1)}}}"
        return variables[match.group(1)]

    return {str(k): re.sub(r"\$\{(\w+)[^}]*\}", value, str(v)) for k, v in env.items()}
