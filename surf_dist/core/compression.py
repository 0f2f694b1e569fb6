"""Compression operators of compressed gossip (CHOCO-SGD), and what their messages hold.

A ``Codec`` compresses rows (``compress``: A × D → A × D, the values a receiver reconstructs), and encodes them for
the wire (``encode``: a tuple of tensors per block of rows; ``decode`` inverts it exactly, so that
``decode(encode(compress(x))) == compress(x)`` bit for bit). The ledger counts ``message_bytes`` per message, and a
worker sends the encoded tensors, so physical bytes are the compressed ones too.

* ``identity``:  every value, D · itemsize bytes.
* ``top_k:F``:   each row's k = ⌈F · D⌉ largest entries in magnitude; k values and k int32 indices.
* ``qbits:B``:   random dithering to 2^B − 1 levels (QSGD): q = ‖x‖ · sign(x) · ℓ / s, ℓ ∈ {0..s}, s = 2^B − 1,
                 ℓ = ⌊s |x| / ‖x‖ + u⌋ with u uniform, keyed; one norm and D levels of B bits plus a sign bit
                 (a device packs them: that is the logical count; between processes they travel as int8 or int16).

Shapes: R rows, D model dimension, K kept entries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - torch is imported where rows are compressed (methods import this at validation)
    import torch


def parse_compression(text: str) -> tuple[str, float]:
    """``identity`` | ``top_k:F`` (0 < F ≤ 1) | ``qbits:B`` (1 ≤ B ≤ 15) → (kind, parameter); a ValueError says the
    fix."""
    kind, _, value = text.partition(":")
    if kind == "identity" and not value:
        return kind, 0.0
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{text!r}: use identity, top_k:F (e.g. top_k:0.1) or qbits:B (e.g. qbits:4)") from None
    if kind == "top_k" and 0 < number <= 1:
        return kind, number
    if kind == "qbits" and number == int(number) and 1 <= number <= 15:
        return kind, number
    raise ValueError(f"{text!r}: use identity, top_k:F with 0 < F ≤ 1, or qbits:B with B in 1..15")


@dataclass(frozen=True)
class Codec:
    """One compression operator (see the module docstring)."""

    kind: str  # identity | top_k | qbits
    parameter: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Codec:
        return cls(*parse_compression(text))

    def kept(self, dim: int) -> int:
        return max(1, math.ceil(self.parameter * dim)) if self.kind == "top_k" else dim

    def message_bytes(self, dim: int, itemsize: int) -> int:
        """Bytes of one compressed message of ``dim`` floats."""
        if self.kind == "top_k":
            return self.kept(dim) * (itemsize + 4)
        if self.kind == "qbits":
            return itemsize + math.ceil(dim * (int(self.parameter) + 1) / 8)
        return dim * itemsize

    def compress(self, x_RD: torch.Tensor, uniform_RD: torch.Tensor | None = None) -> torch.Tensor:
        """Q(x): what the receivers reconstruct (``uniform_RD``: the dithering's keyed uniforms, qbits only)."""
        if self.kind == "identity":
            return x_RD
        return self.decode(self.encode(x_RD, uniform_RD), x_RD.shape[1])

    def encode(self, x_RD: torch.Tensor, uniform_RD: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """The tensors a message block holds on the wire."""
        if self.kind == "identity":
            return (x_RD,)
        if self.kind == "top_k":
            k = self.kept(x_RD.shape[1])
            idx_RK = x_RD.abs().topk(k, dim=1).indices.sort(dim=1).values
            return x_RD.gather(1, idx_RK), idx_RK.int()
        import torch

        levels = 2 ** int(self.parameter) - 1
        norm_R1 = x_RD.norm(dim=1, keepdim=True)
        scaled_RD = torch.where(norm_R1 > 0, x_RD.abs() / norm_R1.clamp_min(torch.finfo(x_RD.dtype).tiny), 0.0)
        assert uniform_RD is not None, "qbits dithering needs keyed uniforms"
        level_RD = torch.floor(levels * scaled_RD + uniform_RD.to(x_RD.dtype)).clamp_(max=levels)
        wire = torch.int8 if levels <= 127 else torch.int16  # −s..s: B bits and a sign bit
        return norm_R1, (level_RD * torch.sign(x_RD)).to(wire)

    def decode(self, parts: tuple[torch.Tensor, ...], dim: int) -> torch.Tensor:
        """The rows ``encode`` encoded (exactly)."""
        if self.kind == "identity":
            return parts[0]
        if self.kind == "top_k":
            values_RK, idx_RK = parts
            out_RD = values_RK.new_zeros((values_RK.shape[0], dim))
            return out_RD.scatter_(1, idx_RK.long(), values_RK)
        norm_R1, signed_RD = parts
        levels = 2 ** int(self.parameter) - 1
        return norm_R1 * signed_RD.to(norm_R1.dtype) / levels

    def rows(self, parts: tuple[torch.Tensor, ...], positions: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The encoded rows at ``positions`` (the rows one peer needs)."""
        return tuple(p[positions].contiguous() for p in parts)
