"""The Python API. The CLI is a thin layer over it: ``surf-dist train`` is ``train``, ``surf-dist evaluate`` is
``evaluate``, ``surf-dist baselines`` is ``baselines``, ``surf-dist transfer`` is ``transfer``.

    import surf_dist

    run = surf_dist.train("runs/mine", preset="smoke", overrides=["eval.baselines=[\\"dgd\\"]"])
    run.summary.eval.udgd.accuracy_per_layer          # U-DGD per layer, layer 0 first
    ev = surf_dist.evaluate(run.dir, ["failures.num_async=2"], backend="torch", workers=2)

A config comes from a preset, a TOML file, a dict of sections (``{"model": {"num_layers": 5}}``) or a ``Config``,
with ``KEY=VALUE`` overrides on top (the ``--set`` syntax). Bad input raises ``surf_dist.InputError`` (every
problem at once) before any process starts. Importing this module imports no torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .rundir.summary import EvalResult, Summary
from .runtime import under_torchrun

if TYPE_CHECKING:  # pragma: no cover
    from .config import Config


@dataclass(frozen=True)
class Run:
    """A run directory: its config and, once it has finished, its summary (None on torchrun ranks other than 0,
    which take part in the run but do not write it)."""

    dir: Path
    config: Config
    summary: Summary | None

    @property
    def eval(self) -> EvalResult:
        """The summary's evaluation (U-DGD per layer, every method per round)."""
        if self.summary is None:
            raise ValueError(f"{self.dir}: no summary here (a run still going, or a torchrun rank other than 0)")
        return self.summary.eval


def make_config(
    preset: str | None = "default",
    config: str | Path | dict[str, Any] | Config | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    backend: str | None = None,
    workers: int | None = None,
    plugins: list[str] | tuple[str, ...] = (),
    ray_address: str | None = None,
) -> Config:
    """The validated config of a run: ``preset``, then ``config`` (a TOML file, a dict of sections, or a ``Config``
    as the base), then ``overrides``; ``backend``, ``workers``, ``plugins`` and ``ray_address`` as the
    ``run.*`` settings of the same names. Under torchrun the backend is torch with one worker per rank (a config
    that asks for another backend is refused when the run starts)."""
    import json

    from .config import Config as ConfigType
    from .config import load_config, replace

    extra = list(overrides)
    if backend is not None:
        extra.append(f"run.backend={backend}")
    if workers is not None:
        extra.append(f"run.workers={workers}")
    if plugins:
        extra.append(f"run.plugins={json.dumps(list(plugins))}")
    if ray_address is not None:
        extra.append(f"run.ray_address={json.dumps(ray_address)}")
    base = config if isinstance(config, ConfigType) else None
    config_file = config if isinstance(config, str | Path) else None
    config_dict = config if isinstance(config, dict) else None
    if not under_torchrun():
        return load_config(preset, config_file, extra, base=base, config=config_dict)
    # under torchrun this process is one rank of the torch backend, with one worker per rank
    torch_base = replace(base or ConfigType(), run={"backend": "torch"})
    asked = load_config(preset, config_file, extra, base=torch_base, config=config_dict, validate=False)
    if asked.run.backend != "torch":
        return asked  # refused by launch's check, with the fix
    world = int(os.environ["WORLD_SIZE"])
    return load_config(preset, config_file, extra, base=replace(torch_base, run={"workers": world}), config=config_dict)


def train(
    out: str | Path,
    *,
    preset: str | None = "default",
    config: str | Path | dict[str, Any] | Config | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    backend: str | None = None,
    workers: int | None = None,
    plugins: list[str] | tuple[str, ...] = (),
    ray_address: str | None = None,
    progress: bool = False,
) -> Run:
    """Meta-train U-DGD and evaluate it beside the baselines; the finished run in ``out``.

    ``backend``: ``local`` (default; torch under torchrun), ``torch`` (forked gloo ranks, or this process's
    torchrun rank) or ``ray`` (actors); ``workers``: processes. A run directory that holds an interrupted run of
    the same config is resumed. ``progress``: the progress bar and the table on stdout."""
    from .runtime.launch import launch

    cfg = make_config(
        preset, config, overrides, backend=backend, workers=workers, plugins=plugins, ray_address=ray_address
    )
    summary = launch(cfg, Path(out), progress=progress)
    return Run(Path(out), cfg, None if summary is None else Summary.from_dict(summary))


