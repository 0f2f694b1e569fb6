"""Registries: names → the objects they stand for (methods, datasets, local networks of U-DGD, graph
generators). Built-ins and plugins register the same way, with the decorators of ``surf_dist``
(``register_baseline``, ``register_dataset``, ``register_local_update``, ``register_topology``).

A registry loads its built-ins on first use (a module that registers them; none of them imports torch at module
level), so a name is known wherever the registry is asked, and validation lists the registered names. A plugin
module (``run.plugins``) registers more names when it is imported, in the coordinator and in every worker.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

from .params import NoParams, fields_of

T = TypeVar("T")


class Registry(Generic[T]):
    """Names of one kind of object.

    Args:
        kind: what a name stands for, in messages ("baseline", "dataset", ...).
        setting: the config key that chooses names (e.g. ``eval.baselines``), in messages.
        section: the config section of the objects' own settings (``eval`` for ``eval.NAME_FIELD``).
        builtins: the module that registers the built-ins (imported on first use).
    """

    def __init__(self, kind: str, *, setting: str, section: str, builtins: str) -> None:
        self.kind, self.setting, self.section, self.builtins = kind, setting, section, builtins
        self._entries: dict[str, T] = {}
        self._origin: dict[str, str] = {}
        self._loading = False
        self._loaded = False

    def _ensure_builtins(self) -> None:
        if self._loaded or self._loading:
            return
        self._loading = True
        try:
            importlib.import_module(self.builtins)
            self._loaded = True
        finally:
            self._loading = False

    def register(self, name: str, obj: T, *, origin: str | None = None, replace: bool = False) -> T:
        """Register ``obj`` under ``name``. The same object registered again (a module imported twice) is a no-op;
        another object under a taken name is an error unless ``replace``."""
        if not isinstance(name, str) or not name.replace("-", "_").isidentifier():
            raise ValueError(
                f"a {self.kind} name must be letters, digits, _ and -, starting with a letter, got {name!r}"
            )
        self._ensure_builtins()
        origin = origin or str(getattr(obj, "__module__", "?"))
        if name in self._entries and not replace:
            old = self._entries[name]
            if old is obj or _same_definition(old, obj):
                self._entries[name] = obj
                return obj
            raise ValueError(
                f"{self.kind} {name!r} is already registered by {self._origin[name]}; choose another name "
                f"(or register(..., replace=True) to replace it)"
            )
        self._entries[name] = obj
        self._origin[name] = origin
        return obj

    def decorator(self, name: str, *, set_name: bool = False) -> Callable[[T], T]:
        """``@registry.decorator(name)``: register the decorated object under ``name`` (``set_name``: and set its
        ``name`` attribute, e.g. a method class's)."""

        def register(obj: T) -> T:
            if set_name:
                setattr(obj, "name", name)  # noqa: B010 - a class attribute of the registered class
            return self.register(name, obj)

        return register

    def names(self) -> tuple[str, ...]:
        self._ensure_builtins()
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        self._ensure_builtins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        """The object registered as ``name``; ``KeyError`` with the registered names otherwise."""
        self._ensure_builtins()
        if name not in self._entries:
            raise KeyError(self.unknown(name))
        return self._entries[name]

    def origin(self, name: str) -> str:
        self._ensure_builtins()
        return self._origin[name]

    def unknown(self, name: object, setting: str | None = None) -> str:
        """The problem of an unknown name: which names are registered and how plugins add more."""
        return (
            f"{setting or self.setting} = {name!r}: unknown {self.kind}; registered: {', '.join(self.names())} "
            "(a plugin in run.plugins can register more)"
        )

    def params_of(self, name: str) -> type:
        """The settings dataclass of ``name`` (``NoParams`` when it has none)."""
        return getattr(self.get(name), "Params", NoParams)

    def split_key(self, flat: str) -> tuple[str, str] | None:
        """``NAME_FIELD`` → (NAME, FIELD) for a registered NAME whose settings have FIELD (the longest such NAME),
        or None."""
        best: tuple[str, str] | None = None
        for name in self.names():
            if flat.startswith(name + "_"):
                field = flat[len(name) + 1 :]
                if field in fields_of(self.params_of(name)) and (best is None or len(name) > len(best[0])):
                    best = (name, field)
        return best


def _defining_file(obj: Any) -> str | None:
    module = sys.modules.get(getattr(obj, "__module__", "") or "")
    path = getattr(module, "__file__", None)
    return str(Path(path).resolve()) if path else None


def _same_definition(a: Any, b: Any) -> bool:
    """Two definitions of one object: the same qualified name from the same module or the same file (a plugin file
    run as a script and imported again by ``run.plugins``, or imported twice, defines new objects)."""
    qualname = getattr(a, "__qualname__", None)
    if qualname is None or qualname != getattr(b, "__qualname__", None):
        return False
    if getattr(a, "__module__", None) == getattr(b, "__module__", None):
        return True
    file_a = _defining_file(a)
    return file_a is not None and file_a == _defining_file(b)
