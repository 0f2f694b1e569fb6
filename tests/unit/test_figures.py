"""The paper's figures and tables as a reader sees them: titles from the graph a run used, the quick mark, every
evaluated method by its label in its own style, bars on an axis from 0 beside their legend, whole-count ticks.
Every check reads the matplotlib Figure back (or the Markdown), on small hand-made figure numbers of the shape
``figures.json`` holds (tests/e2e/test_paper_figures.py checks the same on a real ``--quick`` run)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from surf_dist.config.presets import PRESETS  # noqa: E402
from surf_dist.config.schema import EvalConfig  # noqa: E402
from surf_dist.graph.labels import graph_title, redrawn_per_task  # noqa: E402
from surf_dist.network.model import models_time  # noqa: E402
from surf_dist.paper import plots, tables  # noqa: E402
from surf_dist.paper.figures import panel_title  # noqa: E402
from surf_dist.plugins import method_label  # noqa: E402
from surf_dist.rundir.styles import method_styles  # noqa: E402

MARK = "quick: reduced settings (preset smoke, 8 agents, 12 steps), not the paper's numbers"
DECENTRALISED = list(EvalConfig().baselines)
STAR = list(PRESETS["star"]["eval"]["baselines"])


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def _curve(num_rounds: int) -> dict[str, list[float]]:
    return {
        "rounds": list(range(num_rounds + 1)),
        "accuracy": [0.1 + 0.8 * r / num_rounds for r in range(num_rounds + 1)],
    }


def _panel(key: str, title: str, methods: list[str]) -> dict[str, Any]:
    return {
        "key": key,
        "title": title,
        "udgd": {"rounds": [0, 2, 4, 6], "accuracy": [0.1, 0.3, 0.6, 0.8]},
        "baselines": {name: _curve(60) for name in methods},
        "udgd_rounds": 6,
        "max_rounds": 60,
    }


def _figures() -> dict[str, Any]:
    """Numbers of the five figures, shaped as ``figures.json`` holds them."""
    layers = {"accuracy": [0.1, 0.3, 0.6, 0.8], "accuracy_std": [0.01] * 4, "loss": [2.0, 1.0, 0.5, 0.3]}
    row = {"violations": 2, "pairs": 10, "train": {"violations": 20, "pairs": 60}}
    return {
        "quick": True,
        "preset": "smoke",
        "mark": MARK,
        "fig1": {"layers": [0, 1, 2, 3], "surf": layers, "standard": layers},
        "fig2": {
            "panels": [
                _panel("kregular", "3-regular, n = 8", DECENTRALISED),
                _panel("random", "random, n = 8, p = 0.3, A + Aᵀ", DECENTRALISED),
                _panel("star", "star, n = 9 (3 uploads a round)", STAR),
            ]
        },
        "fig3": {
            "rounds": [6, 60],
            "rows": [
                {
                    "alpha": alpha,
                    "udgd": 0.55 + 0.1 * alpha,  # all bars high: an axis from the lowest would not start at 0
                    "udgd_std": 0.02,
                    "baselines": {
                        n: {"at_max_rounds": 0.6 + 0.02 * i, "std_at_max_rounds": 0.01}
                        for i, n in enumerate(DECENTRALISED)
                    },
                }
                for alpha in (1.0, 0.7, 0.3)
            ],
        },
        "fig4": {"counts": [0, 1, 2, 3], "surf": [0.74, 0.7, 0.69, 0.59], "standard": [0.72, 0.65, 0.64, 0.56]}
        | {"surf_std": [0.04] * 4, "standard_std": [0.02] * 4},
        "fig5": {
            "epsilons": [0.01, 0.1],
            "rows": [
                {"epsilon": eps, "accuracy_per_layer": [0.1, 0.2, 0.4, 0.6, 0.7, 0.75], **row} for eps in (0.01, 0.1)
            ],
        },
    }


def _texts(fig: Any) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text) if t.get_visible()]


def test_graph_title_says_the_spec_that_was_run() -> None:
    """Catches a panel or table naming another graph than the run's (the quick random graph at p = 0.3 called
    "random (p = 0.1)"), or a title that drops a setting."""
    assert graph_title("random:n=8,p=0.3,symmetrise=or") == "random, n = 8, p = 0.3, A + Aᵀ"
    assert graph_title("random:n=100,p=0.1") == "random, n = 100, p = 0.1"
    assert graph_title("kregular:n=100,degree=3") == "3-regular, n = 100"
    assert graph_title("kregular:n=8,degree=4,mode=random") == "4-regular (uniformly random), n = 8"
    assert graph_title("torus:rows=3,cols=4") == "torus, rows = 3, cols = 4"
    assert graph_title("topologies/two_cliques.json") == "two_cliques.json"
    star = {"topology": {"spec": "star:n=9"}, "model": {"variant": "star", "uploads_per_round": 3}}
    assert panel_title(star) == "star, n = 9 (3 uploads a round)"


def test_redrawn_per_task_tells_a_fresh_draw_from_a_fixed_graph() -> None:
    """Catches the report drawing a per-edge picture over graphs that change per task (or refusing one for a ring,
    which is the same graph for every task)."""
    assert redrawn_per_task("kregular:n=8,degree=3", seed=0, per_task=True)  # relabelled per task
    assert redrawn_per_task("random:n=12,p=0.4", seed=0, per_task=True)
    assert not redrawn_per_task("kregular:n=8,degree=3,relabel=false", seed=0, per_task=True)
    assert not redrawn_per_task("ring:n=8", seed=0, per_task=True)
    assert not redrawn_per_task("random:n=12,p=0.4", seed=0, per_task=False)
    assert redrawn_per_task("not_registered:n=8", seed=0, per_task=True)  # cannot tell: not shown as one graph
    assert not redrawn_per_task("moved/away/graph.json", seed=0, per_task=True)  # a file: one graph


def test_models_time_only_when_something_takes_time() -> None:
    """Catches a table printing 0 simulated seconds for a run with no network model, or hiding a real one."""
    assert not models_time(None) and not models_time({})
    assert not models_time({"latency_ms": 0.0, "bandwidth_mbps": 0.0, "compute_ms": 0.0, "links": None})
    assert not models_time({"deadline_ms": 80.0, "link_spread": 0.5, "jitter": 0.3})  # scale or cut zeros only
    for key, value in (("latency_ms", 50.0), ("bandwidth_mbps", 10.0), ("compute_ms", 1.0), ("links", "l.csv")):
        assert models_time({key: value}), key


def test_method_styles_never_share_a_style() -> None:
    """Catches two methods of one figure drawn alike (GT in U-DGD's blue, push-sum in DFedAvgM's purple), even past
    the palette's colours."""
    names = [*DECENTRALISED, *STAR, *(f"plugin_{i}" for i in range(20))]
    styles = method_styles(names)
    pairs = [(s["color"], str(s["linestyle"])) for s in styles.values()]
    assert len(set(pairs)) == len(styles) == len(dict.fromkeys(names))
    assert all(s["color"] != plots.UDGD_COLOUR for s in styles.values())
    references = [name for name, s in styles.items() if s["linestyle"] in ("--", ":")]
    assert references == ["local", "centralised"]


