"""A plugin that registers another local network for U-DGD: a two-layer MLP with a tanh hidden layer and a
learned output scale, in place of the paper's σ(M [w ‖ b] + d)::

    u = s · W₂ tanh(W₁ [w ‖ b] + c₁) + c₂            (one per layer; shared by every agent)

    surf-dist train --preset smoke --set 'run.plugins=["examples/local_mlp.py"]' \\
        --set model.local_update=mlp2 --set model.mlp2_width=32 --out runs/mlp2

Running this file trains the smoke preset with it from Python and prints U-DGD's accuracy per layer beside the
paper's local network's.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch
from torch import nn

import surf_dist


@dataclass(frozen=True)
class MLPParams:
    width: int = surf_dist.param(64, low=1, help="hidden units")


@surf_dist.register_local_update("mlp2")
class TwoLayerMLP(nn.Module):
    """u = s · W₂ tanh(W₁ [w ‖ b] + c₁) + c₂ (the layer subtracts u from the filtered iterate)."""

    Params = MLPParams

    def __init__(self, *, in_dim: int, out_dim: int, model, params: MLPParams) -> None:
        super().__init__()
        self.hidden = nn.Linear(in_dim, params.width)
        self.out = nn.Linear(params.width, out_dim)
        self.scale = nn.Parameter(torch.tensor(0.1))

    def forward(self, z_AI: torch.Tensor, ctx) -> torch.Tensor:
        h = torch.tanh(self.hidden(z_AI))
        u = self.scale * self.out(h)
        return u if ctx.keep_AD is None else u * ctx.keep_AD  # the same dropout as the paper's network


def main() -> None:
    parser = argparse.ArgumentParser(description="train the smoke preset with a two-layer MLP as U-DGD's local network")
    parser.add_argument("--out", default="runs/example-mlp2")
    args = parser.parse_args()
    mlp = surf_dist.train(
        args.out, preset="smoke", plugins=[__file__], overrides=["model.local_update=mlp2", 'eval.baselines=["dgd"]']
    )
    paper = surf_dist.train(args.out + "-paper", preset="smoke", overrides=['eval.baselines=["dgd"]'])
    for label, run in (("mlp2", mlp), ("paper", paper)):
        print(f"U-DGD ({label}) per layer:", " ".join(f"{a:.3f}" for a in run.eval.udgd.accuracy_per_layer))


if __name__ == "__main__":
    main()
