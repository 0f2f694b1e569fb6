"""Parity of the Ray backend with the local oracle (docs/development.md: parity with the local oracle).

The body is ``tests/_parity.py``'s, the same that runs on forked torch ranks: values, gradients, final
parameters elementwise on every actor, and the ledger, in float64 and float32, on 2 and 3 actors, one agent
per actor, and silent agents. A second test runs ``run_ray`` end to end and compares its run directory with
the local backend's through ``surf-dist compare`` (final parameters elementwise from the checkpoints).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _parity import CASES, Case, check_parity
from _ray_support import local_summary, ray_config, run_actors

from surf_dist.analysis.compare import compare_runs
from surf_dist.runtime.ray_driver import run_ray

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]

RAY_CASES = [
    c
    for c in CASES
    if c.name
    in (
        "w2",
        "w3-float32",
        "agent-per-worker-w4",
        "silent-stale-w3",
        "star-w2",
        "methods-silent-w3",
        "star-methods-batched-w2",
        "link-failure-w2",
        "one-peer-w4",
    )
]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", RAY_CASES, ids=[c.name for c in RAY_CASES])
def test_ray_actors_match_local_oracle(case: Case, tmp_path: Path) -> None:
    """Catches Ray actors that compute differently from the local oracle (wrong ranks, lost halo rows, a
    relayed or stale model vector, a permuted parameter) in float64 or float32."""
    check_parity(case, tmp_path, run_actors)


@pytest.mark.timeout(300)
def test_run_ray_matches_local_run(tmp_path: Path) -> None:
    """Catches `run_ray` training differently from the local backend end to end (losses, final parameters
    elementwise, accuracy, ledger), or a summary that does not say it came from 2 Ray actors."""
    # Prepare
    local_summary([], tmp_path / "local")

    # Execute
    summary = run_ray(ray_config(2), tmp_path / "ray", progress=False)

    # Assert
    assert summary is not None
    assert summary["backend"] == "ray" and summary["workers"] == 2
    assert summary["placement"]["agents_per_worker"] == [4, 4]
    written = json.loads((tmp_path / "ray" / "summary.json").read_text())
    assert written["train"]["loss_per_step"] == summary["train"]["loss_per_step"]
    lines, mismatches = compare_runs(tmp_path / "ray", tmp_path / "local")
    assert not mismatches, "\n".join(lines)
