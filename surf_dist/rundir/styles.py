"""How figures draw methods: one colour per method, the same in every panel of a figure, never one colour for
two methods; the references (``local``, the lower bound, and ``centralised``, the ceiling) in grey and black,
dashed, so that they read as references and not as competitors."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

UDGD_COLOUR = "#1f77b4"  # matplotlib's C0: U-DGD (and SURF) in every figure
REFERENCE_STYLES: dict[str, dict[str, Any]] = {
    "local": {"color": "0.55", "linestyle": ":"},
    "centralised": {"color": "black", "linestyle": "--"},
}
# tab10 without U-DGD's blue and the references' grey, then tab20's light variants of those: 16 colours
PALETTE = (
    "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
    "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5",
)  # fmt: skip


def method_styles(names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Line styles (``color``, ``linestyle``) for the methods ``names``, in that order: the references their own,
    the others the palette's colours in turn (solid; past its 16 colours, dashed and then dotted, so that two
    methods never share a style)."""
    styles: dict[str, dict[str, Any]] = {}
    others = 0
    for name in dict.fromkeys(names):
        if name in REFERENCE_STYLES:
            styles[name] = dict(REFERENCE_STYLES[name])
            continue
        turn, index = divmod(others, len(PALETTE))
        styles[name] = {"color": PALETTE[index], "linestyle": ("-", "--", ":", "-.")[turn % 4]}
        others += 1
    return styles
