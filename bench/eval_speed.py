"""How long the main job's evaluation takes with every decentralized method, beside the three methods it once had,
measured in one run (same machine, same load, one torch thread per worker).

Each row evaluates the default preset's meta-test tasks (an untrained U-DGD: its time does not depend on its
parameters) on the local backend:

    three, one task at a time   dgd, dsgd, dfedavgm, ``eval.batch_tasks=1`` (the job before batching)
    all, one task at a time     every decentralized method, ``eval.batch_tasks=1``
    all, batched                every decentralized method, tasks as one block-diagonal graph (the default)

and prints seconds, seconds per method and the ratio to the first row. The acceptance point: the third row is
at most the first (the whole job then ends in no more time than with three methods: training is unchanged).

    python bench/eval_speed.py [--preset default] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import time

import surf_dist
from surf_dist.runtime.launch import run_job
from surf_dist.worker.jobs import EvalJob

THREE = '["dgd","dsgd","dfedavgm"]'


def seconds(preset: str, overrides: list[str]) -> tuple[float, int]:
    """Wall seconds of one evaluation under ``overrides``, and the number of methods it evaluated."""
    cfg = surf_dist.make_config(preset, None, overrides)
    t0 = time.perf_counter()
    run_job(cfg, EvalJob(), progress=False)
    return time.perf_counter() - t0, len(cfg.eval.baselines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    rows = {
        "three, one task at a time": [f"eval.baselines={THREE}", "eval.batch_tasks=1"],
        "all, one task at a time": ["eval.batch_tasks=1"],
        "all, batched": [],
    }
    results = {name: seconds(args.preset, [*args.overrides, *extra]) for name, extra in rows.items()}
    first = results["three, one task at a time"][0]
    for name, (secs, num) in results.items():
        print(f"{name:<28} {num:>2} methods  {secs:7.1f} s  {secs / num:6.2f} s/method  {secs / first:5.2f} × three")


if __name__ == "__main__":
    main()
