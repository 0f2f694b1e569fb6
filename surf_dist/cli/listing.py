"""``surf-dist list``: what each registry holds (built-ins and the plugins imported), with every setting."""

from __future__ import annotations

from typing import Any


def _doc(obj: Any) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
    return doc[0] if doc else ""


def registered(kind: str = "all") -> str:
    """The registered names of ``kind`` (methods, datasets, local-updates, topologies or all), one block each."""
    from ..graph.spec import generator_keys
    from ..plugins import DATASETS, LOCAL_UPDATES, METHODS, TOPOLOGIES
    from ..plugins.params import describe

    out: list[str] = []
    if kind in ("all", "methods"):
        out.append("methods (eval.baselines; settings eval.NAME_FIELD):")
        for name in METHODS.names():
            cls = METHODS.get(name)
            out.append(f"  {name} [{cls.variant}; from {METHODS.origin(name)}] {_doc(cls)}".rstrip())
            out += [f"      {line}" for line in describe(METHODS.params_of(name), f"eval.{name}_")]
    if kind in ("all", "datasets"):
        out.append("datasets (data.dataset; settings data.NAME_FIELD):")
        for name in DATASETS.names():
            entry = DATASETS.get(name)
            classes = getattr(entry, "num_classes", None)
            extra = f"{classes} classes; " if classes else ""
            out.append(f"  {name} [{extra}from {DATASETS.origin(name)}] {_doc(entry)}".rstrip())
            out += [f"      {line}" for line in describe(DATASETS.params_of(name), f"data.{name}_")]
    if kind in ("all", "local-updates"):
        out.append("local networks (model.local_update; settings model.NAME_FIELD):")
        for name in LOCAL_UPDATES.names():
            entry = LOCAL_UPDATES.get(name)
            out.append(f"  {name} [from {LOCAL_UPDATES.origin(name)}] {_doc(entry)}".rstrip())
            out += [f"      {line}" for line in describe(LOCAL_UPDATES.params_of(name), f"model.{name}_")]
    if kind in ("all", "topologies"):
        out.append("graph generators (topology.spec = NAME:key=value,...):")
        for name in TOPOLOGIES.names():
            fn = TOPOLOGIES.get(name)
            out.append(f"  {name} [from {TOPOLOGIES.origin(name)}] {_doc(fn)}".rstrip())
            out += [f"      {k.describe(key)}" for key, k in generator_keys(fn).items()]
    return "\n".join(out)
