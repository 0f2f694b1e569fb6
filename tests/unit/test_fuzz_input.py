"""Fuzzed input (issue 21): ``--set`` overrides, TOML config files, graph files and topology specs, valid and
broken, drawn by hypothesis and put through everything ``surf-dist train`` does before a process starts (argv,
``make_config``: load and validation, then launch's preflight and the run directory). Each case must be accepted
or refused with the project's ``InputError``, every problem naming a field or a file and saying how to fix it;
any other exception is a bug, and so is a case that takes seconds to refuse (a huge graph built to be counted).

The draws are derandomized (the same 1,000 cases on every run); a few dozen accepted cases run for real in
``tests/e2e/test_fuzz_runs.py``."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re
import tempfile
import time
import typing
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surf_dist.cli.commands import cmd_train
from surf_dist.cli.parser import build_parser
from surf_dist.config import Config
from surf_dist.errors import InputError
from surf_dist.graph.spec import generator_keys
from surf_dist.plugins import DATASETS, LOCAL_UPDATES, METHODS, TOPOLOGIES

NUM_CASES = 1000
SLOW_CASE_S = 3.0  # refusing or accepting one case is milliseconds; seconds mean something was built to be checked

# -- the schema ---------------------------------------------------------------------------------------------------


def _schema() -> dict[str, Any]:
    """``section.name`` → type of every field of the config (the seed as ``seed``)."""
    hints = typing.get_type_hints(Config)
    out: dict[str, Any] = {"seed": int}
    for section in dataclasses.fields(Config):
        tp = hints[section.name]
        if dataclasses.is_dataclass(tp):
            out.update({f"{section.name}.{k}": v for k, v in typing.get_type_hints(tp).items() if k != "params"})
    return out


SCHEMA = _schema()
# registered objects' own settings, set flat: eval.dgd_step, model.paper_..., data.digits_...
REGISTERED = [
    f"{section}.{owner}_{f.name}"
    for section, registry in (("eval", METHODS), ("model", LOCAL_UPDATES), ("data", DATASETS))
    for owner in registry.names()
    for f in dataclasses.fields(registry.params_of(owner))
]
# fields whose real values the draws must not take: they would import modules, download datasets, or touch the
# network (run.plugins draws only names that do not exist; data.download only false)
UNSAFE = {"run.plugins", "data.download", "run.ray_address"}
KNOWN_STRINGS = {
    "topology.normalisation": ["row", "spectral", "metropolis", "column"],
    "topology.placement": ["contiguous", "mincut"],
    "topology.dynamic": ["static", "resample", "exponential-one-peer", "link-failure"],
    "topology.link_repair": ["renormalise", "self"],
    "model.output": ["relu", "linear"],
    "model.normalisation": ["none", "agent-batch"],
    "model.init": ["default", "paper"],
    "model.tap_init": ["average", "paper"],
    "model.dtype": ["float32", "float64"],
    "model.variant": ["decentralized", "star"],
    "model.local_update": ["paper", "nonexistent"],
    "model.recompute": ["auto", "on", "off"],
    "train.constraint_form": ["ratio", "difference"],
    "eval.split": ["meta-test", "meta-val"],
    "failures.semantics": ["zero", "stale"],
    "run.backend": ["local", "torch", "ray"],
    "run.device": ["cpu", "cuda"],
    "data.dataset": ["digits", "fashion-mnist", "mnist", "cifar10", "nonexistent"],
    "data.features": ["pixels", "cnn", "resnet18"],
    "data.partition": ["iid", "dirichlet", "shards"],
    "data.feature_device": ["cpu", "cuda", "cuda:0", "cuda:x"],
    "run.node_address": ["127.0.0.1", "::1", "0.0.0.0", "300.1.1.1", "localhost"],
    "eval.baselines": ["dgd", "pushsum", "fedavg", "nonexistent"],
    "data.augmentations": ["none", "crop", "hflip", "vflip", "rot90", "spin"],
    "failures.kill": ["0@1", "1@0:eval", "0@2:checkpoint", "1@5:checkpoint", "x@y", "0@99999999999"],
    "failures.hang": ["1@1", "0@0:eval", "9@1"],
    "failures.stop": ["1@1", "1@x"],
}
WEIRD_STRINGS = ["", " ", "nan", "-inf", "1e999", "true", "[", "]", "{}", "\x00", "ü", "a,b", "0x10", "1_000", "٣"]
HUGE = [2**31, 2**63, 2**64 + 1, 10**30]


def _int_values() -> st.SearchStrategy[Any]:
    return st.one_of(st.integers(-3, 12), st.sampled_from(HUGE), st.sampled_from([-(2**63), -(10**30)]))


def _float_values() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.floats(-2, 2, allow_nan=False),
        st.sampled_from([0.0, 1.0, 1e-300, 1e308, -0.0]),
        st.floats(allow_nan=True, allow_infinity=True),
    )


def _any_value(name: str) -> st.SearchStrategy[Any]:
    """A value of the right type for ``name`` or of any wrong one."""
    known = KNOWN_STRINGS.get(name, [])
    scalars = st.one_of(
        _int_values(),
        _float_values(),
        st.booleans(),
        st.sampled_from(WEIRD_STRINGS),
        st.text(max_size=6),
        *([st.sampled_from(known)] if known else []),
    )
    lists = st.lists(st.one_of(scalars, *([st.sampled_from(known)] * 3 if known else [])), max_size=3)
    return st.one_of(scalars, lists, st.just([[1]]), st.just({"a": 1}))


def _toml_value(value: Any) -> str:
    """``value`` as TOML (nan and inf included), for a --set value or a file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def _as_text(value: Any) -> str:
    """``value`` as a --set value: as TOML, or as the bare text a user would type."""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


