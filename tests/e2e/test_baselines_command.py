"""``surf-dist baselines``: the methods alone, with no trained optimizer. Their numbers are those of a training run
of the same config; push-sum runs on a directed ring, on local and on forked torch ranks alike; U-DGD and the
methods that need links both ways refuse a directed graph with exit 2, naming the methods that accept it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _processes import clean_env
from _runs import TINY_FLOAT64

import surf_dist

pytestmark = pytest.mark.e2e

SETS = TINY_FLOAT64
DIRECTED = [*SETS, "topology.spec=directed_ring:n=8", 'eval.baselines=["pushsum","local","centralised"]']


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "surf_dist", *args]
    return subprocess.run(command, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=300)


def test_the_methods_alone_equal_the_methods_of_a_training_run(tmp_path: Path) -> None:
    """Catches a methods-only evaluation that starts elsewhere (another W₀, other draws) or counts other bytes than
    the same methods beside a trained U-DGD."""
    sets = [*SETS, 'eval.baselines=["dgd","gt","choco","local"]', "network.latency_ms=2"]
    run = surf_dist.train(tmp_path / "run", preset="smoke", overrides=sets)
    alone = surf_dist.baselines(preset="smoke", overrides=sets, out=tmp_path / "alone.json")
    assert run.summary is not None and alone is not None
    assert alone.udgd is None
    assert alone.baselines.keys() == run.eval.baselines.keys() == {"dgd", "gt", "choco", "local"}
    for name, method in alone.baselines.items():
        assert method == run.eval.baselines[name], name
    # at equal rounds GT sends [x ‖ y] (twice DGD's bytes), CHOCO its compressed differences (fewer)
    dgd, gt, choco = (alone.baselines[n].agent_bytes for n in ("dgd", "gt", "choco"))
    assert all(g == 2 * d for g, d in zip(gt, dgd)) and dgd[-1] > 0
    assert all(c < d for c, d in zip(choco[1:], dgd[1:]))
    written = json.loads((tmp_path / "alone.json").read_text())
    assert written["eval"]["udgd"] is None and written["config"]["eval"]["udgd"] is False


@pytest.mark.timeout(300)
def test_pushsum_on_a_directed_ring_is_the_same_on_torch_ranks(tmp_path: Path) -> None:
    """Catches halo plans, ledgers or weights that break on a directed graph across processes: push-sum on a
    directed ring on 2 forked ranks equals the local oracle (float64, 1e-10), and its messages carry D + 1
    floats on the ring's n edges."""
    sets = [f"--set={s}" for s in DIRECTED]
    for backend, workers in (("local", "1"), ("torch", "2")):
        out = tmp_path / f"{backend}.json"
        proc = _cli("baselines", "--preset", "smoke", *sets, "--backend", backend, "--workers", workers,
                    "--out", str(out), cwd=tmp_path)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "push-sum" in proc.stdout and "centralised" in proc.stdout
    local = json.loads((tmp_path / "local.json").read_text())["eval"]["baselines"]
    torch_ = json.loads((tmp_path / "torch.json").read_text())["eval"]["baselines"]
    for name in ("pushsum", "local", "centralised"):
        for key in ("accuracy", "agent_bytes", "time_s"):
            got, want = torch_[name][key], local[name][key]
            assert len(got) == len(want) and all(abs(a - b) <= 1e-10 * max(1.0, abs(b)) for a, b in zip(got, want))
    bytes_per_round = local["pushsum"]["agent_bytes"][1]
    dim = 64 * 10 + 10  # digits: 64 features, 10 classes
    assert bytes_per_round == 8 * (dim + 1) * 8, "n = 8 messages of D + 1 float64 a round"
    assert local["local"]["agent_bytes"][-1] == 0
    # it learns over its 8 rounds (too few for gossip to pass training alone: local leads at 8 rounds here)
    assert local["pushsum"]["accuracy"][-1] > local["pushsum"]["accuracy"][0] + 0.2


def test_a_directed_graph_is_refused_where_links_must_go_both_ways(tmp_path: Path) -> None:
    """Catches a directed graph that reaches U-DGD or DGD (a wrong mixing matrix, silently), or a refusal without
    the fix."""
    train = _cli("train", "--preset", "smoke", "--set", "topology.spec=directed_ring:n=8", "--out", "r", cwd=tmp_path)
    assert train.returncode == 2, train.stderr
    assert "U-DGD" in train.stderr and "surf-dist baselines" in train.stderr and "pushsum" in train.stderr
    assert not (tmp_path / "r").exists()
    mixed = _cli("baselines", "--preset", "smoke", "--set", "topology.spec=directed_ring:n=8",
                 "--set", 'eval.baselines=["pushsum","dgd"]', cwd=tmp_path)  # fmt: skip
    assert mixed.returncode == 2 and "dgd" in mixed.stderr and "U-DGD" not in mixed.stderr
    assert "Traceback" not in train.stderr + mixed.stderr


def test_train_refuses_to_skip_the_optimizer_it_trains(tmp_path: Path) -> None:
    proc = _cli("train", "--preset", "smoke", "--set", "eval.udgd=false", "--out", "r", cwd=tmp_path)
    assert proc.returncode == 2 and "surf-dist baselines" in proc.stderr and "Traceback" not in proc.stderr
