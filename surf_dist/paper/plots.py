"""Drawing the paper's five figures from the numbers in ``figures.json`` (one function per figure).

What each figure plots (docs/method.md):

* ``fig1`` Constrained (SURF) vs standard unrolling: meta-test loss (left, log scale) and accuracy
  (right) at every layer l = 0..L, mean over the meta-test tasks (accuracy ± one std as a band).
* ``fig2`` Accuracy vs communication rounds, one panel per topology: U-DGD at K·l rounds for every layer
  l, and DGD, DSGD, DFedAvgM after every round up to 10 × K·L.
* ``fig3`` Heterogeneity: final accuracy at every test Dirichlet α (the model trained at 0.7, not
  retrained): U-DGD after K·L rounds, each baseline after 10 × K·L (re-run per α), ± std for U-DGD.
* ``fig4`` Asynchrony: final accuracy (± std over the tasks) vs silent agents per layer, SURF and
  standard unrolling.
* ``fig5`` ε sensitivity (L = 5, α = 0.3): accuracy per layer, one line per ε (left); constraint
  violations on the meta-test tasks and during meta-training, as a share of their (task or step, layer)
  pairs, per ε (right).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..plugins import method_label
from ..rundir.outputs import save_figure  # noqa: E402

_COLOURS = {"udgd": "C0", "surf": "C0", "standard": "C3", "dgd": "C1", "dsgd": "C2", "dfedavgm": "C4", "fedavg": "C5"}
_LABELS = {"udgd": "U-DGD", "surf": "SURF (constrained)", "standard": "standard unrolling"}


def _label(name: str) -> str:
    return _LABELS.get(name, method_label(name))


def draw_fig1(d: dict[str, Any], path: Path) -> None:
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
    save_figure(fig, path)


def draw_fig2(d: dict[str, Any], path: Path) -> None:
    panels = d["panels"]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for name, curve in panel["baselines"].items():
            ax.plot(curve["rounds"], curve["accuracy"], color=_COLOURS.get(name), label=_label(name))
        u = panel["udgd"]
        ax.plot(u["rounds"], u["accuracy"], "o-", color=_COLOURS["udgd"], label=_label("udgd"), zorder=3)
        ax.axvline(panel["udgd_rounds"], color="grey", lw=0.8, ls=":")
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(left=0)
        ax.set(xlabel="communication rounds", ylabel="meta-test accuracy", title=panel["title"], ylim=(0, 1))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    save_figure(fig, path)


def draw_fig3(d: dict[str, Any], path: Path) -> None:
    rows = d["rows"]
    r, r_max = d["rounds"]
    names = list(rows[0]["baselines"]) if rows else []
    series: list[tuple[str, str, list[float], list[float] | None]] = [
        ("udgd", f"U-DGD @ {r}", [row["udgd"] for row in rows], [row["udgd_std"] for row in rows])
    ]
    series += [
        (n, f"{method_label(n)} @ {r_max}", [row["baselines"][n]["at_max_rounds"] for row in rows], None) for n in names
    ]
    fig, ax = plt.subplots(figsize=(6, 4))
    width = 0.8 / max(1, len(series))
    for i, (key, label, values, std) in enumerate(series):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(rows))]
        ax.bar(xs, values, width, yerr=std, color=_COLOURS.get(key), label=label, capsize=3)
    ax.set_xticks(range(len(rows)), [f"α = {row['alpha']:g}" for row in rows])
    lowest = min((v for _, _, values, _ in series for v in values), default=0.0)
    ax.set(ylabel="meta-test accuracy", title="trained at α = 0.7, tested at α", ylim=(max(0.0, lowest - 0.1), 1))
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="lower left", fontsize=8)
    save_figure(fig, path)


def draw_fig4(d: dict[str, Any], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in ("surf", "standard"):
        ax.errorbar(
            d["counts"], d[key], yerr=d[f"{key}_std"], fmt="o-", capsize=3, color=_COLOURS[key], label=_label(key)
        )
    ax.set(xlabel="silent agents per layer", ylabel="final meta-test accuracy", title="asynchrony")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)


def draw_fig5(d: dict[str, Any], path: Path) -> None:
    rows = d["rows"]
    fig, (ax_acc, ax_viol) = plt.subplots(1, 2, figsize=(10, 4))
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
    save_figure(fig, path)


DRAW: dict[str, Callable[[dict[str, Any], Path], None]] = {
    "fig1": draw_fig1,
    "fig2": draw_fig2,
    "fig3": draw_fig3,
    "fig4": draw_fig4,
    "fig5": draw_fig5,
}