# -- topology specs and graph files --------------------------------------------------------------------------------


def _spec_value(kind: type, low: float | None, choices: tuple[str, ...]) -> st.SearchStrategy[str]:
    if choices:
        good = st.sampled_from(choices)
    elif kind is bool:
        good = st.sampled_from(["true", "false", "1", "0", "yes"])
    elif kind is int:
        good = st.integers(int(low or 0), 24).map(str)
    else:
        good = st.sampled_from(["0", "0.3", "0.5", "0.9", "1", "1.0"])
    bad = st.sampled_from(["-1", "0", "1.5", "abc", "", "nan", "inf", "1e3", "true", "٣"])
    huge = st.sampled_from([str(10**10), str(10**12), str(2**63), str(10**30)]) if kind is int else bad
    return st.one_of(good, good, good, huge, bad)


@st.composite
def topology_specs(draw: st.DrawFn) -> str:
    """``NAME:key=value,...`` from the grammar: a registered family (or not), its keys (or others), their values
    (in range, out of range, of the wrong type, huge), duplicated, missing, malformed items."""
    names = TOPOLOGIES.names()
    name = draw(st.one_of(st.sampled_from(names), st.sampled_from(["", "rin", "Ring", "kregular ", "9x"])))
    keys = generator_keys(TOPOLOGIES.get(name.strip())) if name.strip() in names else {}
    items = []
    for key, spec_key in keys.items():
        if draw(st.integers(0, 9)) == 0:
            continue  # missing
        items.append(f"{key}={draw(_spec_value(spec_key.kind, spec_key.key.low, spec_key.key.choices))}")
    extra = draw(st.lists(st.sampled_from(["x=1", "n=4", "=", "n", "n==3", ",", " ", "p=0.5"]), max_size=2))
    items += extra
    if draw(st.booleans()):
        items = draw(st.permutations(items))
    sep = draw(st.sampled_from([":", ":", ":", "", "::", " : "]))
    return name + sep + ",".join(items)


