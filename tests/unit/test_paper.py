"""The fashion job's data set-up and the tools behind the paper's figures: the held-out meta-val pool,
evaluation on meta-val, baseline tuning, and the missing-dataset message."""

from __future__ import annotations

import numpy as np
import pytest

from surf_dist.analysis.tune import format_tuning, tune_baselines
from surf_dist.config import load_config
from surf_dist.data.datasets import check_files, load_split
from surf_dist.data.tasks import DataSpec, TaskSource, val_pool_split, validate_data_spec
from surf_dist.errors import InputError


def test_val_pool_split_is_fixed_stratified_and_disjoint() -> None:
    """Catches meta-val images leaking into meta-training, an unbalanced pool, or a pool that moves."""
    labels_N = np.repeat(np.arange(10), 60)
    train_N, val_N = val_pool_split(labels_N, 1 / 6)
    assert np.intersect1d(train_N, val_N).size == 0 and train_N.size + val_N.size == labels_N.size
    assert np.bincount(labels_N[val_N]).tolist() == [10] * 10
    again_train, again_val = val_pool_split(labels_N, 1 / 6)
    assert np.array_equal(train_N, again_train) and np.array_equal(val_N, again_val)


def test_meta_val_tasks_draw_only_from_the_held_out_pool() -> None:
    """Catches meta-validation on images that meta-training also sees (what digits' default does)."""
    spec = DataSpec(partition="iid", val_fraction=0.25)
    source = TaskSource(spec, seed=3, num_agents=6)
    train_pool, val_pool = val_pool_split(load_split("digits", "train").labels.numpy(), 0.25)
    for index in range(3):
        assert np.isin(source.partition("meta-val", index), val_pool).all()
        assert np.isin(source.partition("meta-train", index), train_pool).all()
    assert source.pool("meta-test") is None
    assert TaskSource(DataSpec(partition="iid"), seed=3, num_agents=6).pool("meta-val") is None


def test_val_fraction_is_validated() -> None:
    """Catches a held-out share of 1 (no meta-train images) or a negative one passing validation."""
    for bad in (1.0, -0.1, "half"):
        problems = validate_data_spec(DataSpec(val_fraction=bad))  # type: ignore[arg-type]
        assert len(problems) == 1 and problems[0].startswith("data.val_fraction")


def test_missing_fashion_mnist_names_every_file_and_the_debian_package(tmp_path) -> None:
    """Catches a missing-data message without the install hint (or with it for a dataset Debian lacks)."""
    with pytest.raises(InputError) as info:
        check_files("fashion-mnist", root=str(tmp_path))
    assert len(info.value.problems) == 4
    assert all("apt-get install dataset-fashion-mnist" in p and "data.root" in p for p in info.value.problems)
    with pytest.raises(InputError) as info:
        check_files("mnist", root=str(tmp_path))
    assert "apt-get" not in str(info.value)


def test_tune_baselines_picks_the_best_step_on_meta_val(monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches tuning that looks at meta-test tasks, a choice that is not the best of the grid, or an edge flag
    that is wrong either way (a best step inside the grid flagged, or one at its edge not)."""
    from surf_dist.worker.trainer import Trainer

    # Prepare: 3 meta-val tasks against 2 meta-test ones, so that the tasks tuned on can be told apart
    seen: list[str] = []
    prepare = Trainer.prepare
    monkeypatch.setattr(Trainer, "prepare", lambda self, split, i: seen.append(split) or prepare(self, split, i))
    cfg = load_config("smoke", None, ["eval.rounds_factor=2", "data.num_meta_val=3", "data.num_meta_test=2"])
    grid = (0.001, 0.3, 100.0)  # too small to move, about right, divergent

    # Execute
    result = tune_baselines(cfg, grid, progress=False)

    # Assert
    assert set(seen) == {"meta-val"} and result["num_tasks"] == 3 and result["rounds"] == [6, 12]
    for name, rows in result["accuracy"].items():
        tried, best = result["tried"][name], result["best"][name]
        assert len(rows) == len(tried) and rows[tried.index(best)][1] == max(r[1] for r in rows)
        assert {c["step"] for c in tried} == set(grid)  # every method gets the step grid
        edge = any(v in (min(vs), max(vs)) for k, v in best.items() for vs in [{c[k] for c in tried}] if len(vs) > 2)
        assert (name in result["at_edge"]) == edge
        assert all(f"eval.{name}_{k}={v:g}" in result["settings"] for k, v in best.items())
    assert {k for c in result["tried"]["dfedavgm"] for k in c} == {"step", "momentum"}  # its own constant too
    assert len(result["tried"]["dfedavgm"]) == 3 * len(grid) and len(result["tried"]["dgd"]) == len(grid)
    assert any(best["step"] == 0.3 for best in result["best"].values()), "the grid's middle step should win somewhere"
    assert "--set eval.dgd_step=" in format_tuning(result)


@pytest.mark.parametrize("split", ["meta-val", "meta-test"])
def test_evaluate_split_uses_that_splits_tasks(split: str) -> None:
    """Catches eval.split=meta-val evaluating meta-test tasks (tuning that looks at the result)."""
    from surf_dist.comm.local import LocalMixer
    from surf_dist.worker.evaluate import evaluate
    from surf_dist.worker.problem import Problem
    from surf_dist.worker.trainer import Trainer

    cfg = load_config("smoke", None, [f"eval.split={split}", "data.num_meta_val=3", "eval.baselines=[]"])
    problem = Problem(cfg)
    seen = []
    trainer = Trainer(cfg, LocalMixer(problem.num_agents), problem)
    prepare = trainer.prepare
    trainer.prepare = lambda s, i: seen.append(s) or prepare(s, i)  # type: ignore[method-assign]
    ev = evaluate(trainer, trainer.model)
    assert set(seen) == {split} and ev.split == split
    assert ev.num_tasks == (3 if split == "meta-val" else cfg.data.num_meta_test)
