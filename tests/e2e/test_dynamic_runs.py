"""Changing networks end to end: ``topology.dynamic=link-failure`` with p = 0 is the static run, number for number
(training, evaluation, ledger), and with p = 0.3 links really fail (fewer messages, other numbers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import surf_dist

pytestmark = pytest.mark.e2e

SETS = ["model.dtype=float64", "data.num_meta_train=3", "train.epochs=1", "eval.rounds_factor=3",
        'eval.baselines=["dgd","gt","choco","pushsum"]']  # fmt: skip


def _summary(run: surf_dist.Run) -> dict:
    return json.loads((run.dir / "summary.json").read_text())


def test_link_failure_with_p_zero_equals_the_static_network(tmp_path: Path) -> None:
    static = _summary(surf_dist.train(tmp_path / "static", preset="smoke", overrides=SETS))
    p0 = _summary(surf_dist.train(tmp_path / "p0", preset="smoke", overrides=[*SETS, "topology.dynamic=link-failure"]))
    assert p0["train"]["loss_per_step"] == static["train"]["loss_per_step"]
    assert p0["train"]["final_param_norms"] == static["train"]["final_param_norms"]
    assert p0["eval"] == static["eval"]
    assert p0["comm"]["logical"] == static["comm"]["logical"]
    failing = [*SETS, "topology.dynamic=link-failure", "topology.link_failure_p=0.3"]
    p3 = _summary(surf_dist.train(tmp_path / "p3", preset="smoke", overrides=failing))
    ratio = p3["comm"]["logical"]["messages"] / static["comm"]["logical"]["messages"]
    assert 0.55 < ratio < 0.85, f"with 30% of links failing the agents sent {ratio:.2f} of the static messages"
    assert p3["eval"]["udgd"]["accuracy_per_layer"] != static["eval"]["udgd"]["accuracy_per_layer"]
