"""The package's own contract check and parity comparison: ``surf-dist check-summary`` and ``surf-dist compare``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from surf_dist.cli import main
from surf_dist.config import load_config
from surf_dist.runtime.launch import run_local

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def run_a(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("a")
    run_local(load_config("smoke", None, ["data.num_meta_train=3", "eval.rounds_factor=2"]), out, progress=False)
    return out


def _copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


@pytest.mark.timeout(120)
def test_compare_agrees_with_itself_and_fails_on_a_permuted_parameter(
    run_a: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Catches a parity comparison that passes a permuted parameter (same norm, other values) because it looks
    at norms only, or one that fails two equal runs."""
    b = _copy(run_a, tmp_path / "b")
    assert main(["compare", str(run_a), str(b)]) == 0
    assert "runs agree" in capsys.readouterr().out

    state = torch.load(b / "checkpoint.pt", weights_only=False)
    name, tensor = max(state["model"].items(), key=lambda kv: kv[1].numel())
    state["model"][name] = tensor.flatten().flip(0).reshape(tensor.shape)  # the same norm, other entries
    torch.save(state, b / "checkpoint.pt")
    assert main(["compare", str(run_a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "FAIL final parameters (elementwise" in out and "ok   final parameter norms" in out


@pytest.mark.timeout(120)
def test_compare_tolerances_are_flags(run_a: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Catches tolerances that cannot be set from the command line, or a ledger difference that goes unseen."""
    b = _copy(run_a, tmp_path / "b")
    s = json.loads((b / "summary.json").read_text())
    s["train"]["loss_per_step"][1] *= 1 + 1e-3
    s["comm"]["logical"]["messages"] += 1
    (b / "summary.json").write_text(json.dumps(s))
    assert main(["compare", str(run_a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "FAIL loss per step" in out and "FAIL logical messages" in out
    assert main(["compare", str(run_a), str(b), "--loss-rtol", "1e-2", "--ledger-rtol", "1e-2"]) == 0


@pytest.mark.timeout(120)
def test_check_summary_names_what_breaks_the_contract(
    run_a: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Catches a contract check that passes a summary missing a key outside checks rely on, or that crashes on a
    run directory without a summary."""
    assert main(["check-summary", str(run_a)]) == 0
    b = _copy(run_a, tmp_path / "b")
    s = json.loads((b / "summary.json").read_text())
    del s["timing"]["seconds_per_step"]
    s["eval"]["udgd"]["loss_per_layer"].pop()
    (b / "summary.json").write_text(json.dumps(s))
    assert main(["check-summary", str(b / "summary.json")]) == 1
    assert "missing timing.seconds_per_step" in capsys.readouterr().out
    assert main(["check-summary", str(tmp_path / "nothing")]) == 2
    assert "not found" in capsys.readouterr().err
