"""The five figures' numbers as Markdown tables (``DIR/tables.md``), beside the paper's where it states or
plots them (docs/method.md; values read off the paper's figures are about ±2 points)."""

from __future__ import annotations

from typing import Any

from ..plugins import method_label

# docs/method.md (fig-read), accuracies in %, keyed by the paper's panel (``figures.Panel.key``), whatever graph
# the run behind a panel used (its own settings are in the panel's title)
PAPER_GRAPHS = {
    "kregular": "3-regular, n = 100",
    "random": "random, n = 100, p = 0.1, A + Aᵀ",
    "star": "star, n = 100 (10 uploads a round)",
}
PAPER_FIG2: dict[str, dict[str, int | str]] = {
    "kregular": {"udgd": 84, "dgd": 72, "dsgd": 72, "dfedavgm": 78},
    "random": {"udgd": 84, "dgd": 76, "dsgd": 76, "dfedavgm": 80},
    # relative to centralised training: SURF in 10 rounds, the star baselines at 25 rounds
    "star": {
        "udgd": "0.96 rel.",
        "fedavg": "≈ 0.8 rel. @ 25",
        "scaffold": "≈ 0.8 rel. @ 25",
        "fedprox": "≈ 0.8 rel. @ 25",
        "feddyn": "≈ 0.84 rel. @ 25",
        "moon": "≈ 0.79 rel. @ 25",
    },
}
PAPER_FIG3 = {1.0: (86, 72, 72, 80), 0.7: (84, 71, 71, 78), 0.3: (76, 61, 61, 69)}  # U-DGD, DGD, DSGD, DFedAvgM
PAPER_FIG4 = {
    "surf": {0: 0.96, 2: 0.96, 4: 0.947, 6: 0.938, 8: 0.897, 10: 0.875},
    "standard": {0: 0.96, 2: 0.94, 4: 0.912, 6: 0.879, 8: 0.844, 10: 0.799},
}
PAPER_FIG5_LAYER4 = {0.001: 13, 0.01: 24, 0.05: 35, 0.1: 47, 0.5: 37}  # final layer ≈ 75-76 % for every ε


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _pct_or_dash(x: float | None) -> str:
    return "—" if x is None else _pct(x)


def fig1(d: dict[str, Any]) -> list[str]:
    header = ["layer", *map(str, d["layers"])]
    rows = [
        ["SURF accuracy %", *map(_pct, d["surf"]["accuracy"])],
        ["standard accuracy %", *map(_pct, d["standard"]["accuracy"])],
        ["SURF loss", *(f"{v:.3g}" for v in d["surf"]["loss"])],
        ["standard loss", *(f"{v:.3g}" for v in d["standard"]["loss"])],
    ]
    note = "Paper (3-regular): SURF 10 → 96 % almost monotone; standard unrolling ≈ 0 % at layers 8-9, 96 % at 10."
    return ["## Figure 1: constrained vs standard unrolling, per layer", "", *_table(header, rows), "", note]


def fig2(d: dict[str, Any]) -> list[str]:
    lines = ["## Figure 2: accuracy vs communication rounds", ""]
    header = ["topology", "method", "rounds", "accuracy % @ U-DGD's rounds", "accuracy % @ 10×"]
    header.append("paper % (@ 20 / 200; star: relative)")
    rows = []
    for panel in d["panels"]:
        r, r_max = panel["udgd_rounds"], panel["max_rounds"]
        paper = PAPER_FIG2.get(panel.get("key", ""), {})
        rows.append(
            [
                panel["title"],
                "U-DGD",
                str(r),
                _pct(panel["udgd"]["accuracy"][-1]),
                "—",
                str(paper.get("udgd", "—")),
            ]
        )
        for name, curve in panel["baselines"].items():
            acc = dict(zip(curve["rounds"], curve["accuracy"]))
            rows.append(
                [
                    panel["title"],
                    method_label(name),
                    f"{r} / {r_max}",
                    _pct_or_dash(acc.get(r)),
                    _pct_or_dash(acc.get(r_max)),
                    str(paper.get(name, "—")),
                ]
            )
    known = [panel for panel in d["panels"] if panel.get("key") in PAPER_GRAPHS]
    papers = [f"{PAPER_GRAPHS[panel['key']]} (here: {panel['title']})" for panel in known]
    note = "The paper column is the paper's own graphs: " + "; ".join(papers) + "." if papers else ""
    return lines + _table(header, rows) + (["", note] if note else [])


