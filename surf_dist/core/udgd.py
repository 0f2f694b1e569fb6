"""U-DGD: decentralized gradient descent unrolled into L learnable layers (docs/method.md).

Layer l = 1..L maps the agents' iterates W_{l-1} (n × D) to

    w_{i,l} = [H_l(W_{l-1})]_i − σ(M_l [w_{i,l-1} ‖ b_{i,l}] + d_l)

* H_l is the K-hop graph filter (``filters.graph_filter``): K + 1 taps per layer, K rounds.
* b_{i,l} is a fresh mini-batch of agent i's own training data, B examples interleaved as
  (features P, one-hot label C): B·(P + C) floats. No gradient is fed in.
* the local network (M_l, d_l, optional hidden layers) is shared by all agents and differs per layer;
  σ is ReLU by default (the paper's sign-constrained update) or the identity (``output="linear"``).
* ``normalisation="agent-batch"`` reproduces the reference code's BatchNorm across agents (batch
  statistics over all live agents, no affine). It is not local: it costs two all-reduces per layer.
* A silent agent (failures) neither sends nor updates: w_{i,l} = w_{i,l-1}.

Shapes: A hosted agents, D model dim, B batch, P features, C classes, I = D + B·(P + C) local input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .constraints import local_gradient_square
from .filters import graph_filter
from .options import INITS, NORMALISATIONS, OUTPUTS, TAP_INITS, VARIANTS  # noqa: F401 - the names it accepts
from .protocol import Mixing, SilentAgents


def batch_input(x_ABP: torch.Tensor, y_AB: torch.Tensor, num_classes: int) -> torch.Tensor:
    """b_i: the mini-batch as B interleaved (features, one-hot label) pairs, A × B·(P + C)."""
    onehot_ABC = nn.functional.one_hot(y_AB, num_classes).to(x_ABP.dtype)
    return torch.cat([x_ABP, onehot_ABC], dim=2).flatten(1)


@dataclass(frozen=True)
class LayerContext:
    """What a local network sees besides its input: the Mixer (for collectives such as ``normalise``), which
    hosted agents are live (A bools), the layer (1-based) and the dropout mask of its output (A × D, already
    scaled by 1 / (1 − p); None: no dropout)."""

    mixer: Mixing
    live_A: torch.Tensor
    layer: int
    keep_AD: torch.Tensor | None = None

    def normalise(self, h_AH: torch.Tensor) -> torch.Tensor:
        """BatchNorm over the live agents of the whole graph, no affine (two differentiable all-reduces, counted
        as coordination traffic: silent agents send nothing)."""
        mixer, layer = self.mixer, self.layer
        mask_A1 = self.live_A[:, None].to(h_AH.dtype)
        num_live = int(self.live_A.sum())
        count = mixer.all_reduce_sum(mask_A1.sum().reshape(1), ledger_layer=layer, num_senders=num_live)
        mean_H = mixer.all_reduce_sum((h_AH * mask_A1).sum(0), ledger_layer=layer, num_senders=num_live) / count
        var_H = (
            mixer.all_reduce_sum((((h_AH - mean_H) ** 2) * mask_A1).sum(0), ledger_layer=layer, num_senders=num_live)
            / count
        )
        return (h_AH - mean_H) / torch.sqrt(var_H + 1e-5)


class LocalUpdate(nn.Module):
    """The paper's local network σ(M [w ‖ b] + d), with optional hidden layers (ReLU between), shared by every
    agent (``model.local_update = "paper"``)."""

    def __init__(self, in_dim: int, out_dim: int, *, hidden: Sequence[int], output: str, normalisation: str, init: str):
        super().__init__()
        widths = [in_dim, *hidden, out_dim]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.output = output
        self.normalisation = normalisation
        if init == "paper":  # Uniform(0, 0.1), as the reference code
            for lin in self.linears:
                assert isinstance(lin, nn.Linear)
                nn.init.uniform_(lin.weight, 0.0, 0.1)
                nn.init.uniform_(lin.bias, 0.0, 0.1)

    def forward(self, z_AI: torch.Tensor, ctx: LayerContext) -> torch.Tensor:
        """The update of every hosted agent, A × D (the reference code's order: Linear, BN, Dropout, ReLU)."""
        h = z_AI
        for j, lin in enumerate(self.linears):
            h = lin(h)
            if self.normalisation == "agent-batch":
                h = ctx.normalise(h)
            if ctx.keep_AD is not None and j == len(self.linears) - 1:
                h = h * ctx.keep_AD
            if j < len(self.linears) - 1 or self.output == "relu":
                h = torch.relu(h)
        return h


class UDGD(nn.Module):
    """The unrolled network Φ(·; Θ): Θ = {taps (L × (K+1)), local updates M_l, d_l} (and, for the star variant,
    the server's taps, L of them).

    ``variant="star"`` is the classical-FL form (docs/method.md, eq. 13): agent 0 is a server that only aggregates,
    w_{0,l} = g_l [S W_{l−1}]_0 (no local update, no k = 0 term); the clients apply the decentralised layer with
    K = 1. In each round only some clients upload: the others are *muted* (they still receive and update).
    """

    def __init__(
        self,
        *,
        num_layers: int,
        num_hops: int,
        num_features: int,
        num_classes: int,
        batch_size: int,
        hidden: Sequence[int] = (),
        output: str = "relu",
        normalisation: str = "none",
        init: str = "default",
        tap_init: str = "average",
        variant: str = "decentralized",
        make_update: Callable[..., nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.num_layers, self.num_hops, self.variant = num_layers, num_hops, variant
        self.num_classes = num_classes
        self.dim = (num_features + 1) * num_classes
        in_dim = self.dim + batch_size * (num_features + num_classes)
        taps = torch.full((num_layers, num_hops + 1), 1.0 / (num_hops + 1))
        if tap_init == "paper":
            taps.uniform_(0.0, 0.1)
        self.taps = nn.Parameter(taps)
        if make_update is None:

            def make_update(*, in_dim: int, out_dim: int) -> nn.Module:
                return LocalUpdate(
                    in_dim, out_dim, hidden=hidden, output=output, normalisation=normalisation, init=init
                )

        # one local network per layer (``make_update(in_dim=, out_dim=)``: the paper's unless another is registered)
        self.updates = nn.ModuleList(make_update(in_dim=in_dim, out_dim=self.dim) for _ in range(num_layers))
        if variant == "star":
            self.server_taps = nn.Parameter(torch.ones(num_layers))

    def layer(
        self,
        layer: int,
        w_AD: torch.Tensor,
        x_ABP: torch.Tensor,
        y_AB: torch.Tensor,
        mixer: Mixing,
        silent: SilentAgents | None = None,
        keep_AD: torch.Tensor | None = None,
        muted: SilentAgents | None = None,
    ) -> torch.Tensor:
        """W_l from W_{l-1} (``layer`` counts from 1); ``keep_AD`` is the local update's dropout mask. Silent
        agents neither send nor update; ``muted`` agents (default: the silent ones) do not send."""
        muted = silent if muted is None else muted
        star = self.variant == "star"
        if star:
            mixed_AD = mixer.shift(w_AD, layer=layer, hop=1, silent=muted)
        else:
            mixed_AD = graph_filter(mixer, w_AD, self.taps[layer - 1], layer=layer, silent=muted)
        live_A = mixer.hosted_live(silent)
        z_AI = torch.cat([w_AD, batch_input(x_ABP, y_AB, self.num_classes)], dim=1)
        update_AD = self.updates[layer - 1](z_AI, LayerContext(mixer, live_A, layer, keep_AD))
        if star:
            taps = self.taps[layer - 1]
            server_A = (mixer.agents_t == 0).to(w_AD.device)[:, None]
            client_AD = taps[0] * w_AD + taps[1] * mixed_AD - update_AD
            w_new_AD = torch.where(server_A, self.server_taps[layer - 1] * mixed_AD, client_AD)
        else:
            w_new_AD = mixed_AD - update_AD
        if silent is None:
            return w_new_AD
        return torch.where(live_A[:, None], w_new_AD, w_AD)

    def forward(
        self,
        mixer: Mixing,
        w0_AD: torch.Tensor,
        batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
        silent: Sequence[SilentAgents | None] | None = None,
        keep: Callable[[int], torch.Tensor | None] | None = None,
        *,
        recompute: bool = False,
        muted: Sequence[SilentAgents | None] | None = None,
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """[W_0, ..., W_L] and the hosted part of each ‖∇f̂(W_l; B_l)‖² (L + 1 values, for the descent
        constraints). ``batches`` holds B_0..B_L: B_l feeds layer l and measures W_l; B_0 only measures W_0.

        ``recompute``: each layer (with its gradient norm) is a ``torch.utils.checkpoint`` region: only the
        iterates W_l are kept for the backward, a layer's intermediates are recomputed when its gradient is
        needed. The values and gradients are those of the plain path; memory falls from O(L · A · (D + I))
        activations to O(L · A · D) plus one layer's; a step costs one more forward.
        """
        mixer.reset_stale()
        ws = [w0_AD]
        squares = [local_gradient_square(w0_AD, *batches[0])]
        for layer in range(1, self.num_layers + 1):
            silent_l = None if silent is None else silent[layer - 1]
            muted_l = None if muted is None else muted[layer - 1]

            def step(
                w_AD: torch.Tensor,
                x_ABP: torch.Tensor,
                y_AB: torch.Tensor,
                layer: int = layer,
                silent_l: Any = silent_l,
                muted_l: Any = muted_l,
            ) -> tuple[torch.Tensor, torch.Tensor]:
                keep_AD = None if keep is None else keep(layer)
                w_new_AD = self.layer(layer, w_AD, x_ABP, y_AB, mixer, silent_l, keep_AD, muted_l)
                return w_new_AD, local_gradient_square(w_new_AD, x_ABP, y_AB)

            if recompute and torch.is_grad_enabled():
                w_new, square = checkpoint(
                    step, ws[-1], *batches[layer], use_reentrant=False, context_fn=mixer.recompute_contexts
                )
            else:
                w_new, square = step(ws[-1], *batches[layer])
            ws.append(w_new)
            squares.append(square)
        return ws, torch.stack(squares)
