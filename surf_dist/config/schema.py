"""The config schema: keyword-only frozen dataclasses, one per ``[section]``, a docstring under every field."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..data.spec import DataSpec

BACKENDS = ("local", "torch", "ray")


@dataclass(frozen=True, kw_only=True)
class TopologyConfig:
    spec: str = "kregular:n=100,degree=3"
    """Generator SPEC (``NAME:key=value,...``) or a graph file path (see ``surf-dist topology``)."""
    normalisation: str = "row"
    """Graph shift operator S: ``row`` | ``spectral`` | ``metropolis``."""
    placement: str = "contiguous"
    """Agents on workers: ``contiguous`` | ``mincut`` (computed on the graph of meta-train task 0)."""
    transpose: bool = False
    """Mix with Sᵀ instead of S, as the reference code does (its ``GraphFilter`` computes ``X.T @ S``): a round
    gives agent i Σ_j S_ji w_j. Equal for a symmetric S (metropolis, spectral); for the default row-normalised S
    of a graph with unequal degrees (the paper's has two degree-2 agents) Sᵀ is column-, not row-stochastic."""
    per_task: bool = True
    """Draw a fresh graph (e.g. a new relabelling) for every task, as the paper does."""
    allow_disconnected: bool = False
    """Accept disconnected graphs (DGD cannot reach consensus on them)."""
    dynamic: str = "static"
    """A network that changes from round to round, in meta-training and evaluation, for U-DGD and every method:
    ``static`` | ``resample`` (a fresh draw of the spec every K rounds) | ``exponential-one-peer`` (each agent
    sends to one peer a round, i + 2^k, k rotating; spec ``exponential:n=N``) | ``link-failure`` (each link fails
    a round with probability ``link_failure_p``). See ``surf_dist.graph.dynamic``."""
    link_failure_p: float = 0.0
    """``link-failure``: the probability that a link fails in a round (independently, keyed by seed and position)."""
    link_repair: str = "renormalise"
    """``link-failure``: ``renormalise`` (S of the surviving graph) | ``self`` (a failed link's weight stays with
    the receiver)."""


@dataclass(frozen=True, kw_only=True)
class DataConfig(DataSpec):
    """``data.*``: the data package's ``DataSpec`` (dataset, root, download, features, feature_device,
    cache_dir, partition, alpha, shards_per_agent, num_train, num_heldout, augmentations, val_fraction;
    documented there) plus the numbers of tasks."""

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
    """K, hops of each layer's graph filter (= rounds per layer; the paper's K, not the code's taps). 0: U-DGD
    without communication, each layer only h₀ W and its local network (the ablation of what communication buys)."""
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
    variant: str = "decentralized"
    """``decentralized`` (the paper's eq. 11) | ``star``: classical FL (eq. 13) on a ``star:n=N`` graph, agent 0 a
    server that only aggregates, ``uploads_per_round`` clients uploading per round, K = 1."""
    uploads_per_round: int = 10
    """M, clients that upload to the server in each round of the star variant (drawn per round, keyed)."""
    local_update: str = "paper"
    """U-DGD's local network, a registered name: ``paper`` (σ(M [w ‖ b] + d), with ``hidden``, ``output``,
    ``normalisation`` and ``init`` below) or a plugin's (``register_local_update``)."""
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The local network's own settings, ``model.NAME_FIELD``."""
    recompute: str = "auto"
    """Per-layer recomputation in meta-training (``torch.utils.checkpoint``): ``on`` | ``off`` | ``auto`` (on from
    100,000 hosted agent-layers, e.g. 10,000 agents × 10 layers on one worker). Same values and gradients;
    activation memory O(L · A · D) instead of O(L · A · (D + I)), one more forward per step."""


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
    split: str = "meta-test"
    """Tasks evaluated: ``meta-test`` (the result) | ``meta-val`` (for tuning settings without looking at
    meta-test, e.g. ``surf-dist evaluate --run DIR --set eval.split=meta-val``)."""
    rounds_factor: int = 10
    """The baselines run this many times U-DGD's rounds (K·L)."""
    baselines: tuple[str, ...] = (
        "dgd",
        "dsgd",
        "dfedavgm",
        "gt",
        "extra",
        "nids",
        "choco",
        "pushsum",
        "local",
        "centralised",
    )
    """Registered methods evaluated beside U-DGD (``surf-dist list`` lists them; plugins add more)."""
    udgd: bool = True
    """Evaluate U-DGD too; ``false`` for the methods alone (``surf-dist baselines``: no trained optimizer, any graph
    the methods accept, directed ones included)."""
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each method's own settings, set as ``eval.NAME_FIELD`` (e.g. ``eval.dgd_step=0.3``) or a TOML table
    ``[eval.NAME]``; the resolved settings of every evaluated method are saved in ``config.json``."""
    batch_tasks: int = 0
    """Evaluated tasks the methods run at once, as one block-diagonal graph (the same numbers as one task at a time,
    fewer and larger products); 0: as many as keep tasks × agents ≤ 20,000 (1 with ``network.emulate``)."""
    target_accuracy: float = 0.9
    """Accuracy whose cost (rounds, simulated seconds, agent bytes) the summary and ``surf-dist report`` give."""


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
    """Real process kills, ``WORKER@STEP``: SIGKILL worker WORKER when it reaches meta-training step STEP;
    ``0@STEP:checkpoint``: the coordinator dies inside the checkpoint of step STEP (the previous one set aside, the
    new one written but not yet renamed into place); ``WORKER@TASK:eval``: inside the final evaluation, at
    evaluated task TASK."""
    hang: tuple[str, ...] = ()
    """Hung processes, ``WORKER@STEP``: that worker stops answering at that step (tests the timeout)."""
    stop: tuple[str, ...] = ()
    """Frozen processes, ``WORKER@STEP``: that worker sends itself SIGSTOP at that step (as a debugger or an
    overloaded node would freeze it); its peers name it after ``run.timeout_s`` and the run restarts."""
    kill_mtbf_steps: float = 0.0
    """Random kills with this mean number of steps between failures (0: off)."""
    max_restarts: int = 3
    """Restarts of a killed run (local supervisor and Ray driver; torchrun uses --max-restarts)."""


@dataclass(frozen=True, kw_only=True)
class NetworkConfig:
    """The network model (``comm.network``): simulated seconds beside rounds and bytes, and deadlines."""

    latency_ms: float = 0.0
    """One-way latency of every directed link."""
    bandwidth_mbps: float = 0.0
    """Bandwidth of every directed link, Mbit/s (0: infinite)."""
    link_spread: float = 0.0
    """σ of a log-normal factor (mean 1) per directed link on its latency and, independently, its bandwidth,
    keyed by (seed, sender, receiver); 0: identical links."""
    links: str | None = None
    """A CSV file of ``sender,receiver,latency_ms,bandwidth_mbps`` rows: those links' own values."""
    compute_ms: float = 0.0
    """Time of one local update per agent (U-DGD's local network; one gradient step of a baseline)."""
    compute_spread: float = 0.0
    """σ of a log-normal factor per agent on ``compute_ms``, fixed over the run (slow devices)."""
    jitter: float = 0.0
    """σ of a log-normal factor per (forward pass, layer, agent) on its link and compute times (stragglers)."""
    deadline_ms: float = 0.0
    """A round lasts at most this long, and so does a local update: an agent whose message would arrive later,
    or whose update would end later, is silent for that layer (``failures.semantics`` applies). 0: none."""
    emulate: bool = False
    """The torch and Ray backends really hold each message for its modelled time (wall clock ≈ the model)."""


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
    node_address: str | None = None
    """The one address this machine's ranks bind (the gloo pairs) in a torchrun job across machines; unset: the
    address this machine uses to reach ``MASTER_ADDR`` (loopback for ``torchrun --standalone``). Forked ranks and a
    local Ray always bind 127.0.0.1; Ray actors on a cluster bind the address Ray reports for their node. Never
    the wildcard: process groups have no authentication."""
    ray_cpus_per_worker: float = 1.0
    ray_gpus_per_worker: float = 0.0
    threads_per_worker: int = 1
    """torch threads per worker (0: torch's default, the OMP_NUM_THREADS or the machine's cores). One by default:
    a float32 run's numbers depend on how many threads sum each product, so a fixed count gives the same numbers
    on every machine; and a worker of one thread slows in proportion when another job shares the cores, where
    several spinning threads slow by far more. On a quiet machine ``run.threads_per_worker=2`` makes the local
    main job about 1.6× faster (with other numbers)."""
    checkpoint_every_s: float = 60.0
    """Also write a checkpoint when this many seconds have passed since the last one (0: by step only,
    ``train.checkpoint_every``), so that an interrupt loses at most about this much work. The coordinator's clock
    decides; every worker follows (through the rendezvous store, no message between workers)."""
    plugins: tuple[str, ...] = ()
    """Modules (by name) or Python files (by path, relative to where the command runs) that register methods,
    datasets, local networks or graph generators; imported by the coordinator and every worker before the config
    is validated."""
    tensorboard: bool = False
    """Write TensorBoard scalars (losses, slacks, duals, seconds per step) to RUN/tensorboard beside metrics.jsonl
    (needs ``pip install tensorboard``)."""


EXECUTION_FAILURES = ("kill", "hang", "stop", "kill_mtbf_steps", "max_restarts")  # real process failures, not the math


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
    network: NetworkConfig = field(default_factory=NetworkConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def computed(self) -> dict[str, Any]:
        """What a run computes: ``to_dict()`` less how it is executed (``run.*``, process kills and restarts),
        which may change when a run is resumed or reused."""
        d = self.to_dict()
        d.pop("run")
        d["failures"] = {k: v for k, v in d["failures"].items() if k not in EXECUTION_FAILURES}
        return d
