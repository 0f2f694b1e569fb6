"""DFedAvgM (Sun et al., 2021): Q local heavy-ball SGD steps from w_i, the momentum buffer restarting every
round, then one gossip round:

    y⁰ = w,  y^{q+1} = y^q − β ∇f(y^q; B_q) + θ (y^q − y^{q−1})   (y^{−1} = y⁰),   W ← S Y^Q

The reference code's momentum is identically 0 (docs/method.md); here it is real.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..plugins import param, register_baseline
from .base import Method, State


@dataclass(frozen=True, kw_only=True)
class DFedAvgMParams:
    step: float = param(3.0, low=0, low_open=True, help="β of the local steps (tuned with θ on the main job)")
    local_steps: int = param(5, low=1, help="Q, local steps per round")
    momentum: float = param(
        0.5, low=0, high=1, high_open=True, grid=(0.0, 0.5, 0.9), help="θ, heavy-ball momentum of the local steps"
    )
    batch: int = param(10, low=1, help="B, samples per local step")


@register_baseline("dfedavgm")
class DFedAvgM(Method):
    label = "DFedAvgM"
    Params = DFedAvgMParams
    tunable = ("step", "momentum")

    def local_updates(self) -> int:
        return self.params.local_steps

    def round(self, ctx, state: State, r: int) -> State:
        p = self.params
        y = y_prev = state["w"]
        for q in range(p.local_steps):
            g = ctx.grad(y, *ctx.batch(p.batch, q))
            y, y_prev = y - p.step * g + p.momentum * (y - y_prev), y
        return {"w": ctx.exchange(y)}
