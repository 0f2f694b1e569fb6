"""Push-sum, stochastic gradient push (Assran, Loizou, Ballas and Rabbat, 2019), for directed graphs: every agent
splits its numerator x and its weight y over itself and the agents it sends to (a column-stochastic P), and its
model is the de-biased ratio z = x / y:

    x½ = x − β ∇f(z)          [x ‖ y] ← P [x½ ‖ y]          z = x / y

One exchange of D + 1 floats a round (the weight travels beside the iterate). On an undirected graph P is the
column-normalised (A + I) D⁻¹.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..plugins import param, register_baseline
from .base import Method, State
from .tracking import _cat


@dataclass(frozen=True, kw_only=True)
class PushSumParams:
    step: float = param(10.0, low=0, low_open=True, help="β, the step at the de-biased model (tuned on the main job)")


@register_baseline("pushsum")
class PushSum(Method):
    """Stochastic gradient push: push-sum consensus of a numerator and a weight (directed graphs)."""

    label = "push-sum"
    Params = PushSumParams
    tunable = ("step",)
    mixing = "column"
    directed = True

    def message_floats(self, dim: int) -> int:
        return dim + 1

    def init(self, ctx, w0_AD) -> State:
        return {"x": w0_AD, "y": w0_AD.new_ones((w0_AD.shape[0], 1))}

    def round(self, ctx, state: State, r: int) -> State:
        x, y = state["x"], state["y"]
        half = x - self.params.step * ctx.grad(x / y)
        mixed = ctx.exchange(_cat(half, y))
        return {"x": mixed[:, :-1], "y": mixed[:, -1:]}

    def model(self, state: State):
        return state["x"] / state["y"]
