"""Configuration: frozen dataclasses, TOML files, ``--set key=value`` overrides, presets, validation.

Precedence: preset < ``--config FILE`` < ``--set`` (in order). ``load_config`` validates everything at
once and raises ``InputError`` listing every problem (the CLI exits 2 before any process starts).
The resolved config is saved as ``config.json`` in the run directory.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .data.tasks import DataSpec
from .errors import InputError

BACKENDS = ("local", "torch", "ray")


@dataclass(frozen=True, kw_only=True)
class TopologyConfig:
    spec: str = "kregular:n=100,degree=3"
    """Generator SPEC (``NAME:key=value,...``) or a graph file path (see ``surf-dist topology``)."""
    normalisation: str = "row"
    """Graph shift operator S: ``row`` | ``spectral`` | ``metropolis``."""
    placement: str = "contiguous"
    """Agents on workers: ``contiguous`` | ``mincut`` (computed on the graph of meta-train task 0)."""
    per_task: bool = True
    """Draw a fresh graph (e.g. a new relabelling) for every task, as the paper does."""
    allow_disconnected: bool = False
    """Accept disconnected graphs (DGD cannot reach consensus on them)."""


@dataclass(frozen=True, kw_only=True)
class DataConfig(DataSpec):
    """``data.*``: the data package's ``DataSpec`` (dataset, root, download, features, feature_device,
    cache_dir, partition, alpha, shards_per_agent, num_train, num_heldout, augmentations; documented
    there) plus the numbers of tasks."""

    augmentations: tuple[str, ...] = ("none",)
    """One is drawn per task and applied in image space (``none``, ``crop``, ``hflip``, ``vflip``, ``rot90``).
    Off for the default: on 8×8 digits a flip or a 90° turn makes another task altogether (a classifier
    fit to one reaches 10-45 % on the others), and the reference code's tasks effectively shared one."""
    num_meta_train: int = 300
    """Meta-training tasks (one step each per epoch)."""
    num_meta_val: int = 10
    """Meta-validation tasks (best-model selection)."""
    num_meta_test: int = 20
    """Meta-test tasks (the evaluation)."""


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    num_layers: int = 10
    """L, unrolled layers."""
    num_hops: int = 2
    """K, hops of each layer's graph filter (= rounds per layer; the paper's K, not the code's taps)."""
    batch_size: int = 10
    """B, fresh samples per agent per layer fed to the local update."""
    hidden: tuple[int, ...] = ()
    """Hidden widths of the local network (empty: the paper's single layer)."""
    output: str = "relu"
    """σ of the local update: ``relu`` (the paper: sign-constrained) | ``linear``."""
    normalisation: str = "none"
    """``none`` | ``agent-batch`` (the reference code's BatchNorm across agents: not local)."""
    init: str = "default"
    """Local-network init: ``default`` (torch) | ``paper`` (Uniform(0, 0.1))."""
    tap_init: str = "average"
    """Filter taps init: ``average`` (1/(K+1) each) | ``paper`` (Uniform(0, 0.1))."""
    dropout: float = 0.5
    """Dropout on the local update's output during meta-training (as the reference code), drawn per
    (seed, step, layer) for all agents so every backend drops the same entries. Measured on the default
    problem at 600 steps: 0.953 final accuracy and a monotone per-layer loss with 0.5, 0.931 and a loss
    that rises at layer 1 without it."""
    w0_std: float = 1.0
    """W_0 ~ N(0, w0_std²) drawn fresh per forward pass (the paper's code: 5)."""
    dtype: str = "float32"
    """``float32`` | ``float64``."""


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    epochs: int = 1
    """Passes over the meta-train tasks (one step per task, in order). One pass of 300 tasks generalises
    best on digits: U-DGD's meta-test accuracy was 0.953 / 0.947 (seeds 0 / 2) after 300 steps and
    0.943 / 0.938 after 600, while its loss on the meta-training images kept falling (memorisation)."""
    lr: float = 1e-3
    """Adam learning rate on Θ."""
    weight_decay: float = 0.0
    """Decoupled weight decay on Θ (AdamW)."""
    adam_eps: float = 1e-6
    """Adam's ε. Above torch's 1e-8 so that gradient entries at float32 rounding level (~1e-7 of the
    largest) do not turn into full-size steps: on the default problem, the per-step losses of local and 2
    ranks differ by 1.3e-4 after 40 float32 steps with 1e-8, by 7.7e-7 with 1e-6 (float64: 1.9e-15)."""
    dual_lr: float = 1.0
    """Dual ascent step on λ. The paper's 1e-2 goes with its loss scaled by 1/(n·m); with the plain mean
    cross-entropy here, 1e-2 leaves the duals near 0 and the constraints inactive (measured: per-layer loss
    not monotone), 1.0 makes them bind."""
    epsilon: float = 0.05
    """Descent margin ε of the constraints."""
    constrained: bool = True
    """Primal-dual learning with descent constraints (false: standard unrolling)."""
    constraint_form: str = "ratio"
    """``ratio`` (the reference code) | ``difference`` (the paper)."""
    grad_clip: float = 1.0
    """Clip the global gradient norm of Θ (0: off)."""
    validate_every: int = 0
    """Validate every this many steps (0: once per epoch)."""
    checkpoint_every: int = 100
    """Write a checkpoint every this many steps (and at every validation)."""
    keep_best: bool = True
    """Evaluate the parameters with the best validation loss (false: the last ones)."""


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    rounds_factor: int = 10
    """The baselines run this many times U-DGD's rounds (K·L)."""
    baselines: tuple[str, ...] = ("dgd", "dsgd", "dfedavgm")
    dgd_step: float = 0.3
    """Step sizes per agent (mean cross-entropy); each the best of {0.1, 0.3, 1, 3} on the default problem."""
    dsgd_step: float = 0.3
    dsgd_batch: int = 10
    dfedavgm_step: float = 1.0
    dfedavgm_local_steps: int = 5
    dfedavgm_momentum: float = 0.5
    dfedavgm_batch: int = 10


