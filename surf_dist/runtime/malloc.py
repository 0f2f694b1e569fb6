"""Memory of large runs: glibc's allocator, set before the interpreter starts.

With its defaults glibc serves blocks below a threshold that grows up to 32 MB from its heap, and keeps what is
freed there: a meta-training step at 10,000 agents (tensors of 10,000 × 650 floats, 26 MB) then holds twice
the memory it needs (4.0 GB peak against 2.0 GB). surf-dist's entry points (``surf-dist``, ``python -m
surf_dist``, torchrun's ranks, the Ray actors it starts) run with

    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=8388608:glibc.malloc.hugetlb=1

so blocks of 8 MB and more are mapped on their own and given back when freed, on transparent huge pages
(fewer page faults); small runs (100 or 1,000 agents, blocks under 8 MB) are unchanged. Tunables are read
only when a process starts, so the entry point re-executes itself once with them; a ``GLIBC_TUNABLES`` already
set, or ``SURF_DIST_MALLOC=default``, is respected.
"""

from __future__ import annotations

import os
import sys

TUNABLES = "glibc.malloc.mmap_threshold=8388608:glibc.malloc.hugetlb=1"
PROGRAM = False  # set by the entry point (``surf_dist.__main__``): only the program itself re-executes


def lean_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with the tunables, unless it sets its own or opts out."""
    env = dict(os.environ if env is None else env)
    if "GLIBC_TUNABLES" not in env and env.get("SURF_DIST_MALLOC") != "default" and sys.platform == "linux":
        env["GLIBC_TUNABLES"] = TUNABLES
    return env


def reexec_with_lean_malloc() -> None:
    """Re-execute ``python -m surf_dist ARGS`` with the tunables (once; same PID, so torchrun still sees it)."""
    env = lean_env()
    if not PROGRAM or env.get("GLIBC_TUNABLES") == os.environ.get("GLIBC_TUNABLES"):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "surf_dist", *sys.argv[1:]], env)
