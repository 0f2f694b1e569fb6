"""Drawing the paper's five figures from the numbers in ``figures.json`` (one function per figure, each returning
its matplotlib ``Figure`` so that tests read back its labels, axes and ticks; ``draw`` saves one).

What each figure plots (docs/method.md):

* ``fig1`` Constrained (SURF) vs standard unrolling: meta-test loss (left, log scale) and accuracy
  (right) at every layer l = 0..L, mean over the meta-test tasks (accuracy ± one std as a band).
* ``fig2`` Accuracy vs communication rounds, one panel per topology, each titled from its run's own graph spec:
  U-DGD at K·l rounds for every layer l, and every method the run evaluated (its ``eval.baselines``, by their
  labels) after every round up to 10 × K·L; one colour per method in a panel, the references (local,
  centralised) grey and black, dotted and dashed.
* ``fig3`` Heterogeneity: final accuracy at every test Dirichlet α (the model trained at 0.7, not
  retrained): U-DGD after K·L rounds, each baseline after 10 × K·L (re-run per α), ± std over the tasks; bars
  on an axis from 0, the legend beside the axes, never over the bars.
* ``fig4`` Asynchrony: final accuracy (± std over the tasks) vs silent agents per layer, SURF and
  standard unrolling; a tick at every count evaluated (whole agents).
* ``fig5`` ε sensitivity (L = 5, α = 0.3): accuracy per layer, one line per ε (left); constraint
  violations on the meta-test tasks and during meta-training, as a share of their (task or step, layer)
  pairs, per ε (right).

A figure of the quick version carries ``mark`` (``figures.quick_mark``) as its title line, so that no copy of it
passes for the paper's numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ..plugins import method_label  # noqa: E402
from ..rundir.outputs import save_figure  # noqa: E402
from ..rundir.styles import UDGD_COLOUR, method_styles  # noqa: E402

_COLOURS = {"udgd": UDGD_COLOUR, "surf": UDGD_COLOUR, "standard": "#d62728"}
_LABELS = {"udgd": "U-DGD", "surf": "SURF (constrained)", "standard": "standard unrolling"}
MARK_COLOUR = "#d62728"


def _label(name: str) -> str:
    return _LABELS.get(name, method_label(name))


def fig1(d: dict[str, Any]) -> Figure:
    """Loss (log) and accuracy per layer, SURF against standard unrolling."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("surf", "standard"):
        layers, acc, std = d["layers"], d[key]["accuracy"], d[key]["accuracy_std"]
        ax_loss.plot(layers, d[key]["loss"], "o-", color=_COLOURS[key], label=_label(key))
        ax_acc.plot(layers, acc, "o-", color=_COLOURS[key], label=_label(key))
        ax_acc.fill_between(layers, [a - s for a, s in zip(acc, std)], [a + s for a, s in zip(acc, std)], alpha=0.15)
    ax_loss.set_yscale("log")
    ax_loss.set(xlabel="layer", ylabel="meta-test loss", title="loss per layer")
    ax_acc.set(xlabel="layer", ylabel="meta-test accuracy", title="accuracy per layer", ylim=(0, 1))
    for ax in (ax_loss, ax_acc):
        ax.set_xticks(d["layers"])
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


def fig2(d: dict[str, Any]) -> Figure:
    """One panel per topology: U-DGD per layer and every evaluated method per round, each by its label."""
    panels = d["panels"]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 5.2), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        # one colour per method within a panel (panels that evaluate the same methods colour them alike)
        styles = method_styles(panel["baselines"])
        for name, curve in panel["baselines"].items():
            ax.plot(curve["rounds"], curve["accuracy"], label=_label(name), **styles[name])
        u = panel["udgd"]
        ax.plot(u["rounds"], u["accuracy"], "o-", color=_COLOURS["udgd"], label=_label("udgd"), zorder=3)
        ax.axvline(panel["udgd_rounds"], color="grey", lw=0.8, ls=":")
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(left=0)
        ax.set(xlabel="communication rounds", ylabel="meta-test accuracy", title=panel["title"], ylim=(0, 1))
        ax.grid(alpha=0.3)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=7, frameon=False)
    return fig


def _fig3_series(d: dict[str, Any]) -> list[tuple[str, str, list[float], list[float] | None]]:
    """(method, legend label, values per α, std per α) of U-DGD and every baseline, in the data's order."""
    rows = d["rows"]
    r, r_max = d["rounds"]
    names = list(rows[0]["baselines"]) if rows else []
    series: list[tuple[str, str, list[float], list[float] | None]] = [
        ("udgd", f"U-DGD @ {r}", [row["udgd"] for row in rows], [row["udgd_std"] for row in rows])
    ]
    for n in names:
        values = [row["baselines"][n]["at_max_rounds"] for row in rows]
        stds = [row["baselines"][n].get("std_at_max_rounds") for row in rows]
        series.append((n, f"{method_label(n)} @ {r_max}", values, None if None in stds else stds))
    return series


