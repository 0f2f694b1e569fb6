"""``python -m surf_dist`` and the ``surf-dist`` console script (also what torchrun runs: ``torchrun ... -m
surf_dist train``). Commands that run workers re-execute the program once with the allocator's settings
(``runtime.malloc``) after their input has been validated, so that help and bad input answer at once; ``main``
called from Python (``surf_dist.cli.main``) never re-executes its process."""

import sys


def main() -> int:
    from .cli import main as cli_main
    from .runtime import malloc

    malloc.PROGRAM = True  # this process is the surf-dist program: it may re-execute itself
    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
