"""Process kills under Ray (nothing is lost: a killed run resumes from its last checkpoint).

Actor 1 SIGKILLs itself at step 5 (``failures.kill = ["1@5"]``); the driver must see the dead actor,
kill the survivor (blocked in a collective with its dead peer), start two fresh actors and resume from
the checkpoint of step 4. The run must end with the parameters of a run that was never killed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from _ray_support import local_summary, ray_config

from surf_dist.analysis.compare import compare_runs
from surf_dist.errors import RunFailed
from surf_dist.runtime.ray_driver import run_ray

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.usefixtures("ray_session")]

# 3 tasks × 2 epochs = 6 steps; checkpoints after steps 2, 3 (validation), 4 and 6
SIX_STEPS = ["data.num_meta_train=3", "train.epochs=2", "train.checkpoint_every=2"]


@pytest.mark.timeout(300)
def test_killed_actor_restarts_from_checkpoint(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Catches a driver that hangs on, or gives up after, a SIGKILLed actor, a restart that does not resume
    from the last checkpoint (step 4) or ends with other parameters, or a kill that fires twice."""
    # Prepare
    cfg = ray_config(2, [*SIX_STEPS, 'failures.kill=["1@5"]', "failures.max_restarts=2"])
    local_summary(SIX_STEPS, tmp_path / "local")

    # Execute
    summary = run_ray(cfg, tmp_path / "run", progress=False)

    # Assert
    assert summary is not None
    kills = summary["failures"]["injected"]["kills"]
    assert [(k["worker"], k["step"]) for k in kills] == [(1, 5)], kills
    event = r"Ray actor 1 died \(\w+\) at step 5; restarting every worker from the checkpoint of step 4"
    assert re.search(event, capfd.readouterr().err)
    written = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert written["failures"]["injected"]["kills"] == kills
    # the coordinator logged steps 0-4, died with actor 1 at the start of step 5, resumed at checkpoint 4 and
    # cut the file back to it: one row per step
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [0, 1, 2, 3, 4, 5]
    assert summary["timing"]["attempts"] == 2
    report, mismatches = compare_runs(tmp_path / "run", tmp_path / "local")
    assert not mismatches, "\n".join(report)


@pytest.mark.timeout(120)
def test_gives_up_after_max_restarts(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Catches a driver that restarts forever, or hangs, once failures.max_restarts is spent."""
    # Prepare: a kill with no restart allowed
    cfg = ray_config(2, ['failures.kill=["1@1"]', "failures.max_restarts=0"])

    # Execute / Assert
    with pytest.raises(RunFailed, match=r"failed 1 time"):
        run_ray(cfg, tmp_path / "run", progress=False)
    assert "Ray actor 1 died" in capfd.readouterr().err
    assert (tmp_path / "run" / "failures" / "kill-1@1.json").exists()
