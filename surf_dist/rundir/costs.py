"""What each method's accuracy costs: agent bytes from the ledger, simulated seconds from the network model,
and the cost of reaching a target accuracy.

``with_costs`` gives the ``eval`` section of a summary, for U-DGD and every baseline,
``agent_bytes`` (the agents' logical bytes after 0, 1, ... layers or rounds, mean per meta-test task, aligned
with ``accuracy_per_layer`` / ``accuracy``) and ``to_target`` (the first layer or round whose mean accuracy
reaches ``eval.target_accuracy``: its rounds, simulated seconds and agent bytes; null when never reached).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..comm.ledger import Ledger
from .summary import EvalResult


def _cumulative(per_layer: dict[int, int], num_points: int, num_tasks: int) -> list[float]:
    """[0, b_1, b_1 + b_2, ...] with b_l the mean bytes of layer (round) l per task."""
    values = [per_layer.get(layer, 0) / max(num_tasks, 1) for layer in range(1, num_points)]
    return [0.0, *np.cumsum(values).tolist()]


def to_target(
    accuracy: Sequence[float],
    rounds: Sequence[Any],
    time_s: Sequence[float | None],
    agent_bytes: Sequence[float],
    target: float,
) -> dict[str, Any] | None:
    """The cost of the first point whose accuracy reaches ``target`` (None when none does); ``time_s`` None where
    nothing models time."""
    for i, a in enumerate(accuracy):
        if a >= target:
            return {"rounds": rounds[i], "time_s": time_s[i], "agent_bytes": agent_bytes[i], "accuracy": a}
    return None


def with_costs(ev: EvalResult, ledger: Ledger, target: float) -> EvalResult:
    """``ev`` with ``agent_bytes`` (from the ledger's eval phases) and ``to_target`` for U-DGD and every method."""
    num_tasks, u, udgd = ev.num_tasks, ev.udgd, None
    if u is not None:
        u_bytes = _cumulative(ledger.per_layer("eval/udgd"), len(u.accuracy_per_layer), num_tasks)
        udgd = dataclasses.replace(
            u,
            agent_bytes=u_bytes,
            to_target=to_target(u.accuracy_per_layer, u.rounds_per_layer, u.time_s, u_bytes, target),
        )
    baselines = {}
    for name, b in ev.baselines.items():
        b_bytes = _cumulative(ledger.per_layer(f"eval/{name}"), len(b.accuracy), num_tasks)
        baselines[name] = dataclasses.replace(
            b, agent_bytes=b_bytes, to_target=to_target(b.accuracy, b.rounds, b.time_s, b_bytes, target)
        )
    return dataclasses.replace(ev, udgd=udgd, baselines=baselines, target_accuracy=target)
