"""``--preset fashion``, the main job on real data, end to end (where Debian's dataset-fashion-mnist is
installed, as ``.ci/run`` does; the first run on a machine trains and caches the small CNN, about a minute)."""

from __future__ import annotations

import json
import subprocess

import pytest

from surf_dist.data.datasets import check_files
from surf_dist.errors import InputError

pytestmark = pytest.mark.e2e


def _fashion_missing() -> bool:
    try:
        check_files("fashion-mnist")
    except InputError:
        return True
    return False


@pytest.mark.timeout(900)
@pytest.mark.skipif(_fashion_missing(), reason="dataset-fashion-mnist is not installed")
def test_fashion_preset_trains_and_evaluates_on_a_small_graph(tmp_path):
    """Catches the fashion preset failing to load its data, features or held-out pool, or to evaluate."""
    out = tmp_path / "run"
    small = ["topology.spec=kregular:n=8,degree=3", "data.num_meta_train=2", "data.num_meta_val=1"]
    small += ["data.num_meta_test=2", "eval.rounds_factor=2"]
    args = ["surf-dist", "train", "--preset", "fashion", "--out", str(out), "--quiet"]
    r = subprocess.run([*args, *(f"--set={s}" for s in small)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    s = json.loads((out / "summary.json").read_text())
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["data"]["dataset"] == "fashion-mnist" and cfg["data"]["val_fraction"] > 0
    assert s["eval"]["num_tasks"] == 2 and len(s["eval"]["udgd"]["accuracy_per_layer"]) == 11
    assert s["eval"]["udgd"]["accuracy_per_layer"][-1] > 0.2  # above chance after two steps
