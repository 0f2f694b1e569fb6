"""The local networks of U-DGD that ship with surf-dist (``model.local_update``), registered like a plugin's.

A local network is registered as a factory ``make(*, in_dim, out_dim, model, params) -> nn.Module`` (a class
whose constructor takes those keywords works too): ``in_dim`` = D + B·(P + C) (the iterate and the interleaved
mini-batch), ``out_dim`` = D, ``model`` the ``[model]`` settings, ``params`` its own settings (its ``Params``,
``model.NAME_FIELD``). The module's ``forward(z_AI, ctx)`` gets a ``udgd.LayerContext`` and returns the update
A × D that the layer subtracts from the filtered iterate. U-DGD makes one per layer. This module imports no
torch until a network is built.
"""

from __future__ import annotations

from typing import Any

from ..plugins import register_local_update


@register_local_update("paper")
def paper(*, in_dim: int, out_dim: int, model: Any, params: Any) -> Any:
    """σ(M [w ‖ b] + d) with ``model.hidden`` hidden layers, ``model.output`` σ, ``model.normalisation`` and
    ``model.init`` (the paper's, and the reference code's with agent-batch normalisation)."""
    from .udgd import LocalUpdate

    return LocalUpdate(
        in_dim, out_dim, hidden=model.hidden, output=model.output, normalisation=model.normalisation, init=model.init
    )
