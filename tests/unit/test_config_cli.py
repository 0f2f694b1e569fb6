"""Config parsing and validation, and the CLI's exit codes and messages."""

from __future__ import annotations

import json

import pytest

from surf_dist.cli import main
from surf_dist.config import PRESETS, load_config, read_config, save_config
from surf_dist.errors import InputError


def test_presets_resolve_and_validate():
    """Catches a preset that names a setting that does not exist or fails validation."""
    for name in PRESETS:
        if name == "paper":  # needs CIFAR-10 files; validation of names and types still runs
            continue
        load_config(name)
    cfg = load_config("paper", validate=False)
    assert cfg.data.dataset == "cifar10" and cfg.model.num_layers == 10


def test_set_overrides_with_types_and_lists():
    """Catches --set values that keep the wrong type (strings for ints, bools, lists)."""
    cfg = load_config(
        "smoke",
        None,
        [
            "seed=7",
            "model.num_layers=4",
            "train.constrained=false",
            "failures.kill=0@3",
            "model.hidden=[32, 16]",
            "topology.spec=ring:n=6",
        ],
    )
    assert cfg.seed == 7 and cfg.model.num_layers == 4 and cfg.train.constrained is False
    assert cfg.failures.kill == ("0@3",) and cfg.model.hidden == (32, 16) and cfg.topology.spec == "ring:n=6"


def test_every_problem_is_listed_at_once(tmp_path):
    """Catches validation that stops at the first problem instead of listing all of them."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[model]\nnum_layers = 0\nnum_hopz = 2\n[train]\nepsilon = 1.5\n[failures]\nsemantics = "late"\n')
    with pytest.raises(InputError) as exc:
        load_config("smoke", bad, ["topology.placement=random"])
    text = str(exc.value)
    assert "num_hopz" in text and "did you mean model.num_hops" in text
    with pytest.raises(InputError) as exc:
        load_config(
            "smoke",
            None,
            [
                "model.num_layers=0",
                "train.epsilon=1.5",
                "failures.semantics=late",
                "topology.placement=random",
                "failures.kill=oops",
            ],
        )
    problems = exc.value.problems
    for needle in (
        "model.num_layers",
        "train.epsilon",
        "failures.semantics",
        "topology.placement",
        "failures.kill",
    ):
        assert any(needle in p for p in problems), needle


def test_config_json_round_trip(tmp_path):
    """Catches a saved config.json that does not load back to the same config (resume would break)."""
    cfg = load_config("smoke", None, ["model.hidden=[8]", "failures.kill=0@2"])
    save_config(cfg, tmp_path / "config.json")
    assert read_config(tmp_path / "config.json") == cfg


def test_cli_bad_config_exits_2_with_all_problems(capsys, tmp_path):
    """Catches a traceback or exit code 1 on bad input, or a message that hides some problems."""
    code = main(
        [
            "train",
            "--preset",
            "smoke",
            "--set",
            "model.num_layers=-1",
            "--set",
            "train.lr=abc",
            "--set",
            "topology.spec=nosuch:n=3",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "model.num_layers" in err and "train.lr" in err and "nosuch" in err
    assert "Traceback" not in err
    assert not (tmp_path / "r").exists()  # nothing started


def test_cli_bad_topology_file_exits_2(capsys, tmp_path):
    """Catches a malformed graph file producing a traceback instead of a clear error."""
    f = tmp_path / "g.edgelist"
    f.write_text("0 1\n1 x\n2 2\n")
    assert main(["topology", str(f)]) == 2
    err = capsys.readouterr().err
    assert str(f) in err or "g.edgelist" in err


def test_cli_topology_json(capsys):
    """Catches `surf-dist topology SPEC --workers N --json` missing the facts docs/guide.md promises."""
    assert main(["topology", "kregular:n=100,degree=3", "--workers", "4", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["num_agents"] == 100
    for key in ("num_edges", "degree", "spectral_gap", "placement", "cut_edges", "traffic_per_round"):
        assert key in d


def test_resume_with_other_config_is_refused(tmp_path):
    """Catches a run directory silently mixing two different runs."""
    from surf_dist.runtime.launch import _check_run_dir

    cfg = load_config("smoke")
    save_config(cfg, tmp_path / "config.json")
    _check_run_dir(load_config("smoke", None, ["failures.kill=0@1"]), tmp_path)  # how it runs may change
    with pytest.raises(InputError, match="model.num_layers"):
        _check_run_dir(load_config("smoke", None, ["model.num_layers=2"]), tmp_path)


def test_cli_missing_dataset_exits_2_with_the_install_hint_before_any_worker(capsys, tmp_path):
    """Catches a missing Fashion-MNIST surfacing inside a worker (a traceback, exit 1) instead of exit 2."""
    for backend in ("local", "torch"):
        out = tmp_path / backend
        args = ["train", "--preset", "fashion", "--backend", backend, "--set", f"data.root={tmp_path / 'none'}"]
        code = main([*args, *(["--workers", "2"] if backend == "torch" else []), "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2, err
        assert "train-images-idx3-ubyte" in err and "apt-get install dataset-fashion-mnist" in err
        assert "Traceback" not in err and not out.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["tune-baselines", "--grid", "a,b"], "--grid 'a,b': expected comma-separated numbers"),
        (["sweep-alpha", "--run", "RUN", "--alphas", "1,x"], "--alphas '1,x': expected comma-separated numbers"),
        (["sweep-alpha", "--run", "RUN", "--alphas", "1", "--out", "MISSING/a.json"], "is not a directory"),
        (["sweep-async", "--run", "RUN", "--counts", "0", "--out", "TMP"], "is a directory"),
        (["sweep", "--run", "RUN", "--key", "seed", "--values", "1", "--out", "MISSING/s.json"], "is not a directory"),
        (["evaluate", "--run", "RUN", "--out", "MISSING/e.json"], "is not a directory"),
    ],
)
def test_cli_bad_numbers_and_out_files_exit_2_before_any_work(capsys, tmp_path, args, message):
    """Catches a bad --grid ending in a ValueError traceback, or an --out file in a missing folder found only
    when a long sweep or re-evaluation writes its result (a traceback after the work)."""
    places = {"RUN": str(tmp_path / "run"), "TMP": str(tmp_path), "MISSING": str(tmp_path / "missing")}
    argv = [next((a.replace(k, v) for k, v in places.items() if a.startswith(k)), a) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
