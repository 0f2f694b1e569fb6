"""A sweep driven from Python: train once, evaluate the trained optimizer with more and more silent agents per
layer (on any backend), and draw the curve with matplotlib beside DGD's at the same number of rounds.

    python examples/sweep_figure.py --out runs/example-sweep            # about a minute on two cores
    python examples/sweep_figure.py --backend torch --workers 2         # the same numbers on two gloo ranks
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import surf_dist  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description="U-DGD and DGD against silent agents per layer")
    parser.add_argument("--out", default="runs/example-sweep")
    parser.add_argument("--backend", default="local")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--counts", default="0,1,2,3,4")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    run = surf_dist.train(args.out, preset="smoke", overrides=['eval.baselines=["dgd"]'])
    udgd, dgd = [], []
    for count in counts:
        ev = surf_dist.evaluate(run, [f"failures.num_async={count}"], backend=args.backend, workers=args.workers)
        assert ev is not None
        udgd.append(ev.udgd.accuracy_per_layer[-1])
        dgd.append(ev.baselines["dgd"].accuracy_at_udgd_rounds)
        print(f"{count} silent agents per layer: U-DGD {udgd[-1]:.3f}, DGD {dgd[-1]:.3f} at {ev.udgd.rounds} rounds")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(counts, udgd, "o-", label="U-DGD")
    ax.plot(counts, dgd, "s--", label=f"DGD, same rounds ({run.eval.udgd.rounds})")
    ax.set_xlabel("silent agents per layer")
    ax.set_xticks(counts)
    ax.set_ylabel("held-out accuracy")
    ax.set_title(f"{run.summary.num_agents if run.summary else '?'} agents, smoke preset")
    ax.legend()
    ax.grid(alpha=0.3)
    path = Path(args.out) / "sweep.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
