"""``surf-dist paper-figures --out DIR [--quick]``: the paper's five figures, their numbers and tables.

Every number comes from ordinary ``surf-dist train`` run directories under ``DIR/runs/`` (reused when
already finished with the same config), re-evaluated on the local backend where a figure needs it:

* ``surf``      the base job (SURF, 3-regular graph, Dirichlet α = 0.7)   → Figs. 1, 2 (left), 3, 4
* ``standard``  the same, ``train.constrained=false``                      → Figs. 1, 4
* ``random``    the same on the random graph (p = 0.1, the code's A + Aᵀ)  → Fig. 2 (middle)
* ``star``      the star variant (a server, 10 uploads a round, K = 1; the ``star`` preset's methods: FedAvg,
  SCAFFOLD, FedProx, FedDyn, MOON and the references)                       → Fig. 2 (right)
* ``fig5/eps-ε`` L = 5, α = 0.3, one run per ε                             → Fig. 5

The base job is ``--preset fashion`` (Fashion-MNIST, 100 agents), or with ``--quick`` the ``smoke``
preset on digits (8 agents, a few steps: what CI runs). ``DIR/figures.json`` holds, under ``fig1`` …
``fig5``, exactly the numbers each ``DIR/figN.png`` plots (see ``plots.py``), plus the runs behind them;
``DIR/tables.md`` the same as Markdown tables. Figure 2's panels are titled from each run's own graph spec
(``graph_title``), and with ``--quick`` every figure and ``tables.md`` carry ``quick_mark``: they show the
pipeline, not the paper's numbers.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..analysis.reevaluate import sweep_alpha, sweep_async
from ..config import load_config
from ..config.presets import PRESETS
from ..graph.labels import graph_title
from ..rundir.atomic import write_json_atomic, write_text_atomic
from ..runtime.preflight import check_data, prepare_run_dir
from . import plots, tables
from .runs import ensure_run
from .sweeps import PAPER_EPSILONS, sweep_epsilon


@dataclass(frozen=True)
class Plan:
    """What the figures run: a preset, overrides for every run, and each figure's sweep."""

    preset: str
    base: tuple[str, ...]
    random_spec: str
    async_counts: tuple[int, ...]
    alphas: tuple[float, ...] = (1.0, 0.7, 0.3)
    epsilons: tuple[float, ...] = PAPER_EPSILONS
    fig5: tuple[str, ...] = ("model.num_layers=5", "data.alpha=0.3")
    star: tuple[str, ...] = ()
    link_failure_ps: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.5)  # Figure 4's second kind of asynchrony


# the reference code's settings (docs/method.md): BatchNorm across agents, W₀ with std 5, Uniform(0, 0.1) init of
# the local networks and the taps; ``paper-figures --reference`` trains every run with them
REFERENCE = ("model.normalisation=agent-batch", "model.w0_std=5", "model.init=paper", "model.tap_init=paper")
FIGURES = ("fig1", "fig2", "fig3", "fig4", "fig5")


# the paper's star set-up (docs/method.md; the ``star`` preset): a server that only aggregates, K = 1, the
# star's ε = 0.1, and the star preset's methods (the paper's five star baselines and the references) at the same
# uploads
_STAR = (
    "model.variant=star",
    "model.num_hops=1",
    "train.epsilon=0.1",
    f"eval.baselines={json.dumps(PRESETS['star']['eval']['baselines'])}",
)
FASHION_STAR = (
    "eval.fedavg_step=0.3",
    "eval.fedavg_momentum=0.5",
    "eval.scaffold_step=0.3",
    "eval.fedprox_step=1",
    "eval.fedprox_mu=0.1",
    "eval.feddyn_step=10",
    "eval.feddyn_alpha=0.001",
    "eval.moon_step=1",
    "eval.moon_mu=1",
)
FULL = Plan(
    preset="fashion",
    base=(),
    random_spec="random:n=100,p=0.1,symmetrise=or",
    async_counts=(0, 2, 4, 6, 8, 10),
    # the star methods tuned on fashion's meta-val tasks over {0.1, 0.3, 1, 3, 10} × their own constants
    # (surf-dist tune-baselines; docs/tuning_fashion_star.json)
    star=("topology.spec=star:n=100", "model.uploads_per_round=10", *_STAR, *FASHION_STAR),
)
QUICK = Plan(
    preset="smoke",
    base=(),
    random_spec="random:n=8,p=0.3,symmetrise=or",
    async_counts=(0, 1, 2, 3),
    star=("topology.spec=star:n=9", "model.uploads_per_round=3", *_STAR),
    link_failure_ps=(0.0, 0.3),
)


