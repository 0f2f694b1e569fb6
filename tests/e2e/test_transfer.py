"""A trained optimizer evaluated where it was not trained: on a graph of a few hundred agents of another family, on
torch ranks (forked and torchrun) and Ray actors, with the local oracle's numbers (float64, 1e-10 in every
accuracy and loss per layer); ``surf-dist transfer`` over several graphs, its table, figure and resumption."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _processes import clean_env

import surf_dist

pytestmark = pytest.mark.e2e

TOL = 1e-10
TRAIN = ["model.dtype=float64", "data.num_meta_train=3", "train.epochs=1", "model.num_layers=2"]
ELSEWHERE = ["topology.spec=random:n=300,p=0.02", "data.num_meta_test=2", "eval.rounds_factor=2",
             'eval.baselines=["dgd","gt","choco","local"]']  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """U-DGD trained on the smoke preset's 8 agents (a 3-regular graph)."""
    out = tmp_path_factory.mktemp("transfer") / "run"
    surf_dist.train(out, preset="smoke", overrides=TRAIN)
    return out


def _curves(ev: surf_dist.EvalResult) -> dict[str, list[float]]:
    assert ev.udgd is not None
    out = {"udgd accuracy": ev.udgd.accuracy_per_layer, "udgd loss": ev.udgd.loss_per_layer}
    for name, b in ev.baselines.items():
        out[f"{name} accuracy"], out[f"{name} bytes"] = b.accuracy, b.agent_bytes
    return out


def _assert_same(got: dict[str, list[float]], want: dict[str, list[float]], what: str) -> None:
    assert got.keys() == want.keys(), what
    for key, values in want.items():
        assert len(got[key]) == len(values), f"{what}: {key}"
        gaps = [abs(a - b) / max(1.0, abs(b)) for a, b in zip(got[key], values)]
        assert max(gaps) <= TOL, f"{what}: {key} differs by {max(gaps):.2e}"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_model_trained_on_8_agents_evaluates_on_300_the_same_on_every_backend(trained: Path, tmp_path: Path) -> None:
    """Catches evaluation that only works in one process, or whose numbers depend on the backend: local, torch × 3
    (forked ranks), torchrun × 3 and Ray × 2 on a 300-agent random graph give the same curves."""
    oracle = surf_dist.evaluate(trained, ELSEWHERE)
    assert oracle is not None and oracle.udgd is not None
    want = _curves(oracle)
    _assert_same(_curves(surf_dist.evaluate(trained, ELSEWHERE, backend="torch", workers=3)), want, "torch × 3")
    out = tmp_path / "torchrun.json"
    sets = [f"--set={s}" for s in ELSEWHERE]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "3", "-m",
               "surf_dist", "evaluate", "--run-dir", str(trained), *sets, "--out", str(out), "--quiet"]  # fmt: skip
    proc = subprocess.run(command, env=clean_env(), capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads(out.read_text())
    assert record["backend"] == "torch" and record["workers"] == 3
    _assert_same(_curves(surf_dist.EvalResult.from_dict(record["eval"])), want, "torchrun × 3")
    ray = surf_dist.evaluate(trained, [*ELSEWHERE, "run.ray_address=null"], backend="ray", workers=2)
    _assert_same(_curves(ray), want, "Ray × 2")


def test_transfer_tables_every_graph_and_resumes(trained: Path, tmp_path: Path) -> None:
    """Catches a transfer that evaluates the training graph instead of each one, loses a finished graph on a rerun,
    or writes a table without every method."""
    out = tmp_path / "transfer"
    specs = ["ring:n=20", "torus:rows=4,cols=5"]
    command = [
        sys.executable,
        "-m",
        "surf_dist",
        "transfer",
        "--run",
        str(trained),
        *(f"--spec={s}" for s in specs),
        "--set",
        'eval.baselines=["dgd","dfedavgm"]',
        "--set",
        "eval.rounds_factor=2",
        "--out",
        str(out),
    ]
    proc = subprocess.run(command, env=clean_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / "transfer.json").read_text())
    assert [row["spec"] for row in record["rows"]] == specs
    assert [row["num_agents"] for row in record["rows"]] == [20, 20]
    table = (out / "transfer.md").read_text()
    assert "ring, n = 20" in table and "torus" in table and "DFedAvgM" in table
    assert (out / "transfer.png").stat().st_size > 0
    # each row is that graph's evaluation
    ring = surf_dist.evaluate(trained, ["topology.spec=ring:n=20", 'eval.baselines=["dgd","dfedavgm"]',
                                        "eval.rounds_factor=2"])  # fmt: skip
    assert ring is not None and ring.udgd is not None
    assert record["rows"][0]["udgd"]["accuracy"] == ring.udgd.accuracy_per_layer[-1]
    assert record["rows"][0]["baselines"]["dgd"]["accuracy"] == ring.baselines["dgd"].accuracy[-1]
    # a rerun with one more graph keeps the two it has and evaluates the third
    rerun = subprocess.run([*command, "--spec=small_world:n=20,k=4,p=0.2"], env=clean_env(), capture_output=True,
                           text=True, timeout=300)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert rerun.stdout.count("done before, kept") == 2
    assert len(json.loads((out / "transfer.json").read_text())["rows"]) == 3


def test_transfer_refuses_a_bad_graph_before_evaluating_any(trained: Path, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "surf_dist", "transfer", "--run", str(trained), "--spec", "ring:n=20",
               "--spec", "ring:n=2", "--spec", "blob:n=3", "--out", str(tmp_path / "t")]  # fmt: skip
    proc = subprocess.run(command, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "ring:n=2" in proc.stderr and "blob" in proc.stderr
    assert not (tmp_path / "t" / "transfer.json").exists()
