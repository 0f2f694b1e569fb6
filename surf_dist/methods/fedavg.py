"""FedAvg on a star (``model.variant=star``; the mixer holds ``graph.star_shift(..., "fedavg")``).

A round: the uploading clients run Q local heavy-ball SGD steps from their model (the server's, downloaded the
round before); the server takes the mean of the uploads (exchange 1: only uploaders send); every client downloads
it (exchange 2: only the server sends).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..plugins import param, register_baseline
from .base import Method, State


@dataclass(frozen=True, kw_only=True)
class FedAvgParams:
    step: float = param(1.0, low=0, low_open=True, help="local SGD step of the uploading clients")
    local_steps: int = param(5, low=1, help="Q, local steps per round")
    momentum: float = param(0.5, low=0, high=1, high_open=True, help="θ, heavy-ball momentum of the local steps")
    batch: int = param(10, low=1, help="B, samples per local step")


@register_baseline("fedavg")
class FedAvg(Method):
    label = "FedAvg"
    Params = FedAvgParams
    variant = "star"
    senders = ("uploaders", "server")
    computes = "uploaders"
    tunable = ("step",)

    def local_updates(self) -> int:
        return self.params.local_steps

    def round(self, ctx, state: State, r: int) -> State:
        p, w = self.params, state["w"]
        uploading_A = ctx.uploading_A
        y = y_prev = w
        for q in range(p.local_steps):
            step_AD = -p.step * ctx.grad(y, *ctx.batch(p.batch, q)) + p.momentum * (y - y_prev)
            y, y_prev = (y + step_AD).where(uploading_A, y), y
        server_A = ctx.server_A
        aggregated = ctx.exchange(y).where(server_A, w)
        broadcast = ctx.exchange(aggregated)
        return {"w": aggregated.where(server_A, broadcast)}
