"""The K-hop graph filter, computed as K rounds of neighbour exchange through a Mixer.

    H_l(W) = sum_{k=0..K} h_{k,l} S^k W          (W: n × D, S: n × n, h_{·,l}: K + 1 taps)

S^k W is never formed densely: hop k sends S^{k-1} W one more hop (``mixer.shift``), so a layer costs
exactly K rounds. Each worker only ever holds its own agents' rows (A × D).
"""

from __future__ import annotations

import torch

from .protocol import Mixing, SilentAgents


def graph_filter(
    mixer: Mixing,
    w_AD: torch.Tensor,
    taps_K1: torch.Tensor,
    *,
    layer: int,
    silent: SilentAgents | None = None,
) -> torch.Tensor:
    """Rows of sum_k taps[k] S^k W for the hosted agents (A × D); ``taps_K1`` has K + 1 entries."""
    out_AD = taps_K1[0] * w_AD
    x_AD = w_AD
    for hop in range(1, taps_K1.shape[0]):
        x_AD = mixer.shift(x_AD, layer=layer, hop=hop, silent=silent)
        out_AD = out_AD + taps_K1[hop] * x_AD
    return out_AD