def evaluate(
    run: str | Path | Run,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    backend: str | None = None,
    workers: int | None = None,
    out: str | Path | None = None,
    progress: bool = False,
) -> EvalResult | None:
    """Evaluate a finished run again, under its config with ``overrides`` (silent agents, a network, another graph
    or size...), on any backend: the local oracle's numbers. With ``out``, the result is also written there as
    JSON. None on torchrun ranks other than 0. A setting that changes the trained model's shape is refused."""
    from .analysis.reevaluate import evaluate_run, reevaluate

    run_dir = run.dir if isinstance(run, Run) else Path(run)
    if out is None:
        return evaluate_run(run_dir, list(overrides), backend=backend, workers=workers, progress=progress)
    written = reevaluate(run_dir, list(overrides), Path(out), backend=backend, workers=workers, progress=progress)
    if written is None:
        return None
    import json

    return EvalResult.from_dict(json.loads(Path(written).read_text())["eval"])


def baselines(
    *,
    preset: str | None = "default",
    config: str | Path | dict[str, Any] | Config | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    backend: str | None = None,
    workers: int | None = None,
    plugins: list[str] | tuple[str, ...] = (),
    ray_address: str | None = None,
    out: str | Path | None = None,
    progress: bool = False,
) -> EvalResult | None:
    """Evaluate the methods of ``eval.baselines`` alone, without a trained optimizer (``eval.udgd = false``): on
    any backend, and on any graph they accept (push-sum on a directed one). The same numbers as the methods'
    section of a training run of the same config; ``udgd`` is None. With ``out``, also written there as JSON.
    None on torchrun ranks other than 0."""
    from .analysis.baselines import METHODS_ONLY, run_baselines

    cfg = make_config(
        preset,
        config,
        [*overrides, METHODS_ONLY],
        backend=backend,
        workers=workers,
        plugins=plugins,
        ray_address=ray_address,
    )
    return run_baselines(cfg, None if out is None else Path(out), progress=progress)


def transfer(
    run: str | Path | Run,
    specs: list[str] | tuple[str, ...],
    overrides: list[str] | tuple[str, ...] = (),
    *,
    out: str | Path | None = None,
    backend: str | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> dict[str, Any] | None:
    """A trained run evaluated, not retrained, on each graph of ``specs`` (``topology.spec`` values) beside the
    methods at equal rounds: the record of ``out/transfer.json`` (default ``RUN/transfer``; also ``transfer.md``
    and ``transfer.png``), one row per graph. A rerun keeps the graphs already done. None on torchrun ranks
    other than 0. Every graph is checked before the first is evaluated."""
    from .analysis.reevaluate import trained_config
    from .analysis.transfer import transfer as run_transfer
    from .errors import InputError
    from .runtime.preflight import prepare_run_dir

    run_dir = run.dir if isinstance(run, Run) else Path(run)
    problems: list[str] = []
    for spec in specs:
        try:
            trained_config(run_dir, [*overrides, f"topology.spec={spec}"], backend=backend, workers=workers)
        except InputError as exc:
            problems += [p for p in exc.problems if p not in problems]
    if problems:
        raise InputError(problems)
    folder = Path(out) if out is not None else run_dir / "transfer"
    prepare_run_dir(folder)
    execution = {"backend": backend, "workers": workers}
    return run_transfer(run_dir, list(specs), list(overrides), folder, progress=progress, **execution)


def load_run(run_dir: str | Path) -> Run:
    """A run directory written by ``train``: its config and its summary (None while it has none)."""
    from .config import read_config
    from .errors import InputError

    path = Path(run_dir)
    if not (path / "config.json").is_file():
        raise InputError([f"{path}: not a run directory (no config.json; fix: give a directory surf-dist train wrote)"])
    summary_file = path / "summary.json"
    summary = None
    if summary_file.is_file():
        import json

        summary = Summary.from_dict(json.loads(summary_file.read_text()))
    return Run(path, read_config(path / "config.json"), summary)
