"""Extension points: the registries of methods (baselines), datasets, U-DGD's local networks and graph
generators, their decorators, and the loading of plugin modules (``run.plugins``).

Every built-in goes through the same registries as a plugin: a name is registered in exactly one place, the
module that defines it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .load import load_plugins, plugin_sources
from .params import Key, NoParams, param
from .registry import Registry

T = TypeVar("T")

METHODS: Registry[Any] = Registry("baseline", setting="eval.baselines", section="eval", builtins="surf_dist.methods")
DATASETS: Registry[Any] = Registry("dataset", setting="data.dataset", section="data", builtins="surf_dist.data.catalog")
LOCAL_UPDATES: Registry[Any] = Registry(
    "local network", setting="model.local_update", section="model", builtins="surf_dist.core.local_updates"
)
TOPOLOGIES: Registry[Any] = Registry(
    "graph generator", setting="topology.spec", section="topology", builtins="surf_dist.graph.generators"
)


def method_label(name: str) -> str:
    """How tables and figures name method ``name``: its registered ``label``, else the name in capitals (a run
    whose plugin is not imported here still has a name)."""
    if name in METHODS:
        return getattr(METHODS.get(name), "label", "") or name.upper()
    return name.upper()


def register_baseline(name: str) -> Callable[[T], T]:
    """Register a ``surf_dist.Method`` subclass as the baseline ``name`` (``eval.baselines``; its settings
    ``eval.NAME_FIELD`` from its ``Params``)."""
    return METHODS.decorator(name, set_name=True)


def register_dataset(name: str) -> Callable[[T], T]:
    """Register a dataset loader ``load(split, params) -> surf_dist.Arrays`` as ``data.dataset = name``."""
    return DATASETS.decorator(name)


def register_local_update(name: str) -> Callable[[T], T]:
    """Register a factory of U-DGD's local network, ``make(in_dim=, out_dim=, model=, params=) -> nn.Module``, as
    ``model.local_update = name``."""
    return LOCAL_UPDATES.decorator(name)


def register_topology(name: str) -> Callable[[T], T]:
    """Register a graph generator ``fn(*, rng, **keys)`` as ``topology.spec = "name:key=value,..."``; its keys
    are its keyword parameters (typed, with defaults; ``Annotated[int, Key(...)]`` for bounds and help)."""
    return TOPOLOGIES.decorator(name)


__all__ = [
    "DATASETS",
    "LOCAL_UPDATES",
    "METHODS",
    "TOPOLOGIES",
    "Key",
    "NoParams",
    "Registry",
    "load_plugins",
    "method_label",
    "param",
    "plugin_sources",
    "register_baseline",
    "register_dataset",
    "register_local_update",
    "register_topology",
]
