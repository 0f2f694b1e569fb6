"""The matrix-product floor of a meta-training step, shared by the benchmarks."""

from __future__ import annotations

import time

import torch

from surf_dist.comm.operator import RowsOperator
from surf_dist.config import Config
from surf_dist.worker.problem import Problem


def matmul_floor(problem: Problem, cfg: Config, recompute: bool, repeats: int = 1) -> float:
    """Seconds of one step's matrix products alone (module docstring), same shapes and dtype; with per-layer
    recomputation the products of the forward run twice, as they must."""
    m, n, dim, dtype = cfg.model, problem.num_agents, problem.dim, problem.dtype
    in_dim = dim + m.batch_size * (problem.num_features + problem.num_classes)
    shift = problem.graph("meta-train", 0).shift
    s = RowsOperator(shift.indptr, shift.indices, shift.values, n, dtype=dtype, device=torch.device("cpu"))
    z, weight = torch.randn(n, in_dim, dtype=dtype), torch.randn(dim, in_dim, dtype=dtype)
    g, x = torch.randn(n, dim, dtype=dtype), torch.randn(n, dim, dtype=dtype)

    def one_step() -> None:
        for _ in range(m.num_layers):
            for _ in range(2 if recompute else 1):
                z @ weight.t()
                for _ in range(m.num_hops):
                    s @ x
            g @ weight
            g.t() @ z
            for _ in range(m.num_hops):
                s.transpose_matmul(g)

    one_step()
    t0 = time.perf_counter()
    for _ in range(repeats):
        one_step()
    return (time.perf_counter() - t0) / repeats
