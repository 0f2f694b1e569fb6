"""Errors the CLI maps to exit codes: bad input (config, topology, data, output directory) 2, a failed run 1,
an interrupt 130 (SIGINT) or 143 (SIGTERM)."""

from __future__ import annotations


class InputError(Exception):
    """Bad user input. ``problems`` lists every problem found, each naming the source, the field and the fix.

    The CLI prints all of them and exits with code 2, before any process starts.
    """

    def __init__(self, problems: list[str] | str, source: str | None = None) -> None:
        if isinstance(problems, str):
            problems = [problems]
        self.problems = [f"{source}: {p}" if source else p for p in problems]
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:  # one problem a line
        return "\n".join(f"  - {p}" for p in self.problems)

    def __reduce__(self) -> tuple:  # from a worker (a forked rank, a Ray actor) back to the supervisor intact
        return (InputError, (self.problems,))


class RunFailed(Exception):
    """The run failed for a reason already reported (a worker died too often, a worker hung): exit code 1,
    no traceback."""


class CannotWrite(RunFailed):
    """A write into the run directory failed because its disk is full (ENOSPC), the quota is spent (EDQUOT) or
    the file system turned read-only (EROFS): exit code 1, one line, no traceback, never retried (a restart would
    fail the same way). The last good checkpoint is left in place; ``resume_step`` (set by the launcher, which
    reads the run directory) is where the same command, rerun once the disk has room, resumes.
    """

    FIXES = {
        "EROFS": "make that file system writable again or choose another --out",
        "EDQUOT": "free space within your disk quota or choose another --out",
    }

    def __init__(self, path: str, reason: str, code: str = "ENOSPC", resume_step: int | None = None) -> None:
        self.path, self.reason, self.code, self.resume_step = path, reason, code, resume_step
        super().__init__(path, reason, code, resume_step)

    def __str__(self) -> str:
        fix = self.FIXES.get(self.code, "free space on that disk or choose another --out")
        rerun = (
            "the rerun starts from step 0: no checkpoint yet"
            if self.resume_step is None
            else f"the rerun resumes from step {self.resume_step}"
        )
        return f"cannot write {self.path}: {self.reason} (fix: {fix}; {rerun})"

    def __reduce__(self) -> tuple:  # from a worker (a forked rank, a Ray actor) back to the supervisor intact
        return (CannotWrite, (self.path, self.reason, self.code, self.resume_step))


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM reached the process that runs the command: every worker is stopped, the CLI says at
    which step and exits 128 + the signal's number (130 for SIGINT, 143 for SIGTERM)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signum)


class WorkerTimeout(RuntimeError):
    """A collective or an exchange did not complete within ``run.timeout_s``; names the worker(s) behind
    (exit code 1, no traceback; the supervisor restarts the run)."""
