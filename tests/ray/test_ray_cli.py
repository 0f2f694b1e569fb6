"""The Ray backend from the command line, and its messages when Ray is missing or unreachable.

This module holds no Ray session: ``surf-dist train --backend ray`` starts and stops its own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _commands import corrupt_fashion_mnist
from _processes import clean_env, interrupt, metrics_steps, start, train_command, wait_for_checkpoint
from _ray_support import FAST, local_summary, ray_config

from surf_dist.runtime.ray_driver import run_ray
from surf_dist.runtime.supervisor import free_port

pytestmark = [pytest.mark.ray, pytest.mark.slow]

# the smoke preset, smaller, with the baselines (few rounds) so that the whole summary contract is checked
# three baselines on both sides (the default list is ten methods: minutes on two cores)
CLI_SETS = [s for s in FAST if not s.startswith("eval.baselines")] + [
    "eval.rounds_factor=2",
    'eval.baselines=["dgd", "dsgd", "dfedavgm"]',
]


@pytest.mark.timeout(300)
def test_cli_train_on_ray(tmp_path: Path) -> None:
    """Catches `surf-dist train --backend ray` failing end to end, writing a summary that breaks the
    contract, training differently from the local backend, or printing Ray's warning about its own default
    (token authentication on a new local cluster) on every run."""
    # Prepare
    import ray

    assert not ray.is_initialized(), "this test needs no Ray session in the test process"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    sets = [arg for s in CLI_SETS for arg in ("--set", s)]
    # the oracle with the same settings (local_summary starts from FAST, which drops the baselines)
    local_summary(CLI_SETS, tmp_path / "local")

    # Execute
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "surf_dist",
            "train",
            "--backend",
            "ray",
            "--workers",
            "2",
            "--preset",
            "smoke",
            *sets,
            "--out",
            str(tmp_path / "ray"),
            "--quiet",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )

    # Assert
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Token authentication is enabled" not in proc.stderr, proc.stderr[-3000:]
    summary_path = tmp_path / "ray" / "summary.json"
    summary = json.loads(summary_path.read_text())
    assert summary["backend"] == "ray" and summary["workers"] == 2
    check = subprocess.run(
        [sys.executable, "-m", "surf_dist", "check-summary", str(tmp_path / "ray")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    compare = subprocess.run(
        [sys.executable, "-m", "surf_dist", "compare", str(tmp_path / "local"), str(tmp_path / "ray")],
        capture_output=True,
        text=True,
    )
    assert compare.returncode == 0, compare.stdout + compare.stderr


@pytest.mark.timeout(300)
def test_input_error_in_actors_ends_the_run_once_with_exit_2(tmp_path: Path) -> None:
    """Catches bad input that only the actors can see (a corrupt data file) ending in the actor's traceback
    and exit 1, or being retried."""
    root = corrupt_fashion_mnist(tmp_path / "data")
    out = tmp_path / "run"
    sets = ["data.dataset=fashion-mnist", f"data.root={root}", "run.ray_cpus_per_worker=0.5"]
    proc = subprocess.run(
        train_command(out, "--backend", "ray", "--workers", "2", *(a for s in sets for a in ("--set", s))),
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.count("bad input (1 problem)") == 1 and "not an IDX file" in proc.stderr
    assert "Traceback" not in proc.stderr and "restarting" not in proc.stderr
    assert not out.exists()


@pytest.mark.timeout(300)
def test_sigterm_stops_every_actor_and_exits_143(tmp_path: Path) -> None:
    """Catches a SIGTERM to the Ray driver leaving actors (or the local Ray it started) running, exiting with
    Ray's code (or 130) instead of 143, or printing tracebacks."""
    # Prepare: actor 0 hangs at step 9, after the checkpoint of step 8
    out = tmp_path / "run"
    sets = ["failures.hang=0@9", "run.ray_cpus_per_worker=0.5", "run.timeout_s=60"]
    cmd = train_command(out, "--backend", "ray", "--workers", "2", *(a for s in sets for a in ("--set", s)))
    proc = start(cmd)
    wait_for_checkpoint(proc, out, min_rows=9, timeout_s=240)

    # Execute
    err, seconds = interrupt(proc, signal.SIGTERM, whole_group=False)

    # Assert
    assert proc.returncode == 143, err
    assert seconds < 30
    assert "Traceback" not in err
    assert "surf-dist train: interrupted at step 9; rerun the same command to resume (from step 8)" in err, err
    assert metrics_steps(out) == list(range(9))  # (the rerun's resume is the same code as on forked ranks)


@pytest.mark.timeout(60)
def test_unreachable_address_fails_fast(tmp_path: Path) -> None:
    """Catches a driver that hangs (ray.init retries for many minutes) or dumps a raw Ray error when
    run.ray_address points at no cluster."""
    cfg = ray_config(2, [f'run.ray_address="127.0.0.1:{free_port()}"'])
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match=r"(?s)could not connect to the Ray cluster .*ray start --head"):
        run_ray(cfg, tmp_path / "run", progress=False)
    assert time.monotonic() - t0 < 30


@pytest.mark.timeout(60)
def test_missing_ray_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches an ImportError traceback instead of the install hint when Ray is not installed."""
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(RuntimeError, match=r"pip install 'surf-dist\[ray\]'"):
        run_ray(ray_config(2), tmp_path / "run", progress=False)