EDGE_ROWS = st.one_of(
    st.tuples(st.integers(0, 9), st.integers(0, 9)).map(lambda e: f"{e[0]} {e[1]}"),
    st.tuples(st.integers(0, 9), st.integers(0, 9)).map(lambda e: f"{e[0]},{e[1]}"),
    st.tuples(st.integers(0, 9), st.integers(0, 9), st.sampled_from(["1", "0.5", "0", "-1", "nan", "inf", "x"])).map(
        lambda e: f"{e[0]} {e[1]} {e[2]}"
    ),
    st.sampled_from(["", "# comment", "0", "0 1 2 3", "a b", "-1 2", "0 0", "1 1 1", "99 0", "0 2**70", "\t", "ü 1"]),
)


@st.composite
def graph_files(draw: st.DrawFn, folder: Path) -> str:
    """A graph file of any supported format (and some not): rows good and bad, self-loops, nodes out of range,
    empty files, duplicate and asymmetric edges, broken JSON and XML."""
    suffix = draw(st.sampled_from([".txt", ".edges", ".edgelist", ".adjlist", ".json", ".graphml", ".csv", ""]))
    kind = draw(st.sampled_from(["ring", "rows", "empty"]))
    n = draw(st.integers(2, 10))
    if kind == "ring":
        pairs = [(i, (i + 1) % n) for i in range(n)]
    elif kind == "rows":
        pairs = draw(st.lists(st.tuples(st.integers(-1, 11), st.integers(-1, 11)), max_size=12))
    else:
        pairs = []
    if suffix == ".json":
        data: Any = {
            "directed": draw(st.booleans()),
            "nodes": [{"id": i} for i in range(n)],
            "edges": [{"source": u, "target": v} for u, v in pairs],
        }
        mangle = draw(st.sampled_from(["none", "none", "no-nodes", "links", "not-a-dict", "truncate", "bad-id"]))
        if mangle == "no-nodes":
            del data["nodes"]
        elif mangle == "links":
            data["links"] = data.pop("edges")
        elif mangle == "not-a-dict":
            data = [1, 2]
        elif mangle == "bad-id":
            data["nodes"].append({"id": draw(st.sampled_from(["a", -1, 1.5, None, True, [1]]))})
        text = json.dumps(data)
        if mangle == "truncate":
            text = text[: len(text) // 2]
    elif suffix == ".graphml":
        edges = "".join(f'<edge source="{u}" target="{v}"/>' for u, v in pairs)
        nodes = "".join(f'<node id="{i}"/>' for i in range(n))
        text = (
            '<?xml version="1.0"?><graphml xmlns="http://graphml.graphdrawing.org/xmlns">'
            f'<graph edgedefault="{draw(st.sampled_from(["undirected", "directed"]))}">{nodes}{edges}</graph></graphml>'
        )
        if draw(st.booleans()):
            text = text[: draw(st.integers(0, len(text)))]
    elif suffix == ".adjlist":
        lines = [f"{u} {v}" for u, v in pairs] + draw(st.lists(EDGE_ROWS, max_size=3))
        text = "\n".join(lines)
    else:
        lines = [f"{u} {v}" for u, v in pairs] + draw(st.lists(EDGE_ROWS, max_size=4))
        text = "\n".join(draw(st.permutations(lines)))
    path = folder / f"graph-{next(_counter)}{suffix}"
    if draw(st.integers(0, 19)) == 0:
        path.mkdir()  # a directory where a file should be
    elif draw(st.integers(0, 19)) == 0:
        path.write_bytes(b"\xff\xfe\x00bad")  # not UTF-8
    elif draw(st.integers(0, 19)) != 0:  # else: a file that does not exist
        path.write_text(text)
    return str(path)


# -- overrides and TOML files ----------------------------------------------------------------------------------------

_counter = itertools.count()
FIELDS = [name for name in SCHEMA if name not in UNSAFE] + REGISTERED
UNKNOWN_KEYS = ["train.epoch", "trian.epochs", "topology.specs", "model", "seeds", "eval.dgd_stepp", "eval.dgd", "x.y"]


@st.composite
def settings_pairs(draw: st.DrawFn, folder: Path) -> tuple[str, Any]:
    """(``section.name``, value): a real field (or a registered object's setting, or an unknown key) with a value
    of its type or of another; topology.spec gets specs and graph files."""
    name = draw(st.one_of(st.just("topology.spec"), st.sampled_from(FIELDS), st.sampled_from(FIELDS + UNKNOWN_KEYS)))
    if name == "topology.spec":
        value = draw(st.one_of(topology_specs(), graph_files(folder), _any_value(name)))
    elif name == "run.plugins":
        value = draw(st.sampled_from(["surf_dist_no_such_plugin", str(folder / "missing.py"), ""]))
    elif name in ("failures.trace", "network.links"):
        value = draw(st.one_of(graph_files(folder), _any_value(name)))
    else:
        value = draw(_any_value(name))
    return name, value


@st.composite
def set_args(draw: st.DrawFn, folder: Path) -> str:
    """One ``--set`` argument: KEY=VALUE with the value as TOML or as bare text, or a malformed one."""
    if draw(st.integers(0, 14)) == 0:
        return draw(st.sampled_from(["train.epochs", "=", "=3", "a.b.c=1", "train..lr=1", ".x=1", "1.a=2", " = "]))
    name, value = draw(settings_pairs(folder))
    text = _toml_value(value) if draw(st.booleans()) else _as_text(value)
    return f"{name}{draw(st.sampled_from(['=', '=', ' = ', '==']))}{text}"


@st.composite
def toml_files(draw: st.DrawFn, folder: Path) -> str:
    """A TOML config: sections of real settings (values right and wrong), unknown sections and keys, a scalar
    where a table belongs, tables of registered objects, and text broken at a random place."""
    tables: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for name, value in draw(st.lists(settings_pairs(folder), max_size=5)):
        section, _, key = name.partition(".")
        if not key:
            top[section] = value
        else:
            tables.setdefault(section, {})[key] = value
    if draw(st.integers(0, 5)) == 0:
        top[draw(st.sampled_from(["topology", "train", "seed", "nosuch"]))] = draw(_any_value("x"))
    if draw(st.integers(0, 5)) == 0:
        tables.setdefault("eval", {})["dgd"] = {"step": draw(_float_values())}
    lines = [f"{k} = {_toml_value(v)}" for k, v in top.items() if not isinstance(v, dict)]
    for section, values in tables.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            if isinstance(value, dict):
                lines.append(f"{key} = {_toml_value(value)}")
            else:
                lines.append(f"{key} = {_toml_value(value)}")
    text = "\n".join(lines) + "\n"
    if draw(st.integers(0, 4)) == 0:  # broken TOML
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(['"', "[", "[[x]", " = ", "\n[train]\n[train]\n", "= 1", "\x00"]))
    path = folder / f"config-{next(_counter)}{draw(st.sampled_from(['.toml', '.toml', '.txt']))}"
    choice = draw(st.integers(0, 29))
    if choice == 0:
        return str(folder / "missing.toml")
    if choice == 1:
        return str(folder)
    if choice == 2:
        path.write_bytes(b"[train]\nlr = \xff\n")
    else:
        path.write_text(text)
    return str(path)


