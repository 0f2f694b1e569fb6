"""End-to-end runs on the local backend: the golden smoke run, the CLI, resume after a kill."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from surf_dist.config import load_config
from surf_dist.runtime.launch import launch, run_local

GOLDEN = Path(__file__).parents[1] / "fixtures" / "golden_smoke.json"
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("smoke")
    run_local(load_config("smoke"), out, progress=False)
    return out


@pytest.mark.timeout(300)
def test_golden_smoke_losses(smoke_run):
    """Catches any unintended change of the math: the smoke run's per-step Lagrangian is a fixture."""
    s = json.loads((smoke_run / "summary.json").read_text())
    losses = s["train"]["loss_per_step"]
    if os.environ.get("SURF_UPDATE_GOLDEN"):
        GOLDEN.write_text(
            json.dumps({"loss_per_step": losses, "final_param_norms": s["train"]["final_param_norms"]}, indent=1) + "\n"
        )
    golden = json.loads(GOLDEN.read_text())
    assert len(losses) == len(golden["loss_per_step"])
    for got, want in zip(losses, golden["loss_per_step"]):
        assert got == pytest.approx(want, rel=1e-4)
    for name, norm in golden["final_param_norms"].items():
        assert s["train"]["final_param_norms"][name] == pytest.approx(norm, rel=1e-4)


@pytest.mark.timeout(300)
def test_summary_contract_and_run_directory(smoke_run, shared_tools):
    """Catches a summary.json that breaks DESIGN.md's contract, or a run directory missing its files."""
    r = subprocess.run(
        [sys.executable, str(shared_tools / "check_summary.py"), str(smoke_run / "summary.json")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("config.json", "metrics.jsonl", "summary.json", "comm.csv", "checkpoint.pt"):
        assert (smoke_run / name).exists(), name
    s = json.loads((smoke_run / "summary.json").read_text())
    cfg = load_config("smoke")
    assert len(s["eval"]["udgd"]["accuracy_per_layer"]) == cfg.model.num_layers + 1
    assert s["eval"]["udgd"]["rounds"] == cfg.model.num_layers * cfg.model.num_hops
    rows = [json.loads(line) for line in (smoke_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(len(s["train"]["loss_per_step"])))


@pytest.mark.timeout(300)
def test_eval_udgd_traffic_reconciles_with_analytic_count(smoke_run):
    """Catches U-DGD evaluation traffic that is not K·L·Σ out-degree messages per task."""
    s = json.loads((smoke_run / "summary.json").read_text())
    per_forward = s["comm"]["analytic_per_udgd_forward"]["messages"]
    assert s["comm"]["by_phase"]["eval/udgd"]["logical_messages"] == per_forward * s["eval"]["num_tasks"]


@pytest.mark.timeout(300)
def test_cli_train_and_evaluate(tmp_path):
    """Catches the console script failing on the smoke preset or `evaluate --run` not re-evaluating."""
    out = tmp_path / "run"
    r = subprocess.run(
        [
            "surf-dist",
            "train",
            "--preset",
            "smoke",
            "--out",
            str(out),
            "--quiet",
            "--set",
            "data.num_meta_train=3",
            "--set",
            "train.epochs=1",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        ["surf-dist", "evaluate", "--run", str(out), "--set", "failures.num_async=2"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    ev = json.loads((out / "evaluate.json").read_text())
    assert ev["eval"]["udgd"]["silent_agent_layers"] > 0


@pytest.mark.timeout(300)
def test_local_kill_resumes_to_the_same_parameters(tmp_path, smoke_run):
    """Catches a resumed run that differs from an uninterrupted one, or a kill that fires twice."""
    cfg = load_config("smoke", None, ["failures.kill=0@5"])
    launch(cfg, tmp_path, progress=False)
    s = json.loads((tmp_path / "summary.json").read_text())
    ref = json.loads((smoke_run / "summary.json").read_text())
    assert s["failures"]["injected"]["kills"][0]["step"] == 5 and len(s["failures"]["injected"]["kills"]) == 1
    assert s["train"]["loss_per_step"] == pytest.approx(ref["train"]["loss_per_step"], rel=1e-6)
    for name, norm in ref["train"]["final_param_norms"].items():
        assert s["train"]["final_param_norms"][name] == pytest.approx(norm, rel=1e-6)
