"""``python -m surf_dist`` and the ``surf-dist`` console script (also what torchrun runs: ``torchrun ... -m
surf_dist train``). Commands that run workers re-execute the program once with the allocator's settings
(``runtime.malloc``) after their input has been validated, so that help and bad input answer at once; ``main``
called from Python (``surf_dist.cli.main``) never re-executes its process. A torchrun rank that joined a process
group leaves through ``runtime.torch_launch.exit_rank`` (no interpreter teardown while gloo's threads run)."""

import sys


def main() -> int:
    from .cli import main as cli_main
    from .runtime import malloc

    malloc.PROGRAM = True  # this process is the surf-dist program: it may re-execute itself
    code = cli_main()
    if "surf_dist.runtime.torch_launch" in sys.modules:  # this process ran workers' code: a rank, perhaps
        from .runtime.preflight import under_torchrun
        from .runtime.torch_launch import exit_rank, joined_group

        if under_torchrun() and joined_group():
            exit_rank(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
