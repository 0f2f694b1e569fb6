"""Backends: how workers come to life. Each builds a Mixer per worker and calls ``session.run_worker``.

* ``local``: one process, ``LocalMixer`` (the oracle). With process kills configured, the run goes
  to a child process that a supervisor restarts from the last checkpoint (``failures.max_restarts``).
* ``torch``: under ``torchrun`` each rank joins the process group from the environment; run from a
  plain shell, ``surf-dist train --backend torch --workers N`` forks N local ranks itself.
* ``ray``: the driver starts N actors that form a gloo group among themselves (``comm.ray_backend``).
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import sys
from pathlib import Path
from typing import Any

from .config import Config, load_config, read_config, replace
from .errors import InputError, RunFailed


def run_local(cfg: Config, out: Path | None, progress: bool = True) -> dict[str, Any] | None:
    from .comm.local import LocalMixer
    from .problem import Problem
    from .session import run_worker

    problem = Problem(cfg)
    mixer = LocalMixer(problem.num_agents, semantics=cfg.failures.semantics, device=cfg.run.device)
    return run_worker(cfg, mixer, problem, out, progress=progress, backend="local")


def exit_reason(code: int) -> str:
    """A dead process's exit code in words: ``signal SIGKILL`` or ``exit code 3``."""
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"


def _supervised(target, args: tuple, max_restarts: int) -> None:
    """Run ``target(*args)`` in a child process; restart it after a crash, at most ``max_restarts`` times."""
    ctx = mp.get_context("fork")
    for attempt in range(max_restarts + 1):
        child = ctx.Process(target=target, args=args)
        child.start()
        child.join()
        code = child.exitcode or 0
        if code == 0:
            return
        how = exit_reason(code)
        print(
            f"surf-dist: worker process died ({how}); "
            + ("restarting from the last checkpoint" if attempt < max_restarts else "no restarts left"),
            file=sys.stderr,
        )
    raise RunFailed(f"the run failed {max_restarts + 1} time(s); see the messages above")


def launch(cfg: Config, out: Path, progress: bool = True) -> None:
    """Run ``train`` on the configured backend; the run directory gets config, metrics, summary."""
    out.mkdir(parents=True, exist_ok=True)
    _check_run_dir(cfg, out)
    backend = cfg.run.backend
    kills = bool(cfg.failures.kill or cfg.failures.kill_mtbf_steps)
    if backend == "local":
        if kills:
            _supervised(run_local, (cfg, out, progress), cfg.failures.max_restarts)
        else:
            run_local(cfg, out, progress)
    elif backend == "torch":
        from .comm.torch_backend import run_torch

        run_torch(cfg, out, progress=progress)
    elif backend == "ray":
        from .comm.ray_backend import run_ray

        run_ray(cfg, out, progress=progress)


def _check_run_dir(cfg: Config, out: Path) -> None:
    """A run directory holds one run: resuming it with a different config is an input error."""
    saved = out / "config.json"
    if not saved.exists():
        return
    old = read_config(saved).to_dict()
    new = cfg.to_dict()
    # how the run is executed may change on resume; what it computes may not
    for d in (old, new):
        d.pop("run", None)
        d["failures"] = {
            k: v for k, v in d["failures"].items() if k not in ("kill", "hang", "kill_mtbf_steps", "max_restarts")
        }
    if old != new:
        diff = sorted(
            f"{s}.{k}" for s in new if isinstance(new[s], dict) for k in new[s] if old.get(s, {}).get(k) != new[s][k]
        )
        raise InputError(
            [
                f"{out}: holds a run with another config (differs in {', '.join(diff) or 'seed'}); "
                "fix: choose a new --out directory or delete this one"
            ]
        )


# -- re-evaluation --------------------------------------------------------------------------------------
def _trained(run: Path, overrides: list[str]) -> tuple[Config, Any]:
    from . import checkpoint

    if not (run / "config.json").exists():
        raise InputError([f"{run}: no config.json here (fix: give a run directory written by surf-dist train)"])
    cfg = load_config(
        None,
        None,
        overrides,
        base=replace(read_config(run / "config.json"), run={"backend": "local", "workers": 1}),
    )
    state = checkpoint.load(run)
    if state is None:
        raise InputError([f"{run}: no usable checkpoint (fix: train the run to completion first)"])
    return cfg, state


def _evaluate_local(cfg: Config, state: Any) -> dict[str, Any]:
    from .comm.local import LocalMixer
    from .evaluate import evaluate
    from .problem import Problem
    from .train import Trainer

    problem = Problem(cfg)
    trainer = Trainer(cfg, LocalMixer(problem.num_agents, semantics=cfg.failures.semantics), problem, None)
    trainer.load_state(state)
    return evaluate(trainer, trainer.eval_model())


def reevaluate(run: Path, overrides: list[str], out: Path | None, progress: bool = True) -> Path:
    """Evaluate a trained run again (on the local backend, the oracle), e.g. with silent agents."""
    from .report import write_json_atomic

    cfg, state = _trained(run, overrides)
    ev = _evaluate_local(cfg, state)
    out = out or run / "evaluate.json"
    write_json_atomic({"run": str(run), "overrides": overrides, "backend": "local", "eval": ev}, out)
    if progress:
        u = ev["udgd"]
        print("U-DGD accuracy per layer:", " ".join(f"{a:.3f}" for a in u["accuracy_per_layer"]))
        for name, b in ev["baselines"].items():
            print(
                f"{name.upper()}: {b['accuracy_at_udgd_rounds']:.3f} @ {u['rounds']} rounds, "
                f"{b['accuracy_at_max_rounds']:.3f} @ {b['rounds'][-1]}"
            )
    return out


def sweep_async(runs: list[Path], counts: list[int], overrides: list[str]) -> dict[str, Any]:
    """Final U-DGD accuracy (mean ± std over meta-test tasks) vs silent agents per layer, per run."""
    result: dict[str, Any] = {"counts": counts, "runs": {}}
    print(f"{'run':<32} " + " ".join(f"{c:>12}" for c in counts))
    for run in runs:
        rows = []
        for c in counts:
            cfg, state = _trained(run, [*overrides, f"failures.num_async={c}", "eval.baselines=[]"])
            u = _evaluate_local(cfg, state)["udgd"]
            rows.append(
                {
                    "num_async": c,
                    "accuracy": u["accuracy_per_layer"][-1],
                    "std": u["accuracy_std_per_layer"][-1],
                }
            )
        label = f"{run.name} ({'constrained' if cfg.train.constrained else 'unconstrained'})"
        result["runs"][str(run)] = {"constrained": cfg.train.constrained, "points": rows}
        print(f"{label:<32} " + " ".join(f"{r['accuracy']:.3f}±{r['std']:.3f}" for r in rows))
    return result


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