@dataclass(frozen=True)
class Panel:
    """One panel of Figure 2: the paper's panel it stands for (``kregular``, ``random`` or ``star``: the key of
    the paper's numbers in ``tables.md``), the run it plots, and that run's overrides of the base job."""

    key: str
    run: str
    overrides: tuple[str, ...]


def fig2_panels(plan: Plan) -> list[Panel]:
    """Figure 2's panels: the 3-regular graph, the random graph and the star (the paper's left to right).

    The star panel's U-DGD spends one round per layer (K = 1) and its methods are the star preset's (FedAvg,
    SCAFFOLD, FedProx, FedDyn, MOON and the references) with the same uploads per round (docs/method.md: the
    paper gives none of their settings; in the full plan they run at the settings tuned on fashion's meta-val tasks)."""
    return [
        Panel("kregular", "surf", ()),
        Panel("random", "random", (f"topology.spec={plan.random_spec}",)),
        Panel("star", "star", plan.star),
    ]


def panel_title(config: dict[str, Any]) -> str:
    """A Figure 2 panel's title, from its run's ``config.json``: its graph as its spec says (never the paper's
    settings when the run used others), and on a star the uploads a round."""
    title = graph_title(config["topology"]["spec"])
    if config["model"]["variant"] == "star":
        title += f" ({config['model']['uploads_per_round']} uploads a round)"
    return title


def quick_mark(plan: Plan, summary: dict[str, Any]) -> str:
    """The line every quick figure and ``tables.md`` carry: what was reduced, and that these are not the paper's
    numbers."""
    return (
        f"quick: reduced settings (preset {plan.preset}, {summary['num_agents']} agents, "
        f"{summary['train']['steps']} steps), not the paper's numbers"
    )


def _layers(summary: dict[str, Any]) -> dict[str, Any]:
    u = summary["eval"]["udgd"]
    return {
        "accuracy": u["accuracy_per_layer"],
        "accuracy_std": u["accuracy_std_per_layer"],
        "loss": u["loss_per_layer"],
    }