@dataclass(frozen=True, kw_only=True)
class FailureConfig:
    num_async: int = 0
    """Silent agents per layer (drawn per step and layer)."""
    async_rate: float = 0.0
    """Alternatively, each agent is silent with this probability per layer."""
    async_correlation: float = 0.0
    """Probability that an agent silent at layer l−1 stays silent at l (rate mode)."""
    trace: str | None = None
    """A CSV file of ``step,layer,agent`` rows naming silent agents (overrides the draws)."""
    semantics: str = "zero"
    """What neighbours use for a silent agent: ``zero`` (the reference code) | ``stale`` (the paper's text)."""
    in_training: bool = True
    """Inject silent agents during meta-training."""
    in_eval: bool = True
    """Inject silent agents during evaluation (U-DGD and baselines)."""
    kill: tuple[str, ...] = ()
    """Real process kills, ``WORKER@STEP``: SIGKILL worker WORKER when it reaches meta-training step STEP."""
    hang: tuple[str, ...] = ()
    """Hung processes, ``WORKER@STEP``: that worker stops answering at that step (tests the timeout)."""
    kill_mtbf_steps: float = 0.0
    """Random kills with this mean number of steps between failures (0: off)."""
    max_restarts: int = 3
    """Restarts of a killed run (local supervisor and Ray driver; torchrun uses --max-restarts)."""


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    backend: str = "local"
    """``local`` | ``torch`` | ``ray``."""
    workers: int = 1
    """Worker processes (torch ranks or Ray actors); each hosts a block of agents."""
    timeout_s: float = 60.0
    """Process-group timeout: a hung worker is reported after this long."""
    device: str = "cpu"
    """``cpu`` | ``cuda`` (one GPU per rank from LOCAL_RANK; nccl)."""
    ray_address: str | None = None
    """Join this Ray cluster instead of starting a local one."""
    ray_cpus_per_worker: float = 1.0
    ray_gpus_per_worker: float = 0.0
    threads_per_worker: int = 0
    """torch threads per worker (0: leave torch's default)."""