@st.composite
def argvs(draw: st.DrawFn, folder: Path) -> list[str]:
    """``surf-dist train`` argv: a preset, maybe a config file, --set overrides, maybe --backend and --workers."""
    argv = ["train", "--preset", draw(st.sampled_from(["smoke", "smoke", "smoke", "star", "nosuch"]))]
    if draw(st.integers(0, 2)) == 0:
        argv += ["--config", draw(toml_files(folder))]
    if draw(st.booleans()):
        argv += ["--backend", draw(st.sampled_from(["local", "torch", "ray"]))]
    if draw(st.integers(0, 3)) == 0:
        argv += ["--workers", str(draw(st.integers(-2, 9)))]
    for item in draw(st.lists(set_args(folder), max_size=4)):
        argv += ["--set", item]
    argv += ["--out", str(folder / f"run-{next(_counter)}")]
    return argv


# -- the checks -----------------------------------------------------------------------------------------------------

FIX_WORDS = re.compile(
    r"fix|use |must|expected|give|set |choose|remove|drop|raise|lower|did you mean|unknown|not found|"
    r"sections are|has |registered|needs|cannot|only|list each|valid keys|should|instead|is not",
    re.IGNORECASE,
)
FIELD_NAME = re.compile(r"\b(seed|topology|data|model|train|eval|failures|network|run)(\.[A-Za-z_*]+)?\b|--\w+|/")


