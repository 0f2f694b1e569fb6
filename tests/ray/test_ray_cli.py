"""The Ray backend from the command line, and its messages when Ray is missing or unreachable.

This module holds no Ray session: ``surf-dist train --backend ray`` starts and stops its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _ray_support import FAST, local_summary, ray_config

from surf_dist.runtime.ray_driver import run_ray
from surf_dist.runtime.supervisor import free_port

pytestmark = pytest.mark.ray

# the smoke preset, smaller, with the baselines (few rounds) so that the whole summary contract is checked
CLI_SETS = [s for s in FAST if not s.startswith("eval.baselines")] + ["eval.rounds_factor=2"]


@pytest.mark.timeout(300)
def test_cli_train_on_ray(tmp_path: Path, shared_tools: Path) -> None:
    """Catches `surf-dist train --backend ray` failing end to end, writing a summary that breaks the
    contract, or training differently from the local backend."""
    # Prepare
    import ray

    assert not ray.is_initialized(), "this test needs no Ray session in the test process"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    sets = [arg for s in CLI_SETS for arg in ("--set", s)]
    local_summary(CLI_SETS[:-1] + ["eval.rounds_factor=2"], tmp_path / "local")

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
    summary_path = tmp_path / "ray" / "summary.json"
    summary = json.loads(summary_path.read_text())
    assert summary["backend"] == "ray" and summary["workers"] == 2
    check = subprocess.run(
        [sys.executable, str(shared_tools / "check_summary.py"), str(summary_path)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    compare = subprocess.run(
        [
            sys.executable,
            str(shared_tools / "compare_summaries.py"),
            str(tmp_path / "local" / "summary.json"),
            str(summary_path),
        ],
        capture_output=True,
        text=True,
    )
    assert compare.returncode == 0, compare.stdout + compare.stderr


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
