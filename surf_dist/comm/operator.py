"""Products with a block of rows of S: dense when small, sparse CSR otherwise, both differentiable.

``RowsOperator`` holds A rows of S whose columns are C positions (all n agents for the local backend; the
hosted agents then the halo for a torch worker) and computes y = S_AC x_CD. Under ``DENSE_MAX_ELEMENTS``
entries it keeps the dense A × C matrix (faster for a few hundred agents); above, torch's CSR with a
precomputed transpose for the backward, g ↦ S_ACᵀ g: memory and time O(nonzeros · D), never A × C.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

DENSE_MAX_ELEMENTS = 512 * 512


def _csr(matrix: sp.csr_array, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    with warnings.catch_warnings():  # "sparse CSR support is in beta": products with dense are all we use
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.as_tensor(matrix.indptr, dtype=torch.int64),
            torch.as_tensor(matrix.indices, dtype=torch.int64),
            torch.as_tensor(matrix.data, dtype=dtype),
            size=matrix.shape,
            device=device,
            check_invariants=False,  # built by scipy from a canonical CSR
        )


class _SparseProduct(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x_CD: torch.Tensor, op: RowsOperator) -> torch.Tensor:
        ctx.op = op
        return op.matrix @ x_CD

    @staticmethod
    def backward(ctx: Any, g_AD: torch.Tensor) -> tuple[torch.Tensor, None]:
        return ctx.op.matrix_t @ g_AD.contiguous(), None


class RowsOperator:
    """S_AC from CSR parts (crow A+1, col, value; columns in 0..num_cols-1), in ``dtype`` on ``device``."""

    def __init__(
        self,
        crow: np.ndarray,
        col: np.ndarray,
        value: np.ndarray,
        num_cols: int,
        *,
        dtype: torch.dtype,
        device: torch.device,
        dense: bool | None = None,
    ) -> None:
        shape = (len(crow) - 1, num_cols)
        matrix = sp.csr_array((value, col, crow), shape=shape)
        self.dense = shape[0] * shape[1] <= DENSE_MAX_ELEMENTS if dense is None else dense
        if self.dense:
            self.matrix = torch.as_tensor(matrix.toarray(), dtype=dtype, device=device)
            self.matrix_t = self.matrix.t()
        else:
            self.matrix = _csr(matrix, dtype, device)
            self.matrix_t = _csr(sp.csr_array(matrix.T), dtype, device)

    def __matmul__(self, x_CD: torch.Tensor) -> torch.Tensor:
        if self.dense or not (torch.is_grad_enabled() and x_CD.requires_grad):
            return self.matrix @ x_CD
        return _SparseProduct.apply(x_CD, self)

    def transpose_matmul(self, g_AD: torch.Tensor) -> torch.Tensor:
        """S_ACᵀ g (C × D): what a round's backward sends along the reversed edges."""
        return self.matrix_t @ g_AD
