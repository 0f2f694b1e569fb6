"""The methods alone (``surf-dist baselines``): every method of ``eval.baselines`` on the config's evaluated tasks,
with no trained optimizer, on any backend and on any graph the methods accept (push-sum on a directed one).

Each task starts from the W₀ U-DGD would start from (``Trainer.initial_iterate``) and every method runs
``eval.rounds_factor · K · L`` rounds, exactly as beside a trained U-DGD; the numbers equal those of the
``eval.baselines`` section of a training run of the same config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import Config
from ..rundir.atomic import write_json_atomic
from ..rundir.outputs import eval_table
from ..rundir.summary import EvalResult

METHODS_ONLY = "eval.udgd=false"
"""The override that makes a config the methods alone (before validation: a directed graph is then accepted)."""


def run_baselines(cfg: Config, out: Path | None = None, *, progress: bool = True) -> EvalResult | None:
    """Evaluate the methods of ``cfg`` (validated, ``eval.udgd = false``) on its backend; with ``out``, the record
    ``{config, backend, workers, eval}`` is written there. None on torchrun ranks other than 0."""
    from ..runtime.launch import run_job
    from ..worker.jobs import EvalJob

    assert not cfg.eval.udgd, f"a config made with {METHODS_ONLY!r}"
    result: dict[str, Any] | None = run_job(cfg, EvalJob(), progress=progress)
    if result is None:
        return None
    if out is not None:
        record = {"config": cfg.to_dict(), "backend": cfg.run.backend, "workers": cfg.run.workers, "eval": result}
        write_json_atomic(out, record)
    if progress:
        print(eval_table(result))
    return EvalResult.from_dict(result)
