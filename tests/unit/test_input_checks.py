"""Input checked before any process starts: every number's range, impossible graphs, the dataset files, the
run directory, the command line's own arguments, and the backend under torchrun. Each ends with exit 2 and one
message naming the field or file and the fix, never a traceback or a retried worker."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import typing
from pathlib import Path

import pytest

from surf_dist.api import make_config
from surf_dist.cli import main
from surf_dist.config import Config, load_config
from surf_dist.errors import InputError
from surf_dist.graph import build_graph
from surf_dist.worker.metrics import read_rows, truncate

TORCH_2 = ["--backend", "torch", "--workers", "2"]


def _numeric_fields() -> list[tuple[str, type]]:
    """``section.name`` and type of every int and float field of the config, except the seed (any int)."""
    out = []
    for section in dataclasses.fields(Config):
        hints = typing.get_type_hints(Config)
        if not dataclasses.is_dataclass(hints[section.name]):
            continue
        field_types = typing.get_type_hints(hints[section.name])
        out += [(f"{section.name}.{name}", tp) for name, tp in field_types.items() if tp in (int, float)]
    return out


@pytest.mark.parametrize(("name", "tp"), _numeric_fields(), ids=[n for n, _ in _numeric_fields()])
def test_every_number_out_of_range_is_refused(name: str, tp: type) -> None:
    """Catches a numeric setting accepted out of its range (a negative count, a NaN), found only by the
    workers as a traceback, retried, or never."""
    for bad in ("-4", "nan", "inf") if tp is float else ("-4",):
        with pytest.raises(InputError) as exc:
            load_config("smoke", None, [f"{name}={bad}"])
        assert any(name in p for p in exc.value.problems), (bad, exc.value.problems)


def test_the_reported_values_exit_2_before_any_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Catches the issue's values (max_restarts=-1, kill_mtbf_steps=-3, threads_per_worker=-4,
    ray_cpus_per_worker=-1, a 3-regular graph on 5 agents) getting past the command line."""
    sets = [
        "failures.max_restarts=-1",
        "failures.kill_mtbf_steps=-3",
        "run.threads_per_worker=-4",
        "run.ray_cpus_per_worker=-1",
        "topology.spec=kregular:n=5,degree=3",
    ]
    code = main(
        ["train", "--preset", "smoke", *TORCH_2, "--out", str(tmp_path / "r"), *(a for s in sets for a in ("--set", s))]
    )
    err = capsys.readouterr().err
    assert code == 2
    for needle in ("max_restarts", "kill_mtbf_steps", "threads_per_worker", "ray_cpus_per_worker", "n*degree"):
        assert needle in err, needle
    assert "Traceback" not in err and not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "spec", ["kregular:n=5,degree=3", "kregular:n=7,degree=5", "kregular:n=9,degree=3,mode=random"]
)
def test_regular_graph_that_cannot_exist_is_refused(spec: str) -> None:
    """Catches a k-regular spec with n·k odd (no such graph) running on a graph of other degrees."""
    with pytest.raises(InputError, match=r"n\*degree"):
        build_graph(spec, seed=0, index=0)


def test_missing_dataset_files_exit_2_before_any_worker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Catches missing Fashion-MNIST files found by every forked rank (four attempts, eight tracebacks)
    instead of once, up front."""
    empty = tmp_path / "data"
    empty.mkdir()
    out = tmp_path / "r"
    sets = ["--set", "data.dataset=fashion-mnist", "--set", f"data.root={empty}"]
    code = main(["train", "--preset", "smoke", *TORCH_2, *sets, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("not found") == 4 and "t10k-labels-idx1-ubyte" in err and "data.download=true" in err
    assert "Traceback" not in err and "restarting" not in err and not out.exists()


def _read_only_dir(tmp_path: Path) -> Path:
    """A directory this process cannot write into, as root too (chattr +i), else a read-only system one."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if not os.access(ro, os.W_OK) and os.geteuid() != 0:
        return ro
    if subprocess.run(["chattr", "+i", str(ro)], capture_output=True).returncode == 0:
        return ro
    return Path("/sys/kernel")  # sysfs: no file can be made there, by anyone


@pytest.mark.parametrize("case", ["file", "under-a-file", "read-only"])
def test_bad_out_directory_exits_2(tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Catches an --out that is a file, lies under a file or is read-only ending in raw tracebacks (or four
    attempts of OSError on the torch backend) instead of exit 2 naming --out."""
    (tmp_path / "f").write_text("x")
    out = {"file": tmp_path / "f", "under-a-file": tmp_path / "f" / "run", "read-only": None}[case]
    ro = _read_only_dir(tmp_path) if out is None else None
    try:
        code = main(["train", "--preset", "smoke", *TORCH_2, "--out", str(out or ro)])
    finally:
        if ro is not None and ro.is_relative_to(tmp_path):
            subprocess.run(["chattr", "-i", str(ro)], capture_output=True)
            ro.chmod(0o755)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "--out" in err and "fix:" in err and "Traceback" not in err and "restarting" not in err


def test_sweep_async_bad_counts_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Catches `sweep-async --counts 0,a` ending in a ValueError traceback."""
    assert main(["sweep-async", "--run", str(tmp_path), "--counts", "0,a"]) == 2
    err = capsys.readouterr().err
    assert "--counts '0,a'" in err and "not integers: a" in err
    assert "Traceback" not in err


def test_under_torchrun_train_is_a_torch_rank(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Catches `torchrun ... -m surf_dist train` without --backend running one local job per rank."""
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    cfg = make_config("smoke")
    assert (cfg.run.backend, cfg.run.workers) == ("torch", 2)


@pytest.mark.parametrize("how", [["--backend", "local"], ["--set", "run.backend=ray"]])
def test_under_torchrun_another_backend_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], how: list[str]
) -> None:
    """Catches a config that asks for another backend under torchrun running N copies of the job."""
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", "--preset", "smoke", *how, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "under torchrun" in err and "(rank 1 of 2)" in err and not (tmp_path / "r").exists()


def test_metrics_truncate_keeps_one_row_per_step(tmp_path: Path) -> None:
    """Catches a resume that keeps the rows of steps it is about to do again, or chokes on a torn last line."""
    path = tmp_path / "metrics.jsonl"
    rows = [0, 1, 2, 3, 2, 3, 4]  # an old file with repeated steps
    path.write_text("".join(f'{{"step": {s}, "seconds": 1.0}}\n' for s in rows) + '{"step": 5, "sec')
    dropped = truncate(path, 3)
    assert [r["step"] for r in read_rows(path)] == [0, 1, 2]
    assert sorted(r["step"] for r in dropped) == [3, 3, 4]
