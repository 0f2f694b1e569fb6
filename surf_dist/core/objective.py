"""The local objective: softmax regression per agent, batched over agents (no loop over agents).

Shapes (legend used throughout ``surf_dist.core``):
    A  agents hosted by this worker          M  samples per agent (a mini-batch or the held-out set)
    P  features per sample                   C  classes
    D  model dimension, D = (P + 1) * C      (agent i's iterate w_i, reshaped to (P + 1) x C:
                                              rows 0..P-1 are the weight matrix, row P the bias)

Agent i's loss on its samples (x_im, y_im), m = 1..M, is the mean cross-entropy

    f_i(w_i) = (1/M) sum_m CE(softmax(x_im^T V_i + c_i), y_im),   w_i = [V_i ; c_i],

and the global objective is the average over all n agents, f(W) = (1/n) sum_i f_i(w_i). (The reference
code divides by n*M instead of n; docs/method.md. We keep the plain mean, so step sizes are per-agent.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

GRAD_CHUNK = 256  # agents a block of ``grad_per_agent`` (its samples in L2 between the two products; no autograd)


def model_dim(num_features: int, num_classes: int) -> int:
    """D = (P + 1) * C: a weight matrix plus a bias per class."""
    return (num_features + 1) * num_classes


def logits(w_AD: torch.Tensor, x_AMP: torch.Tensor) -> torch.Tensor:
    """Logits of every agent's own model on its own samples: A x M x C."""
    num_agents, _, num_features = x_AMP.shape
    w_APC = w_AD.reshape(num_agents, num_features + 1, -1)
    return torch.baddbmm(w_APC[:, -1:, :], x_AMP, w_APC[:, :-1, :])


def loss_per_agent(w_AD: torch.Tensor, x_AMP: torch.Tensor, y_AM: torch.Tensor) -> torch.Tensor:
    """f_i(w_i) for every hosted agent: A (mean cross-entropy over the agent's M samples)."""
    z_AMC = logits(w_AD, x_AMP)
    ce_AM = F.cross_entropy(z_AMC.flatten(0, 1), y_AM.flatten(), reduction="none")
    return ce_AM.view(y_AM.shape).mean(dim=1)


def correct_per_agent(w_AD: torch.Tensor, x_AMP: torch.Tensor, y_AM: torch.Tensor) -> torch.Tensor:
    """Number of the agent's samples its own model classifies correctly: A (float)."""
    return (logits(w_AD, x_AMP).argmax(dim=-1) == y_AM).sum(dim=1).to(w_AD.dtype)


def grad_per_agent(
    w_AD: torch.Tensor, x_AMP: torch.Tensor, y_AM: torch.Tensor, xt_APM: torch.Tensor | None = None
) -> torch.Tensor:
    """∇_{w_i} f_i(w_i) in closed form, A x D; differentiable in w (so it can sit inside a meta-gradient).

    With p_im = softmax(x_im^T V_i + c_i) and e_y the one-hot label:
        ∇_{V_i} f_i = (1/M) sum_m x_im (p_im - e_{y_im})^T,   ∇_{c_i} f_i = (1/M) sum_m (p_im - e_{y_im}).
    Closed form instead of autograd keeps the descent constraints first-order in the message passing.
    ``xt_APM``: x transposed and contiguous, when the caller keeps it (the same samples round after round).
    The softmax is written out: torch's kernel is slow over a last dimension of C = 10 classes.
    """
    num_agents, num_samples, _ = x_AMP.shape
    if num_agents > GRAD_CHUNK and not (torch.is_grad_enabled() and w_AD.requires_grad):
        # blocks of agents whose samples stay in cache between the two products (the same numbers, bit for bit)
        return torch.cat(
            [
                grad_per_agent(
                    w_AD[i : i + GRAD_CHUNK],
                    x_AMP[i : i + GRAD_CHUNK],
                    y_AM[i : i + GRAD_CHUNK],
                    None if xt_APM is None else xt_APM[i : i + GRAD_CHUNK],
                )
                for i in range(0, num_agents, GRAD_CHUNK)
            ]
        )
    z_AMC = logits(w_AD, x_AMP)
    e_AMC = (z_AMC - z_AMC.amax(dim=-1, keepdim=True).detach()).exp()
    p_AMC = e_AMC / e_AMC.sum(dim=-1, keepdim=True)
    minus_one = torch.full((*y_AM.shape, 1), -1.0, dtype=p_AMC.dtype, device=p_AMC.device)
    r_AMC = p_AMC.scatter_add(-1, y_AM.unsqueeze(-1), minus_one)  # p − e_y
    g_weight_APC = torch.bmm(x_AMP.transpose(1, 2) if xt_APM is None else xt_APM, r_AMC)
    g_bias_A1C = r_AMC.sum(dim=1, keepdim=True)
    return torch.cat([g_weight_APC, g_bias_A1C], dim=1).reshape(num_agents, -1) / num_samples
