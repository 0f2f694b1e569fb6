"""A plugin that registers a dataset built from NumPy arrays: four Gaussian blobs in 16 dimensions.

Any number of classes works; the arrays are features (N × P), used as they are (``data.features = "pixels"``).
Every worker calls the loader itself (raw data never leaves a worker), so it draws from a fixed seed. Its own
setting, ``data.blobs_spread``, is declared with ``surf_dist.param``::

    surf-dist train --preset smoke --set 'run.plugins=["examples/dataset_from_arrays.py"]' \\
        --set data.dataset=blobs --set data.blobs_spread=2.0 --out runs/blobs

Running this file trains the smoke preset on it from Python.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

import surf_dist

NUM_CLASSES, NUM_FEATURES, PER_CLASS = 4, 16, 400


@dataclass(frozen=True)
class BlobsParams:
    spread: float = surf_dist.param(1.5, low=0, low_open=True, help="standard deviation of each blob")


@surf_dist.register_dataset("blobs")
def blobs(split: str, params: BlobsParams) -> surf_dist.Arrays:
    """Four Gaussian blobs in 16 dimensions, 400 train and 400 test samples each (fixed seed)."""
    rng = np.random.default_rng(0)  # the same centres in every process
    centres = rng.normal(size=(NUM_CLASSES, NUM_FEATURES)) * 2.0
    draw = np.random.default_rng(1 if split == "train" else 2)
    labels = np.repeat(np.arange(NUM_CLASSES), PER_CLASS)
    x = centres[labels] + params.spread * draw.normal(size=(labels.size, NUM_FEATURES))
    return surf_dist.Arrays(x=x.astype(np.float32), labels=labels, num_classes=NUM_CLASSES)


blobs.Params = BlobsParams  # type: ignore[attr-defined]
blobs.num_classes = NUM_CLASSES  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description="train the smoke preset on the blobs dataset")
    parser.add_argument("--out", default="runs/example-blobs")
    args = parser.parse_args()
    run = surf_dist.train(args.out, preset="smoke", plugins=[__file__], overrides=["data.dataset=blobs"])
    ev = run.eval
    print(f"blobs ({NUM_CLASSES} classes): U-DGD per layer", " ".join(f"{a:.3f}" for a in ev.udgd.accuracy_per_layer))
    for name, method in ev.baselines.items():
        print(f"{name}: {method.accuracy[-1]:.3f} after {method.rounds[-1]} rounds")


if __name__ == "__main__":
    main()
