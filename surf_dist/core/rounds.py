"""Running a registered method (``methods.Method``) on one worker's agents, round by round, on one task or on a
batch of tasks at once.

A batch of T tasks is one graph of T·n agents: task b's agent i is agent b·n + i, the graph is the disjoint union of
the tasks' graphs and S is block-diagonal (``worker.batch``). A round is then one exchange for all T tasks; every
keyed draw (mini-batches, dithering) is still drawn per task with the task's own index and the agent's own id, so a
batch gives each task exactly the numbers it would get alone.

``run_method`` gives the method a ``RoundContext`` through which it makes its exchanges and computes its local
gradients; after every round it restores the state rows of the agents that were silent in it, and records each
task's held-out accuracy (one all-reduce of T numbers). It returns the accuracy curves and what each round sent
(the senders' kind and the bytes per message of every exchange), from which the time model times the run.

Shapes: A hosted rows (agents of every task of the batch), D model dim, X any width of an exchanged block, M
training samples, B a mini-batch, P features, C classes, T held-out samples; N tasks in the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from .compression import Codec
from .objective import correct_per_agent, grad_per_agent, logits, loss_per_agent
from .protocol import Mixing, SilentAgents
from .rng import keyed_seed, uniform_rows
from .sampling import batch_indices, take_batch


class RoundSchedule(Protocol):
    """Who is silent and who sends in each round of a run (the worker builds it: failures, deadlines, the star's
    uploads); over a batch of tasks its sets answer for every task's agents."""

    uploads_per_round: int

    def silent(self, r: int, num_bytes: int) -> SilentAgents | None:
        """The agents silent in round ``r`` (injected, and late for messages of ``num_bytes``); None: nobody."""
        ...

    def quiet(self, r: int, kind: str, silent: SilentAgents | None) -> SilentAgents | None:
        """The agents that send nothing in an exchange whose senders are ``kind`` (``all``, ``uploaders``,
        ``server``), given the round's silent set."""
        ...


@dataclass(frozen=True)
class Blocks:
    """The tasks of a batch: ``tasks[b]`` is block b's task index; every task has ``num_agents`` agents."""

    tasks: Sequence[int]
    num_agents: int

    def of(self, agents_A: torch.Tensor) -> torch.Tensor:
        """The block of each batch agent id (A)."""
        return torch.div(agents_A, self.num_agents, rounding_mode="floor")


@dataclass
class MethodRun:
    """A method's run on a batch: per task, the held-out accuracy after rounds 0..R (all its agents); per round,
    the (senders kind, bytes per message) of each exchange (the same for every task of the batch)."""

    accuracy: list[list[float]]
    exchanges: list[list[tuple[str, int]]] = field(default_factory=list)


