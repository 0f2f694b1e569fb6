"""CHOCO-SGD (Koloskova, Stich and Jaggi, 2019): gossip of compressed differences. Every agent keeps x̂_i, the
public copy of its model that its neighbours also hold, and s_i = Σ_j W_ij x̂_j:

    x½ = x − η ∇f(x)          q = Q(x½ − x̂)          x̂ ← x̂ + q,   s ← s + W q          x ← x½ + γ (s − x̂)

Only q travels (one exchange a round), compressed by ``eval.choco_compression``: ``identity``, ``top_k:F`` (the k =
⌈F·D⌉ largest entries: values and indices) or ``qbits:B`` (random dithering to 2^B − 1 levels: a norm, signs and
levels). The ledger counts the compressed bytes, and between workers the encoded rows are what travels. With the
identity compressor and γ = 1 a round is exact gossip of the local step, x ← W (x − η ∇f(x)).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.compression import Codec, parse_compression
from ..plugins import param, register_baseline
from .base import Method, State


def _compression(text: str) -> str:
    parse_compression(text)  # raises a ValueError with the fix
    return text


@dataclass(frozen=True, kw_only=True)
class ChocoParams:
    step: float = param(3.0, low=0, low_open=True, help="η, the local gradient step (tuned with γ on the main job)")
    gamma: float = param(0.3, low=0, high=1, low_open=True, grid=(0.1, 0.3, 1.0), help="γ, the consensus step")
    compression: str = param("top_k:0.1", help="identity | top_k:F | qbits:B")
    batch: int = param(0, low=0, help="samples per gradient (0: each agent's whole training set)")

    def __post_init__(self) -> None:
        _compression(self.compression)


@register_baseline("choco")
class Choco(Method):
    """CHOCO-SGD: compressed gossip of the difference to a public copy."""

    label = "CHOCO"
    Params = ChocoParams
    tunable = ("step", "gamma")
    mixing = "metropolis"

    def __init__(self, params: ChocoParams) -> None:
        super().__init__(params)
        self.codec = Codec.parse(params.compression)

    def init(self, ctx, w0_AD) -> State:
        zero = w0_AD.new_zeros(w0_AD.shape)
        return {"w": w0_AD, "public": zero, "mixed_public": zero}

    def round(self, ctx, state: State, r: int) -> State:
        p = self.params
        w = state["w"]
        g = ctx.grad(w, *ctx.batch(p.batch)) if p.batch else ctx.grad(w)
        half = w - p.step * g
        q, mixed_q = ctx.exchange_compressed(half - state["public"], self.codec)
        public, mixed_public = state["public"] + q, state["mixed_public"] + mixed_q
        return {"w": half + p.gamma * (mixed_public - public), "public": public, "mixed_public": mixed_public}
