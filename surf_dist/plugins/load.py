"""``run.plugins``: modules (by name) or Python files (by path) imported before a config is validated, by the
coordinator and by every worker (forked ranks inherit them, torchrun ranks and Ray actors import them), so that
the names they register validate and run like built-ins.

A file is imported as a module of its own (``surf_dist_plugin_<stem>_<hash of its path>``), once per process.
A Ray actor on a node that lacks the file gets its source from the driver (``plugin_sources``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path

_LOADED: dict[str, str] = {}  # plugin key (resolved path or module name) -> module name


def is_path(spec: str) -> bool:
    """A plugin given as a file (``x.py``, or anything with a slash) rather than a module name."""
    return spec.endswith(".py") or "/" in spec or "\\" in spec


def _module_name(path: Path) -> str:
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:10]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    return f"surf_dist_plugin_{stem}_{digest}"


def _where(exc: BaseException, path: Path | None) -> str:
    """`` (FILE, line N)`` of the deepest frame in the plugin file (or of the syntax error)."""
    if isinstance(exc, SyntaxError) and exc.lineno is not None:
        return f" ({Path(exc.filename or '?').name}, line {exc.lineno})"
    frames: list[traceback.FrameSummary] = list(traceback.extract_tb(exc.__traceback__))
    if path is not None:
        mine = [f for f in frames if Path(f.filename) == path]
        frames = mine or frames
    return f" ({Path(frames[-1].filename).name}, line {frames[-1].lineno})" if frames else ""


def _import_file(spec: str, path: Path, source: str | None) -> None:
    name = _module_name(path)
    if source is None:
        module_spec = importlib.util.spec_from_file_location(name, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
    else:  # shipped by the driver: the same code, compiled under the driver's file name
        module = importlib.util.module_from_spec(importlib.machinery.ModuleSpec(name, None))
        module.__file__ = str(path)
        sys.modules[name] = module
        try:
            exec(compile(source, str(path), "exec"), module.__dict__)
        except BaseException:
            sys.modules.pop(name, None)
            raise
    _LOADED[str(path)] = name


def load_plugins(specs: Sequence[str], *, sources: Mapping[str, str] | None = None) -> list[str]:
    """Import every plugin of ``specs`` not imported yet; one problem per plugin that could not be, naming it,
    the error and where it happened (empty when all loaded). ``sources``: resolved path → source text, for
    files this process cannot see (``plugin_sources`` of the driver)."""
    problems = []
    for spec in specs:
        if not isinstance(spec, str) or not spec.strip():
            problems.append(f"run.plugins: {spec!r} is not a module name or a .py path")
            continue
        path = Path(spec).expanduser().resolve() if is_path(spec) else None
        key = str(path) if path is not None else spec
        if key in _LOADED:
            continue
        source = None
        if path is not None and not path.is_file():
            source = (sources or {}).get(str(path))
            if source is None:
                problems.append(
                    f"run.plugins: {spec}: file not found (looked at {path}; fix: give the path of a .py file, "
                    "relative to the directory the command runs in, or a module name)"
                )
                continue
        try:
            if path is None:
                importlib.import_module(spec)
                _LOADED[key] = spec
            else:
                _import_file(spec, path, source)
        except ModuleNotFoundError as exc:
            if path is None and exc.name == spec.split(".")[0]:
                problems.append(
                    f"run.plugins: no module named {spec!r} (fix: install it, put its folder on PYTHONPATH, or give "
                    "the path of its .py file)"
                )
            else:
                problems.append(
                    f"run.plugins: {spec}: could not import it: {type(exc).__name__}: {exc}{_where(exc, path)}"
                )
        except Exception as exc:
            problems.append(f"run.plugins: {spec}: could not import it: {type(exc).__name__}: {exc}{_where(exc, path)}")
    return problems


def plugin_sources(specs: Sequence[str]) -> dict[str, str]:
    """Resolved path → source of every plugin file of ``specs`` (for workers on other machines)."""
    out = {}
    for spec in specs:
        if isinstance(spec, str) and is_path(spec):
            path = Path(spec).expanduser().resolve()
            if path.is_file():
                out[str(path)] = path.read_text()
    return out
