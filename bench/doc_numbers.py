"""Regenerate every table of measured numbers in README.md and docs/ from the runs behind it.

Each table sits between ``<!-- numbers:NAME -->`` and ``<!-- /numbers:NAME -->`` in its file; this script reruns
what the table shows and rewrites the block (``--check``: compare instead, exit 1 when a table is out of date).

    python bench/doc_numbers.py --check quick        # the quick tables (seconds; a test runs this)
    python bench/doc_numbers.py main                 # the main job's tables (digits; about 10 minutes on 2 cores)
    python bench/doc_numbers.py fashion              # the Fashion-MNIST table (3 seeds; about 30 minutes)

Groups: ``quick`` = smoke, topology; ``main`` = main-accuracy, star, main-layers, main-async, main-costs,
main-deadlines; ``fashion``; ``paper`` (``surf-dist paper-figures``, about 45 minutes); ``transfer`` (the main
job's optimizer at 100 to 100,000 agents, about 2 hours). Runs go to ``--runs``
(default ``runs/numbers``) and are reused when finished with the same config, so a second call only redraws;
a run there of another config (the defaults changed) is trained again. Everything here is deterministic (seeded);
no timings, except the transfer table's evaluation seconds (kept from the run that measured them).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import surf_dist

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs" / "numbers"
NETWORK = [
    "network.latency_ms=50",
    "network.bandwidth_mbps=10",
    "network.link_spread=0.5",
    "network.compute_ms=10",
    "network.compute_spread=0.5",
]


def _train(name: str, runs: Path, **kwargs: Any) -> surf_dist.Run:
    """A finished run, reused when its directory holds one of the same config; a run of another config there (the
    defaults changed since) is replaced."""
    out = runs / name
    if (out / "config.json").is_file():
        run = surf_dist.load_run(out)
        cfg = surf_dist.make_config(kwargs.get("preset", "default"), None, kwargs.get("overrides", ()))
        if run.config.computed() != cfg.computed():
            shutil.rmtree(out)
        elif run.summary is not None:
            return run
    return surf_dist.train(out, progress=False, **kwargs)


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    return "\n".join([_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)])


# -- quick -------------------------------------------------------------------------------------------------
def _label(name: str) -> str:
    from surf_dist.methods.base import method_label
    from surf_dist.plugins import METHODS

    return method_label(METHODS.get(name))


def smoke(runs: Path) -> str:
    """The smoke preset (8 agents, L = 3, K = 2, 12 steps): U-DGD per layer, then each baseline."""
    ev = _train("smoke", runs, preset="smoke").eval
    u = ev.udgd
    layers = range(len(u.accuracy_per_layer))
    per_layer = _table(
        ["U-DGD", *(f"layer {i}" for i in layers)],
        [
            ["accuracy", *(f"{a:.3f}" for a in u.accuracy_per_layer)],
            ["loss", *(f"{v:.3f}" for v in u.loss_per_layer)],
        ],
    )
    last = max(b.rounds[-1] for b in ev.baselines.values())
    methods = [["U-DGD", f"{u.accuracy_per_layer[-1]:.3f}", "—"]]
    methods += [
        [_label(n), f"{b.accuracy_at_udgd_rounds:.3f}", f"{b.accuracy[-1]:.3f}"] for n, b in ev.baselines.items()
    ]
    return per_layer + "\n\n" + _table(["method", f"accuracy @ {u.rounds} rounds", f"@ {last} rounds"], methods)


def topology(runs: Path) -> str:
    """The paper's graph on 4 workers: spectrum, and the traffic of contiguous and mincut placements."""
    from surf_dist.graph import describe

    rows = []
    for placement in ("contiguous", "mincut"):
        d = describe("kregular:n=100,degree=3", num_workers=4, placement=placement, dim=650, seed=0)
        t = d["traffic_per_round"]
        rows.append(
            [
                placement,
                f"{d['second_eigenvalue_modulus']:.6f}",
                d["cut_edges"],
                t["logical"]["messages"],
                f"{t['logical']['bytes'] / 1024:.1f} KiB",
                t["physical"]["rows"],
                f"{t['physical']['bytes'] / 1024:.1f} KiB",
            ]
        )
    header = ["placement", "second eigenvalue", "cut edges", "messages a round", "logical", "rows across", "physical"]
    return _table(header, rows)


