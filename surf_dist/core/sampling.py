"""Keyed random draws shared by training, evaluation and the baselines.

Every draw is made for all n agents from a generator keyed by (seed, purpose, phase, step, layer), and a
worker keeps its own agents' rows: workers agree without talking, any placement gives the same
numbers, and a resumed run repeats the draws of the run it resumes.
"""

from __future__ import annotations

import torch

from ..data.rng import torch_generator


def initial_iterate(
    seed: int, phase: str, step: int, num_agents: int, dim: int, std: float, dtype: torch.dtype
) -> torch.Tensor:
    """W_0 for all n agents, N × D, entries i.i.d. N(0, std²) (PAPER.md §2: fresh at every forward pass)."""
    g = torch_generator(seed, "w0", phase, step)
    return (torch.randn(num_agents, dim, generator=g, dtype=torch.float64) * std).to(dtype)


def dropout_keep(
    seed: int, phase: str, step: int, layer: int, num_agents: int, dim: int, p: float, dtype: torch.dtype
) -> torch.Tensor:
    """Dropout mask of the local update's output for all n agents, N × D: Bernoulli(1 − p) / (1 − p)."""
    g = torch_generator(seed, "dropout", phase, step, layer)
    return (torch.rand(num_agents, dim, generator=g) >= p).to(dtype) / (1.0 - p)


def batch_indices(
    seed: int, phase: str, step: int, layer: int, num_agents: int, num_samples: int, batch_size: int
) -> torch.Tensor:
    """Mini-batch positions for every agent, N × B, uniform with replacement over its M training samples."""
    g = torch_generator(seed, "batch", phase, step, layer)
    return torch.randint(num_samples, (num_agents, batch_size), generator=g)


def take_batch(x_AMP: torch.Tensor, y_AM: torch.Tensor, idx_AB: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The agents' samples at positions ``idx_AB``: (A × B × P, A × B)."""
    return (
        torch.gather(x_AMP, 1, idx_AB[:, :, None].expand(-1, -1, x_AMP.shape[2])),
        torch.gather(y_AM, 1, idx_AB),
    )
