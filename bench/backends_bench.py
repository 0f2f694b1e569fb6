"""Seconds per meta-training step of the same problem on every backend, in one run.

Runs the whole ``train`` job (training only: one validation and one test task, no baselines) on the
local backend, on W forked torch ranks and on W Ray actors, and prints each backend's mean seconds per
step (``summary.timing.seconds_per_step``) and its ratio to the local backend. Parity is checked too:
the largest relative gap of the per-step losses to the local run.

    python bench/backends_bench.py                 # default problem, 40 steps, W = 2
    python bench/backends_bench.py --steps 100 --workers 2 4 --set topology.placement=mincut
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from surf_dist.config import load_config
from surf_dist.runtime.launch import launch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--workers", type=int, nargs="+", default=[2])
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    base = [
        f"data.num_meta_train={args.steps}",
        "train.epochs=1",
        "data.num_meta_val=1",
        "data.num_meta_test=1",
        "eval.baselines=[]",
        f"train.checkpoint_every={args.steps}",
        "run.threads_per_worker=1",
        *args.overrides,
    ]
    runs = [("local", 1)] + [(b, w) for w in args.workers for b in ("torch", "ray")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend, workers in runs:
            cfg = load_config("default", None, [*base, f"run.backend={backend}", f"run.workers={workers}"])
            out = Path(tmp) / f"{backend}{workers}"
            launch(cfg, out, progress=False)
            rows.append((backend, workers, json.loads((out / "summary.json").read_text())))
    local = rows[0][2]
    print(f"{'backend':<10} {'workers':>7} {'s/step':>8} {'vs local':>9} {'max loss gap':>13}")
    for backend, workers, s in rows:
        sps = s["timing"]["seconds_per_step"]
        gap = max(
            abs(a - b) / max(abs(a), 1e-12)
            for a, b in zip(local["train"]["loss_per_step"], s["train"]["loss_per_step"])
        )
        print(f"{backend:<10} {workers:>7} {sps:>8.3f} {sps / local['timing']['seconds_per_step']:>8.2f}× {gap:>13.1e}")


if __name__ == "__main__":
    main()
