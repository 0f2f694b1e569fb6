"""Parity of the Ray backend with the local oracle (DESIGN.md, Invariants: Parity).

One test body, run on 2 and 3 actors hosting blocks of the smoke preset's 8 agents, and on 3 actors
that host one agent each (a 3-ring). Each case trains on Ray actors (gloo among the actors) and on
the local backend, and compares per-step losses, final parameter norms and eval accuracy per layer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _ray_support import assert_same_run, local_summary, ray_config

from surf_dist.runtime.ray_driver import run_ray

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]

_ORACLE: dict[tuple[str, ...], dict[str, Any]] = {}  # the local run of each config, computed once


def _oracle(overrides: list[str]) -> dict[str, Any]:
    key = tuple(overrides)
    if key not in _ORACLE:
        _ORACLE[key] = local_summary(overrides)
    return _ORACLE[key]


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    ("num_workers", "overrides", "agents_per_worker"),
    [
        pytest.param(2, [], [4, 4], id="w2"),
        pytest.param(3, [], [3, 3, 2], id="w3"),
        pytest.param(3, ["topology.spec=ring:n=3"], [1, 1, 1], id="agent-per-actor-ring3"),
        pytest.param(2, ["failures.num_async=2", "failures.semantics=stale"], [4, 4], id="w2-silent-stale"),
    ],
)
def test_ray_matches_local(
    tmp_path: Path, num_workers: int, overrides: list[str], agents_per_worker: list[int]
) -> None:
    """Catches Ray actors that train differently from the local oracle (wrong ranks, lost halo rows, a
    relayed or stale model vector) or a summary that does not say it came from W Ray actors."""
    # Prepare
    cfg = ray_config(num_workers, overrides)
    expected = _oracle(overrides)

    # Execute
    summary = run_ray(cfg, tmp_path / "run", progress=False)

    # Assert
    assert summary is not None
    assert summary["backend"] == "ray" and summary["workers"] == num_workers
    assert summary["placement"]["agents_per_worker"] == agents_per_worker
    written = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert written["train"]["loss_per_step"] == summary["train"]["loss_per_step"]
    assert_same_run(summary, expected)
