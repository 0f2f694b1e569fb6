"""End-to-end runs on the local backend: the golden smoke run, the CLI, resume after kills and reruns."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from _runs import assert_same_parameters, final_parameters, parameter_samples

from surf_dist.analysis.contract import summary_problems
from surf_dist.config import load_config
from surf_dist.errors import RunFailed
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
    samples = parameter_samples(final_parameters(smoke_run))
    if os.environ.get("SURF_UPDATE_GOLDEN"):
        record = {
            "loss_per_step": losses,
            "final_param_norms": s["train"]["final_param_norms"],
            "param_samples": samples,
        }
        GOLDEN.write_text(json.dumps(record, indent=1) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert len(losses) == len(golden["loss_per_step"])
    for got, want in zip(losses, golden["loss_per_step"]):
        assert got == pytest.approx(want, rel=1e-4)
    for name, norm in golden["final_param_norms"].items():
        assert s["train"]["final_param_norms"][name] == pytest.approx(norm, rel=1e-4)
    # element by element: a permuted or sign-flipped tensor has the same norm
    assert samples.keys() == golden["param_samples"].keys()
    for name, pairs in golden["param_samples"].items():
        scale = max(abs(v) for _, v in pairs) or 1.0
        for (i, want), (j, got) in zip(pairs, samples[name]):
            assert i == j and abs(got - want) <= 1e-4 * scale, f"{name}[{i}] = {got}, golden {want}"


def _steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.timeout(300)
def test_summary_contract_and_run_directory(smoke_run):
    """Catches a summary.json that breaks the summary contract (docs/summary.md), or a run directory missing its
    files."""
    s = json.loads((smoke_run / "summary.json").read_text())
    assert summary_problems(s) == []
    for name in ("config.json", "metrics.jsonl", "summary.json", "comm.csv", "checkpoint.pt"):
        assert (smoke_run / name).exists(), name
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
    assert_same_parameters(tmp_path, smoke_run, rtol=1e-6)
    assert _steps(tmp_path) == list(range(12)) and s["timing"]["attempts"] == 2


@pytest.mark.timeout(300)
def test_repeated_kills_leave_one_metrics_row_per_step(tmp_path, capfd):
    """Catches metrics.jsonl gaining duplicate rows after every resume, or a kill event not named with its
    worker and step."""
    cfg = load_config("smoke", None, ["failures.kill=0@3,0@5,0@9", "failures.max_restarts=3"])
    launch(cfg, tmp_path, progress=False)
    s = json.loads((tmp_path / "summary.json").read_text())
    assert [k["step"] for k in s["failures"]["injected"]["kills"]] == [3, 5, 9]
    assert _steps(tmp_path) == list(range(12))
    assert s["timing"]["attempts"] == 4
    err = capfd.readouterr().err
    assert "worker process 0 died (signal SIGKILL) at step 3; restarting every worker from the start" in err
    assert (
        "worker process 0 died (signal SIGKILL) at step 9; restarting every worker from the checkpoint of step 8" in err
    )


@pytest.mark.timeout(300)
def test_rerun_of_a_finished_run_accumulates_timing(tmp_path, smoke_run):
    """Catches a rerun of a finished run overwriting timing.train_s with its near-zero resume time."""
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    before = json.loads((run / "summary.json").read_text())
    launch(load_config("smoke"), run, progress=False)
    after = json.loads((run / "summary.json").read_text())
    assert after["timing"]["train_s"] >= before["timing"]["train_s"] > 0
    assert (before["timing"]["attempts"], after["timing"]["attempts"]) == (1, 2)
    assert after["train"]["loss_per_step"] == before["train"]["loss_per_step"]
    assert _steps(run) == list(range(12))


@pytest.mark.timeout(300)
def test_unusable_checkpoints_say_starting_over(tmp_path, smoke_run, capfd):
    """Catches a run whose two checkpoints are both unusable silently starting over (and keeping the old
    metrics rows)."""
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    shutil.copy(run / "checkpoint.pt", run / "checkpoint.prev.pt")
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        (run / name).write_bytes(b"not a checkpoint")
    launch(load_config("smoke"), run, progress=False)
    assert f"no usable checkpoint in {run}; starting over from step 0" in capfd.readouterr().err
    assert _steps(run) == list(range(12))
    s = json.loads((run / "summary.json").read_text())
    ref = json.loads((smoke_run / "summary.json").read_text())
    assert s["train"]["loss_per_step"] == pytest.approx(ref["train"]["loss_per_step"], rel=1e-6)


@pytest.mark.timeout(300)
def test_failed_run_leaves_no_directory(tmp_path, capfd):
    """Catches a run that fails before its first checkpoint leaving an --out directory behind."""
    out = tmp_path / "run"
    cfg = load_config("smoke", None, ["failures.kill=0@1", "failures.max_restarts=0"])
    with pytest.raises(RunFailed, match="failed 1 time"):
        launch(cfg, out, progress=False)
    assert "worker process 0 died (signal SIGKILL) at step 1; no restarts left" in capfd.readouterr().err
    assert not out.exists()
