"""The Mixer: the one seam between the math (``surf_dist.core``) and processes.

A Mixer hosts a block of agents (global ids ``agents``, sorted) of an n-agent graph and implements the mixing
protocol of ``core.protocol``:

* ``shift(x_AD, layer=, hop=, silent=)``: the rows of S·X for the hosted agents (one *round*),
  differentiable, recorded in the ledger in both directions. Silent agents send nothing; what their
  neighbours use instead is the failure ``semantics``: ``zero`` (the reference code: a silent row counts
  as 0) or ``stale`` (the paper's text: the last value received from that agent in the same hop of an
  earlier layer, 0 if none yet).
* ``all_reduce_sum(t)``: the sum over workers, differentiable (its backward sums the upstream gradients
  over workers too, so the distributed backward is the exact gradient of the sum of every worker's
  objective; the trainer scales each worker's seed gradient by 1 / num_workers because all workers
  compute the same global Lagrangian).
* ``all_reduce_grads(params)``: sums parameter gradients over workers, in place.

A worker's state is O(hosted agents + halo + hosted edges): the graph arrives as edge arrays and a sparse
S (``graph.Graph``, ``graph.ShiftOperator``), silent sets are asked only about hosted and halo agents.

Backends: ``LocalMixer`` (one process; the oracle), ``TorchMixer`` (halo exchange between
torch.distributed ranks), and Ray actors that host ``TorchMixer`` workers.
"""

from __future__ import annotations

import contextlib
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..core.options import SEMANTICS
from ..core.protocol import SilentAgents
from ..graph import Graph, ShiftOperator
from .ledger import Ledger

ROUND_WIRINGS = 16  # round graphs a worker keeps wired at once (a changing network wires the others again)
RoundGraphs = Callable[[int, int], tuple[Any, Graph, ShiftOperator]]


@dataclass(eq=False)
class Wiring:
    """What a worker needs of one graph: its hosted agents' out-edges (``edge_sender``: positions in ``agents``,
    ``edge_receiver``: global ids, ``edge_keys``: sender·n + receiver for the ledger) and S. ``key``: None for the
    task's graph, else the round graph's key. Subclasses add their halo plan."""

    key: Any
    graph: Graph
    shift: ShiftOperator
    edge_sender: np.ndarray
    edge_receiver: np.ndarray
    edge_keys: np.ndarray


