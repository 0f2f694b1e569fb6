"""Validation of a whole config: every problem, each naming the field and the fix."""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..core.options import FORMS, INITS, NORMALISATIONS, OUTPUTS, SEMANTICS, TAP_INITS, VARIANTS
from ..data.spec import validate_data_spec
from ..errors import InputError
from ..graph import NORMALISATIONS as GSO
from ..graph import PLACEMENTS, build_graph, validate_graph
from ..plugins.params import build, checked_values, range_problem
from ..runtime.addresses import address_problem
from .faults import fault_problems
from .schema import BACKENDS, Config

# -- validation ------------------------------------------------------------------------------------------
# Every number of the config and its range: (low, high, low included, high included); None: unbounded.
# Floats must also be finite; a number not listed must be ≥ 0. The data section's own fields are checked by
# ``validate_data_spec``, the network section's by ``_network_problems``; the seed any int ≥ 0 (graphs need it).
INF = None
DEFAULT_RANGE: tuple[float | None, float | None, bool, bool] = (0, INF, True, False)
RANGES: dict[str, tuple[float | None, float | None, bool, bool]] = {
    "data.num_meta_train": (1, INF, True, False),
    "data.num_meta_val": (1, INF, True, False),
    "data.num_meta_test": (1, INF, True, False),
    "model.num_layers": (1, INF, True, False),
    "model.num_hops": (0, INF, True, False),  # 0: U-DGD without communication (the ablation)
    "model.batch_size": (1, INF, True, False),
    "model.dropout": (0, 1, True, False),
    "topology.link_failure_p": (0, 1, True, False),
    "model.w0_std": (0, INF, True, False),
    "train.epochs": (1, INF, True, False),
    "train.lr": (0, INF, False, False),
    "train.weight_decay": (0, INF, True, False),
    "train.adam_eps": (0, INF, False, False),
    "train.dual_lr": (0, INF, True, False),
    "train.epsilon": (0, 1, True, False),
    "train.grad_clip": (0, INF, True, False),
    "train.validate_every": (0, INF, True, False),
    "train.checkpoint_every": (1, INF, True, False),
    "eval.rounds_factor": (1, INF, True, False),
    "failures.num_async": (0, INF, True, False),
    "failures.async_rate": (0, 1, True, False),
    "failures.async_correlation": (0, 1, True, True),
    "failures.kill_mtbf_steps": (0, INF, True, False),
    "failures.max_restarts": (0, INF, True, False),
    "run.workers": (1, INF, True, False),
    "run.timeout_s": (1, INF, True, False),
    "run.ray_cpus_per_worker": (0, INF, False, False),
    "run.ray_gpus_per_worker": (0, INF, True, False),
    "run.threads_per_worker": (0, INF, True, False),
}
_DATA_SPEC_NUMBERS = ("alpha", "shards_per_agent", "num_train", "num_heldout", "val_fraction")  # validate_data_spec's
_OWN_CHECKS = ("network",)  # sections whose numbers a function of their own checks (``_network_problems``)


def _numbers(cfg: Config) -> list[tuple[str, Any]]:
    """(``section.name``, value) of every int and float field of the config except the seed (any int)."""
    out = []
    for section in dataclasses.fields(cfg):
        value = getattr(cfg, section.name)
        if not dataclasses.is_dataclass(value) or section.name in _OWN_CHECKS:
            continue
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if isinstance(v, int | float) and not isinstance(v, bool) and f.name not in _DATA_SPEC_NUMBERS:
                out.append((f"{section.name}.{f.name}", v))
    return out


