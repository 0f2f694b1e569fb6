"""The command line's arguments (``surf-dist --help``); building the parser imports neither torch nor matplotlib."""

from __future__ import annotations

import argparse

from ..analysis.tolerances import Tolerances

# torchrun's own parser takes --run for its --run-path, wherever it stands: under torchrun name a run --run-dir
RUN_FLAGS = ("--run", "--run-dir")
UNDER_TORCHRUN = " (--run-dir under torchrun)"
DESCRIPTION = "surf-dist: simulate and run learned decentralized federated optimizers (SURF / U-DGD)"


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--preset", default=None, help="default (the main job) | fashion (real data) | smoke (seconds) | paper (GPU)"
    )
    p.add_argument("--config", default=None, help="a TOML file with [topology] [data] [model] [train] ... tables")
    _set_arg(p)


def _set_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, e.g. --set model.num_layers=5 (repeatable)",
    )


def _execution_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=("local", "torch", "ray"), default=None, help="default local (torchrun: torch)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (torch ranks or Ray actors)")
    p.add_argument("--ray-address", default=None, help="join an existing Ray cluster (e.g. auto or HOST:6379)")


def _runs_args(
    p: argparse.ArgumentParser,
    *,
    several: bool = True,
    out_help: str = "JSON file for the result (default: printed only)",
) -> None:
    if several:
        p.add_argument(
            *RUN_FLAGS,
            dest="run",
            required=True,
            action="append",
            help=f"run directory (repeat for several models){UNDER_TORCHRUN}",
        )
    else:
        p.add_argument(
            *RUN_FLAGS, dest="run", required=True, help=f"a run directory written by surf-dist train{UNDER_TORCHRUN}"
        )
    _set_arg(p)
    _execution_args(p)
    p.add_argument("--out", default=None, help=out_help)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="surf-dist", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="meta-train U-DGD, then evaluate it and the baselines on meta-test tasks")
    _config_args(t)
    _execution_args(t)
    t.add_argument("--out", required=True, help="run directory (created; an interrupted run there is resumed)")
    t.add_argument("--quiet", action="store_true", help="no progress bar and no table")

    e = sub.add_parser("evaluate", help="re-evaluate a trained run (another graph, size, silent agents, network)")
    _runs_args(e, several=False, out_help="JSON file for the result (default RUN/evaluate.json)")
    e.add_argument("--quiet", action="store_true")

    m = sub.add_parser(
        "baselines", help="evaluate the methods alone, no trained optimizer (any graph they accept: directed too)"
    )
    _config_args(m)
    _execution_args(m)
    m.add_argument("--out", default=None, help="JSON file for the result (default: printed only)")
    m.add_argument("--quiet", action="store_true", help="no progress bar and no table")

    s = sub.add_parser("sweep-async", help="accuracy vs silent agents per layer for trained runs (Figure 4)")
    _runs_args(s)
    s.add_argument("--counts", default="0,2,4,6,8,10", help="silent agents per layer, comma separated")

    w = sub.add_parser("sweep", help="re-evaluate trained runs over the values of one setting (e.g. a deadline)")
    _runs_args(w)
    w.add_argument("--key", required=True, help="the setting, e.g. network.deadline_ms")
    w.add_argument("--values", required=True, help="comma-separated values, e.g. 0,60,80,100")

    x = sub.add_parser("transfer", help="a trained run on other graphs, sizes and densities, beside the methods")
    x.add_argument(
        *RUN_FLAGS, dest="run", required=True, help=f"a run directory written by surf-dist train{UNDER_TORCHRUN}"
    )
    x.add_argument(
        "--spec",
        dest="specs",
        action="append",
        required=True,
        metavar="SPEC",
        help="a graph to evaluate on (topology.spec: a generator spec or a file; repeat for several)",
    )
    _set_arg(x)
    _execution_args(x)
    x.add_argument("--out", default=None, help="folder for transfer.json, .md and .png (default RUN/transfer)")
    x.add_argument("--quiet", action="store_true")

    a = sub.add_parser("sweep-alpha", help="a trained run tested at other Dirichlet alphas, not retrained (Figure 3)")
    _runs_args(a, several=False)
    a.add_argument("--alphas", default="1,0.7,0.3", help="test Dirichlet alphas, comma separated")

    r = sub.add_parser("report", help="figures and a cost table of trained runs: accuracy vs rounds, bytes, seconds")
    r.add_argument("runs", nargs="+", metavar="RUN", help="run directories written by surf-dist train")
    r.add_argument("--out", required=True, help="folder for the figures, report.md and report.json")
    r.add_argument(
        "--target", type=float, default=None, help="target accuracy (default: each run's eval.target_accuracy)"
    )

    p = sub.add_parser("sweep-epsilon", help="train one run per descent margin epsilon (Figure 5)")
    _config_args(p)
    p.add_argument("--epsilons", default="0.001,0.01,0.05,0.1,0.5", help="epsilons, comma separated")
    p.add_argument("--out", required=True, help="folder: one run directory eps-<epsilon> each, and sweep.json")

    f = sub.add_parser("paper-figures", help="train the runs and draw the paper's five figures and their tables")
    f.add_argument("--out", required=True, help="folder for fig1.png ... fig5.png, figures.json, tables.md, runs/")
    f.add_argument("--quick", action="store_true", help="a tiny version (digits, 8 agents; what CI runs)")
    f.add_argument(
        "--reference",
        action="store_true",
        help="every run with the reference code's settings (agent-batch normalisation, W0 std 5, paper inits)",
    )
    f.add_argument("--only", default="1,2,3,4,5", help="the figures to make, e.g. 1,3,4 (default all five)")

    b = sub.add_parser("tune-baselines", help="choose the baselines' step sizes on meta-validation tasks")
    _config_args(b)
    _execution_args(b)
    b.add_argument("--grid", default="0.1,0.3,1,3,10", help="step sizes to try, comma separated")
    b.add_argument("--out", default=None, help="JSON file for the sweep (default: printed only)")

    g = sub.add_parser("topology", help="describe a graph and its placement on workers")
    g.add_argument("spec", metavar="SPEC_OR_FILE", help="e.g. kregular:n=100,degree=3, ring:n=16 or a graph file")
    g.add_argument("--workers", type=int, default=1)
    g.add_argument("--placement", default="contiguous", help="contiguous | mincut")
    g.add_argument("--normalisation", default="row", help="row | spectral | metropolis")
    g.add_argument("--dim", type=int, default=650, help="model dimension D for the bytes per round (digits: 650)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--json", action="store_true", help="print JSON instead of text")
    g.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_FILE", help="import a plugin first")

    n = sub.add_parser("list", help="the registered methods, datasets, local networks and graph generators")
    n.add_argument(
        "kind", nargs="?", default="all", choices=("all", "methods", "datasets", "local-updates", "topologies")
    )
    n.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_FILE", help="import a plugin first")

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

    k = sub.add_parser("check-summary", help="check RUN/summary.json against the summary contract (docs/summary.md)")
    k.add_argument("runs", nargs="+", metavar="RUN", help="a run directory or a summary.json")
    return parser
