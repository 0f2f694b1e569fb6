"""A plugin that registers a new baseline: DGD with heavy-ball momentum, a method with state of its own.

    W ← S W − β ∇f(W) + θ (W − W_prev)            (W_prev: the iterate of the round before)

Copy this file anywhere and name it by path. From the command line::

    surf-dist train --preset smoke --set 'run.plugins=["examples/plugin_heavy_ball.py"]' \\
        --set 'eval.baselines=["dgd","heavy_ball_dgd"]' --set eval.heavy_ball_dgd_momentum=0.7 --out runs/heavy

or from Python (what running this file does)::

    surf_dist.train("runs/heavy", preset="smoke", plugins=["examples/plugin_heavy_ball.py"],
                    overrides=['eval.baselines=["dgd","heavy_ball_dgd"]'])

Every worker (forked ranks, torchrun ranks, Ray actors) imports the file before the config is validated, so
``heavy_ball_dgd`` and its settings ``eval.heavy_ball_dgd_step`` and ``eval.heavy_ball_dgd_momentum`` work like a
built-in's on every backend. Its exchanges (one per round, D floats a message) are what the ledger counts and the
network model times; silent agents keep both W and W_prev in the rounds they are silent.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import surf_dist


@dataclass(frozen=True)
class HeavyBallParams:
    step: float = surf_dist.param(0.3, low=0, low_open=True, help="β, the gradient step")
    momentum: float = surf_dist.param(0.5, low=0, high=1, high_open=True, help="θ, the heavy-ball momentum")


@surf_dist.register_baseline("heavy_ball_dgd")
class HeavyBallDGD(surf_dist.Method):
    """DGD with heavy-ball momentum: W ← S W − β ∇f(W) + θ (W − W_prev)."""

    Params = HeavyBallParams
    tunable = ("step",)  # what `surf-dist tune-baselines` searches

    def init(self, ctx, w0_AD):
        return {"w": w0_AD, "previous": w0_AD}

    def round(self, ctx, state, r):
        p, w = self.params, state["w"]
        return {"w": ctx.exchange(w) - p.step * ctx.grad(w) + p.momentum * (w - state["previous"]), "previous": w}


def main() -> None:
    parser = argparse.ArgumentParser(description="train the smoke preset with DGD and heavy-ball DGD as baselines")
    parser.add_argument("--out", default="runs/example-heavy-ball")
    parser.add_argument("--backend", default="local")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    run = surf_dist.train(
        args.out,
        preset="smoke",
        plugins=[__file__],
        overrides=['eval.baselines=["dgd","heavy_ball_dgd"]'],
        backend=args.backend,
        workers=args.workers,
    )
    ev = run.eval
    print(f"U-DGD after {ev.udgd.rounds} rounds: {ev.udgd.accuracy_per_layer[-1]:.3f}")
    for name, method in ev.baselines.items():
        print(
            f"{name}: {method.accuracy_at_udgd_rounds:.3f} after {ev.udgd.rounds} rounds, "
            f"{method.accuracy[-1]:.3f} after {method.rounds[-1]} ({method.agent_bytes[-1] / 1e6:.2f} MB of messages)"
        )


if __name__ == "__main__":
    main()
