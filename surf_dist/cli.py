"""Command line: ``surf-dist train | evaluate | sweep-async | sweep | sweep-alpha | sweep-epsilon | paper-figures |
tune-baselines | topology | report | compare | check-summary`` (also ``python -m surf_dist``; under torchrun
``surf-dist train`` is one rank of the torch backend).

Exit codes: 0 success, 2 bad input (config, topology, data, output directory: every problem listed, before
any process starts; also when a worker finds it, never retried), 130 interrupted (SIGINT) or 143 (SIGTERM),
1 anything else (a failed run, runs that differ, a broken summary contract).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import traceback
from pathlib import Path

from .analysis.compare import Tolerances, compare_runs
from .analysis.contract import load_summary, summary_problems
from .analysis.reevaluate import reevaluate, sweep, sweep_alpha, sweep_async
from .analysis.report import report
from .analysis.tune import format_tuning, tune_baselines
from .config import Config, load_config, replace
from .errors import InputError, RunFailed, WorkerTimeout
from .graph import describe, format_description
from .paper.figures import paper_figures
from .paper.sweeps import sweep_epsilon
from .rundir.atomic import write_json_atomic
from .runtime.interrupts import exit_code, interrupts_raise
from .runtime.launch import launch
from .runtime.preflight import under_torchrun
from .train import checkpoint
from .train.metrics import steps_done


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--preset", default=None, help="default (the main job) | fashion (real data) | smoke (seconds) | paper (GPU)"
    )
    p.add_argument("--config", default=None, help="a TOML file with [topology] [data] [model] [train] ... tables")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, e.g. --set model.num_layers=5 (repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="surf-dist", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="meta-train U-DGD, then evaluate it and the baselines on meta-test tasks")
    _config_args(t)
    t.add_argument("--backend", choices=("local", "torch", "ray"), default=None)
    t.add_argument("--workers", type=int, default=None, help="worker processes (torch ranks or Ray actors)")
    t.add_argument("--ray-address", default=None, help="join an existing Ray cluster (e.g. auto or HOST:6379)")
    t.add_argument("--out", required=True, help="run directory (created; an interrupted run there is resumed)")
    t.add_argument("--quiet", action="store_true", help="no progress bar and no table")

    e = sub.add_parser("evaluate", help="re-evaluate a trained run (e.g. with silent agents)")
    e.add_argument("--run", required=True, help="a run directory written by surf-dist train")
    e.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    e.add_argument("--out", default=None, help="where to write the new summary (default RUN/evaluate.json)")
    e.add_argument("--quiet", action="store_true")

    s = sub.add_parser("sweep-async", help="accuracy vs silent agents per layer for trained runs (Figure 4)")
    s.add_argument("--run", required=True, action="append", help="run directory (repeat for several models)")
    s.add_argument("--counts", default="0,2,4,6,8,10", help="silent agents per layer, comma separated")
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    s.add_argument("--out", default=None, help="JSON file for the sweep (default: printed only)")

    w = sub.add_parser("sweep", help="re-evaluate trained runs over the values of one setting (e.g. a deadline)")
    w.add_argument("--run", required=True, action="append", help="run directory (repeat for several models)")
    w.add_argument("--key", required=True, help="the setting, e.g. network.deadline_ms")
    w.add_argument("--values", required=True, help="comma-separated values, e.g. 0,60,80,100")
    w.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    w.add_argument("--out", default=None, help="JSON file for the sweep (default: printed only)")

    r = sub.add_parser("report", help="figures and a cost table of trained runs: accuracy vs rounds, bytes, seconds")
    r.add_argument("runs", nargs="+", metavar="RUN", help="run directories written by surf-dist train")
    r.add_argument("--out", required=True, help="folder for the figures, report.md and report.json")
    r.add_argument(
        "--target", type=float, default=None, help="target accuracy (default: each run's eval.target_accuracy)"
    )

    a = sub.add_parser("sweep-alpha", help="a trained run tested at other Dirichlet alphas, not retrained (Figure 3)")
    a.add_argument("--run", required=True, help="a run directory written by surf-dist train")
    a.add_argument("--alphas", default="1,0.7,0.3", help="test Dirichlet alphas, comma separated")
    a.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    a.add_argument("--out", default=None, help="JSON file for the sweep (default: printed only)")

    p = sub.add_parser("sweep-epsilon", help="train one run per descent margin epsilon (Figure 5)")
    _config_args(p)
    p.add_argument("--epsilons", default="0.001,0.01,0.05,0.1,0.5", help="epsilons, comma separated")
    p.add_argument("--out", required=True, help="folder: one run directory eps-<epsilon> each, and sweep.json")

    f = sub.add_parser("paper-figures", help="train the runs and draw the paper's five figures and their tables")
    f.add_argument("--out", required=True, help="folder for fig1.png ... fig5.png, figures.json, tables.md, runs/")
    f.add_argument("--quick", action="store_true", help="a tiny version (digits, 8 agents; what CI runs)")

    b = sub.add_parser("tune-baselines", help="choose the baselines' step sizes on meta-validation tasks")
    _config_args(b)
    b.add_argument("--grid", default="0.1,0.3,1,3", help="step sizes to try, comma separated")
    b.add_argument("--out", default=None, help="JSON file for the sweep (default: printed only)")

    g = sub.add_parser("topology", help="describe a graph and its placement on workers")
    g.add_argument("spec", metavar="SPEC_OR_FILE", help="e.g. kregular:n=100,degree=3, ring:n=16 or a graph file")
    g.add_argument("--workers", type=int, default=1)
    g.add_argument("--placement", default="contiguous", help="contiguous | mincut")
    g.add_argument("--normalisation", default="row", help="row | spectral | metropolis")
    g.add_argument("--dim", type=int, default=650, help="model dimension D for the bytes per round (digits: 650)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--json", action="store_true", help="print JSON instead of text")

    c = sub.add_parser("compare", help="are two runs the same run? (parity; exit 1 when they differ)")
    c.add_argument("run_a", metavar="RUN_A", help="a run directory (its summary.json and checkpoint.pt)")
    c.add_argument("run_b", metavar="RUN_B")
    defaults = Tolerances()
    for name, help_text in (
        ("loss_rtol", "per-step Lagrangian, relative"),
        ("param_rtol", "final parameters (relative L2 per tensor) and their norms"),
        ("acc_atol", "accuracy per layer / per round, absolute"),
        ("ledger_rtol", "logical messages and bytes, relative (0: equal)"),
    ):
        c.add_argument(
            f"--{name.replace('_', '-')}",
            type=float,
            default=getattr(defaults, name),
            help=f"{help_text} (%(default)g)",
        )

    k = sub.add_parser("check-summary", help="check RUN/summary.json against the contract of DESIGN.md")
    k.add_argument("runs", nargs="+", metavar="RUN", help="a run directory or a summary.json")
    return parser


def _resolve_train_config(args: argparse.Namespace) -> Config:
    overrides = list(args.overrides)
    if args.backend is not None:
        overrides.append(f"run.backend={args.backend}")
    if args.workers is not None:
        overrides.append(f"run.workers={args.workers}")
    if args.ray_address is not None:
        overrides.append(f"run.ray_address={json.dumps(args.ray_address)}")
    preset = args.preset or "default"
    if not under_torchrun():
        return load_config(preset, args.config, overrides)
    # under torchrun this process is one rank of the torch backend, with one worker per rank; a config that
    # asks for another backend is refused (launch's check) rather than run once per rank
    torch_base = replace(Config(), run={"backend": "torch"})
    asked = load_config(preset, args.config, overrides, base=torch_base, validate=False)
    if asked.run.backend != "torch":
        return asked
    world = int(os.environ["WORLD_SIZE"])
    return load_config(preset, args.config, overrides, base=replace(torch_base, run={"workers": world}))


def _where_train_stopped(out: Path) -> str:
    """``at step S; rerun ... (from step C)``: how far the run in ``out`` got and where a rerun resumes."""
    done = steps_done(out) if out.is_dir() else None
    resume_at = checkpoint.step_of(out) if out.is_dir() else None
    return (
        f"at step {done or 0}; rerun the same command to resume "
        f"(from step {resume_at or 0}{'' if resume_at is not None else ': no checkpoint yet'})"
    )


def cmd_train(args: argparse.Namespace) -> int:
    cfg = _resolve_train_config(args)  # every problem raised here, before any process starts
    launch(cfg, Path(args.out), progress=not args.quiet)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    out = reevaluate(Path(args.run), args.overrides, _out_file(args.out), progress=not args.quiet)
    print(f"wrote {out}")
    return 0


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


def cmd_sweep(args: argparse.Namespace) -> int:
    counts, out = _counts(args.counts), _out_file(args.out)
    _write_result(out, sweep_async([Path(r) for r in args.run], counts, args.overrides))
    return 0


def _floats(text: str, flag: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise InputError([f"{flag} {text!r}: expected comma-separated numbers, e.g. {flag} 0.1,0.3,1"]) from exc


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
    if out is not None:
        write_json_atomic(out, result)


def cmd_sweep_alpha(args: argparse.Namespace) -> int:
    alphas, out = _floats(args.alphas, "--alphas"), _out_file(args.out)
    _write_result(out, sweep_alpha(Path(args.run), alphas, args.overrides))
    return 0


def cmd_sweep_epsilon(args: argparse.Namespace) -> int:
    if args.config is not None:
        raise InputError(["sweep-epsilon: --config is not supported; use --preset and --set"])
    out = Path(args.out)
    result = sweep_epsilon(out, args.preset or "default", args.overrides, tuple(_floats(args.epsilons, "--epsilons")))
    write_json_atomic(out / "sweep.json", result)
    return 0


def cmd_paper_figures(args: argparse.Namespace) -> int:
    paper_figures(Path(args.out), quick=args.quick)
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    cfg = load_config(args.preset or "default", args.config, args.overrides)
    grid, out = tuple(_floats(args.grid, "--grid")), _out_file(args.out)
    result = tune_baselines(cfg, grid)
    print(format_tuning(result))
    _write_result(out, result)
    return 0


def cmd_topology(args: argparse.Namespace) -> int:
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


def cmd_sweep_key(args: argparse.Namespace) -> int:
    values, out = [v.strip() for v in args.values.split(",") if v.strip()], _out_file(args.out)
    _write_result(out, sweep([Path(r) for r in args.run], args.key, values, args.overrides))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    tol = Tolerances(
        loss_rtol=args.loss_rtol, param_rtol=args.param_rtol, acc_atol=args.acc_atol, ledger_rtol=args.ledger_rtol
    )
    lines, mismatches = compare_runs(Path(args.run_a), Path(args.run_b), tol)
    print("\n".join(lines))
    print(f"runs differ: {', '.join(mismatches)}" if mismatches else "runs agree")
    return 1 if mismatches else 0


def cmd_check_summary(args: argparse.Namespace) -> int:
    failed = False
    for run in args.runs:
        problems = summary_problems(load_summary(run))
        failed |= bool(problems)
        print(f"{run}: " + ("summary ok" if not problems else "breaks the contract: " + "; ".join(problems)))
    return 1 if failed else 0


def cmd_report(args: argparse.Namespace) -> int:
    result = report([Path(r) for r in args.runs], Path(args.out), args.target)
    print(result["markdown"], end="")
    print(f"wrote {', '.join(result['files'])}, report.md and report.json to {args.out}")
    return 0


COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "sweep-async": cmd_sweep,
    "sweep-alpha": cmd_sweep_alpha,
    "sweep-epsilon": cmd_sweep_epsilon,
    "paper-figures": cmd_paper_figures,
    "tune-baselines": cmd_tune,
    "topology": cmd_topology,
    "report": cmd_report,
    "sweep": cmd_sweep_key,
    "compare": cmd_compare,
    "check-summary": cmd_check_summary,
}


def _who(command: str) -> str:
    """``surf-dist train``, or under torchrun ``surf-dist train (rank R of W)``: every rank may print."""
    if not under_torchrun():
        return f"surf-dist {command}"
    return f"surf-dist {command} (rank {os.environ['RANK']} of {os.environ['WORLD_SIZE']})"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with interrupts_raise():
            return COMMANDS[args.command](args)
    except InputError as exc:
        n = len(exc.problems)
        print(f"{_who(args.command)}: bad input ({n} problem{'s' if n != 1 else ''}):\n{exc}", file=sys.stderr)
        return 2
    except (RunFailed, WorkerTimeout) as exc:  # already explained: one line, no traceback
        print(f"{_who(args.command)}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:  # SIGINT or SIGTERM: every worker has been stopped on the way here
        code = exit_code(exc)
        # under torchrun SIGTERM is how the agent stops the ranks for a restart: not the user's interrupt
        if not under_torchrun() or (os.environ.get("RANK") == "0" and code == 128 + signal.SIGINT):
            where = _where_train_stopped(Path(args.out)) if args.command == "train" else ""
            print(f"surf-dist {args.command}: interrupted {where}".rstrip(), file=sys.stderr)
        return code
    except Exception:
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
