"""Command line: ``surf-dist train | evaluate | topology | sweep-async`` (also ``python -m surf_dist``).

Exit codes: 0 success, 2 bad input (config, topology, data: every problem listed, before any process
starts), 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

from .atomic import write_json_atomic
from .config import load_config
from .errors import InputError, RunFailed
from .graph import describe, format_description
from .report_runs import report
from .runtime.launch import launch
from .train.reevaluate import reevaluate, sweep, sweep_async


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default=None, help="default (the main job) | smoke (seconds) | paper (GPU scale)")
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

    g = sub.add_parser("topology", help="describe a graph and its placement on workers")
    g.add_argument("spec", metavar="SPEC_OR_FILE", help="e.g. kregular:n=100,degree=3, ring:n=16 or a graph file")
    g.add_argument("--workers", type=int, default=1)
    g.add_argument("--placement", default="contiguous", help="contiguous | mincut")
    g.add_argument("--normalisation", default="row", help="row | spectral | metropolis")
    g.add_argument("--dim", type=int, default=650, help="model dimension D for the bytes per round (digits: 650)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def _resolve_train_config(args: argparse.Namespace):

    overrides = list(args.overrides)
    if args.backend is not None:
        overrides.append(f"run.backend={args.backend}")
    if args.workers is not None:
        overrides.append(f"run.workers={args.workers}")
    elif args.backend == "torch" and "WORLD_SIZE" in os.environ:  # under torchrun: one worker per rank
        overrides.append(f"run.workers={int(os.environ['WORLD_SIZE'])}")
    if args.ray_address is not None:
        overrides.append(f"run.ray_address={json.dumps(args.ray_address)}")
    return load_config(args.preset or "default", args.config, overrides)


def cmd_train(args: argparse.Namespace) -> int:

    cfg = _resolve_train_config(args)  # every problem raised here, before any process starts
    launch(cfg, Path(args.out), progress=not args.quiet)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:

    out = reevaluate(Path(args.run), args.overrides, Path(args.out) if args.out else None, progress=not args.quiet)
    print(f"wrote {out}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:

    counts = [int(c) for c in args.counts.split(",") if c.strip()]
    result = sweep_async([Path(r) for r in args.run], counts, args.overrides)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
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
    values = [v.strip() for v in args.values.split(",") if v.strip()]
    result = sweep([Path(r) for r in args.run], args.key, values, args.overrides)
    if args.out:
        write_json_atomic(Path(args.out), result)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    result = report([Path(r) for r in args.runs], Path(args.out), args.target)
    print(result["markdown"], end="")
    print(f"wrote {', '.join(result['files'])}, report.md and report.json to {args.out}")
    return 0


COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "sweep-async": cmd_sweep,
    "topology": cmd_topology,
    "report": cmd_report,
    "sweep": cmd_sweep_key,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except InputError as exc:
        print(
            f"surf-dist {args.command}: bad input ({len(exc.problems)} problem"
            f"{'s' if len(exc.problems) != 1 else ''}):\n{exc}",
            file=sys.stderr,
        )
        return 2
    except RunFailed as exc:
        print(f"surf-dist {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("surf-dist: interrupted", file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
