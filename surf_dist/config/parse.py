"""Reading configs: TOML files and ``--set key=value`` overrides on top of a preset, type-checked by the
schema, every problem collected; saving and reading ``config.json``.

Precedence: preset < ``--config FILE`` < ``--set`` (in order). ``load_config`` validates everything at
once and raises ``InputError`` listing every problem (the CLI exits 2 before any process starts).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import sys
import typing
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import InputError
from ..plugins import load_plugins
from ..plugins.params import coerce as _coerce
from ..rundir.atomic import write_text_atomic
from .presets import PRESETS
from .schema import Config
from .validate import registries, resolve_params, validate_config


# -- parsing ---------------------------------------------------------------------------------------------
def _sections() -> dict[str, type]:
    return {f.name: f.type for f in dataclasses.fields(Config) if f.name != "seed"}  # type: ignore[misc]


def _section_types() -> dict[str, Any]:
    hints = typing.get_type_hints(Config)
    return {name: hints[name] for name in _sections()}


def _registered_setting(section: str, name: str, value: Any, params: dict[str, dict[str, Any]]) -> bool:
    """File ``section.name = value`` under the section's ``params`` when it is a registered object's setting
    (``eval.dgd_step``: method dgd, field step; ``[eval.dgd]``: a table of dgd's settings); False otherwise."""
    registry = registries().get(section)
    if registry is None:
        return False
    if name == "params" and isinstance(value, dict):
        for owner, table in value.items():
            if isinstance(table, dict):
                params.setdefault(owner, {}).update(table)
            else:
                params.setdefault(owner, {})["?"] = table  # reported by validation
        return True
    if isinstance(value, dict) and name in registry:
        params.setdefault(name, {}).update(value)
        return True
    split = registry.split_key(name)
    if split is None:
        return False
    params.setdefault(split[0], {})[split[1]] = value
    return True


def _setting_names(section: str, hints: dict[str, Any]) -> list[str]:
    """Every setting name of a section, its registered objects' flat ones too (for did-you-mean)."""
    names = [h for h in hints if h != "params"]
    registry = registries().get(section)
    if registry is not None:
        for owner in registry.names():
            names += [f"{owner}_{f.name}" for f in dataclasses.fields(registry.params_of(owner))]
    return names


def _merge(base: dict[str, Any], overrides: dict[str, Any], source: str, problems: list[str]) -> None:
    """Merge nested ``overrides`` into ``base`` (a ``Config.to_dict()``), checking names and types."""
    sections = _section_types()
    for key, value in overrides.items():
        if key == "seed":
            num_before = len(problems)
            seed = _coerce(value, int, f"{source}: seed", problems)
            if len(problems) == num_before:
                base["seed"] = seed
            continue
        if key not in sections:
            hint = difflib.get_close_matches(key, [*sections, "seed"], n=1)
            problems.append(
                f"{source}: unknown section {key!r}"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + f"; sections are seed, {', '.join(sections)}"
            )
            continue
        if not isinstance(value, dict):
            problems.append(f"{source}: {key} must be a table of settings, e.g. [{key}]")
            continue
        hints = typing.get_type_hints(sections[key])
        for name, v in value.items():
            if name not in hints or name == "params":
                if _registered_setting(key, name, v, base[key].setdefault("params", {})):
                    continue
                candidates = _setting_names(key, hints)
                hint = difflib.get_close_matches(name, candidates, n=1)
                problems.append(
                    f"{source}: unknown setting {key}.{name}"
                    + (f" (did you mean {key}.{hint[0]}?)" if hint else f"; {key} has {', '.join(candidates)}")
                )
                continue
            num_before = len(problems)
            coerced = _coerce(v, hints[name], f"{source}: {key}.{name}", problems)
            if len(problems) == num_before:  # a bad value keeps the previous one, so validation still runs
                base[key][name] = coerced


def _parse_set(item: str, problems: list[str]) -> dict[str, Any]:
    """``a.b=value`` → {"a": {"b": value}} (value parsed as TOML when it can be, else kept as a string)."""
    if "=" not in item:
        problems.append(f"--set {item!r}: expected KEY=VALUE, e.g. --set model.num_layers=5")
        return {}
    key, raw = (s.strip() for s in item.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    parts = key.split(".")
    if not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", p) for p in parts) or len(parts) > 2:
        problems.append(f"--set {item!r}: KEY must be SECTION.NAME or seed, e.g. train.epochs")
        return {}
    return {parts[0]: value} if len(parts) == 1 else {parts[0]: {parts[1]: value}}


def _plugins_in(source: dict[str, Any], current: tuple[str, ...]) -> tuple[str, ...]:
    """``run.plugins`` as ``source`` sets it (``current`` when it does not; bad values are left to the merge)."""
    run = source.get("run")
    if not isinstance(run, dict) or "plugins" not in run:
        return current
    value = run["plugins"]
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list | tuple) else current


def load_config(
    preset: str | None = "default",
    config_file: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    base: Config | None = None,
    config: dict[str, Any] | None = None,
    validate: bool = True,
) -> Config:
    """The resolved, validated ``Config``; raises ``InputError`` listing every problem.

    Precedence, lowest first: ``base`` (default: the built-in defaults), ``preset``, ``config_file`` (TOML),
    ``config`` (a dict of sections, as a TOML file would give), ``overrides`` (``KEY=VALUE`` strings). The
    plugins of ``run.plugins`` are imported before anything else is read, so their names and settings are
    known; the evaluated methods', the local network's and the dataset's settings are resolved in full."""
    problems: list[str] = []
    base_dict = (base or Config()).to_dict()
    sources: list[tuple[dict[str, Any], str]] = []
    if preset is not None:
        if preset not in PRESETS:
            problems.append(f"--preset {preset!r}: unknown preset; use one of {', '.join(PRESETS)}")
        else:
            sources.append((PRESETS[preset], f"preset {preset}"))
    if config_file is not None:
        path = Path(config_file)
        try:
            sources.append((tomllib.loads(path.read_text()), str(path)))
        except FileNotFoundError:
            problems.append(f"{path}: config file not found (fix: give an existing TOML file to --config)")
        except IsADirectoryError:
            problems.append(f"{path}: is a directory (fix: give a TOML file to --config)")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: cannot read it ({exc}); fix: give --config a readable UTF-8 TOML file")
        except tomllib.TOMLDecodeError as exc:
            problems.append(
                f"{path}: not valid TOML: {exc}; fix: correct the syntax there (tables as [train], settings as "
                'lr = 0.001, strings in quotes: spec = "ring:n=16")'
            )
    if config is not None:
        sources.append((config, "config"))
    for item in overrides:
        sources.append((_parse_set(item, problems), f"--set {item.split('=')[0].strip()}"))
    plugins = tuple(base_dict["run"].get("plugins", ()))
    for source, _ in sources:
        plugins = _plugins_in(source, plugins)
    problems += load_plugins(plugins)
    for source, where in sources:
        _merge(base_dict, source, where, problems)
    cfg = from_dict(base_dict)
    if validate:
        problems += validate_config(cfg)
    if problems:
        raise InputError(problems)
    return resolve_params(cfg) if validate else cfg


def from_dict(d: dict[str, Any]) -> Config:
    """A Config from ``to_dict()`` output or a saved ``config.json`` (lists become tuples; an older run's flat
    method settings such as ``eval.dgd_step`` go to ``eval.params``)."""
    sections = _section_types()
    kwargs: dict[str, Any] = {"seed": int(d.get("seed", 0))}
    for name, tp in sections.items():
        hints = typing.get_type_hints(tp)
        values: dict[str, Any] = {}
        params: dict[str, dict[str, Any]] = {}
        for k, v in d.get(name, {}).items():
            if k == "params" and isinstance(v, dict):
                for owner, table in v.items():
                    params.setdefault(owner, {}).update(table if isinstance(table, dict) else {})
            elif k in hints:
                values[k] = tuple(v) if isinstance(v, list) else v
            else:
                _registered_setting(name, k, v, params)
        if "params" in hints:
            values["params"] = params
        kwargs[name] = tp(**values)
    return Config(**kwargs)


def save_config(cfg: Config, path: str | Path) -> None:
    write_text_atomic(path, json.dumps(cfg.to_dict(), indent=2, sort_keys=True) + "\n")


def read_config(path: str | Path) -> Config:
    return from_dict(json.loads(Path(path).read_text()))


def replace(cfg: Config, **sections: dict[str, Any]) -> Config:
    """A copy of ``cfg`` with some fields of some sections changed, e.g. replace(cfg, run={"workers": 2})."""
    kwargs = {name: dataclasses.replace(getattr(cfg, name), **values) for name, values in sections.items()}
    return dataclasses.replace(cfg, **kwargs)