def fig3(d: dict[str, Any]) -> Figure:
    """Grouped bars per test α on an axis from 0, the legend beside the axes."""
    rows = d["rows"]
    series = _fig3_series(d)
    styles = method_styles(key for key, *_ in series if key != "udgd")
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(1, len(series))
    for i, (key, label, values, std) in enumerate(series):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(rows))]
        colour = _COLOURS["udgd"] if key == "udgd" else styles[key]["color"]
        hatch = "//" if key != "udgd" and styles[key]["linestyle"] != "-" else None  # references, second-turn colours
        ax.bar(xs, values, width, yerr=std, color=colour, hatch=hatch, edgecolor="white", label=label, capsize=2)
    ax.set_xticks(range(len(rows)), [f"α = {row['alpha']:g}" for row in rows])
    ax.set(ylabel="meta-test accuracy", title="trained at α = 0.7, tested at α", ylim=(0, 1))
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0, fontsize=8)
    return fig


def fig4(d: dict[str, Any]) -> Figure:
    """Final accuracy ± std against silent agents per layer; a tick at every count evaluated."""
    links = d.get("links")
    fig, axes = plt.subplots(1, 2 if links else 1, figsize=(11 if links else 6, 4), squeeze=False)
    ax = axes[0][0]
    for key in ("surf", "standard"):
        ax.errorbar(
            d["counts"], d[key], yerr=d[f"{key}_std"], fmt="o-", capsize=3, color=_COLOURS[key], label=_label(key)
        )
    ax.set_xticks(d["counts"], [str(int(c)) for c in d["counts"]])
    ax.set(xlabel="silent agents per layer", ylabel="final meta-test accuracy", title="asynchrony")
    ax.grid(alpha=0.3)
    ax.legend()
    if links:  # the second kind: links that fail
        ax = axes[0][1]
        for key in ("surf", "standard"):
            ax.errorbar(links["ps"], links[key], yerr=links[f"{key}_std"], fmt="o-", capsize=3,
                        color=_COLOURS[key], label=_label(key))  # fmt: skip
        ax.set_xticks(links["ps"], [f"{p:g}" for p in links["ps"]])
        ax.set(xlabel="probability that a link fails in a round", ylabel="final meta-test accuracy",
               title="links that fail")  # fmt: skip
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


def fig5(d: dict[str, Any]) -> Figure:
    """Accuracy per layer per ε, and the share of constraint violations per ε (meta-test and training)."""
    rows = d["rows"]
    fig, (ax_acc, ax_viol) = plt.subplots(1, 2, figsize=(10, 4))
    layers: list[int] = []
    for row in rows:
        layers = list(range(len(row["accuracy_per_layer"])))
        ax_acc.plot(layers, row["accuracy_per_layer"], "o-", label=f"ε = {row['epsilon']:g}")
    ax_acc.set(xlabel="layer", ylabel="meta-test accuracy", title="accuracy per layer", ylim=(0, 1))
    ax_acc.set_xticks(layers)
    ax_acc.grid(alpha=0.3)
    ax_acc.legend()
    xs = range(len(rows))
    test = [row["violations"] / max(1, row["pairs"]) for row in rows]
    train = [row["train"]["violations"] / max(1, row["train"]["pairs"]) for row in rows]
    ax_viol.bar([x - 0.2 for x in xs], test, 0.4, label="meta-test (task, layer) pairs")
    ax_viol.bar([x + 0.2 for x in xs], train, 0.4, label="meta-training (step, layer) pairs")
    ax_viol.set_xticks(list(xs), [f"{row['epsilon']:g}" for row in rows])
    ax_viol.set(xlabel="ε", ylabel="share violated", title="constraint violations", ylim=(0, 1))
    ax_viol.grid(alpha=0.3, axis="y")
    ax_viol.legend()
    return fig


BUILD: dict[str, Callable[[dict[str, Any]], Figure]] = {
    "fig1": fig1,
    "fig2": fig2,
    "fig3": fig3,
    "fig4": fig4,
    "fig5": fig5,
}


def figure(name: str, d: dict[str, Any], *, mark: str | None = None) -> Figure:
    """Figure ``name`` (``fig1`` … ``fig5``) of its numbers ``d``, with ``mark`` as its title line when given."""
    fig = BUILD[name](d)
    if mark:
        fig.suptitle(mark, color=MARK_COLOUR, fontsize=10, fontweight="bold", wrap=True)
    return fig


def draw(name: str, d: dict[str, Any], path: Path, *, mark: str | None = None) -> None:
    """Write figure ``name`` as a PNG at ``path``."""
    save_figure(figure(name, d, mark=mark), path)
