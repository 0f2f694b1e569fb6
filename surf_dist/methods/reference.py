"""The two references every table needs, as methods on the same tasks, W₀ and rounds:

* ``local``: every agent trains alone on its own data, W ← W − β ∇f(W): no exchange, zero bytes. The lower
  bound a method that communicates must beat.
* ``centralised``: one model on the pooled data of all agents (its gradient the mean of the agents'), Q full
  gradient steps a round from the mean of W₀: the ceiling. Its pooling is the simulation's, not a protocol:
  it sends no agent message (the ledger files it as simulator traffic).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..plugins import param, register_baseline
from .base import Method, State


@dataclass(frozen=True, kw_only=True)
class LocalParams:
    step: float = param(10.0, low=0, low_open=True, help="β, the step on the agent's own data (tuned on the main job)")


@register_baseline("local")
class Local(Method):
    """Every agent alone on its own data: no communication (the lower bound)."""

    label = "local"
    Params = LocalParams
    variant = "any"
    directed = True  # no messages on the graph: any graph will do
    senders = ()
    tunable = ("step",)

    def round(self, ctx, state: State, r: int) -> State:
        w = state["w"]
        return {"w": w - self.params.step * ctx.grad(w)}


@dataclass(frozen=True, kw_only=True)
class CentralisedParams:
    step: float = param(10.0, low=0, low_open=True, help="the gradient step on the pooled data (tuned on the main job)")
    local_steps: int = param(1, low=1, help="gradient steps a round")


@register_baseline("centralised")
class Centralised(Method):
    """One model on the pooled data (the ceiling)."""

    label = "centralised"
    Params = CentralisedParams
    variant = "any"
    directed = True  # no messages on the graph: any graph will do
    senders = ()
    tunable = ("step",)

    def local_updates(self) -> int:
        return self.params.local_steps

    def init(self, ctx, w0_AD) -> State:
        return {"w": ctx.pooled_mean(w0_AD).expand_as(w0_AD).clone()}

    def round(self, ctx, state: State, r: int) -> State:
        w = state["w"]
        for _ in range(self.params.local_steps):
            w = w - self.params.step * ctx.pooled_mean(ctx.grad(w)).expand_as(w)
        return {"w": w}
