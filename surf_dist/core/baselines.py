"""Classical decentralized baselines on the same Mixer and ledger as U-DGD (PAPER.md §6).

Each iteration costs exactly one round (one ``mixer.shift``); accuracy on the agents' held-out samples
is recorded after every round. With g_i the gradient of agent i's own mean cross-entropy:

* DGD:      W ← S W − β g(W)                  (full local training set)
* DSGD:     W ← S W − β g(W; B)               (fresh mini-batch of B samples per agent per round)
* DFedAvgM: Q local heavy-ball SGD steps from w_i (y ← y − β g(y; B) + θ (y − y_prev), the momentum
            buffer restarting every round), then one gossip round W ← S Y   (Sun et al., 2021).
            The reference code's momentum is identically 0 (PAPER.md §6); here it is real.

Silent agents (failures) neither send nor update in the rounds they are silent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import torch

from .objective import correct_per_agent, grad_per_agent
from .protocol import Mixing, SilentAgents
from .sampling import batch_indices, take_batch

BASELINES = ("dgd", "dsgd", "dfedavgm")


@dataclass(frozen=True, kw_only=True)
class BaselineSteps:
    """Step sizes and sizes of the baselines (per-agent mean cross-entropy scaling; defaults in ``eval.*``)."""

    dgd_step: float
    dsgd_step: float
    dsgd_batch: int
    dfedavgm_step: float
    dfedavgm_local_steps: int
    dfedavgm_momentum: float
    dfedavgm_batch: int

    @classmethod
    def from_config(cls, settings: object) -> BaselineSteps:
        """The fields of the same names from a config section (``EvalConfig``)."""
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})


def run_baseline(
    name: str,
    mixer: Mixing,
    w0_AD: torch.Tensor,
    train: tuple[torch.Tensor, torch.Tensor],
    heldout: tuple[torch.Tensor, torch.Tensor],
    *,
    num_rounds: int,
    steps: BaselineSteps,
    seed: int,
    step_index: int,
    silent_for_round: Callable[[int], SilentAgents | None] = lambda r: None,
) -> list[float]:
    """Held-out accuracy (all agents) after rounds 0..num_rounds: num_rounds + 1 values."""
    x_AMP, y_AM = train
    hx_ATP, hy_AT = heldout
    num_total = mixer.all_reduce_sum(
        torch.tensor([float(hy_AT.numel())], dtype=torch.float64, device=hy_AT.device)
    ).item()

    def accuracy(w_AD: torch.Tensor) -> float:
        correct = correct_per_agent(w_AD, hx_ATP, hy_AT).sum().to(torch.float64).reshape(1)
        return mixer.all_reduce_sum(correct).item() / num_total

    def minibatch(round_: int, local_step: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx_AB = batch_indices(seed, f"{name}/{local_step}", step_index, round_, mixer.agents_t, x_AMP.shape[1], batch)
        return take_batch(x_AMP, y_AM, idx_AB.to(x_AMP.device))

    mixer.reset_stale()
    w = w0_AD
    curve = [accuracy(w)]
    for r in range(1, num_rounds + 1):
        silent = silent_for_round(r)
        if name == "dgd":
            w_new = mixer.shift(w, layer=r, hop=1, silent=silent) - steps.dgd_step * grad_per_agent(w, x_AMP, y_AM)
        elif name == "dsgd":
            xb, yb = minibatch(r, 0, steps.dsgd_batch)
            w_new = mixer.shift(w, layer=r, hop=1, silent=silent) - steps.dsgd_step * grad_per_agent(w, xb, yb)
        elif name == "dfedavgm":
            y, y_prev = w, w
            for q in range(steps.dfedavgm_local_steps):
                xb, yb = minibatch(r, q, steps.dfedavgm_batch)
                y, y_prev = (
                    y - steps.dfedavgm_step * grad_per_agent(y, xb, yb) + steps.dfedavgm_momentum * (y - y_prev),
                    y,
                )
            w_new = mixer.shift(y, layer=r, hop=1, silent=silent)
        else:
            raise ValueError(f"unknown baseline {name!r}; use one of {BASELINES}")
        if silent is not None:
            w_new = torch.where(mixer.hosted_live(silent)[:, None], w_new, w)
        w = w_new
        curve.append(accuracy(w))
    return curve