# -- the main job --------------------------------------------------------------------------------------------
def _main_runs(runs: Path) -> tuple[surf_dist.Run, surf_dist.Run]:
    return _train("default", runs), _train("standard", runs, overrides=["train.constrained=false"])


NO_COMMUNICATION = ["model.num_hops=0", "eval.baselines=[]"]  # the ablation: U-DGD's taps beyond k = 0 never exist


def _mb(value: float) -> str:
    return f"{value / 1e6:.1f}"


def _accuracy_rows(surf: surf_dist.Run, extra: list[tuple[str, surf_dist.Run]]) -> tuple[list[str], list[list[Any]]]:
    """U-DGD, the runs ``extra`` (label, run) and every method: accuracy at U-DGD's rounds and at the methods' last,
    and the agents' bytes per task there."""
    u = surf.eval.udgd
    last = max((b.rounds[-1] for b in surf.eval.baselines.values()), default=u.rounds)
    rows = [["U-DGD, SURF (constrained)", f"**{u.accuracy_per_layer[-1]:.3f}**", "—", _mb(u.agent_bytes[-1])]]
    for label, run in extra:
        ev = run.eval.udgd
        rows.append([label, f"{ev.accuracy_per_layer[-1]:.3f}", "—", _mb(ev.agent_bytes[-1])])
    for name, b in surf.eval.baselines.items():
        rows.append([_label(name), f"{b.accuracy_at_udgd_rounds:.3f}", f"{b.accuracy[-1]:.3f}", _mb(b.agent_bytes[-1])])
    header = ["method", f"accuracy @ {u.rounds} rounds", f"@ {last} rounds", "agent MB per task (at the last round)"]
    return header, rows