def validate_config(cfg: Config) -> list[str]:
    """Every problem of a config, each naming the field and the fix (empty when valid)."""
    p: list[str] = []

    def choice(name: str, value: Any, options: tuple[str, ...]) -> None:
        if value not in options:
            p.append(f"{name} = {value!r}: unknown; use one of {', '.join(options)}")

    m, t, e, f, r = cfg.model, cfg.train, cfg.eval, cfg.failures, cfg.run
    if cfg.seed < 0:
        p.append(f"seed = {cfg.seed}: must be an integer ≥ 0 (fix: e.g. --set seed={-cfg.seed})")
    for name, value in _numbers(cfg):
        problem = range_problem(name, value, RANGES.get(name, DEFAULT_RANGE))
        if problem:
            p.append(problem)
    choice("topology.normalisation", cfg.topology.normalisation, GSO)
    choice("topology.placement", cfg.topology.placement, PLACEMENTS)
    p.extend(validate_data_spec(cfg.data))
    if any(h < 1 for h in m.hidden):
        p.append(f"model.hidden = {list(m.hidden)}: widths must be ≥ 1")
    choice("model.output", m.output, OUTPUTS)
    choice("model.normalisation", m.normalisation, NORMALISATIONS)
    choice("model.init", m.init, INITS)
    choice("model.tap_init", m.tap_init, TAP_INITS)
    choice("model.dtype", m.dtype, ("float32", "float64"))
    choice("model.recompute", m.recompute, ("auto", "on", "off"))
    choice("train.constraint_form", t.constraint_form, FORMS)
    choice("eval.split", e.split, ("meta-test", "meta-val"))
    p.extend(_registered_problems(cfg))
    choice("failures.semantics", f.semantics, SEMANTICS)
    if f.num_async and f.async_rate:
        p.append("failures.num_async and failures.async_rate are both set: choose one")
    if 0 < f.kill_mtbf_steps < 1:
        p.append(
            f"failures.kill_mtbf_steps = {f.kill_mtbf_steps}: a kill every {f.kill_mtbf_steps} steps would stop "
            "the run at every step; use 0 (off) or a mean of at least 1 step"
        )
    if f.trace is not None and not Path(f.trace).is_file():
        p.append(f"failures.trace = {f.trace!r}: file not found (fix: a CSV of step,layer,agent rows)")
    p.extend(_network_problems(cfg))
    p.extend(_variant_problems(cfg))
    p.extend(_dynamic_problems(cfg))
    if r.tensorboard and importlib.util.find_spec("tensorboard") is None:
        p.append("run.tensorboard = true but TensorBoard is not installed (fix: pip install tensorboard)")
    if r.node_address is not None:
        bad_address = address_problem(r.node_address, "run.node_address")
        if bad_address:
            p.append(bad_address)
    choice("run.backend", r.backend, BACKENDS)
    choice("run.device", r.device, ("cpu", "cuda"))
    if r.backend == "local" and r.workers > 1:
        p.append(f"run.workers = {r.workers} with the local backend: use --backend torch or ray for several workers")
    for name, items in (("kill", f.kill), ("hang", f.hang), ("stop", f.stop)):
        for item in items:
            p.extend(fault_problems(name, item, cfg))
    # the topology last: it needs a valid spec to count agents (and a valid number of workers to place them on:
    # run.workers < 1 is reported above, not blamed on topology.spec)
    try:
        graph = build_graph(
            cfg.topology.spec, seed=max(cfg.seed, 0), index=0, allow_disconnected=cfg.topology.allow_disconnected
        )
        validate_graph(
            graph,
            num_workers=max(r.workers, 1),
            allow_disconnected=cfg.topology.allow_disconnected,
            source=f"topology.spec {cfg.topology.spec!r}",
        )
        n = graph.number_of_nodes()
        one_peer = cfg.topology.dynamic == "exponential-one-peer"  # its rounds are doubly stochastic
        refused = _directed_problem(cfg) if graph.directed and not one_peer else None
        if refused:
            p.append(refused)
        if f.num_async >= n:
            p.append(f"failures.num_async = {f.num_async}: must be below the number of agents ({n})")
        if m.variant == "star" and not (graph.number_of_edges() == n - 1 and np.all(graph.u == 0)):
            p.append(
                f"model.variant = star needs a star graph with the server as agent 0 (fix: topology.spec=star:n={n})"
            )
        if m.variant == "star" and not 1 <= m.uploads_per_round <= n - 1:
            p.append(f"model.uploads_per_round = {m.uploads_per_round}: must lie in 1..{n - 1} (the clients)")
        if cfg.network.links is not None and Path(cfg.network.links).is_file():
            p.extend(_links_problems(Path(cfg.network.links), n))
    except InputError as exc:
        p.extend(f"topology.spec: {q}" for q in exc.problems)
    return p


def _directed_problem(cfg: Config) -> str | None:
    """A directed graph: U-DGD's layers and the methods that mix with a symmetric or row-stochastic S need messages
    both ways. None when nothing evaluated needs them (``eval.udgd = false`` and only methods built for a directed
    graph, such as push-sum); otherwise say who refuses and which methods accept it."""
    from ..plugins import METHODS

    accept = [name for name in METHODS.names() if getattr(METHODS.get(name), "directed", False)]
    refuse = [name for name in cfg.eval.baselines if name in METHODS.names() and name not in accept]
    if not cfg.eval.udgd and not refuse:
        return None
    who = (["U-DGD"] if cfg.eval.udgd else []) + refuse
    alone = f"--set 'eval.baselines={json.dumps(accept)}'"
    fix = f"an undirected graph, or only the methods that accept a directed one: {alone}"
    if cfg.eval.udgd:
        fix = f"an undirected graph, or those methods alone on this one: surf-dist baselines {alone}"
    return (
        f"topology.spec = {cfg.topology.spec!r} is a directed graph, and {', '.join(who)} mix over links both ways "
        f"(fix: {fix})"
    )


