"""What a network that changes every round costs: a meta-training step and one evaluation pass of DGD on a static
graph, against the same with links that fail, a graph drawn again every layer and the one-peer exponential
schedule (each round builds its graph, S and halo plan), measured in one run at ``--agents`` agents.

    python bench/dynamic_bench.py [--agents 1000] [--steps 3]

Prints seconds per step and per evaluation, and the ratio to the static graph.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import surf_dist


def kinds(n: int) -> dict[str, list[str]]:
    exponential = 1 << (n - 1).bit_length()  # one-peer averages exactly on a power of two
    return {
        "static": [f"topology.spec=kregular:n={n},degree=3"],
        "link-failure p=0.3": [
            f"topology.spec=kregular:n={n},degree=3",
            "topology.dynamic=link-failure",
            "topology.link_failure_p=0.3",
        ],  # fmt: skip
        "resample": [f"topology.spec=kregular:n={n},degree=3,mode=random", "topology.dynamic=resample"],
        f"one-peer (n={exponential})": [
            f"topology.spec=exponential:n={exponential}",
            "topology.dynamic=exponential-one-peer",
        ],  # fmt: skip
    }


def measure(overrides: list[str], steps: int, out: Path) -> tuple[float, float]:
    sets = [*overrides, f"data.num_meta_train={steps}", "train.epochs=1", "data.num_meta_test=1",
            "data.num_meta_val=1", 'eval.baselines=["dgd"]', "train.checkpoint_every=1000"]  # fmt: skip
    run = surf_dist.train(out, overrides=sets)
    assert run.summary is not None
    return run.summary.timing["seconds_per_step"], run.summary.timing["eval_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {k: measure(v, args.steps, Path(tmp) / str(i)) for i, (k, v) in enumerate(kinds(args.agents).items())}
    step0, eval0 = results["static"]
    for name, (step, ev) in results.items():
        print(f"{name:<24} {step:7.3f} s/step ({step / step0:4.2f} ×)   eval {ev:6.2f} s ({ev / eval0:4.2f} ×)")


if __name__ == "__main__":
    main()