def _curves(key: str, run: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """A Figure 2 panel's numbers: U-DGD per layer and every method the run evaluated, per round."""
    u, baselines = summary["eval"]["udgd"], summary["eval"]["baselines"]
    config = json.loads((run / "config.json").read_text())
    return {
        "key": key,
        "title": panel_title(config),
        "spec": config["topology"]["spec"],
        "run": str(run),
        "udgd": {"rounds": u["rounds_per_layer"], "accuracy": u["accuracy_per_layer"]},
        "baselines": {name: {"rounds": b["rounds"], "accuracy": b["accuracy"]} for name, b in baselines.items()},
        "udgd_rounds": u["rounds"],
        "max_rounds": max((b["rounds"][-1] for b in baselines.values()), default=u["rounds"]),
    }


def _fig4(sweep: dict[str, Any], surf: Path, standard: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"counts": sweep["counts"]}
    for key, run in (("surf", surf), ("standard", standard)):
        points = sweep["runs"][str(run)]["points"]
        out[key] = [p["accuracy"] for p in points]
        out[f"{key}_std"] = [p["std"] for p in points]
        out[f"{key}_run"] = str(run)
    return out


def _link_failures(ps: tuple[float, ...], surf: Path, standard: Path) -> dict[str, Any]:
    """Figure 4's second kind of asynchrony: final accuracy ± std when each link fails with probability p in every
    round of evaluation (``topology.dynamic=link-failure``, the weight renormalised over the surviving links)."""
    from ..analysis.reevaluate import evaluate_run

    out: dict[str, Any] = {"ps": list(ps)}
    for key, run in (("surf", surf), ("standard", standard)):
        accuracy, std = [], []
        for p in ps:
            ev = evaluate_run(
                run, ["topology.dynamic=link-failure", f"topology.link_failure_p={p}", "eval.baselines=[]"]
            )
            assert ev is not None and ev.udgd is not None
            accuracy.append(ev.udgd.accuracy_per_layer[-1])
            std.append(ev.udgd.accuracy_std_per_layer[-1])
        out[key], out[f"{key}_std"] = accuracy, std
    return out


def paper_figures(
    out: Path, *, quick: bool = False, reference: bool = False, only: tuple[str, ...] = FIGURES, progress: bool = True
) -> dict[str, Any]:
    """Train (or reuse) the runs, compute the figures ``only`` (default all five), draw them; the ``figures.json``
    dict. ``reference``: every run with the reference code's settings (``REFERENCE``)."""
    plan = QUICK if quick else FULL
    if reference:
        plan = dataclasses.replace(plan, base=(*plan.base, *REFERENCE))
    check_data(load_config(plan.preset, None, list(plan.base)))  # before any run: --out and the data files
    prepare_run_dir(out)
    t0 = time.perf_counter()
    runs = out / "runs"

    def run(name: str, overrides: tuple[str, ...] = ()) -> dict[str, Any]:
        return ensure_run(runs / name, plan.preset, [*plan.base, *overrides], progress=progress)

    surf, standard = run("surf"), run("standard", ("train.constrained=false",))
    figs: dict[str, Any] = {}
    figs["fig1"] = {
        "layers": list(range(len(surf["eval"]["udgd"]["accuracy_per_layer"]))),
        "surf": _layers(surf),
        "standard": _layers(standard),
        "runs": [str(runs / "surf"), str(runs / "standard")],
    }
    if "fig2" in only:
        panels = [_curves(p.key, runs / p.run, run(p.run, p.overrides)) for p in fig2_panels(plan)]
        figs["fig2"] = {"panels": panels}
    if "fig3" in only:
        if progress:
            print("Figure 3: accuracy vs Dirichlet alpha, trained at 0.7, not retrained")
        figs["fig3"] = sweep_alpha(runs / "surf", list(plan.alphas), [], progress=progress)
    if "fig4" in only:
        if progress:
            print("Figure 4: final accuracy vs silent agents per layer, and vs the probability that a link fails")
        sweep = sweep_async([runs / "surf", runs / "standard"], list(plan.async_counts), [])
        figs["fig4"] = _fig4(sweep, runs / "surf", runs / "standard")
        figs["fig4"]["links"] = _link_failures(plan.link_failure_ps, runs / "surf", runs / "standard")
    if "fig5" in only:
        if progress:
            print("Figure 5: accuracy per layer per epsilon (L = 5, alpha = 0.3)")
        fig5_overrides = [*plan.base, *plan.fig5]
        figs["fig5"] = sweep_epsilon(runs / "fig5", plan.preset, fig5_overrides, plan.epsilons, progress=progress)
    if "fig1" not in only:
        del figs["fig1"]

    out.mkdir(parents=True, exist_ok=True)
    mark = quick_mark(plan, surf) if quick else None
    for name in figs:
        plots.draw(name, figs[name], out / f"{name}.png", mark=mark)
    result = {
        "quick": quick,
        "reference": reference,
        "mark": mark,
        "preset": plan.preset,
        "base_overrides": list(plan.base),
        **figs,
        "seconds": time.perf_counter() - t0,
    }
    write_json_atomic(out / "figures.json", result)
    write_text_atomic(out / "tables.md", tables.markdown(result))
    if progress:
        print(f"wrote {', '.join(f'{name}.png' for name in figs)}, figures.json and tables.md in {out}")
    return result