def _network_problems(cfg: Config) -> list[str]:
    """``network.*``: every time, spread and bandwidth ≥ 0; the links file exists; emulation needs processes."""
    net, p = cfg.network, []
    for name in (
        "latency_ms",
        "bandwidth_mbps",
        "link_spread",
        "compute_ms",
        "compute_spread",
        "jitter",
        "deadline_ms",
    ):
        value = getattr(net, name)
        if not (value >= 0 and value < float("inf")):
            p.append(f"network.{name} = {value!r}: must be a finite number ≥ 0")
    if net.links is not None and not Path(net.links).is_file():
        p.append(
            f"network.links = {net.links!r}: file not found (fix: a CSV of sender,receiver,latency_ms,bandwidth_mbps)"
        )
    if net.emulate and cfg.run.backend == "local":
        p.append(
            "network.emulate = true with the local backend: only messages between processes can be held "
            "(fix: --backend torch or ray)"
        )
    if net.deadline_ms and not (net.latency_ms or net.bandwidth_mbps or net.compute_ms or net.links):
        p.append(
            "network.deadline_ms is set but nothing takes time: set network.latency_ms, bandwidth_mbps or compute_ms"
        )
    return p


def _links_problems(path: Path, num_agents: int) -> list[str]:
    """Every problem of a links CSV, with its line: columns, agent ids in 0..n-1, values ≥ 0."""
    columns = ("sender", "receiver", "latency_ms", "bandwidth_mbps")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not set(columns) <= set(reader.fieldnames):
            return [f"network.links {path}: the header must name the columns {', '.join(columns)}"]
        p = []
        for line, row in enumerate(reader, start=2):
            try:
                sender, receiver = int(row["sender"]), int(row["receiver"])
                latency, bandwidth = float(row["latency_ms"]), float(row["bandwidth_mbps"])
            except (TypeError, ValueError):
                p.append(f"network.links {path} line {line}: expected two agent ids and two numbers, got {row}")
                continue
            if not (0 <= sender < num_agents and 0 <= receiver < num_agents):
                p.append(f"network.links {path} line {line}: agents must lie in 0..{num_agents - 1}")
            if not (latency >= 0 and bandwidth >= 0):
                p.append(f"network.links {path} line {line}: latency_ms and bandwidth_mbps must be ≥ 0")
        return p


def registries() -> dict[str, Any]:
    """The sections whose ``params`` hold registered objects' own settings, and the registry of each."""
    from ..plugins import DATASETS, LOCAL_UPDATES, METHODS

    return {"eval": METHODS, "model": LOCAL_UPDATES, "data": DATASETS}


def _chosen(cfg: Config) -> dict[str, tuple[str, ...]]:
    """The registered names a config uses, per section: their settings are resolved in full."""
    return {"eval": tuple(cfg.eval.baselines), "model": (cfg.model.local_update,), "data": (cfg.data.dataset,)}


def _registered_problems(cfg: Config) -> list[str]:
    """Unknown registered names (listing the registered ones) and bad settings of registered objects."""
    from ..methods.base import check_method_class

    p: list[str] = []
    regs, chosen = registries(), _chosen(cfg)
    for b in cfg.eval.baselines:
        if b not in regs["eval"]:
            p.append(regs["eval"].unknown(b))
        else:
            p.extend(check_method_class(regs["eval"].get(b)))
    if cfg.model.local_update not in regs["model"]:
        p.append(regs["model"].unknown(cfg.model.local_update))
    for section, registry in regs.items():
        for owner, values in getattr(cfg, section).params.items():
            if owner not in registry:
                if owner in chosen[section]:
                    continue  # reported above
                p.append(f"{section}.{owner}_*: settings of {registry.unknown(owner, setting=section)}")
                continue
            checked_values(registry.params_of(owner), values, f"{section}.{owner}_", p)
    return p


