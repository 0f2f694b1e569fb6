"""DGD and DSGD: one gossip round and one local gradient step per round (docs/method.md).

DGD:   W ← S W − β ∇f(W)          (each agent's whole training set)
DSGD:  W ← S W − β ∇f(W; B)       (a fresh mini-batch of B samples per agent per round)
"""

from __future__ import annotations

from dataclasses import dataclass

from ..plugins import param, register_baseline
from .base import Method, State


@dataclass(frozen=True, kw_only=True)
class DGDParams:
    step: float = param(1.0, low=0, low_open=True, help="β, per-agent mean cross-entropy (tuned on the main job)")


@register_baseline("dgd")
class DGD(Method):
    label = "DGD"
    Params = DGDParams
    tunable = ("step",)

    def round(self, ctx, state: State, r: int) -> State:
        w = state["w"]
        return {"w": ctx.exchange(w) - self.params.step * ctx.grad(w)}


@dataclass(frozen=True, kw_only=True)
class DSGDParams:
    step: float = param(1.0, low=0, low_open=True, help="β (tuned on the main job)")
    batch: int = param(10, low=1, help="B, samples per agent per round")


@register_baseline("dsgd")
class DSGD(Method):
    label = "DSGD"
    Params = DSGDParams
    tunable = ("step",)

    def round(self, ctx, state: State, r: int) -> State:
        w = state["w"]
        return {"w": ctx.exchange(w) - self.params.step * ctx.grad(w, *ctx.batch(self.params.batch))}
