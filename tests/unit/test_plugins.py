"""Registries and plugins (``run.plugins``): a plugin's names validate and run like built-ins; a plugin that
cannot be imported, an unknown name and a bad setting each end in exit 2 naming the file, the field and the fix."""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import pytest

import surf_dist
from surf_dist.cli import main
from surf_dist.config import load_config
from surf_dist.errors import InputError
from surf_dist.plugins import TOPOLOGIES, load_plugins
from surf_dist.plugins.registry import Registry

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FAST = ["data.num_meta_train=2", "data.num_meta_val=1", "data.num_meta_test=1", "eval.rounds_factor=2"]


def _copy(name: str, where: Path) -> str:
    """An example plugin copied outside the checkout: it must work wherever it lives."""
    target = where / name
    shutil.copy(EXAMPLES / name, target)
    return str(target)


def test_registry_refuses_a_taken_name_but_not_a_reimport() -> None:
    """Catches a plugin silently replacing a built-in, or a file imported twice failing on its own names."""
    # Prepare
    registry: Registry[object] = Registry("thing", setting="x.thing", section="x", builtins="surf_dist.plugins")

    class A:
        pass

    class B:
        pass

    registry.register("a", A)
    # Execute / Assert
    registry.register("a", A)  # the same object again: a no-op
    with pytest.raises(ValueError, match="already registered"):
        registry.register("a", B)
    assert registry.unknown("zz").startswith("x.thing = 'zz': unknown thing; registered: a")
    with pytest.raises(ValueError, match="letters"):
        registry.register("not a name", B)


