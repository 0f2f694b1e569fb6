"""Keyed random draws shared by training, evaluation and the baselines, for the hosted agents only.

Every draw is a row of a table keyed by (seed, purpose, phase, step, layer) and indexed by the global agent
id (``data.rng.uniform_rows``): a worker draws the rows of the agents it hosts, at cost O(A), and gets
exactly those rows of the full draw. Workers agree without talking, any placement and any number of workers
give the same numbers, and a resumed run repeats the draws of the run it resumes.
"""

from __future__ import annotations

import torch

from .rng import keyed_seed, normal_rows, uniform_rows


def initial_iterate(
    seed: int, phase: str, step: int, agents_A: torch.Tensor, dim: int, std: float, dtype: torch.dtype
) -> torch.Tensor:
    """W_0 of the agents ``agents_A``, A × D, entries i.i.d. N(0, std²) (docs/method.md: fresh at every forward
    pass)."""
    return (normal_rows(keyed_seed(seed, "w0", phase, step), agents_A, dim) * std).to(dtype)


def dropout_keep(
    seed: int, phase: str, step: int, layer: int, agents_A: torch.Tensor, dim: int, p: float, dtype: torch.dtype
) -> torch.Tensor:
    """Dropout mask of the local update's output, A × D: Bernoulli(1 − p) / (1 − p)."""
    u = uniform_rows(keyed_seed(seed, "dropout", phase, step, layer), agents_A, dim, torch.float32)
    return (u >= p).to(dtype) / (1.0 - p)


def batch_indices(
    seed: int, phase: str, step: int, layer: int, agents_A: torch.Tensor, num_samples: int, batch_size: int
) -> torch.Tensor:
    """Mini-batch positions, A × B, uniform with replacement over each agent's M training samples."""
    u = uniform_rows(keyed_seed(seed, "batch", phase, step, layer), agents_A, batch_size)
    return (u * num_samples).long().clamp_(max=num_samples - 1)


def take_batch(x_AMP: torch.Tensor, y_AM: torch.Tensor, idx_AB: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The agents' samples at positions ``idx_AB``: (A × B × P, A × B). One row gather over the flattened samples
    (agent a's sample m is row a·M + m): several times faster than ``gather`` along the sample axis."""
    num_agents, num_samples, num_features = x_AMP.shape
    offsets_A1 = torch.arange(num_agents, device=idx_AB.device)[:, None] * num_samples
    flat = (idx_AB + offsets_A1).reshape(-1)
    x_ABP = x_AMP.reshape(-1, num_features).index_select(0, flat).view(*idx_AB.shape, num_features)
    return x_ABP, y_AM.reshape(-1).index_select(0, flat).view(idx_AB.shape)
