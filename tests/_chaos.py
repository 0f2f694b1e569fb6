"""Chaos runs: a small config that trains for many steps in seconds, the kills it is planned to suffer, and the
comparison of a run that survived them with the clean run (per-step losses, final parameters elementwise, one
metrics row per step).

The config is the smoke preset on the ``blobs`` dataset of ``examples/dataset_from_arrays.py`` (a plugin, so the
runs also ship a plugin to every worker), 4 agents on a ring, 2 layers of 1 hop, in float64 so that a resumed
run and the local oracle agree to rounding over a thousand steps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _runs import assert_same_parameters

from surf_dist.config import FailureConfig, load_config
from surf_dist.runtime.launch import run_local
from surf_dist.worker.failures import KillInjector

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "examples" / "dataset_from_arrays.py"
MTBF_STEPS = 10  # about 100 kills over 1,000 steps


def chaos_sets(num_steps: int) -> list[str]:
    """The overrides of a chaos run of ``num_steps`` meta-training steps (checkpoints every 5 steps)."""
    return [
        f'run.plugins=["{PLUGIN}"]',
        "data.dataset=blobs",
        "topology.spec=ring:n=4",
        "model.num_layers=2",
        "model.num_hops=1",
        "model.dtype=float64",
        "data.num_train=10",
        "data.num_heldout=5",
        f"data.num_meta_train={num_steps}",
        "train.epochs=1",
        "data.num_meta_val=1",
        "data.num_meta_test=1",
        "eval.baselines=[]",
        "train.checkpoint_every=5",
    ]


def planned_kills(num_steps: int, num_workers: int, mtbf: float = MTBF_STEPS, seed: int = 0) -> list[tuple[int, int]]:
    """(worker, step) of every kill ``failures.kill_mtbf_steps`` plans over ``num_steps`` steps (keyed draws)."""
    injector = KillInjector(FailureConfig(kill_mtbf_steps=mtbf), seed=seed, num_workers=num_workers, run_dir=None)
    return [(victim, step) for step in range(num_steps) if (victim := injector._victim(step)) is not None]


def clean_run(sets: list[str], out: Path, *, workers: int = 2) -> dict[str, Any]:
    """The clean run: the same config on ``workers`` forked torch ranks (1: the local backend), never killed.

    The same placement sums in the same order on forked ranks, torchrun ranks and Ray actors, so a run that
    survived its faults must match it to rounding (float64, 1e-9); against the local oracle, whose sums run in
    another order, a thousand steps of meta-training amplify 1e-16 to more than that."""
    from surf_dist.runtime.torch_launch import run_torch

    backend = (
        ["run.backend=local", "run.workers=1"] if workers == 1 else ["run.backend=torch", f"run.workers={workers}"]
    )
    cfg = load_config("smoke", None, [*sets, *backend])
    summary = run_local(cfg, out, progress=False) if workers == 1 else run_torch(cfg, out, progress=False)
    assert summary is not None
    return summary


def assert_survived(
    run: Path,
    reference: Path,
    kills: list[tuple[int, int]],
    points: list[tuple[int, int, str]] = (),
    *,
    attempts: int | None = None,
) -> dict[str, Any]:
    """``run`` suffered exactly ``kills`` (worker, step) at steps and ``points`` (worker, step, point) inside a
    checkpoint or the evaluation, one attempt each, and ends as ``reference``: the same per-step losses, the same
    final parameters element by element, one metrics row per step. ``attempts``: when other faults (a hang, a lost
    node) cost attempts too. Its summary."""
    summary = json.loads((run / "summary.json").read_text())
    ref = json.loads((reference / "summary.json").read_text())
    records = summary["failures"]["injected"]["kills"]
    fired = [(k["worker"], k["step"]) for k in records if "point" not in k]
    assert fired == kills, f"kills fired {fired} != planned {kills}"
    fired_points = sorted((k["worker"], k["step"], k["point"]) for k in records if "point" in k)
    assert fired_points == sorted(points), f"kills fired {fired_points} != planned {sorted(points)}"
    assert summary["timing"]["attempts"] == (attempts or len(kills) + len(points) + 1)
    num_steps = len(ref["train"]["loss_per_step"])
    rows = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows == list(range(num_steps)), "not one metrics row per step"
    assert summary["train"]["loss_per_step"] == pytest.approx(ref["train"]["loss_per_step"], rel=1e-9, abs=1e-12)
    assert_same_parameters(run, reference, rtol=1e-9)
    assert summary["eval"]["udgd"]["accuracy_per_layer"] == pytest.approx(ref["eval"]["udgd"]["accuracy_per_layer"])
    return summary
