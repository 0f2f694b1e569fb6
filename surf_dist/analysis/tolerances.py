"""How close two runs must be to count as the same run (``surf-dist compare``'s defaults)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Tolerances:
    loss_rtol: float = 1e-4
    """Per-step Lagrangian, relative to the larger magnitude."""
    param_rtol: float = 1e-4
    """Final parameters: relative L2 gap per tensor; final parameter norms: relative gap."""
    acc_atol: float = 0.02
    """Accuracy per layer (U-DGD) and per round (baselines), absolute."""
    ledger_rtol: float = 0.0
    """Logical messages and bytes, relative (0: equal)."""