@pytest.mark.parametrize("name", list(plots.BUILD))
def test_every_quick_figure_carries_the_mark(name: str) -> None:
    """Catches a quick figure that could pass for the paper's (no mark), or the mark on a full-run figure."""
    d = _figures()
    assert MARK in _texts(plots.figure(name, d[name], mark=MARK))
    assert MARK not in _texts(plots.figure(name, d[name]))


def test_fig2_shows_every_evaluated_method_by_its_label_under_the_runs_title() -> None:
    """Catches a Figure 2 panel that leaves out a method its run evaluated (the star panel with FedAvg only), names
    one by its key instead of its label, draws two alike, or titles a panel with another graph's settings."""
    d = _figures()["fig2"]
    fig = plots.figure("fig2", d)
    axes = fig.get_axes()
    assert len(axes) == len(d["panels"])
    for ax, panel in zip(axes, d["panels"]):
        assert ax.get_title() == panel["title"]
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend == [*(method_label(n) for n in panel["baselines"]), "U-DGD"]
        lines = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
        styles = {(line.get_color(), str(line.get_linestyle()), line.get_marker()) for line in lines.values()}
        assert len(styles) == len(lines) == len(legend)
    assert {"FedAvg", "SCAFFOLD", "FedProx", "FedDyn", "MOON"} <= {
        t.get_text() for t in axes[2].get_legend().get_texts()
    }


def test_fig3_bars_stand_on_zero_and_the_legend_covers_none() -> None:
    """Catches Figure 3's bars on an axis from just under the lowest bar (0.51 in the quick run), or its legend
    drawn over them."""
    fig = plots.figure("fig3", _figures()["fig3"])
    ax = fig.get_axes()[0]
    assert ax.get_ylim()[0] == 0
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    bars = [patch for container in ax.containers if isinstance(container, BarContainer) for patch in container]
    assert len(bars) == 3 * (1 + len(DECENTRALISED))
    assert not any(legend.overlaps(bar.get_window_extent()) for bar in bars)


def test_fig4_ticks_are_whole_counts() -> None:
    """Catches ticks at 0.5, 1.5, 2.5 silent agents on Figure 4."""
    d = _figures()["fig4"]
    ax = plots.figure("fig4", d).get_axes()[0]
    assert list(ax.get_xticks()) == d["counts"]
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(c) for c in d["counts"]]


def test_tables_carry_the_mark_and_each_panels_own_graph() -> None:
    """Catches tables.md without the quick mark, or a Figure 2 row naming the paper's graph for another one."""
    d = _figures()
    text = tables.markdown(d)
    assert f"> **{MARK}**" in text.splitlines()[:4]
    rows = [line.split(" | ")[0].lstrip("| ") for line in text.splitlines() if line.startswith("| random")]
    assert rows and set(rows) == {"random, n = 8, p = 0.3, A + Aᵀ"}
    assert "random (p = 0.1)" not in text
    assert "random, n = 100, p = 0.1, A + Aᵀ (here: random, n = 8, p = 0.3, A + Aᵀ)" in text
    assert "> **" not in tables.markdown(d | {"quick": False, "mark": None})
