"""``surf-dist compare RUN_A RUN_B``: are two runs the same run (parity across backends, workers, placements)?

Compared, each against a tolerance the command line can change:

* the Lagrangian of every meta-training step (relative gap, ``loss_rtol``);
* the final parameters, elementwise, from each run's last checkpoint (``checkpoint.pt``, key ``model``,
  written at the last step): per tensor ‖a − b‖₂ / ‖b‖₂ (``param_rtol``; a permuted or sign-flipped tensor
  fails, though its norm is the same), and the summaries' final parameter norms (``param_rtol``);
* U-DGD's accuracy per layer and every baseline's accuracy per round (absolute gap, ``acc_atol``);
* the ledger's logical traffic, messages and bytes (relative gap, ``ledger_rtol``; 0: equal). Physical
  bytes are not compared: they depend on the number of workers by design.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError
from ..worker import checkpoint
from .contract import get, load_summary, summary_path, summary_problems
from .tolerances import Tolerances


def _rel(x: float, y: float) -> float:
    return abs(x - y) / max(abs(x), abs(y), 1e-12)


def _final_params(run: Path, summary: dict[str, Any]) -> dict[str, torch.Tensor]:
    run_dir = summary_path(run).parent
    state = checkpoint.load(run_dir)
    fix = "fix: give a run directory that surf-dist train finished (it keeps checkpoint.pt)"
    if state is None:
        raise InputError([f"{run_dir}: no usable checkpoint, so no final parameters to compare; {fix}"])
    steps = get(summary, "train.steps") if "steps" in summary.get("train", {}) else None
    if steps is not None and int(state["step"]) != int(steps):
        raise InputError([f"{run_dir}: checkpoint of step {state['step']} but the summary of {steps} steps; {fix}"])
    return {k: v for k, v in state["model"].items() if torch.is_floating_point(v)}


class _Report:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.mismatches: list[str] = []

    def check(self, what: str, gap: float, tol: float, detail: str = "") -> None:
        ok = gap <= tol
        self.lines.append(f"{'ok  ' if ok else 'FAIL'} {what}: {gap:.2e} (tolerance {tol:.0e}){detail}")
        if not ok:
            self.mismatches.append(what)

    def fail(self, what: str, why: str) -> None:
        self.lines.append(f"FAIL {what}: {why}")
        self.mismatches.append(what)


def _compare_lists(report: _Report, what: str, a: list[float], b: list[float], tol: float, relative: bool) -> None:
    if len(a) != len(b):
        report.fail(what, f"{len(a)} values vs {len(b)}")
        return
    gaps = [_rel(x, y) if relative else abs(x - y) for x, y in zip(a, b, strict=True)]
    gaps = [g if math.isfinite(g) else math.inf for g in gaps]  # a NaN never passes
    worst = max(range(len(gaps)), key=gaps.__getitem__, default=None)
    where = "" if worst is None else f" at index {worst} ({a[worst]:.6g} vs {b[worst]:.6g})"
    report.check(what, max(gaps, default=0.0), tol, where)


def compare_runs(run_a: str | Path, run_b: str | Path, tol: Tolerances | None = None) -> tuple[list[str], list[str]]:
    """One line per check, and the names of the checks that failed (empty: the runs agree)."""
    tol = tol or Tolerances()
    a, b = load_summary(run_a), load_summary(run_b)
    broken = [f"{run}: {p}" for run, summary in ((run_a, a), (run_b, b)) for p in summary_problems(summary)]
    if broken:
        raise InputError([*broken, "fix: compare run directories that surf-dist train finished"])
    pa, pb = _final_params(Path(run_a), a), _final_params(Path(run_b), b)
    report = _Report()
    report.lines.append(
        f"A: {a.get('backend')} × {a.get('workers')} workers ({run_a}); B: {b.get('backend')} × {b.get('workers')} "
        f"workers ({run_b})"
    )
    _compare_lists(
        report, "loss per step", a["train"]["loss_per_step"], b["train"]["loss_per_step"], tol.loss_rtol, True
    )

    if set(pa) != set(pb) or any(pa[k].shape != pb[k].shape for k in pa):
        report.fail("final parameters", f"tensors differ: {sorted(set(pa) ^ set(pb))} or their shapes")
    else:
        gaps = {
            k: float((pa[k].double() - pb[k].double()).norm() / max(float(pb[k].double().norm()), 1e-30)) for k in pa
        }
        worst = max(gaps, key=gaps.__getitem__)
        max_abs = max(float((pa[k].double() - pb[k].double()).abs().max()) for k in pa if pa[k].numel())
        report.check(
            "final parameters (elementwise, relative L2)",
            gaps[worst],
            tol.param_rtol,
            f" in {worst}; max |a-b| {max_abs:.2e}",
        )
    na, nb = a["train"]["final_param_norms"], b["train"]["final_param_norms"]
    if set(na) != set(nb):
        report.fail("final parameter norms", f"names differ: {sorted(set(na) ^ set(nb))}")
    else:
        report.check("final parameter norms", max((_rel(na[k], nb[k]) for k in na), default=0.0), tol.param_rtol)

    ua, ub = a["eval"]["udgd"]["accuracy_per_layer"], b["eval"]["udgd"]["accuracy_per_layer"]
    _compare_lists(report, "U-DGD accuracy per layer", ua, ub, tol.acc_atol, False)
    ba, bb = a["eval"].get("baselines", {}), b["eval"].get("baselines", {})
    if set(ba) != set(bb):
        report.fail("baselines", f"{sorted(ba)} vs {sorted(bb)}")
    for name in sorted(set(ba) & set(bb)):
        _compare_lists(
            report, f"{name} accuracy per round", ba[name]["accuracy"], bb[name]["accuracy"], tol.acc_atol, False
        )

    for key in ("messages", "bytes"):
        x, y = a["comm"]["logical"][key], b["comm"]["logical"][key]
        report.check(f"logical {key}", _rel(x, y) if x != y else 0.0, tol.ledger_rtol, f" ({x:,} vs {y:,})")
    return report.lines, report.mismatches