def _main_figure(surf: surf_dist.Run, path: Path) -> None:
    """The README's figure: U-DGD's accuracy per layer (at its rounds) and every baseline's per round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ev = surf.eval
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot(ev.udgd.rounds_per_layer, ev.udgd.accuracy_per_layer, "o-", lw=2, label=f"U-DGD ({ev.udgd.rounds} rounds)")
    for name, b in ev.baselines.items():
        ax.plot(b.rounds[1:], b.accuracy[1:], label=_label(name))
    ax.set_xscale("log")
    ax.set_xlabel("communication rounds (log scale)")
    ax.set_ylabel("held-out accuracy")
    ax.set_title("digits, 100 agents on a 3-regular graph (the main job)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main_accuracy(runs: Path) -> str:
    """The main job: U-DGD (SURF, standard unrolling, and without communication), every decentralized method."""
    surf, standard = _main_runs(runs)
    alone = _train("no-communication", runs, overrides=NO_COMMUNICATION)
    _main_figure(surf, ROOT / "docs" / "main_job.png")
    extra = [("U-DGD, standard unrolling", standard), ("U-DGD without communication (K = 0)", alone)]
    return _table(*_accuracy_rows(surf, extra))


def star(runs: Path) -> str:
    """The star preset (the paper's Figure 2, right): U-DGD's star variant and every star method."""
    surf = _train("star", runs, preset="star")
    return _table(*_accuracy_rows(surf, []))


def main_layers(runs: Path) -> str:
    surf, standard = _main_runs(runs)
    num = len(surf.eval.udgd.loss_per_layer)
    rows = []
    for label, run in (("SURF", surf), ("standard unrolling", standard)):
        rows.append([f"{label} loss", *(f"{v:.2f}" for v in run.eval.udgd.loss_per_layer)])
        rows.append([f"{label} accuracy", *(f"{v:.2f}" for v in run.eval.udgd.accuracy_per_layer)])
    return _table(["layer", *map(str, range(num))], rows)


def main_async(runs: Path) -> str:
    from surf_dist.analysis.reevaluate import sweep_async

    surf, standard = _main_runs(runs)
    counts = [0, 2, 4, 6, 8, 10, 20, 40]
    result = sweep_async([surf.dir, standard.dir], counts, [], backend="local", workers=1)
    rows = []
    for label, run in (("SURF", surf), ("standard unrolling", standard)):
        rows.append([label, *(f"{p['accuracy']:.3f}" for p in result["runs"][str(run.dir)]["points"])])
    return _table(["silent agents per layer", *map(str, counts)], rows)


def main_costs(runs: Path) -> str:
    surf, _ = _main_runs(runs)
    ev = surf_dist.evaluate(surf, NETWORK)
    assert ev is not None
    rows = []
    u = ev.udgd
    t = u.to_target
    rows.append(
        [
            f"U-DGD ({u.rounds} rounds in {u.time_s[-1]:.1f} s)",
            t["rounds"] if t else "—",
            f"**{t['time_s']:.1f}**" if t else "—",
            f"**{t['agent_bytes'] / 1e6:.1f}**" if t else "—",
            f"{u.accuracy_per_layer[-1]:.3f}",
        ]
    )
    for name, b in ev.baselines.items():
        t = b.to_target
        rows.append(
            [
                _label(name),
                t["rounds"] if t else "—",
                f"{t['time_s']:.1f}" if t else "—",
                f"{t['agent_bytes'] / 1e6:.1f}" if t else "—",
                f"{b.accuracy[-1]:.3f} (in {b.time_s[-1]:.0f} s)",
            ]
        )
    target = f"{100 * (ev.target_accuracy or 0.9):.0f} %"
    header = ["method", f"rounds to {target}", f"simulated seconds to {target}", f"agent MB to {target}"]
    header.append("final accuracy")
    return _table(header, rows)


def main_deadlines(runs: Path) -> str:
    from surf_dist.analysis.reevaluate import sweep

    surf, _ = _main_runs(runs)
    values = ["0", "150", "120", "100", "90", "80", "70"]
    sets = ["network.latency_ms=50", "network.bandwidth_mbps=10", "network.link_spread=0.5", 'eval.baselines=["dgd"]']
    rows_out = sweep([surf.dir], "network.deadline_ms", values, sets, backend="local", workers=1)["runs"][str(surf.dir)]
    n, layers = surf.summary.num_agents if surf.summary else 100, surf.config.model.num_layers
    tasks = surf.config.data.num_meta_test  # the misses are summed over the evaluated tasks
    late = [f"{100 * r['udgd']['deadline_misses'] / (n * layers * tasks):.1f} %" for r in rows_out]
    udgd = [f"{r['udgd']['accuracy']:.3f} ({r['udgd']['time_s']:.1f} s)" for r in rows_out]
    dgd_short = [f"{r['dgd']['accuracy_at_udgd_rounds']:.3f}" for r in rows_out]
    dgd_long = [f"{r['dgd']['accuracy']:.3f} ({r['dgd']['time_s']:.0f} s)" for r in rows_out]
    header = ["deadline (ms)", *("none" if v == "0" else v for v in values)]
    rows = [
        ["agents late per layer", *late],
        [f"U-DGD after {surf.eval.udgd.rounds} rounds", *udgd],
        [f"DGD after {surf.eval.udgd.rounds} rounds", *dgd_short],
        [f"DGD after {surf.eval.baselines['dgd'].rounds[-1]} rounds", *dgd_long],
    ]
    return _table(header, rows)


# -- Fashion-MNIST -------------------------------------------------------------------------------------------
def fashion(runs: Path) -> str:
    import numpy as np

    seeds = [0, 1, 2]
    done = [_train(f"fashion-seed{s}", runs, preset="fashion", overrides=[f"seed={s}"]) for s in seeds]
    alone = [
        _train(f"fashion-no-communication-seed{s}", runs, preset="fashion", overrides=[f"seed={s}", *NO_COMMUNICATION])
        for s in seeds
    ]

    def stat(values: list[float]) -> str:
        return f"{np.mean(values):.3f} ± {np.std(values):.3f}"

    def final(run: surf_dist.Run) -> float:
        return run.eval.udgd.accuracy_per_layer[-1]

    first = done[0].eval
    rows = [
        ["U-DGD, SURF (constrained)", f"**{stat([final(r) for r in done])}**", "—", _mb(first.udgd.agent_bytes[-1])],
        ["U-DGD without communication (K = 0)", stat([final(r) for r in alone]), "—", "0.0"],
    ]
    for name, b in first.baselines.items():
        rows.append(
            [
                _label(name),
                stat([r.eval.baselines[name].accuracy_at_udgd_rounds for r in done]),
                stat([r.eval.baselines[name].accuracy[-1] for r in done]),
                _mb(b.agent_bytes[-1]),
            ]
        )
    last = first.baselines["dgd"].rounds[-1]
    header = ["method", f"accuracy @ {first.udgd.rounds} rounds", f"@ {last} rounds", "agent MB per task (last round)"]
    return _table(header, rows)


# -- transfer ------------------------------------------------------------------------------------------------
TRANSFER_SIZES = {  # agents: (graphs, evaluation settings): fewer tasks and rounds where a task costs more
    100: (["kregular:n=100,degree=3", "ring:n=100", "torus:rows=10,cols=10", "small_world:n=100,k=4,p=0.1",
           "random:n=100,p=0.05"], []),
    1_000: (["kregular:n=1000,degree=3", "ring:n=1000", "torus:rows=32,cols=32", "small_world:n=1000,k=4,p=0.1",
             "random:n=1000,p=0.01"], ["data.num_meta_test=5"]),
    10_000: (["kregular:n=10000,degree=3", "ring:n=10000", "torus:rows=100,cols=100",
              "small_world:n=10000,k=4,p=0.1", "random:n=10000,p=0.001"], ["data.num_meta_test=2"]),
    100_000: (["kregular:n=100000,degree=3", "ring:n=100000", "torus:rows=316,cols=316",
               "small_world:n=100000,k=4,p=0.1", "random:n=100000,p=0.0002"],
              ["data.num_meta_test=2", "eval.rounds_factor=2"]),
}  # fmt: skip
TRANSFER_METHODS = 'eval.baselines=["dgd","dfedavgm"]'
TRANSFER_MAX_AGENTS = [100_000]  # --transfer-max-agents: the largest size evaluated


def transfer(runs: Path) -> str:
    """The main job's optimizer (trained at 100 agents on the paper's graph) on five families at 100 to 100,000
    agents, beside DGD and DFedAvgM at equal rounds (``surf-dist transfer``, one call per size)."""
    surf, _ = _main_runs(runs)
    rows = []
    for size, (specs, sets) in TRANSFER_SIZES.items():
        if size > TRANSFER_MAX_AGENTS[0]:
            continue
        record = surf_dist.transfer(surf, specs, [TRANSFER_METHODS, *sets], out=runs / f"transfer-{size}")
        assert record is not None
        for row in record["rows"]:
            u, dgd, dfedavgm = row["udgd"], row["baselines"]["dgd"], row["baselines"]["dfedavgm"]
            rows.append(
                [
                    row["title"],
                    f"{row['num_agents']:,}",
                    f"**{u['accuracy']:.3f}**",
                    f"{dgd['accuracy_at_udgd_rounds']:.3f} / {dgd['accuracy']:.3f} @{dgd['rounds']}",
                    f"{dfedavgm['accuracy_at_udgd_rounds']:.3f} / {dfedavgm['accuracy']:.3f} @{dfedavgm['rounds']}",
                    f"{row['wall_s']:.0f}",
                ]
            )
    r = surf.eval.udgd.rounds
    header = ["graph", "agents", f"U-DGD @{r}", f"DGD @{r} / last", f"DFedAvgM @{r} / last", "evaluation s"]
    return _table(header, rows)


def paper(runs: Path) -> str:
    """``surf-dist paper-figures`` (Fashion-MNIST; about 45 minutes): its tables, beside the paper's numbers."""
    from surf_dist.paper.figures import paper_figures

    out = runs / "paper-figures"
    paper_figures(out, quick=False)
    text = (out / "tables.md").read_text().strip().splitlines()
    return "\n".join(line.replace("## ", "### ", 1) if line.startswith("## ") else line for line in text[1:]).strip()


