"""FedAvg on a star (``model.variant=star``; the methods of a star mix with ``graph.star_shift(..., "mean")``).

A round: the uploading clients run Q local heavy-ball SGD steps from their model (the server's, downloaded the
round before); the server takes the mean of the uploads (exchange 1: only uploaders send); every client downloads
it (exchange 2: only the server sends). ``star_round`` is that round for any local update, which the other star
methods (``methods.star``) reuse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from ..plugins import param, register_baseline
from .base import Method, State


def star_round(ctx: Any, w_AD: Any, local: Callable[[Any], Any]) -> tuple[Any, Any]:
    """One star round from the clients' models ``w`` (the server's, at every row): the uploaders' local models
    ``local(w)`` (the others keep ``w``), uploaded and averaged at the server, then broadcast. Returns (the uploaded
    models, the new models of every agent: the server's mean at row 0 and at every client)."""
    uploading_A = ctx.uploading_A
    y = local(w_AD).where(uploading_A, w_AD)
    server_A = ctx.server_A
    aggregated = ctx.exchange(y).where(server_A, w_AD)
    broadcast = ctx.exchange(aggregated)
    return y, aggregated.where(server_A, broadcast)


@dataclass(frozen=True, kw_only=True)
class FedAvgParams:
    step: float = param(1.0, low=0, low_open=True, help="local SGD step of the uploading clients")
    local_steps: int = param(5, low=1, help="Q, local steps per round")
    momentum: float = param(
        0.5, low=0, high=1, high_open=True, grid=(0.0, 0.5, 0.9), help="θ, heavy-ball momentum of the local steps"
    )
    batch: int = param(10, low=1, help="B, samples per local step")


class StarMethod(Method):
    """A classical FL method on the star: the server (agent 0) averages the uploads, every client downloads."""

    variant = "star"
    senders = ("uploaders", "server")
    computes = "uploaders"
    mixing = "mean"
    tunable: ClassVar[tuple[str, ...]] = ("step",)

    def local_updates(self) -> int:
        return self.params.local_steps


@register_baseline("fedavg")
class FedAvg(StarMethod):
    """FedAvg: local heavy-ball SGD on the uploading clients, the mean of their models at the server."""

    label = "FedAvg"
    Params = FedAvgParams
    tunable = ("step", "momentum")

    def round(self, ctx, state: State, r: int) -> State:
        p, w = self.params, state["w"]

        def local(y):
            y_prev = y
            for q in range(p.local_steps):
                step_AD = -p.step * ctx.grad(y, *ctx.batch(p.batch, q)) + p.momentum * (y - y_prev)
                y, y_prev = y + step_AD, y
            return y

        _, w_new = star_round(ctx, w, local)
        return {"w": w_new}
