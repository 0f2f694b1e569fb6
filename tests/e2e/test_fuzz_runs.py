"""Fuzzed input run for real (issue 21): 24 accepted cases, drawn deterministically from small values of real
settings (specs, a graph file, the model, training, failures, the network, the methods), each a tiny
``surf-dist train --preset smoke`` as a subprocess, half on the local backend and half on two forked torch ranks.
An accepted config must run (exit 0) or be refused cleanly (exit 2, one message); never a traceback, never
exit 1. ``tests/unit/test_fuzz_input.py`` puts 1,000 cases through the checks alone."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from _processes import clean_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surf_dist.api import make_config
from surf_dist.errors import InputError

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NUM_RUNS = 24  # the first 12 accepted cases on local, the next 12 on torch with 2 workers
TINY = [  # last, so they win: one step, one task each, few rounds
    "train.epochs=1",
    "data.num_meta_train=1",
    "data.num_meta_val=1",
    "data.num_meta_test=1",
    "eval.rounds_factor=1",
    "train.checkpoint_every=1",
]
RING_FILE = "ring8.edges"
SMALL = {
    "topology.spec": [
        "ring:n=6",
        "kregular:n=8,degree=3",
        "kregular:n=8,degree=4,mode=random",
        "torus:rows=2,cols=3",
        "star:n=5",
        "complete:n=5",
        "small_world:n=8,k=4,p=0.3",
        "random:n=8,p=0.7",
        "exponential:n=8",
        "directed_ring:n=4",
        RING_FILE,
    ],
    "topology.normalisation": ["row", "spectral", "metropolis", "column"],
    "topology.placement": ["contiguous", "mincut"],
    "topology.transpose": ["true", "false"],
    "topology.per_task": ["true", "false"],
    "topology.dynamic": ["static", "resample", "link-failure", "exponential-one-peer"],
    "topology.link_failure_p": ["0", "0.3"],
    "topology.link_repair": ["renormalise", "self"],
    "model.num_layers": ["1", "2", "3"],
    "model.num_hops": ["0", "1", "2"],
    "model.batch_size": ["1", "3"],
    "model.hidden": ["[]", "[4]", "3,2"],
    "model.output": ["relu", "linear"],
    "model.normalisation": ["none", "agent-batch"],
    "model.init": ["default", "paper"],
    "model.tap_init": ["average", "paper"],
    "model.dropout": ["0", "0.5"],
    "model.w0_std": ["0", "1", "5.0"],
    "model.dtype": ["float32", "float64"],
    "model.variant": ["decentralized", "star"],
    "model.recompute": ["auto", "on", "off"],
    "train.lr": ["1e-3", "0.1"],
    "train.weight_decay": ["0", "0.01"],
    "train.dual_lr": ["0", "1"],
    "train.epsilon": ["0", "0.5"],
    "train.constrained": ["true", "false"],
    "train.constraint_form": ["ratio", "difference"],
    "train.grad_clip": ["0", "1"],
    "train.keep_best": ["true", "false"],
    "eval.baselines": ['["dgd"]', "pushsum,local", '["gt","choco"]', "[]", '["fedavg"]'],
    "eval.split": ["meta-test", "meta-val"],
    "eval.batch_tasks": ["0", "1"],
    "eval.dgd_step": ["0.3", "3"],
    "failures.num_async": ["0", "1", "2"],
    "failures.async_rate": ["0", "0.2"],
    "failures.async_correlation": ["0", "1"],
    "failures.semantics": ["zero", "stale"],
    "failures.in_training": ["true", "false"],
    "network.latency_ms": ["0", "2"],
    "network.compute_ms": ["0", "1.5"],
    "network.deadline_ms": ["0", "3"],
    "network.link_spread": ["0", "0.5"],
    "network.jitter": ["0", "0.2"],
    "data.partition": ["iid", "dirichlet", "shards"],
    "data.alpha": ["0.1", "5"],
    "data.num_train": ["5", "12"],
    "data.num_heldout": ["3"],
    "data.augmentations": ['["none","hflip"]', "rot90"],
    "seed": ["0", "3", "12345678901234567890"],
}


@st.composite
def _small_sets(draw: st.DrawFn) -> list[str]:
    names = draw(st.lists(st.sampled_from(sorted(SMALL)), min_size=1, max_size=4, unique=True))
    return [f"{name}={draw(st.sampled_from(SMALL[name]))}" for name in names]


def _accepted_cases(folder: Path) -> list[list[str]]:
    """The first ``NUM_RUNS`` accepted override lists of a derandomized draw (the same on every run)."""
    cases: list[list[str]] = []

    @settings(max_examples=400, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(sets=_small_sets())
    def collect(sets: list[str]) -> None:
        sets = [s.replace(RING_FILE, str(folder / RING_FILE)) for s in sets]
        if len(cases) >= NUM_RUNS or any(sets == c[: len(sets)] for c in cases):
            return
        backend = ["--backend", "torch", "--workers", "2"] if len(cases) >= NUM_RUNS // 2 else []
        try:
            make_config(
                "smoke", None, [*sets, *TINY], backend="torch" if backend else None, workers=2 if backend else None
            )
        except InputError:
            return
        cases.append([*sets, *TINY])

    collect()
    return cases


def _train(folder: Path, index: int, sets: list[str]) -> tuple[list[str], subprocess.CompletedProcess[str]]:
    backend = ["--backend", "torch", "--workers", "2"] if index >= NUM_RUNS // 2 else []
    args = ["train", "--preset", "smoke", "--quiet", *backend, "--out", str(folder / f"run-{index}")]
    for item in sets:
        args += ["--set", item]
    command = [sys.executable, "-m", "surf_dist", *args]
    done = subprocess.run(command, cwd=folder, env=clean_env(), capture_output=True, text=True, timeout=150)
    return args, done


@pytest.mark.timeout(420)
def test_accepted_fuzzed_configs_run_or_exit_2_cleanly() -> None:
    """Catches a config the checks accept that the workers then fail on (a traceback, exit 1): a setting
    combination validation lets through that no backend can run, on local and on torch ranks."""
    folder = Path(tempfile.mkdtemp(prefix="surf-dist-fuzz-runs-"))
    (folder / RING_FILE).write_text("".join(f"{i} {(i + 1) % 8}\n" for i in range(8)))
    cases = _accepted_cases(folder)
    assert len(cases) == NUM_RUNS, f"only {len(cases)} accepted cases drawn"
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda ic: _train(folder, *ic), enumerate(cases)))
    failures = []
    for args, done in results:
        clean_refusal = done.returncode == 2 and "bad input" in done.stderr
        if (done.returncode != 0 and not clean_refusal) or "Traceback" in done.stderr:
            failures.append(f"surf-dist {' '.join(args)}: exit {done.returncode}\n{done.stderr[-3000:]}")
    assert not failures, "\n\n".join(failures)