def resolve_params(cfg: Config) -> Config:
    """``cfg`` with the settings of every registered object it uses in full (defaults filled in, values coerced),
    so that ``config.json`` records what ran; settings of unused names are kept as given. ``cfg`` is valid."""
    regs, chosen, out = registries(), _chosen(cfg), {}
    for section, registry in regs.items():
        given = getattr(cfg, section).params
        params: dict[str, dict[str, Any]] = {}
        for owner in dict.fromkeys([*chosen[section], *given]):
            cls = registry.params_of(owner)
            values = checked_values(cls, given.get(owner, {}), f"{section}.{owner}_", [])
            params[owner] = dataclasses.asdict(build(cls, values)) if owner in chosen[section] else values
        out[section] = dataclasses.replace(getattr(cfg, section), params=params)
    return dataclasses.replace(cfg, **out)


def method_params(cfg: Config, name: str) -> Any:
    """The settings object of method ``name`` (its ``Params``) under ``cfg``."""
    cls = registries()["eval"].params_of(name)
    return build(cls, checked_values(cls, cfg.eval.params.get(name, {}), f"eval.{name}_", []))


def local_update_params(cfg: Config) -> Any:
    """The settings object of the configured local network."""
    name = cfg.model.local_update
    cls = registries()["model"].params_of(name)
    return build(cls, checked_values(cls, cfg.model.params.get(name, {}), f"model.{name}_", []))


def _dynamic_problems(cfg: Config) -> list[str]:
    """``topology.dynamic`` and its settings: known names, and the combinations a changing network supports."""
    from ..graph.spec import DYNAMICS, REPAIRS

    t, p = cfg.topology, []
    if t.dynamic not in DYNAMICS:
        return [f"topology.dynamic = {t.dynamic!r}: unknown; use one of {', '.join(DYNAMICS)}"]
    if t.link_repair not in REPAIRS:
        p.append(f"topology.link_repair = {t.link_repair!r}: unknown; use one of {', '.join(REPAIRS)}")
    if t.link_failure_p > 0 and t.dynamic != "link-failure":
        p.append(
            f"topology.link_failure_p = {t.link_failure_p} with topology.dynamic = {t.dynamic}: links fail only "
            "with topology.dynamic=link-failure (fix: set it, or drop link_failure_p)"
        )
    if t.dynamic == "static":
        return p
    why = f"topology.dynamic = {t.dynamic}"
    if cfg.model.variant == "star":
        p.append(f"{why}: the star variant's graph is its server and clients (fix: topology.dynamic=static)")
    if cfg.failures.semantics == "stale":
        p.append(
            f"{why} with failures.semantics = stale: a receiver's last value from a neighbour is not defined when "
            "neighbours change (fix: failures.semantics=zero)"
        )
    if cfg.network.emulate:
        p.append(f"{why}: network.emulate holds rounds on a fixed graph (fix: network.emulate=false, the model)")
    spec = t.spec.split(":", 1)[0]
    if t.dynamic == "exponential-one-peer" and spec != "exponential":
        p.append(
            f"{why} walks through the offsets of the exponential graph; topology.spec = {t.spec!r} (fix: "
            "topology.spec=exponential:n=N)"
        )
    if t.dynamic == "exponential-one-peer" and t.transpose:
        p.append(f"{why}: the rounds send one way, so S cannot be transposed (fix: topology.transpose=false)")
    if t.dynamic == "resample" and ":" not in t.spec:
        p.append(f"{why} draws the spec again; a graph file ({t.spec!r}) is one graph (fix: a generator spec)")
    return p


def _variant_problems(cfg: Config) -> list[str]:
    """The star variant's own rules: K = 1, zero semantics, star methods there and only there."""
    from ..plugins import METHODS

    m, p = cfg.model, []
    if m.variant not in VARIANTS:
        return [f"model.variant = {m.variant!r}: unknown; use one of {', '.join(VARIANTS)}"]
    star = m.variant == "star"
    if star and m.num_hops != 1:
        p.append(f"model.num_hops = {m.num_hops}: the star variant has one hop per layer (fix: model.num_hops=1)")
    if star and cfg.failures.semantics != "zero":
        p.append("failures.semantics = stale: the star variant reads a client that does not upload as 0 (use zero)")
    variant_of = {name: METHODS.get(name).variant for name in METHODS.names()}
    wrong = [b for b in cfg.eval.baselines if b in variant_of and variant_of[b] not in (m.variant, "any")]
    if wrong:
        allowed = [name for name, v in variant_of.items() if v in (m.variant, "any")]
        p.append(
            f"eval.baselines = {list(cfg.eval.baselines)}: {', '.join(wrong)} cannot run with model.variant = "
            f"{m.variant}; use {', '.join(allowed)}"
        )
    return p