@dataclass(frozen=True, kw_only=True)
class Config:
    seed: int = 0
    """Every random draw is keyed by (seed, position)."""
    topology: TopologyConfig = field(default_factory=TopologyConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    failures: FailureConfig = field(default_factory=FailureConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    # the main job: digits, 100 agents on the paper's degree-3 graph, L = 10, K = 2, B = 10
    "default": {},
    # seconds: for tests and checks
    "smoke": {
        "topology": {"spec": "kregular:n=8,degree=3"},
        "data": {
            "num_train": 20,
            "num_heldout": 10,
            "num_meta_train": 6,
            "num_meta_val": 2,
            "num_meta_test": 2,
        },
        "model": {"num_layers": 3, "num_hops": 2, "batch_size": 5},
        "train": {"epochs": 2, "checkpoint_every": 4, "lr": 3e-3},
    },
    # the paper's scale (PAPER.md §3): CIFAR-10 ResNet-18 features, 600 tasks; for a GPU
    "paper": {
        "data": {
            "dataset": "cifar10",
            "features": "resnet18",
            "num_meta_train": 510,
            "num_meta_val": 90,
            "num_meta_test": 30,
            "augmentations": ["crop", "hflip", "vflip", "rot90"],
        },
        "model": {"init": "paper", "tap_init": "paper", "normalisation": "agent-batch", "w0_std": 5.0},
        "train": {"epochs": 500, "lr": 1e-2, "dual_lr": 1e-2, "epsilon": 0.01, "checkpoint_every": 100},
        "eval": {"rounds_factor": 10},
        "run": {"device": "cuda"},
    },
}


# -- parsing ---------------------------------------------------------------------------------------------
def _sections() -> dict[str, type]:
    return {f.name: f.type for f in dataclasses.fields(Config) if f.name != "seed"}  # type: ignore[misc]


def _section_types() -> dict[str, Any]:
    hints = typing.get_type_hints(Config)
    return {name: hints[name] for name in _sections()}


def _coerce(value: Any, tp: Any, where: str, problems: list[str]) -> Any:
    """``value`` as type ``tp`` (from TOML or a --set string), or a problem appended."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and type(None) in args:
        if value is None or (isinstance(value, str) and value.lower() in ("", "none", "null")):
            return None
        return _coerce(value, next(a for a in args if a is not type(None)), where, problems)
    if origin is tuple:
        inner = args[0]
        if isinstance(value, str):
            value = [v for v in (s.strip() for s in value.split(",")) if v]
        if not isinstance(value, (list, tuple)):
            problems.append(f'{where}: expected a list, got {value!r} (fix: e.g. {where}=a,b or ["a", "b"])')
            return None
        return tuple(_coerce(v, inner, where, problems) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        problems.append(f"{where}: expected true or false, got {value!r}")
        return None
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            problems.append(f"{where}: expected an integer, got {value!r}")
            return None
        try:
            return int(value)
        except ValueError:
            problems.append(f"{where}: expected an integer, got {value!r}")
            return None
    if tp is float:
        try:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        except (TypeError, ValueError):
            problems.append(f"{where}: expected a number, got {value!r}")
            return None
    if tp is str:
        return str(value)
    raise TypeError(tp)


def _merge(base: dict[str, Any], overrides: dict[str, Any], source: str, problems: list[str]) -> None:
    """Merge nested ``overrides`` into ``base`` (a ``Config.to_dict()``), checking names and types."""
    sections = _section_types()
    for key, value in overrides.items():
        if key == "seed":
            num_before = len(problems)
            seed = _coerce(value, int, f"{source}: seed", problems)
            if len(problems) == num_before:
                base["seed"] = seed
            continue
        if key not in sections:
            hint = difflib.get_close_matches(key, [*sections, "seed"], n=1)
            problems.append(
                f"{source}: unknown section {key!r}"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + f"; sections are seed, {', '.join(sections)}"
            )
            continue
        if not isinstance(value, dict):
            problems.append(f"{source}: {key} must be a table of settings, e.g. [{key}]")
            continue
        hints = typing.get_type_hints(sections[key])
        for name, v in value.items():
            if name not in hints:
                hint = difflib.get_close_matches(name, list(hints), n=1)
                problems.append(
                    f"{source}: unknown setting {key}.{name}"
                    + (f" (did you mean {key}.{hint[0]}?)" if hint else f"; {key} has {', '.join(hints)}")
                )
                continue
            num_before = len(problems)
            coerced = _coerce(v, hints[name], f"{source}: {key}.{name}", problems)
            if len(problems) == num_before:  # a bad value keeps the previous one, so validation still runs
                base[key][name] = coerced


def _parse_set(item: str, problems: list[str]) -> dict[str, Any]:
    """``a.b=value`` → {"a": {"b": value}} (value parsed as TOML when it can be, else kept as a string)."""
    if "=" not in item:
        problems.append(f"--set {item!r}: expected KEY=VALUE, e.g. --set model.num_layers=5")
        return {}
    key, raw = (s.strip() for s in item.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    parts = key.split(".")
    if not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", p) for p in parts) or len(parts) > 2:
        problems.append(f"--set {item!r}: KEY must be SECTION.NAME or seed, e.g. train.epochs")
        return {}
    return {parts[0]: value} if len(parts) == 1 else {parts[0]: {parts[1]: value}}


def load_config(
    preset: str | None = "default",
    config_file: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    base: Config | None = None,
    validate: bool = True,
) -> Config:
    """The resolved, validated ``Config`` (on top of ``base``, default the built-in defaults); raises
    ``InputError`` listing every problem."""
    problems: list[str] = []
    base_dict = (base or Config()).to_dict()
    base = None
    if preset is not None:
        if preset not in PRESETS:
            problems.append(f"--preset {preset!r}: unknown preset; use one of {', '.join(PRESETS)}")
        else:
            _merge(base_dict, PRESETS[preset], f"preset {preset}", problems)
    if config_file is not None:
        path = Path(config_file)
        try:
            _merge(base_dict, tomllib.loads(path.read_text()), str(path), problems)
        except FileNotFoundError:
            problems.append(f"{path}: config file not found (fix: give an existing TOML file to --config)")
        except tomllib.TOMLDecodeError as exc:
            problems.append(f"{path}: not valid TOML: {exc}")
    for item in overrides:
        _merge(base_dict, _parse_set(item, problems), f"--set {item.split('=')[0].strip()}", problems)
    cfg = from_dict(base_dict)
    if validate:
        problems += validate_config(cfg)
    if problems:
        raise InputError(problems)
    return cfg


def from_dict(d: dict[str, Any]) -> Config:
    """A Config from ``to_dict()`` output or a saved ``config.json`` (lists become tuples)."""
    sections = _section_types()
    kwargs: dict[str, Any] = {"seed": int(d.get("seed", 0))}
    for name, tp in sections.items():
        hints = typing.get_type_hints(tp)
        values = {}
        for k, v in d.get(name, {}).items():
            if k in hints:
                values[k] = tuple(v) if isinstance(v, list) else v
        kwargs[name] = tp(**values)
    return Config(**kwargs)


def save_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(json.dumps(cfg.to_dict(), indent=2, sort_keys=True) + "\n")


def read_config(path: str | Path) -> Config:
    return from_dict(json.loads(Path(path).read_text()))


def replace(cfg: Config, **sections: dict[str, Any]) -> Config:
    """A copy of ``cfg`` with some fields of some sections changed, e.g. replace(cfg, run={"workers": 2})."""
    kwargs = {name: dataclasses.replace(getattr(cfg, name), **values) for name, values in sections.items()}
    return dataclasses.replace(cfg, **kwargs)


# -- validation ------------------------------------------------------------------------------------------
KILL_RE = re.compile(r"^(\d+)@(\d+)$")


def parse_kill(item: str) -> tuple[int, int]:
    m = KILL_RE.match(item.strip())
    if not m:
        raise ValueError(item)
    return int(m.group(1)), int(m.group(2))


def validate_config(cfg: Config) -> list[str]:
    """Every problem of a config, each naming the field and the fix (empty when valid)."""
    from .core.baselines import BASELINES
    from .core.constraints import FORMS
    from .core.udgd import INITS, NORMALISATIONS, OUTPUTS, TAP_INITS
    from .data.tasks import validate_data_spec
    from .topology import NORMALISATIONS as GSO
    from .topology import PLACEMENTS, build_graph, validate_graph

    p: list[str] = []

    def choice(name: str, value: Any, options: tuple[str, ...]) -> None:
        if value not in options:
            p.append(f"{name} = {value!r}: unknown; use one of {', '.join(options)}")

    def positive(name: str, value: Any, minimum: float = 1) -> None:
        if value is None or value < minimum:
            p.append(f"{name} = {value!r}: must be ≥ {minimum}")

    m, t, e, f, r = cfg.model, cfg.train, cfg.eval, cfg.failures, cfg.run
    choice("topology.normalisation", cfg.topology.normalisation, GSO)
    choice("topology.placement", cfg.topology.placement, PLACEMENTS)
    p.extend(validate_data_spec(data_spec(cfg)))
    for name in ("num_meta_train", "num_meta_val", "num_meta_test"):
        positive(f"data.{name}", getattr(cfg.data, name))
    for name in ("num_layers", "num_hops", "batch_size"):
        positive(f"model.{name}", getattr(m, name))
    if any(h < 1 for h in m.hidden):
        p.append(f"model.hidden = {list(m.hidden)}: widths must be ≥ 1")
    choice("model.output", m.output, OUTPUTS)
    choice("model.normalisation", m.normalisation, NORMALISATIONS)
    choice("model.init", m.init, INITS)
    choice("model.tap_init", m.tap_init, TAP_INITS)
    choice("model.dtype", m.dtype, ("float32", "float64"))
    positive("model.w0_std", m.w0_std, 0)
    if not 0 <= m.dropout < 1:
        p.append(f"model.dropout = {m.dropout}: must lie in [0, 1)")
    positive("train.epochs", t.epochs)
    positive("train.lr", t.lr, 0)
    positive("train.dual_lr", t.dual_lr, 0)
    if not 0 <= t.epsilon < 1:
        p.append(f"train.epsilon = {t.epsilon}: must lie in [0, 1)")
    choice("train.constraint_form", t.constraint_form, FORMS)
    positive("train.checkpoint_every", t.checkpoint_every)
    positive("train.validate_every", t.validate_every, 0)
    positive("eval.rounds_factor", e.rounds_factor)
    for b in e.baselines:
        choice("eval.baselines", b, BASELINES)
    choice("failures.semantics", f.semantics, ("zero", "stale"))
    positive("failures.num_async", f.num_async, 0)
    if not 0 <= f.async_rate < 1 or not 0 <= f.async_correlation <= 1:
        p.append("failures.async_rate must lie in [0, 1) and failures.async_correlation in [0, 1]")
    if f.num_async and f.async_rate:
        p.append("failures.num_async and failures.async_rate are both set: choose one")
    if f.trace is not None and not Path(f.trace).is_file():
        p.append(f"failures.trace = {f.trace!r}: file not found (fix: a CSV of step,layer,agent rows)")
    choice("run.backend", r.backend, BACKENDS)
    positive("run.workers", r.workers)
    positive("run.timeout_s", r.timeout_s, 1)
    choice("run.device", r.device, ("cpu", "cuda"))
    if r.backend == "local" and r.workers != 1:
        p.append(f"run.workers = {r.workers} with the local backend: use --backend torch or ray for several workers")
    for name, items in (("kill", f.kill), ("hang", f.hang)):
        for item in items:
            try:
                worker, _ = parse_kill(item)
                if worker >= r.workers:
                    p.append(
                        f"failures.{name} = {item!r}: worker {worker} does not exist (workers: 0..{r.workers - 1})"
                    )
            except ValueError:
                p.append(f"failures.{name} = {item!r}: expected WORKER@STEP, e.g. 1@5")
    # the topology last: it needs a valid spec to count agents
    try:
        graph = build_graph(
            cfg.topology.spec, seed=cfg.seed, index=0, allow_disconnected=cfg.topology.allow_disconnected
        )
        validate_graph(
            graph,
            num_workers=r.workers,
            allow_disconnected=cfg.topology.allow_disconnected,
            source=f"topology.spec {cfg.topology.spec!r}",
        )
        n = graph.number_of_nodes()
        if f.num_async >= n:
            p.append(f"failures.num_async = {f.num_async}: must be below the number of agents ({n})")
    except InputError as exc:
        p.extend(f"topology.spec: {q}" for q in exc.problems)
    return p


def data_spec(cfg: Config) -> DataSpec:
    """The data settings as the data package's ``DataSpec`` (``DataConfig`` is one)."""
    return cfg.data