def test_unknown_method_lists_the_registered_ones(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Catches an unknown baseline name accepted, or refused without the names that would work."""
    code = main(["train", "--preset", "smoke", "--set", 'eval.baselines=["nope"]', "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2
    assert "eval.baselines = 'nope': unknown baseline; registered: " in err
    for name in ("dgd", "dsgd", "dfedavgm"):
        assert name in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def broken(:\n    pass\n", "SyntaxError"),
        ("import surf_dist\nraise RuntimeError('the plugin is broken')\n", "RuntimeError: the plugin is broken"),
        ("import a_module_that_does_not_exist\n", "No module named 'a_module_that_does_not_exist'"),
    ],
)
def test_a_plugin_that_fails_to_import_is_exit_2_naming_file_error_and_line(
    source: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Catches a broken plugin ending in a traceback (exit 1) or in a message without its file and error."""
    plugin = tmp_path / "broken_plugin.py"
    plugin.write_text(source)
    code = main(["train", "--preset", "smoke", "--set", f'run.plugins=["{plugin}"]', "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"run.plugins: {plugin}: could not import it" in err and expected in err
    assert "broken_plugin.py, line" in err


def test_a_missing_plugin_file_or_module_is_exit_2() -> None:
    """Catches a plugin path or module name that does not exist passing validation."""
    problems = load_plugins(["no/such/plugin.py", "no_such_plugin_module"])
    assert len(problems) == 2
    assert "no/such/plugin.py: file not found" in problems[0]
    assert "no module named 'no_such_plugin_module'" in problems[1]


def test_a_plugin_method_validates_its_settings_like_a_builtin(tmp_path: Path) -> None:
    """Catches a plugin's settings that are not checked (range, unknown name) or not resolved into the config."""
    plugin = _copy("plugin_heavy_ball.py", tmp_path)
    base = [f'run.plugins=["{plugin}"]', 'eval.baselines=["dgd","heavy_ball_dgd"]']
    cfg = load_config("smoke", None, [*base, "eval.heavy_ball_dgd_momentum=0.7"])
    assert cfg.eval.params["heavy_ball_dgd"] == {"step": 0.3, "momentum": 0.7}  # resolved in full: config.json has it
    with pytest.raises(InputError) as bad:
        load_config("smoke", None, [*base, "eval.heavy_ball_dgd_momentum=1.5", "eval.heavy_ball_dgd_stepp=1"])
    text = str(bad.value)
    assert "eval.heavy_ball_dgd_momentum = 1.5: must be ≥ 0 and < 1" in text
    assert "unknown setting eval.heavy_ball_dgd_stepp (did you mean eval.heavy_ball_dgd_step?)" in text


def test_a_plugin_method_with_state_runs_and_differs_from_dgd(tmp_path: Path) -> None:
    """Catches a plugin baseline that does not run, whose state is dropped (it would equal DGD), or whose traffic
    is not counted like DGD's (one exchange of D floats a round)."""
    plugin = _copy("plugin_heavy_ball.py", tmp_path)
    run = surf_dist.train(
        tmp_path / "run",
        preset="smoke",
        plugins=[plugin],
        overrides=[*FAST, 'eval.baselines=["dgd","heavy_ball_dgd"]'],
    )
    heavy, dgd = run.eval.baselines["heavy_ball_dgd"], run.eval.baselines["dgd"]
    assert heavy.rounds == dgd.rounds and heavy.accuracy[0] == dgd.accuracy[0]  # the same W_0
    assert heavy.accuracy != dgd.accuracy  # the momentum acts
    assert heavy.agent_bytes == dgd.agent_bytes  # the same messages: one round of D floats
    assert run.config.run.plugins == (plugin,)


def test_a_dataset_from_arrays_with_four_classes(tmp_path: Path) -> None:
    """Catches datasets hard-wired to 10 classes, or array datasets that cannot reach the workers."""
    plugin = _copy("dataset_from_arrays.py", tmp_path)
    run = surf_dist.train(
        tmp_path / "run",
        preset="smoke",
        plugins=[plugin],
        overrides=[*FAST, "data.dataset=blobs", "data.blobs_spread=0.5"],
    )
    d = (16 + 1) * 4  # D = (P + 1)·C
    assert run.summary is not None and run.summary.comm["analytic_per_udgd_forward"]["floats_per_message"] == d
    assert run.eval.udgd.accuracy_per_layer[-1] > 0.5  # four well separated blobs are learnt
    with pytest.raises(InputError, match="data.features = 'cnn': data.dataset = 'blobs' gives features"):
        surf_dist.train(
            tmp_path / "bad", preset="smoke", plugins=[plugin], overrides=["data.dataset=blobs", "data.features=cnn"]
        )


def test_another_local_network(tmp_path: Path) -> None:
    """Catches U-DGD's local network hard-wired: the plugin's parameters must be the ones trained."""
    plugin = _copy("local_mlp.py", tmp_path)
    run = surf_dist.train(
        tmp_path / "run",
        preset="smoke",
        plugins=[plugin],
        overrides=[*FAST, "model.local_update=mlp2", "model.mlp2_width=8", "eval.baselines=[]"],
    )
    assert run.summary is not None
    names = set(run.summary.train.final_param_norms)
    assert {"updates.0.hidden.weight", "updates.0.scale"} <= names and "updates.0.linears.0.weight" not in names


def test_a_topology_plugin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Catches graph generators that only built-ins can add."""
    plugin = tmp_path / "barbell_plugin.py"
    plugin.write_text(
        textwrap.dedent(
            '''
            from typing import Annotated

            import numpy as np

            import surf_dist


            @surf_dist.register_topology("barbell")
            def barbell(*, rng, m: Annotated[int, surf_dist.Key("agents per bell", low=2)] = 3):
                """Two cliques of m agents joined by one edge."""
                u, v = np.triu_indices(m, k=1)
                us = np.concatenate([u, u + m, [m - 1]])
                vs = np.concatenate([v, v + m, [m]])
                return 2 * m, us, vs
            '''
        )
    )
    cfg = load_config("smoke", None, [f'run.plugins=["{plugin}"]', "topology.spec=barbell:m=4"])
    assert cfg.topology.spec == "barbell:m=4"
    assert main(["topology", "barbell:m=4", "--plugin", str(plugin)]) == 0
    assert re.search(r"agents\s+8\s+edges 13", capsys.readouterr().out)
    with pytest.raises(InputError, match="m='1' is out of range"):
        load_config("smoke", None, [f'run.plugins=["{plugin}"]', "topology.spec=barbell:m=1"])
    assert "barbell" in TOPOLOGIES.names()
