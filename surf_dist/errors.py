"""Errors that mean *bad input* (config, topology, data): exit code 2, every problem listed at once."""

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
