"""Command line: ``surf-dist train | evaluate | sweep-async | sweep | sweep-alpha | sweep-epsilon | paper-figures |
tune-baselines | topology | list | report | compare | check-summary`` (also ``python -m surf_dist``; under torchrun
``surf-dist train`` and ``surf-dist evaluate`` run as one rank of the torch backend). A thin layer over the Python
API (``surf_dist.api``).

Exit codes: 0 success, 2 bad input (config, topology, data, output directory: every problem listed, before
any process starts; also when a worker finds it, never retried), 130 interrupted (SIGINT) or 143 (SIGTERM),
1 anything else (a failed run, runs that differ, a broken summary contract).
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from pathlib import Path

from ..errors import InputError, RunFailed, WorkerTimeout
from ..runtime import under_torchrun
from ..runtime.interrupts import exit_code, interrupts_raise
from .commands import COMMANDS
from .parser import build_parser

__all__ = ["build_parser", "main"]


def _who(command: str) -> str:
    """``surf-dist train``, or under torchrun ``surf-dist train (rank R of W)``: every rank may print."""
    if not under_torchrun():
        return f"surf-dist {command}"
    return f"surf-dist {command} (rank {os.environ['RANK']} of {os.environ['WORLD_SIZE']})"


def _where_train_stopped(out: Path) -> str:
    """``at step S; rerun ... (from step C)``: how far the run in ``out`` got and where a rerun resumes."""
    from ..worker import checkpoint
    from ..worker.metrics import steps_done

    done = steps_done(out) if out.is_dir() else None
    resume_at = checkpoint.step_of(out) if out.is_dir() else None
    return (
        f"at step {done or 0}; rerun the same command to resume "
        f"(from step {resume_at or 0}{'' if resume_at is not None else ': no checkpoint yet'})"
    )


def _end_line() -> None:
    """Finish a line a progress bar left open (a forked rank killed while drawing), so our line stands alone;
    nothing to do when no bar was ever shown (and no torch or tqdm is imported for bad input)."""
    console = sys.modules.get("surf_dist.runtime.console")
    if console is not None:
        console.end_line()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with interrupts_raise():
            return COMMANDS[args.command](args)
    except InputError as exc:
        _end_line()
        n = len(exc.problems)
        print(f"{_who(args.command)}: bad input ({n} problem{'s' if n != 1 else ''}):\n{exc}", file=sys.stderr)
        return 2
    except (RunFailed, WorkerTimeout) as exc:  # already explained: one line, no traceback
        _end_line()
        print(f"{_who(args.command)}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:  # SIGINT or SIGTERM: every worker has been stopped on the way here
        code = exit_code(exc)
        # under torchrun SIGTERM is how the agent stops the ranks for a restart: not the user's interrupt
        if not under_torchrun() or (os.environ.get("RANK") == "0" and code == 128 + signal.SIGINT):
            where = _where_train_stopped(Path(args.out)) if args.command == "train" else ""
            _end_line()
            print(f"surf-dist {args.command}: interrupted {where}".rstrip(), file=sys.stderr)
        return code
    except Exception:
        _end_line()
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