TABLES: dict[str, tuple[Path, Callable[[Path], str]]] = {
    "smoke": (ROOT / "docs" / "results.md", smoke),
    "topology": (ROOT / "docs" / "results.md", topology),
    "main-accuracy": (ROOT / "README.md", main_accuracy),
    "star": (ROOT / "README.md", star),
    "main-layers": (ROOT / "docs" / "results.md", main_layers),
    "main-async": (ROOT / "docs" / "results.md", main_async),
    "main-costs": (ROOT / "docs" / "results.md", main_costs),
    "main-deadlines": (ROOT / "docs" / "results.md", main_deadlines),
    "fashion": (ROOT / "docs" / "results.md", fashion),
    "paper": (ROOT / "docs" / "paper.md", paper),
    "transfer": (ROOT / "README.md", transfer),
}
GROUPS = {
    "quick": ["smoke", "topology"],
    "main": ["main-accuracy", "star", "main-layers", "main-async", "main-costs", "main-deadlines"],
    "fashion": ["fashion"],
    "paper": ["paper"],
    "transfer": ["transfer"],
}


def _block(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- numbers:{re.escape(name)} -->\n)(.*?)(<!-- /numbers:{re.escape(name)} -->)", re.S)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", help=f"tables or groups: {', '.join([*GROUPS, *TABLES])}")
    parser.add_argument("--check", action="store_true", help="compare with the files; exit 1 when one differs")
    parser.add_argument("--runs", type=Path, default=RUNS, help="where the runs go (reused when finished)")
    parser.add_argument("--transfer-max-agents", type=int, default=100_000, help="the transfer table's largest size")
    args = parser.parse_args()
    TRANSFER_MAX_AGENTS[0] = args.transfer_max_agents
    names = [t for n in args.names for t in GROUPS.get(n, [n])]
    unknown = [n for n in names if n not in TABLES]
    if unknown:
        parser.error(f"unknown tables {unknown}; use {', '.join([*GROUPS, *TABLES])}")
    args.runs.mkdir(parents=True, exist_ok=True)
    stale = []
    for name in names:
        path, make = TABLES[name]
        if _block(name).search(path.read_text()) is None:
            print(f"{path.relative_to(ROOT)}: no block <!-- numbers:{name} --> ... <!-- /numbers:{name} -->")
            return 2
        table = make(args.runs) + "\n"
        text = path.read_text()  # read again: the file may have been edited while the runs ran
        found = _block(name).search(text)
        assert found is not None, f"{path}: the block numbers:{name} went away while its runs ran"
        if found.group(2) == table:
            print(f"{name}: up to date ({path.relative_to(ROOT)})")
            continue
        stale.append(name)
        if args.check:
            print(f"{name}: {path.relative_to(ROOT)} says\n{found.group(2)}\nbut the runs give\n{table}")
        else:
            path.write_text(text[: found.start(2)] + table + text[found.end(2) :])
            print(f"{name}: rewritten in {path.relative_to(ROOT)}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
