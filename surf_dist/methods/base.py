"""``Method``: a classical optimiser that every agent runs, round by round, on the same Mixer, ledger, time model,
silent agents and deadlines as U-DGD. Subclass it in a file of your own and register it with
``@surf_dist.register_baseline("name")``; ``eval.baselines=["name"]`` then evaluates it beside U-DGD.

A method owns its state: a dict of tensors whose first dimension is the A hosted agents (the iterate ``w``, a
tracker, a momentum buffer, ...). ``init`` makes it from W_0 (U-DGD's W_0 of the same task), ``round`` maps it
to the next round's, ``model`` gives the models evaluated after each round (A × D). Silent agents keep their
whole state in the rounds they are silent: the runner restores their rows after ``round``.

Everything the method does with other agents goes through ``ctx`` (``core.rounds.RoundContext``):

* ``ctx.exchange(x_AX)``: one exchange, the hosted rows of S·X (any width X: a tracker travels beside the
  iterate as [W ‖ Y], 2D floats). Its messages are counted in the ledger, timed by the network model and held up
  by deadlines as the exchange really happens; the k-th exchange of a round is sent by ``senders[k]``;
* ``ctx.grad(w_AD)`` (own full training set) or ``ctx.grad(w_AD, *ctx.batch(size, local_step))``: local
  gradients of each agent's own mean cross-entropy; ``ctx.logits``, ``ctx.loss`` for methods that need them;
* ``ctx.live_A``, ``ctx.server_A``, ``ctx.uploading_A``: which hosted agents are live, the star's server, and
  the clients that upload this round (star only).

The class declares what the time model cannot see in the tensors: ``local_updates()`` (gradient steps per round
per agent, for compute time and deadlines), ``senders`` (who sends in each exchange: ``all`` live agents,
``uploaders`` or ``server`` on a star) and ``computes`` (``all`` or ``uploaders``). Its settings are a frozen
dataclass ``Params`` whose fields are set as ``eval.NAME_FIELD``; ``tunable`` names those that
``surf-dist tune-baselines`` searches.

This module imports no torch: the CLI validates configs without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ..plugins.params import NoParams

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ..core.rounds import RoundContext

State = dict[str, "torch.Tensor"]
VARIANTS = ("decentralized", "star", "any")
SENDERS = ("all", "uploaders", "server")
COMPUTES = ("all", "uploaders")
MIXINGS = (None, "row", "spectral", "metropolis", "column", "mean")


class Method:
    """Base class of every baseline; see the module docstring."""

    name: ClassVar[str] = ""  # set by register_baseline
    label: ClassVar[str] = ""
    """How tables and figures name it (default: the name in capitals)."""
    Params: ClassVar[type] = NoParams
    variant: ClassVar[str] = "decentralized"
    """``decentralized`` (runs on the agents' graph) | ``star`` (classical FL: ``model.variant=star``) | ``any``."""
    senders: ClassVar[tuple[str, ...]] = ("all",)
    """Who sends in each exchange of a round (its length: exchanges per round)."""
    computes: ClassVar[str] = "all"
    """Who runs the local updates of a round."""
    tunable: ClassVar[tuple[str, ...]] = ()
    """Settings ``tune-baselines`` searches over its grid (step sizes)."""
    mixing: ClassVar[str | None] = None
    """The mixing matrix of the task's graph it exchanges with: None (the config's S, as U-DGD's), ``metropolis``
    (symmetric, doubly stochastic), ``column`` (column-stochastic: push-sum), ``row``, or ``mean`` (a star's
    mean of the uploads). The edges, and so the messages, are the graph's whichever it is."""
    directed: ClassVar[bool] = False
    """Whether it runs on a directed graph (only methods built for one, such as push-sum, do)."""

    def __init__(self, params: Any) -> None:
        self.params = params

    def local_updates(self) -> int:
        """Local gradient steps per agent per round (compute time and deadlines)."""
        return 1

    def message_floats(self, dim: int) -> int:
        """Floats per message of this method's exchanges, for deadlines only: who is late in a round is decided
        when the round starts, before its messages exist (the ledger and the time model count what is sent)."""
        return dim

    def init(self, ctx: RoundContext, w0_AD: torch.Tensor) -> State:
        """The state before round 1."""
        return {"w": w0_AD}

    def round(self, ctx: RoundContext, state: State, r: int) -> State:
        """The state after round ``r`` (1-based)."""
        raise NotImplementedError(f"{type(self).__name__}.round")

    def model(self, state: State) -> torch.Tensor:
        """The models evaluated after a round, A × D."""
        return state["w"]


def method_label(cls: Any) -> str:
    """The display name of a method class (its ``label``, else its name in capitals)."""
    return getattr(cls, "label", "") or getattr(cls, "name", "?").upper()


def check_method_class(cls: type) -> list[str]:
    """Problems with a registered method class (as a plugin author would want to hear them)."""
    name = getattr(cls, "name", "?")
    p = []
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        return [f"baseline {name!r}: {cls!r} is not a subclass of surf_dist.Method"]
    if cls.round is Method.round:
        p.append(f"baseline {name!r}: {cls.__qualname__} does not define round(ctx, state, r)")
    if cls.variant not in VARIANTS:
        p.append(f"baseline {name!r}: variant = {cls.variant!r}; use one of {', '.join(VARIANTS)}")
    if any(s not in SENDERS for s in cls.senders):
        p.append(f"baseline {name!r}: senders = {cls.senders!r}; use a tuple of {', '.join(SENDERS)}")
    if cls.mixing not in MIXINGS:
        p.append(f"baseline {name!r}: mixing = {cls.mixing!r}; use None or one of {', '.join(m for m in MIXINGS if m)}")
    if cls.computes not in COMPUTES:
        p.append(f"baseline {name!r}: computes = {cls.computes!r}; use one of {', '.join(COMPUTES)}")
    return p
