"""Descent constraints, the Lagrangian and the dual step (docs/method.md).

For layers l = 1..L, with g_l = ∇_W f̂(W_l; B_l) over all n agents (Frobenius norm, the gradient of the
average objective f = (1/n) Σ f_i, so ‖g_l‖ = (1/n) sqrt(Σ_i ‖∇f_i(w_{i,l})‖²)):

    difference (the paper):   c_l = ‖g_l‖ − (1 − ε) ‖g_{l−1}‖            ≤ 0
    ratio (the reference code): c_l = ‖g_l‖ / ‖g_{l−1}‖ − (1 − ε)        ≤ 0

Lagrangian:  L(Θ, λ) = f̂_heldout(W_L) + Σ_l λ_l c_l ;  primal: Adam on Θ;  dual: λ ← [λ + η_λ c]_+ .
"""

from __future__ import annotations

import torch

from .objective import grad_per_agent
from .options import FORMS
from .protocol import Mixing


def local_gradient_square(w_AD: torch.Tensor, x_AMP: torch.Tensor, y_AM: torch.Tensor) -> torch.Tensor:
    """Σ over the hosted agents of ‖∇f_i(w_i; B_i)‖²: this worker's part of ‖g‖² · n² (a scalar)."""
    return (grad_per_agent(w_AD, x_AMP, y_AM) ** 2).sum()


def gradient_norms(mixer: Mixing, squares_L1: torch.Tensor) -> torch.Tensor:
    """‖∇_W f̂(W_l; B_l)‖_F for l = 0..L over all agents, from each worker's ``local_gradient_square`` of every
    layer: L + 1 values, one all-reduce, differentiable."""
    return torch.sqrt(mixer.all_reduce_sum(squares_L1)) / mixer.num_agents


def descent_slacks(norms_L1: torch.Tensor, epsilon: float, form: str = "ratio") -> torch.Tensor:
    """c_l for l = 1..L (L values); a constraint holds when its slack is ≤ 0."""
    if form == "ratio":
        return norms_L1[1:] / norms_L1[:-1] - (1.0 - epsilon)
    if form == "difference":
        return norms_L1[1:] - (1.0 - epsilon) * norms_L1[:-1]
    raise ValueError(f"unknown constraint form {form!r}; use one of {FORMS}")


def lagrangian(loss: torch.Tensor, slacks_L: torch.Tensor, duals_L: torch.Tensor, constrained: bool) -> torch.Tensor:
    """f̂(W_L) + Σ λ_l c_l (or the plain loss: standard unrolling)."""
    return loss + (duals_L * slacks_L).sum() if constrained else loss


def dual_step(duals_L: torch.Tensor, slacks_L: torch.Tensor, lr: float) -> torch.Tensor:
    """Projected dual ascent λ ← max(0, λ + η c)."""
    return torch.clamp(duals_L + lr * slacks_L.detach(), min=0.0)
