"""The jobs a worker runs, the same on every backend: a backend builds the ``Mixer`` and the ``Problem`` and calls
the job; the math never sees a process.

* ``TrainJob``: meta-train (resuming from the run directory), evaluate on fresh meta-test tasks, and on the
  coordinator write the run directory (the ledger's CSVs, the figure, then ``summary.json``) and return the summary.
* ``EvalJob``: evaluate given parameters (a trained run's) under a config, on any backend; the coordinator
  returns the ``eval`` section with its costs.

Jobs are plain picklable objects: forked ranks inherit them, Ray actors receive them, torchrun ranks build them
from the command line.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..comm.mixer import Mixer
from ..config import Config
from ..errors import CannotWrite, InputError
from ..rundir.atomic import write_json_atomic
from ..rundir.costs import with_costs
from ..rundir.outputs import comm_section, plot, table
from ..rundir.summary import EvalResult, Summary, TrainResult
from .evaluate import evaluate
from .failures import KillInjector, kills_fired
from .loop import fit
from .problem import Problem
from .trainer import History, Trainer


class Job(Protocol):
    """What a worker runs: ``job(cfg, mixer, problem, run_dir, progress=, backend=)``; the coordinator's return
    value is the result (picklable)."""

    def __call__(
        self, cfg: Config, mixer: Mixer, problem: Problem, run_dir: Path | None, *, progress: bool, backend: str
    ) -> Any: ...


@dataclass(frozen=True)
class TrainJob:
    """Meta-train and evaluate; the coordinator writes ``run_dir`` and returns the summary (a dict)."""

    def __call__(
        self, cfg: Config, mixer: Mixer, problem: Problem, run_dir: Path | None, *, progress: bool, backend: str
    ) -> dict[str, Any] | None:
        trainer = Trainer(cfg, mixer, problem)
        history = fit(trainer, run_dir, progress=progress)
        t0 = time.perf_counter()
        faults = KillInjector(cfg.failures, seed=cfg.seed, num_workers=mixer.num_workers, run_dir=run_dir)
        ev = evaluate(trainer, trainer.eval_model(), progress=progress, faults=faults)
        eval_s = time.perf_counter() - t0
        ledger = mixer.merged_ledger()
        if not mixer.is_coordinator:
            return None
        assert ledger is not None
        summary = build_summary(
            cfg, trainer, problem, history, with_costs(ev, ledger, cfg.eval.target_accuracy), ledger, run_dir, backend
        )
        summary.timing["eval_s"] = eval_s
        summary.timing["total_s"] = history.train_s + eval_s
        d = summary.to_dict()
        if run_dir is not None:  # summary.json last: where it is, every other output is too
            ledger.write_csv(run_dir / "comm.csv")
            ledger.write_edges_csv(run_dir / "comm_edges.csv")
            try:
                plot(d, run_dir / "accuracy_vs_rounds.png")
            except CannotWrite:  # a full or read-only disk is: the summary would not fit either
                raise
            except Exception as exc:  # a figure is never worth a failed run
                print(f"surf-dist: could not draw the figure: {exc}")
            write_json_atomic(run_dir / "summary.json", d)
        if progress:
            print(table(d))
        return d


@dataclass(frozen=True)
class EvalJob:
    """Evaluate the parameters ``model_state`` (a U-DGD state dict; None: the untrained model, e.g. to tune the
    baselines) under the job's config; the coordinator returns the ``eval`` section with its costs (a dict), the
    other workers None."""

    model_state: dict[str, Any] | None = None

    def __call__(
        self, cfg: Config, mixer: Mixer, problem: Problem, run_dir: Path | None, *, progress: bool, backend: str
    ) -> dict[str, Any] | None:
        trainer = Trainer(cfg, mixer, problem)
        if self.model_state is not None:
            try:
                trainer.model.load_state_dict(self.model_state)
            except RuntimeError as exc:  # shapes that do not fit: a setting changed what the model is
                first = str(exc).splitlines()[1:2] or [str(exc)]
                raise InputError(
                    [
                        f"the trained parameters do not fit the model of this config ({first[0].strip()}); fix: "
                        "evaluate with the settings the run was trained with"
                    ]
                ) from None
        ev = evaluate(trainer, trainer.model, progress=progress)
        ledger = mixer.merged_ledger()
        if not mixer.is_coordinator:
            return None
        assert ledger is not None
        return with_costs(ev, ledger, cfg.eval.target_accuracy).to_dict()


def build_summary(
    cfg: Config,
    trainer: Trainer,
    problem: Problem,
    history: History,
    ev: EvalResult,
    ledger: Any,
    run_dir: Path | None,
    backend: str,
) -> Summary:
    """The summary of a finished run (the one place it is made)."""
    mixer, udgd = trainer.mixer, ev.udgd
    assert udgd is not None, "a training run evaluates U-DGD"
    graph = problem.graph("meta-test", 0).graph
    return Summary(
        backend=backend,
        workers=mixer.num_workers,
        seed=cfg.seed,
        num_agents=problem.num_agents,
        placement={
            "method": cfg.topology.placement,
            "per_task": cfg.topology.placement != "contiguous",
            "agents_per_worker": [len(a) for a in problem.placement(mixer.num_workers)],
        },
        train=TrainResult(
            loss_per_step=history.loss_per_step,
            heldout_loss_per_step=history.heldout_loss_per_step,
            final_param_norms=trainer.final_param_norms(),
            final_duals=trainer.duals.tolist(),
            best_val_loss=history.best_val_loss,
            best_step=history.best_step,
            val=history.val,
            steps=trainer.step,
            constrained=cfg.train.constrained,
        ),
        eval=ev,
        comm=comm_section(
            ledger,
            num_agents=problem.num_agents,
            num_edges_directed=2 * graph.number_of_edges(),
            dim=problem.dim,
            itemsize=problem.dtype.itemsize,
            num_layers=cfg.model.num_layers,
            num_hops=cfg.model.num_hops,
        ),
        failures={
            "semantics": cfg.failures.semantics,
            "injected": {
                "kills": kills_fired(run_dir),
                "silent_agent_layers_train": history.silent_agent_layers,
                "silent_agent_layers_eval": udgd.silent_agent_layers,
            },
        },
        timing={
            "seconds_per_step": (
                sum(history.seconds_per_step) / len(history.seconds_per_step) if history.seconds_per_step else 0.0
            ),
            # meta-training over every attempt in this run directory (steps done again after a restart included);
            # evaluation: this attempt's
            "train_s": history.train_s,
            "eval_s": 0.0,
            "total_s": history.train_s,
            "attempts": history.attempts,
        },
    )
