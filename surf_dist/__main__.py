"""``python -m surf_dist`` and the ``surf-dist`` console script (also what torchrun runs: ``torchrun ... -m
surf_dist train``): the allocator's settings first (``malloc``), then the command line."""

import sys

from .runtime.malloc import reexec_with_lean_malloc


def main() -> int:
    reexec_with_lean_malloc()
    from .cli import main as cli_main  # after the re-execution: torch is imported once, in the final process

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