class Mixer(ABC):
    """Abstract seam; see the module docstring. ``x_AD``: hosted agents × model dimension."""

    def __init__(
        self,
        *,
        agents: np.ndarray,
        num_agents: int,
        rank: int,
        num_workers: int,
        semantics: str = "zero",
        ledger: Ledger | None = None,
    ):
        if semantics not in SEMANTICS:
            raise ValueError(f"unknown failure semantics {semantics!r}; use one of {SEMANTICS}")
        self.num_agents = num_agents
        self.rank = rank
        self.num_workers = num_workers
        self.semantics = semantics
        # where this worker's traffic is recorded; the caller owns it (and its phase), a fresh one by default
        self.ledger = ledger if ledger is not None else Ledger(num_agents)
        self.device = torch.device("cpu")  # where this worker's tensors live (a GPU under nccl)
        self._host(agents)
        self._stale: dict[int, torch.Tensor] = {}
        self.recomputing = False  # inside the recomputation of a checkpointed layer
        # called after every forward exchange between processes with (layer, hop, bytes per message), outside a
        # recomputation: e.g. the network emulator, which holds the round for its modelled time
        self.on_round: Callable[[int, int, int], None] | None = None
        self.wiring: Wiring = None  # type: ignore[assignment]  # the current round's graph (set_graph first)
        self._task_wiring: Wiring | None = None
        self._rounds: RoundGraphs | None = None
        self._round_wirings: dict[Any, Wiring] = {}
        # live masks per silent set (a set is asked once per group of rows, whatever the number of rounds)
        self._live: weakref.WeakKeyDictionary[Any, dict[Any, Any]] = weakref.WeakKeyDictionary()
        self._flags: dict[tuple[str, int], bool] = {}  # the coordinator's posted decisions (post_flag)

    def _host(self, agents: np.ndarray) -> None:
        self.agents = np.asarray(agents, dtype=np.int64)
        self.agents_t = torch.as_tensor(self.agents)

    @property
    def is_coordinator(self) -> bool:
        return self.rank == 0

    # -- graph ---------------------------------------------------------------------------------------
    def set_graph(self, graph: Graph, shift: ShiftOperator, placement: list[np.ndarray] | None = None) -> None:
        """Use ``graph`` with shift operator ``shift`` from now on (in every round, until ``set_rounds``), hosting
        ``placement[rank]`` when a placement (agents per worker) is given."""
        if placement is not None:
            self._host(placement[self.rank])
        self._rounds = None
        self._round_wirings.clear()
        self._use(self._make_wiring(None, graph, shift))
        self.ledger.set_edges(self.agents[self.wiring.edge_sender], self.wiring.edge_receiver)
        self.wiring.edge_keys = self.ledger.current_edges
        self.reset_stale()

    def set_rounds(self, rounds: RoundGraphs | None) -> None:
        """A network that changes (``graph.dynamic``): ``rounds(layer, hop)`` gives (key, graph, S) of each round
        of the passes that follow, the same on every worker; rounds with the same key share one graph. None: the
        graph of ``set_graph`` in every round again. The graphs must keep the hosted agents (the placement)."""
        self._rounds = rounds
        self._round_wirings.clear()
        if rounds is None and self._task_wiring is not None:
            self._use(self._task_wiring)

    def enter_round(self, layer: int, hop: int) -> Wiring:
        """The wiring of round (layer, hop): the task's, or the round's graph under ``set_rounds``."""
        if self._rounds is None:
            return self.wiring
        key, graph, shift = self._rounds(layer, hop)
        if key != self.wiring.key:
            if key not in self._round_wirings:
                if len(self._round_wirings) >= ROUND_WIRINGS:  # a pass's few latest; a backward keeps its own
                    self._round_wirings.pop(next(iter(self._round_wirings)))
                self._round_wirings[key] = self._make_wiring(key, graph, shift)
            self._use(self._round_wirings[key])
        return self.wiring

    def _make_wiring(self, key: Any, graph: Graph, shift: ShiftOperator) -> Wiring:
        """What this worker needs of one graph (subclasses add their halo plan)."""
        sender, receiver = graph.edges_of(self.agents)  # the hosted agents' out-edges
        keys = self.agents[sender].astype(np.int64) * self.num_agents + receiver
        return Wiring(key, graph, shift, sender, receiver, keys)

    def _use(self, wiring: Wiring) -> None:
        """Rounds go over ``wiring`` from now on (subclasses extend)."""
        self.wiring = wiring
        if wiring.key is None:
            self._task_wiring = wiring

    @property
    def shift_operator(self) -> ShiftOperator | None:
        """The S the current round multiplies by."""
        return None if self.wiring is None else self.wiring.shift

    def reset_stale(self) -> None:
        """Forget cached values of silent senders (at the start of every unrolled forward pass)."""
        self._stale = {}

    def stale_state(self) -> dict[str, dict[int, torch.Tensor]]:
        """What ``stale`` semantics remembers, per hop (a shallow copy)."""
        return {"stale": dict(self._stale)}

    def load_stale_state(self, state: dict[str, dict[int, torch.Tensor]]) -> None:
        self._stale = dict(state["stale"])

    def recompute_contexts(self) -> tuple[AbstractContextManager[Any], AbstractContextManager[Any]]:
        """Contexts of a checkpointed layer's forward and of its recomputation in the backward: the
        recomputation starts from the stale values the forward started from (and leaves the current ones as
        they were), and counts no logical message again: agents sent them once; the re-sent halo rows are the
        simulator's own traffic (direction ``recompute``)."""
        saved: dict[str, Any] = {}

        @contextlib.contextmanager
        def forward() -> Iterator[None]:
            saved["state"] = self.stale_state()
            yield

        @contextlib.contextmanager
        def recompute() -> Iterator[None]:
            current = self.stale_state()
            self.load_stale_state(saved["state"])
            self.recomputing = True
            try:
                yield
            finally:
                self.recomputing = False
                self.load_stale_state(current)

        return forward(), recompute()

    # -- silent agents ---------------------------------------------------------------------------------------
    def live_of(self, silent: SilentAgents | None, name: Any, agents: np.ndarray) -> np.ndarray | None:
        """Which of ``agents`` (global ids; ``name`` caches the answer for this set) are live; None: all."""
        if silent is None:
            return None
        cache = self._live.setdefault(silent, {})
        if name not in cache:
            cache[name] = ~silent.mask(torch.as_tensor(agents, dtype=torch.int64)).numpy()
        return cache[name]

    def hosted_live(self, silent: SilentAgents | None) -> torch.Tensor:
        """A bools on the device: which hosted agents are live."""
        live = self.live_of(silent, "hosted", self.agents)
        if live is None:
            return torch.ones(len(self.agents), dtype=torch.bool, device=self.device)
        cache = self._live[silent]
        if "hosted_t" not in cache:
            cache["hosted_t"] = torch.as_tensor(live).to(self.device)
        return cache["hosted_t"]

    def num_silent_hosted(self, silent: SilentAgents | None) -> int:
        live = self.live_of(silent, "hosted", self.agents)
        return 0 if live is None else int(len(live) - np.count_nonzero(live))

    def stale_or_zero(self, x_AD: torch.Tensor, live_A: torch.Tensor | None, hop: int) -> torch.Tensor:
        """The hosted rows as neighbours see them this round: live rows as they are, silent ones per semantics.

        ``stale`` keeps, per hop, the last value each hosted agent sent (what its neighbours hold).
        """
        if live_A is None or bool(live_A.all()):
            x_eff = x_AD
        else:
            fill = self._stale.get(hop) if self.semantics == "stale" else None
            fill = torch.zeros_like(x_AD) if fill is None else fill
            x_eff = torch.where(live_A.to(x_AD.device)[:, None], x_AD, fill)
        if self.semantics == "stale":
            self._stale[hop] = x_eff
        return x_eff

    def record_round(
        self,
        direction: str,
        layer: int,
        hop: int,
        silent: SilentAgents | None,
        message_bytes: int,
        wiring: Wiring | None = None,
    ) -> int:
        """Log the logical messages hosted live agents send in one round (sender-side accounting) on the edges of
        ``wiring`` (default: the current round's)."""
        if self.recomputing:
            return 0
        w = wiring or self.wiring
        live_A = self.live_of(silent, "hosted", self.agents)
        live_E = None if live_A is None else live_A[w.edge_sender]
        return self.ledger.record_logical(direction, layer, hop, live_E, message_bytes, edges=w.edge_keys)

    @staticmethod
    def message_bytes(x_AD: torch.Tensor, wire: tuple[Any, tuple[torch.Tensor, ...]] | None) -> int:
        """Bytes of one message of a round: a row of ``x``, or its compressed form (``wire``: codec, parts)."""
        if wire is None:
            return x_AD.shape[1] * x_AD.element_size()
        return int(wire[0].message_bytes(x_AD.shape[1], x_AD.element_size()))

    # -- the seam --------------------------------------------------------------------------------------
    @abstractmethod
    def shift(
        self,
        x_AD: torch.Tensor,
        *,
        layer: int,
        hop: int,
        silent: SilentAgents | None = None,
        wire: tuple[Any, tuple[torch.Tensor, ...]] | None = None,
    ) -> torch.Tensor:
        """Rows of S·X for the hosted agents, A × D. ``wire``: (codec, the hosted rows encoded) when X holds
        compressed rows (``core.compression``): the encoded rows travel, the ledger counts compressed bytes."""

    @abstractmethod
    def widened(self, placement: list[np.ndarray], num_agents: int, ledger: Ledger) -> Mixer:
        """A Mixer of the same workers over another graph of ``num_agents`` agents (a batch of tasks), hosting
        ``placement[rank]``, recording into ``ledger``; ``set_graph`` it before its first round."""

    @abstractmethod
    def all_reduce_sum(self, t: torch.Tensor, *, ledger_layer: int | None = None, num_senders: int = 0) -> torch.Tensor:
        """Differentiable sum over workers. With ``ledger_layer`` the reduction is model traffic (e.g. the
        agent-batch normalisation) and is recorded: each of ``num_senders`` hosted agents sends one message of t."""

    @abstractmethod
    def all_reduce_max(self, t: torch.Tensor) -> torch.Tensor:
        """The elementwise maximum over workers (the simulator's bookkeeping, not differentiable)."""

    def watch_gradients(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Start summing these parameters' gradients during the backward (no-op with one worker)."""

    @abstractmethod
    def all_reduce_grads(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Sum ``p.grad`` over workers, in place (one flat bucket)."""

    @abstractmethod
    def gather_objects(self, obj: Any) -> list[Any] | None:
        """Every worker's ``obj`` on the coordinator (None elsewhere)."""

    @abstractmethod
    def broadcast_object(self, obj: Any) -> Any:
        """The coordinator's ``obj`` on every worker."""

    def record_all_reduce(self, layer: int, t: torch.Tensor, num_senders: int) -> None:
        """Log an all-reduce of ``t`` as one logical message per contributing agent (direction ``allreduce``)."""
        if self.recomputing:
            return
        row = self.ledger.counts[(self.ledger.phase, "allreduce", layer, 0)]
        row[0] += num_senders
        row[1] += num_senders * t.numel() * t.element_size()

    def heartbeat(self, step: int) -> None:
        """Tell the others this worker reached ``step`` (used to name a hung worker; no-op here)."""

    def post_flag(self, name: str, step: int, value: bool) -> None:
        """The coordinator's decision ``value`` about ``step`` (one only it can make, e.g. by its clock), posted
        before the step's first collective; every worker reads it after the step (``read_flag``). No message
        between the workers: a process group passes it through its rendezvous store."""
        if self.is_coordinator:
            self._flags[(name, step)] = value

    def read_flag(self, name: str, step: int) -> bool:
        """The coordinator's ``post_flag(name, step, ...)``, on every worker."""
        return self._flags.pop((name, step), False)

    def barrier(self) -> None:
        """Wait for every worker (no-op with one worker)."""

    def merged_ledger_state(self) -> dict[str, Any] | None:
        """``merged_ledger().state()`` on the coordinator (collective: every worker must call it)."""
        merged = self.merged_ledger()
        return None if merged is None else merged.state()

    def merged_ledger(self) -> Ledger | None:
        """The sum of every worker's ledger, on the coordinator (its own ledger holds the gathers it received,
        this one included)."""
        states = self.gather_objects(self.ledger.state())
        if states is None:
            return None
        total = Ledger(self.num_agents)
        for state in [self.ledger.state(), *states[1:]]:
            total.merge(state)
        return total
