"""How fast the CLI answers when it runs no job: ``--help``, a mistyped ``--set`` key and a bad run directory,
beside ``python -c "import torch"`` measured in the same run (parsing and validation import neither torch nor
matplotlib). Prints seconds and peak memory of each, best of ``--repeat``, and the ratio to importing torch.

    python bench/cli_time.py --repeat 5
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

COMMANDS = {
    "surf-dist --help": [sys.executable, "-m", "surf_dist", "--help"],
    "mistyped --set (exit 2)": [
        *(sys.executable, "-m", "surf_dist", "train", "--set", "model.num_layrs=3", "--out", "/tmp/x")
    ],
    "evaluate --run /nonexistent (exit 2)": [sys.executable, "-m", "surf_dist", "evaluate", "--run", "/nonexistent"],
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
}


def measure(cmd: list[str], repeat: int) -> tuple[float, float]:
    """(best wall seconds, peak RSS in MB of the child) over ``repeat`` runs."""
    best, peak = float("inf"), 0.0
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=False)
        best = min(best, time.perf_counter() - t0)
        peak = max(peak, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
    return best, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results = {name: measure(cmd, args.repeat) for name, cmd in COMMANDS.items()}
    torch_s = results["python -c 'import torch'"][0]
    for name, (seconds, mb) in results.items():
        print(f"{name:<40} {seconds:6.3f} s  {mb:7.0f} MB (peak so far)  {seconds / torch_s:5.2f} × import torch")


if __name__ == "__main__":
    main()
