"""How figures draw methods: one colour per method, never one colour for two methods; the references (the
methods that exchange nothing, ``senders = ()``: the local lower bound and the centralised ceiling) in black and
grey, dashed and dotted, so that they read as references and not as competitors."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..plugins import METHODS

UDGD_COLOUR = "#1f77b4"  # matplotlib's C0: U-DGD (and SURF) in every figure
REFERENCE_STYLES = ({"color": "black", "linestyle": "--"}, {"color": "0.55", "linestyle": ":"})
# tab10 without U-DGD's blue and the references' grey, then tab20's light variants of those: 16 colours
PALETTE = (
    "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
    "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5",
)  # fmt: skip
LINESTYLES = ("-", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))


def is_reference(name: str) -> bool:
    """Whether method ``name`` is a reference: registered, and exchanging nothing in a round (a method of a plugin
    that is not imported here is not)."""
    return name in METHODS and not METHODS.get(name).senders


def method_styles(names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Line styles (``color``, ``linestyle``) for the methods ``names``, in that order, each pair of them
    different: the references black dashed, then grey dotted; the others the palette's colours in turn, solid,
    and past its 16 colours the palette again in other dash patterns."""
    styles: dict[str, dict[str, Any]] = {}
    num_references = num_others = 0
    for name in dict.fromkeys(names):
        if is_reference(name) and num_references < len(REFERENCE_STYLES):
            styles[name] = dict(REFERENCE_STYLES[num_references])
            num_references += 1
            continue
        turn, index = divmod(num_others, len(PALETTE))
        styles[name] = {"color": PALETTE[index], "linestyle": LINESTYLES[turn % len(LINESTYLES)]}
        num_others += 1
    return styles