def fig3(d: dict[str, Any]) -> list[str]:
    r, r_max = d["rounds"]
    names = list(d["rows"][0]["baselines"]) if d["rows"] else []
    header = [
        "test α",
        f"U-DGD @ {r}",
        *(f"{method_label(n)} @ {r_max}" for n in names),
        "paper (U-DGD, DGD, DSGD, DFedAvgM)",
    ]
    rows = []
    for row in d["rows"]:
        paper = PAPER_FIG3.get(float(row["alpha"]))
        cells = [_pct(row["baselines"][n]["at_max_rounds"]) for n in names]
        rows.append(
            [
                f"{row['alpha']:g}",
                f"{_pct(row['udgd'])} ± {_pct(row['udgd_std'])}",
                *cells,
                " / ".join(map(str, paper or ())),
            ]
        )
    return ["## Figure 3: trained at α = 0.7, tested at α without retraining (accuracy %)", "", *_table(header, rows)]


def fig4(d: dict[str, Any]) -> list[str]:
    header = ["silent agents per layer", *map(str, d["counts"])]
    rows = []
    for key, label in (("surf", "SURF"), ("standard", "standard unrolling")):
        rows.append([label, *(f"{a:.3f} ± {s:.3f}" for a, s in zip(d[key], d[f"{key}_std"]))])
        rows.append([f"{label}, paper", *(f"{PAPER_FIG4[key].get(c, '—')}" for c in d["counts"])])
    lines = ["## Figure 4: final accuracy vs silent agents per layer", "", *_table(header, rows)]
    links = d.get("links")
    if links:
        link_rows = [
            [label, *(f"{a:.3f} ± {s:.3f}" for a, s in zip(links[key], links[f"{key}_std"]))]
            for key, label in (("surf", "SURF"), ("standard", "standard unrolling"))
        ]
        lines += ["", "Links that fail (each link, each round, with probability p; weights renormalised):", ""]
        lines += _table(["p", *(f"{p:g}" for p in links["ps"])], link_rows)
    return lines


def fig5(d: dict[str, Any]) -> list[str]:
    rows_in = d["rows"]
    num_layers = len(rows_in[0]["accuracy_per_layer"]) - 1 if rows_in else 0
    header = ["ε", *(f"layer {layer} %" for layer in range(num_layers + 1))]
    header += ["violations, meta-test", "violations, training", "paper layer 4 %"]
    rows = []
    for row in rows_in:
        test = f"{row['violations']} / {row['pairs']}"
        train = f"{row['train']['violations']} / {row['train']['pairs']}"
        paper = PAPER_FIG5_LAYER4.get(float(row["epsilon"]), "—")
        rows.append([f"{row['epsilon']:g}", *map(_pct, row["accuracy_per_layer"]), test, train, str(paper)])
    note = "Paper (α = 0.3, L = 5): last layer ≈ 75-76 % for every ε; the largest ε violates most."
    return ["## Figure 5: ε sensitivity, accuracy per layer (L = 5, α = 0.3)", "", *_table(header, rows), "", note]


def markdown(result: dict[str, Any]) -> str:
    """All five tables, with a header naming the preset and, for the quick version, its mark (``result["mark"]``):
    these numbers show the pipeline, not the paper's."""
    title = [f"# Paper figures ({'quick, ' if result['quick'] else ''}preset {result['preset']})"]
    if result.get("mark"):
        title += ["", f"> **{result['mark']}**"]
    makers = {"fig1": fig1, "fig2": fig2, "fig3": fig3, "fig4": fig4, "fig5": fig5}
    parts = [title, *(make(result[name]) for name, make in makers.items() if name in result)]
    return "\n\n".join("\n".join(p) for p in parts) + "\n"
