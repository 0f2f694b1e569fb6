"""Running a registered method (``methods.Method``) on one worker's block of agents, round by round.

``run_method`` gives the method a ``RoundContext`` through which it makes its exchanges and computes its local
gradients; after every round it restores the state rows of the agents that were silent in it, and records the
hosted agents' held-out accuracy (one all-reduce). It returns the accuracy curve and what each round sent (the
senders' kind and the bytes per message of every exchange), from which the time model times the run.

Shapes: A hosted agents, D model dim, X any width of an exchanged block, M training samples, B a mini-batch,
P features, C classes, T held-out samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from .compression import Codec
from .objective import correct_per_agent, grad_per_agent, logits, loss_per_agent
from .protocol import Mixing, SilentAgents
from .rng import keyed_seed, uniform_rows
from .sampling import batch_indices, take_batch


class RoundSchedule(Protocol):
    """Who is silent and who sends in each round of a run (the training job builds it: failures, deadlines, the
    star's uploads)."""

    def silent(self, r: int, num_bytes: int) -> SilentAgents | None:
        """The agents silent in round ``r`` (injected, and late for messages of ``num_bytes``); None: nobody."""
        ...

    def quiet(self, r: int, kind: str, silent: SilentAgents | None) -> SilentAgents | None:
        """The agents that send nothing in an exchange whose senders are ``kind`` (``all``, ``uploaders``,
        ``server``), given the round's silent set."""
        ...


@dataclass
class MethodRun:
    """A method's run on one task: held-out accuracy after rounds 0..R (all agents), and per round the
    (senders kind, bytes per message) of each exchange it made."""

    accuracy: list[float]
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
        step_index: int,
        schedule: RoundSchedule,
        num_classes: int,
    ) -> None:
        self.mixer, self.method, self.schedule = mixer, method, schedule
        self.train_x_AMP, self.train_y_AM = train
        self.seed, self.step_index, self.num_classes = seed, step_index, num_classes
        self.num_agents = mixer.num_agents
        self.agents_t = mixer.agents_t
        self.round = 0
        self._silent: SilentAgents | None = None
        self._exchanges: list[tuple[str, int]] = []
        device = self.train_x_AMP.device
        self.server_A = (mixer.agents_t == 0).to(device)[:, None]  # star: agent 0 (meaningless elsewhere)

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

    def uniform(self, width: int, purpose: str) -> torch.Tensor:
        """A × width uniforms in [0, 1), keyed by (seed, method, purpose, task, round) and the agent: every worker
        draws its own agents' rows of the same table."""
        key = keyed_seed(self.seed, "method", self.method.name, purpose, self.step_index, self.round)
        return uniform_rows(key, self.agents_t, width).to(self.train_x_AMP.device)

    def pooled_mean(self, x_AX: torch.Tensor) -> torch.Tensor:
        """The mean of every agent's row (1 × X, the same on every worker): what a central server would hold. A
        collective of the simulation (for the centralised reference), not a message between agents."""
        total = self.mixer.all_reduce_sum(x_AX.sum(dim=0, keepdim=True))
        return total / self.num_agents

    def gradient_of(self, loss: Any, w_AD: torch.Tensor) -> torch.Tensor:
        """∂ Σ_i loss(w)_i / ∂w (A × D) by automatic differentiation, for local objectives without a closed form
        (``loss(w) -> A`` losses, one per agent; each row's gradient is its own agent's)."""
        with torch.enable_grad():
            w = w_AD.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(loss(w).sum(), w)
        return grad

    # -- local computation ------------------------------------------------------------------------------------
    def batch(self, size: int, local_step: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """A fresh mini-batch of ``size`` samples per agent (A × B × P, A × B), keyed by (seed, method, local step,
        task, round): uniform with replacement over each agent's own training samples."""
        x_AMP, y_AM = self.train_x_AMP, self.train_y_AM
        idx_AB = batch_indices(
            self.seed,
            f"{self.method.name}/{local_step}",
            self.step_index,
            self.round,
            self.agents_t,
            x_AMP.shape[1],
            size,
        )
        return take_batch(x_AMP, y_AM, idx_AB.to(x_AMP.device))

    def grad(
        self, w_AD: torch.Tensor, x_AMP: torch.Tensor | None = None, y_AM: torch.Tensor | None = None
    ) -> torch.Tensor:
        """∇f_i(w_i) of every hosted agent's mean cross-entropy on (x, y) (default: its whole training set)."""
        if x_AMP is None or y_AM is None:
            x_AMP, y_AM = self.train_x_AMP, self.train_y_AM
        return grad_per_agent(w_AD, x_AMP, y_AM)

    def logits(self, w_AD: torch.Tensor, x_AMP: torch.Tensor) -> torch.Tensor:
        """Every agent's own model on its samples: A × M × C."""
        return logits(w_AD, x_AMP)

    def loss(self, w_AD: torch.Tensor, x_AMP: torch.Tensor, y_AM: torch.Tensor) -> torch.Tensor:
        """f_i(w_i) on (x, y) for every hosted agent: A."""
        return loss_per_agent(w_AD, x_AMP, y_AM)


def run_method(
    method: Any,
    mixer: Mixing,
    w0_AD: torch.Tensor,
    train: tuple[torch.Tensor, torch.Tensor],
    heldout: tuple[torch.Tensor, torch.Tensor],
    *,
    num_rounds: int,
    seed: int,
    step_index: int,
    schedule: RoundSchedule,
    num_classes: int,
) -> MethodRun:
    """``method`` for ``num_rounds`` rounds from W_0 on the hosted agents; accuracy over all agents after each."""
    hx_ATP, hy_AT = heldout
    num_total = mixer.all_reduce_sum(
        torch.tensor([float(hy_AT.numel())], dtype=torch.float64, device=hy_AT.device)
    ).item()

    def accuracy(w_AD: torch.Tensor) -> float:
        correct = correct_per_agent(w_AD, hx_ATP, hy_AT).sum().to(torch.float64).reshape(1)
        return mixer.all_reduce_sum(correct).item() / num_total

    ctx = RoundContext(
        mixer, method, train, seed=seed, step_index=step_index, schedule=schedule, num_classes=num_classes
    )
    num_bytes = method.message_floats(w0_AD.shape[1]) * w0_AD.element_size()
    mixer.reset_stale()
    state = method.init(ctx, w0_AD)
    run = MethodRun([accuracy(method.model(state))])
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
        run.exchanges.append(ctx.end())
        run.accuracy.append(accuracy(method.model(state)))
    return run
