"""The commands behind ``surf-dist NAME``; each imports what it needs when it runs (``--help`` and bad input stay
fast: no torch, no matplotlib)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..runtime import under_torchrun


def _out_file(out: str | None) -> Path | None:
    """``--out FILE`` for a JSON result, checked before any work (a long sweep must not end in a traceback)."""
    if not out:
        return None
    path = Path(out)
    if path.is_dir():
        raise InputError([f"--out {out}: is a directory; fix: give a file name for the JSON result"])
    if not path.parent.is_dir():
        raise InputError([f"--out {out}: {path.parent} is not a directory; fix: give a file in an existing one"])
    return path


def _write_result(out: Path | None, result: object) -> None:
    """Write a result (on the one process that holds it: not on torchrun ranks other than 0)."""
    if out is not None and result is not None and not (under_torchrun() and _rank() != 0):
        from ..rundir.atomic import write_json_atomic

        write_json_atomic(out, result)


def _rank() -> int:
    import os

    return int(os.environ.get("RANK", "0"))


def _execution(args: argparse.Namespace) -> dict[str, Any]:
    """``--backend``, ``--workers`` and ``--ray-address`` as the keywords of the evaluation functions."""
    extra = [f"run.ray_address={json.dumps(args.ray_address)}"] if getattr(args, "ray_address", None) else []
    args.overrides = [*args.overrides, *extra]
    return {"backend": args.backend, "workers": args.workers}


def _lean() -> None:
    """Input is valid and workers are about to start: re-execute once with the allocator's settings (a no-op in
    the re-executed process; ``runtime.malloc``)."""
    from ..runtime.malloc import reexec_with_lean_malloc

    reexec_with_lean_malloc()


def _counts(text: str) -> list[int]:
    items = [c.strip() for c in text.split(",") if c.strip()]
    bad = [c for c in items if not c.isdigit()]
    if bad or not items:
        which = f" (not integers: {', '.join(bad)})" if bad else ""
        raise InputError(
            [
                f"--counts {text!r}: expected silent agents per layer as comma-separated non-negative integers, "
                f"e.g. --counts 0,2,4{which}"
            ]
        )
    return [int(c) for c in items]


def _floats(text: str, flag: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise InputError([f"{flag} {text!r}: expected comma-separated numbers, e.g. {flag} 0.1,0.3,1"]) from exc
    if not values:
        raise InputError([f"{flag} {text!r}: expected comma-separated numbers, e.g. {flag} 0.1,0.3,1"])
    return values


def cmd_train(args: argparse.Namespace) -> int:
    from ..api import make_config

    cfg = make_config(  # every problem raised here, before any process starts (and before torch is imported)
        args.preset or "default",
        args.config,
        args.overrides,
        backend=args.backend,
        workers=args.workers,
        ray_address=args.ray_address,
    )
    _lean()
    from ..runtime.launch import launch

    launch(cfg, Path(args.out), progress=not args.quiet)
    return 0


def cmd_baselines(args: argparse.Namespace) -> int:
    from ..analysis.baselines import METHODS_ONLY
    from ..api import make_config

    out = _out_file(args.out)
    cfg = make_config(
        args.preset or "default",
        args.config,
        [*args.overrides, METHODS_ONLY],
        backend=args.backend,
        workers=args.workers,
        ray_address=args.ray_address,
    )
    _lean()
    from ..analysis.baselines import run_baselines

    run_baselines(cfg, out, progress=not args.quiet)
    if out is not None and not (under_torchrun() and _rank() != 0):
        print(f"wrote {out}")
    return 0


def _check_points(runs: list[Path], points: list[list[str]], execution: dict[str, Any]) -> None:
    """Every evaluation a command will make is valid (all problems at once), then the workers may start."""
    from ..analysis.reevaluate import trained_config

    problems: list[str] = []
    for run in runs:
        for overrides in points:
            try:
                trained_config(run, overrides, **execution)
            except InputError as exc:
                problems += [p for p in exc.problems if p not in problems]
    if problems:
        raise InputError(problems)
    _lean()


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..analysis.reevaluate import reevaluate

    execution, out = _execution(args), _out_file(args.out)
    _check_points([Path(args.run)], [args.overrides], execution)
    written = reevaluate(Path(args.run), args.overrides, out, progress=not args.quiet, **execution)
    if written is not None:
        print(f"wrote {written}")
    return 0


def cmd_transfer(args: argparse.Namespace) -> int:
    from ..api import transfer

    execution = _execution(args)
    _check_points([Path(args.run)], [[*args.overrides, f"topology.spec={spec}"] for spec in args.specs], execution)
    out = Path(args.out) if args.out else Path(args.run) / "transfer"
    record = transfer(args.run, args.specs, args.overrides, out=out, progress=not args.quiet, **execution)
    if record is not None:
        print(f"wrote {out / 'transfer.md'}, {out / 'transfer.png'} and {out / 'transfer.json'}")
    return 0


def cmd_sweep_async(args: argparse.Namespace) -> int:
    from ..analysis.reevaluate import sweep_async

    counts, out, execution = _counts(args.counts), _out_file(args.out), _execution(args)
    _check_points(
        [Path(r) for r in args.run], [[*args.overrides, f"failures.num_async={c}"] for c in counts], execution
    )
    _write_result(out, sweep_async([Path(r) for r in args.run], counts, args.overrides, **execution))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from ..analysis.reevaluate import sweep

    values, out = [v.strip() for v in args.values.split(",") if v.strip()], _out_file(args.out)
    if not values:
        raise InputError([f"--values {args.values!r}: give at least one value, e.g. --values 0,60,80"])
    execution = _execution(args)
    _check_points([Path(r) for r in args.run], [[*args.overrides, f"{args.key}={v}"] for v in values], execution)
    result = sweep([Path(r) for r in args.run], args.key, values, args.overrides, **execution)
    _write_result(out, result)
    return 0


def cmd_sweep_alpha(args: argparse.Namespace) -> int:
    from ..analysis.reevaluate import sweep_alpha

    alphas, out, execution = _floats(args.alphas, "--alphas"), _out_file(args.out), _execution(args)
    _check_points([Path(args.run)], [[*args.overrides, f"data.alpha={a}"] for a in alphas], execution)
    _write_result(out, sweep_alpha(Path(args.run), alphas, args.overrides, **execution))
    return 0


def cmd_sweep_epsilon(args: argparse.Namespace) -> int:
    from ..paper.sweeps import sweep_epsilon
    from ..rundir.atomic import write_json_atomic

    if args.config is not None:
        raise InputError(["sweep-epsilon: --config is not supported; use --preset and --set"])
    out = Path(args.out)
    result = sweep_epsilon(out, args.preset or "default", args.overrides, tuple(_floats(args.epsilons, "--epsilons")))
    write_json_atomic(out / "sweep.json", result)
    return 0


def _figures(text: str) -> tuple[str, ...]:
    """``--only 1,3,4`` as figure names, checked."""
    items = [c.strip() for c in text.split(",") if c.strip()]
    bad = [c for c in items if c not in ("1", "2", "3", "4", "5")]
    if bad or not items:
        raise InputError([f"--only {text!r}: expected figure numbers 1-5, comma separated, e.g. --only 1,3,4"])
    return tuple(f"fig{c}" for c in sorted(set(items)))


def cmd_paper_figures(args: argparse.Namespace) -> int:
    _lean()
    from ..paper.figures import paper_figures

    paper_figures(Path(args.out), quick=args.quick, reference=args.reference, only=_figures(args.only))
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from ..api import make_config

    grid, out = tuple(_floats(args.grid, "--grid")), _out_file(args.out)
    cfg = make_config(
        args.preset or "default",
        args.config,
        args.overrides,
        backend=args.backend,
        workers=args.workers,
        ray_address=args.ray_address,
    )
    _lean()
    from ..analysis.tune import format_tuning, tune_baselines

    result = tune_baselines(cfg, grid)
    if not (under_torchrun() and _rank() != 0):
        print(format_tuning(result))
    _write_result(out, result)
    return 0


def cmd_topology(args: argparse.Namespace) -> int:
    from ..graph.describe import describe, format_description
    from ..plugins import load_plugins

    problems = load_plugins(args.plugin)
    if problems:
        raise InputError(problems)
    d = describe(
        args.spec,
        num_workers=args.workers,
        placement=args.placement,
        normalisation=args.normalisation,
        dim=args.dim,
        seed=args.seed,
    )
    print(json.dumps(d, indent=2) if args.json else format_description(d))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from ..plugins import load_plugins
    from .listing import registered

    problems = load_plugins(args.plugin)
    if problems:
        raise InputError(problems)
    print(registered(args.kind))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from ..analysis.compare import compare_runs
    from ..analysis.tolerances import Tolerances

    tol = Tolerances(
        loss_rtol=args.loss_rtol, param_rtol=args.param_rtol, acc_atol=args.acc_atol, ledger_rtol=args.ledger_rtol
    )
    lines, mismatches = compare_runs(Path(args.run_a), Path(args.run_b), tol)
    print("\n".join(lines))
    print(f"runs differ: {', '.join(mismatches)}" if mismatches else "runs agree")
    return 1 if mismatches else 0


def cmd_check_summary(args: argparse.Namespace) -> int:
    from ..analysis.contract import load_summary, summary_problems

    failed = False
    for run in args.runs:
        problems = summary_problems(load_summary(run))
        failed |= bool(problems)
        print(f"{run}: " + ("summary ok" if not problems else "breaks the contract: " + "; ".join(problems)))
    return 1 if failed else 0


def cmd_report(args: argparse.Namespace) -> int:
    from ..analysis.report import report

    result = report([Path(r) for r in args.runs], Path(args.out), args.target)
    print(result["markdown"], end="")
    print(f"wrote {', '.join(result['files'])}, report.md and report.json to {args.out}")
    return 0


COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "baselines": cmd_baselines,
    "transfer": cmd_transfer,
    "sweep-async": cmd_sweep_async,
    "sweep-alpha": cmd_sweep_alpha,
    "sweep-epsilon": cmd_sweep_epsilon,
    "paper-figures": cmd_paper_figures,
    "tune-baselines": cmd_tune,
    "topology": cmd_topology,
    "list": cmd_list,
    "report": cmd_report,
    "sweep": cmd_sweep,
    "compare": cmd_compare,
    "check-summary": cmd_check_summary,
}
