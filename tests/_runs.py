"""Parameters of finished runs, compared element by element (a norm cannot tell a permuted or sign-flipped tensor
from the right one)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

SAMPLES_PER_TENSOR = 32
# the smoke preset cut to 2 training tasks of 2 layers, 2 test tasks and 2 × U-DGD's rounds, in float64: small runs
# whose numbers agree across backends to 1e-10
TINY_FLOAT64 = [
    "model.dtype=float64",
    "data.num_meta_train=2",
    "data.num_meta_val=1",
    "data.num_meta_test=2",
    "eval.rounds_factor=2",
    "model.num_layers=2",
]


def final_parameters(run: Path) -> dict[str, np.ndarray]:
    """Every parameter tensor at the end of a run (its last checkpoint, written at the last step)."""
    state = torch.load(Path(run) / "checkpoint.pt", map_location="cpu", weights_only=False)
    return {name: t.detach().double().numpy() for name, t in state["model"].items()}


def assert_same_parameters(run: Path, reference: Path, rtol: float) -> None:
    """Every entry of every parameter of ``run`` equals ``reference``'s to ``rtol`` of that tensor's largest entry."""
    got, want = final_parameters(run), final_parameters(reference)
    assert got.keys() == want.keys()
    for name, w in want.items():
        assert got[name].shape == w.shape, name
        scale = max(float(np.abs(w).max(initial=0.0)), 1e-30)
        gap = float(np.abs(got[name] - w).max(initial=0.0)) / scale
        assert gap <= rtol, f"{name}: largest elementwise gap {gap:.2e} of its largest entry (> {rtol:.0e})"


def parameter_samples(params: dict[str, np.ndarray]) -> dict[str, list[list[float]]]:
    """A fixed set of (flat index, value) pairs of every tensor: a fingerprint a fixture can hold."""
    out = {}
    for name, values in params.items():
        flat = values.reshape(-1)
        rng = np.random.default_rng(len(name))  # fixed positions per tensor
        idx = np.unique(rng.integers(0, flat.size, size=min(SAMPLES_PER_TENSOR, flat.size)))
        out[name] = [[int(i), float(flat[i])] for i in idx]
    return out