class RoundContext:
    """What a method sees in round ``r``: exchanges through the Mixer, local gradients, who is live."""

    def __init__(
        self,
        mixer: Mixing,
        method: Any,
        train: tuple[torch.Tensor, torch.Tensor],
        *,
        seed: int,
        blocks: Blocks,
        schedule: RoundSchedule,
        num_classes: int,
    ) -> None:
        self.mixer, self.method, self.schedule, self.blocks = mixer, method, schedule, blocks
        self.train_x_AMP, self.train_y_AM = train
        self._train_xt_APM: torch.Tensor | None = None
        self.seed, self.num_classes = seed, num_classes
        self.num_agents = blocks.num_agents  # n, the agents of one task
        self.agents_t = mixer.agents_t  # batch ids
        block_A = blocks.of(self.agents_t)
        self._rows = [torch.nonzero(block_A == b).flatten() for b in range(len(blocks.tasks))]  # each block's rows
        self._local = self.agents_t - block_A * self.num_agents  # each row's agent id within its task
        self._block_A = block_A.to(self.train_x_AMP.device)
        self.round = 0
        self._silent: SilentAgents | None = None
        self._exchanges: list[tuple[str, int]] = []
        device = self.train_x_AMP.device
        self.server_A = (self._local == 0).to(device)[:, None]  # star: each task's agent 0

    # -- the round ------------------------------------------------------------------------------------------
    def begin(self, r: int, num_bytes: int) -> None:
        self.round, self._exchanges = r, []
        self._silent = self.schedule.silent(r, num_bytes)

    @property
    def silent(self) -> SilentAgents | None:
        """This round's silent agents (they neither send nor change their state)."""
        return self._silent

    @property
    def live_A(self) -> torch.Tensor:
        """A × 1 bools: hosted agents that are live this round."""
        return self.mixer.hosted_live(self._silent)[:, None]

    @property
    def num_uploads(self) -> int:
        """M, the clients that upload in a round (star; 0 elsewhere)."""
        return int(getattr(self.schedule, "uploads_per_round", 0))

    @property
    def uploading_A(self) -> torch.Tensor:
        """A × 1 bools (star): the live clients that upload this round."""
        return self.mixer.hosted_live(self.schedule.quiet(self.round, "uploaders", self._silent))[:, None]

    def exchange(self, x_AX: torch.Tensor) -> torch.Tensor:
        """One exchange: the hosted rows of S·X (A × X); its senders are the method's ``senders[k]`` for the
        k-th exchange of the round; silent (or non-sending) agents' rows count as the Mixer's semantics say."""
        return self._exchange(x_AX, x_AX.shape[1] * x_AX.element_size())

    def _exchange(self, x_AX: torch.Tensor, num_bytes: int, wire: Any = None) -> torch.Tensor:
        senders = self.method.senders
        hop = len(self._exchanges) + 1
        if hop > len(senders):
            raise RuntimeError(
                f"baseline {self.method.name!r} made {hop} exchanges in round {self.round} but declares "
                f"{len(senders)} (senders = {senders!r}); declare one entry of senders per exchange"
            )
        kind = senders[hop - 1]
        self._exchanges.append((kind, num_bytes))
        quiet = self.schedule.quiet(self.round, kind, self._silent)
        return self.mixer.shift(x_AX, layer=self.round, hop=hop, silent=quiet, wire=wire)

    def exchange_compressed(self, x_AD: torch.Tensor, codec: Codec) -> tuple[torch.Tensor, torch.Tensor]:
        """One exchange of Q(x) (``core.compression``): (Q(x) A × D, the hosted rows of S·Q(X)). The encoded rows
        travel between workers and the ledger counts the compressed bytes (values and indices, or levels)."""
        hop = len(self._exchanges) + 1
        uniform = self.uniform(x_AD.shape[1], f"compress/{hop}") if codec.kind == "qbits" else None
        parts = codec.encode(x_AD, uniform)
        q_AD = codec.decode(parts, x_AD.shape[1])
        num_bytes = codec.message_bytes(x_AD.shape[1], x_AD.element_size())
        return q_AD, self._exchange(q_AD, num_bytes, wire=(codec, parts))

    def end(self) -> list[tuple[str, int]]:
        return self._exchanges

    # -- keyed draws, per task ------------------------------------------------------------------------------
    def _per_block(self, draw: Any, width_of: Any) -> torch.Tensor:
        """Rows drawn block by block (each with its task's index and its agents' own ids), in row order."""
        parts = [draw(task, self._local[rows]) for task, rows in zip(self.blocks.tasks, self._rows)]
        if len(parts) == 1:
            return parts[0]
        out = parts[0].new_empty((len(self.agents_t), *parts[0].shape[1:]))
        for rows, part in zip(self._rows, parts):
            out[rows] = part
        return out

    def batch(self, size: int, local_step: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """A fresh mini-batch of ``size`` samples per agent (A × B × P, A × B), keyed by (seed, method, local step,
        task, round): uniform with replacement over each agent's own training samples."""
        x_AMP, y_AM = self.train_x_AMP, self.train_y_AM
        key = f"{self.method.name}/{local_step}"
        idx_AB = self._per_block(
            lambda task, agents: batch_indices(self.seed, key, task, self.round, agents, x_AMP.shape[1], size), None
        )
        return take_batch(x_AMP, y_AM, idx_AB.to(x_AMP.device))

    def uniform(self, width: int, purpose: str) -> torch.Tensor:
        """A × width uniforms in [0, 1), keyed by (seed, method, purpose, task, round) and the agent: every worker
        draws its own agents' rows of the same table."""

        def draw(task: int, agents: torch.Tensor) -> torch.Tensor:
            key = keyed_seed(self.seed, "method", self.method.name, purpose, task, self.round)
            return uniform_rows(key, agents, width)

        return self._per_block(draw, width).to(self.train_x_AMP.device)

    # -- local computation ------------------------------------------------------------------------------------
    def grad(
        self, w_AD: torch.Tensor, x_AMP: torch.Tensor | None = None, y_AM: torch.Tensor | None = None
    ) -> torch.Tensor:
        """∇f_i(w_i) of every hosted agent's mean cross-entropy on (x, y) (default: its whole training set)."""
        if x_AMP is None or y_AM is None:
            if self._train_xt_APM is None:  # the same samples every round: transpose them once
                self._train_xt_APM = self.train_x_AMP.transpose(1, 2).contiguous()
            return grad_per_agent(w_AD, self.train_x_AMP, self.train_y_AM, self._train_xt_APM)
        return grad_per_agent(w_AD, x_AMP, y_AM)

    def logits(self, w_AD: torch.Tensor, x_AMP: torch.Tensor) -> torch.Tensor:
        """Every agent's own model on its samples: A × M × C."""
        return logits(w_AD, x_AMP)

    def loss(self, w_AD: torch.Tensor, x_AMP: torch.Tensor, y_AM: torch.Tensor) -> torch.Tensor:
        """f_i(w_i) on (x, y) for every hosted agent: A."""
        return loss_per_agent(w_AD, x_AMP, y_AM)

    def gradient_of(self, loss: Any, w_AD: torch.Tensor) -> torch.Tensor:
        """∂ Σ_i loss(w)_i / ∂w (A × D) by automatic differentiation, for local objectives without a closed form
        (``loss(w) -> A`` losses, one per agent; each row's gradient is its own agent's)."""
        with torch.enable_grad():
            w = w_AD.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(loss(w).sum(), w)
        return grad

    def pooled_mean(self, x_AX: torch.Tensor) -> torch.Tensor:
        """Each task's mean over its agents, at every row of that task (A × X): what a central server would hold.
        A collective of the simulation (for the centralised reference), not a message between agents."""
        sums = x_AX.new_zeros((len(self.blocks.tasks), x_AX.shape[1])).index_add_(0, self._block_A, x_AX)
        return (self.mixer.all_reduce_sum(sums) / self.num_agents)[self._block_A]


def run_method(
    method: Any,
    mixer: Mixing,
    w0_AD: torch.Tensor,
    train: tuple[torch.Tensor, torch.Tensor],
    heldout: tuple[torch.Tensor, torch.Tensor],
    *,
    num_rounds: int,
    seed: int,
    blocks: Blocks,
    schedule: RoundSchedule,
    num_classes: int,
) -> MethodRun:
    """``method`` for ``num_rounds`` rounds from W_0 on the hosted agents; each task's accuracy after each round."""
    hx_ATP, hy_AT = heldout
    block_A = blocks.of(mixer.agents_t).to(hy_AT.device)
    num_blocks = len(blocks.tasks)
    samples = hy_AT.new_zeros(num_blocks, dtype=torch.float64).index_add_(
        0, block_A, torch.full((len(block_A),), float(hy_AT.shape[1]), dtype=torch.float64, device=hy_AT.device)
    )
    num_total = mixer.all_reduce_sum(samples)

    def accuracy(w_AD: torch.Tensor) -> list[float]:
        correct = correct_per_agent(w_AD, hx_ATP, hy_AT).to(torch.float64)
        per_block = correct.new_zeros(num_blocks).index_add_(0, block_A, correct)
        return (mixer.all_reduce_sum(per_block) / num_total).tolist()

    ctx = RoundContext(mixer, method, train, seed=seed, blocks=blocks, schedule=schedule, num_classes=num_classes)
    num_bytes = method.message_floats(w0_AD.shape[1]) * w0_AD.element_size()
    mixer.reset_stale()
    state = method.init(ctx, w0_AD)
    curves = [accuracy(method.model(state))]
    exchanges = []
    for r in range(1, num_rounds + 1):
        ctx.begin(r, num_bytes)
        new = method.round(ctx, state, r)
        if set(new) != set(state):
            raise RuntimeError(
                f"baseline {method.name!r}: round {r} returned the state {sorted(new)}, not {sorted(state)}; "
                "return every entry of the state init made"
            )
        if ctx.silent is not None:  # silent agents keep their whole state
            live_A = mixer.hosted_live(ctx.silent)
            new = {k: torch.where(live_A.view(-1, *([1] * (v.dim() - 1))), v, state[k]) for k, v in new.items()}
        state = new
        exchanges.append(ctx.end())
        curves.append(accuracy(method.model(state)))
    return MethodRun([[c[b] for c in curves] for b in range(num_blocks)], exchanges)