def preflight(argv: list[str]) -> Any:
    """What ``surf-dist train ARGV`` does before any process starts: parse argv, make the config (load and
    validation), launch's checks and the run directory; the config the workers would get, or InputError."""
    args = build_parser().parse_args(argv)
    started: list[Any] = []
    with (
        mock.patch("surf_dist.cli.commands._lean"),
        mock.patch("surf_dist.runtime.launch._run", side_effect=lambda cfg, out, progress: started.append(cfg)),
    ):
        cmd_train(args)
    assert len(started) == 1, "the checks passed but no run was started"
    return started[0]


def check_problems(problems: list[str], argv: list[str]) -> None:
    """Every problem is one line that names a field or a file and says what to do."""
    assert problems, f"InputError without problems for {argv}"
    for p in problems:
        assert isinstance(p, str) and p.strip(), (p, argv)
        assert FIELD_NAME.search(p), f"names no field or file: {p!r} (argv {argv})"
        assert FIX_WORDS.search(p), f"no fix: {p!r} (argv {argv})"
        assert "Traceback" not in p and "Error(" not in p, (p, argv)


def run_case(argv: list[str]) -> str:
    """``accepted`` or ``refused``; raises on anything else (an exception that is not InputError, a slow case)."""
    start = time.perf_counter()
    try:
        preflight(argv)
        outcome = "accepted"
    except InputError as exc:
        check_problems(exc.problems, argv)
        outcome = "refused"
    elapsed = time.perf_counter() - start
    assert elapsed < SLOW_CASE_S, f"{elapsed:.1f} s to check {argv}"
    return outcome


FOLDER = Path(tempfile.mkdtemp(prefix="surf-dist-fuzz-"))


@settings(
    max_examples=NUM_CASES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
@given(argv=argvs(FOLDER))
def _fuzz(outcomes: dict[str, int], argv: list[str]) -> None:
    outcome = run_case(argv)
    outcomes[outcome] = outcomes.get(outcome, 0) + 1


def test_fuzzed_input_is_accepted_or_refused_cleanly() -> None:
    """Catches input that ends in a traceback (a TypeError, a MemoryError from a huge graph, a ValueError from a
    path) instead of exit 2, a problem that names no field or gives no fix, and input checked so slowly that
    bad input is not caught up front: 1,000 derandomized cases of --set, TOML files, specs and graph files. Also
    catches a fuzz that tests one side only: both outcomes must come up, each in at least 5 % of the cases."""
    outcomes: dict[str, int] = {}
    _fuzz(outcomes)
    assert sum(outcomes.values()) >= NUM_CASES, outcomes
    assert min(outcomes.get("accepted", 0), outcomes.get("refused", 0)) >= NUM_CASES // 20, outcomes


@pytest.mark.parametrize(
    "argv_tail",
    [
        ["--set", "topology.spec=ring:n=10000000000"],
        ["--set", "topology.spec=torus:rows=100000,cols=100000"],
        ["--set", "topology.spec=kregular:n=100000,degree=99998"],
        ["--set", "seed=-1"],
        ["--set", "data.root=\x00"],
        ["--set", "topology.spec=kregular:"],
        ["--set", "topology.spec=ring:n=5,n=6"],
        ["--workers", "0", "--set", "failures.kill=1@0:eval"],
    ],
)
def test_found_by_the_fuzz(argv_tail: list[str], tmp_path: Path) -> None:
    """Catches the inputs the fuzz found going back to a traceback, a slow check or a problem blamed on the wrong
    field."""
    with pytest.raises(InputError) as exc:
        preflight(["train", "--preset", "smoke", *argv_tail, "--out", str(tmp_path / "r")])
    check_problems(exc.value.problems, argv_tail)
