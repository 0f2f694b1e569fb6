"""Atomic checkpoints and the failure schedules."""

from __future__ import annotations

import os

import pytest
import torch

from surf_dist.config import FailureConfig
from surf_dist.rundir.atomic import write_atomic, write_json_atomic, write_text_atomic
from surf_dist.worker import checkpoint
from surf_dist.worker.failures import KillInjector, kills_fired
from surf_dist.worker.silent import SilentSchedule


def _state(step):
    return {
        "step": step,
        "model": {"w": torch.ones(3) * step},
        "optimizer": {},
        "duals": torch.zeros(2),
        "history": {},
        "config": {},
    }


def test_atomic_writes_replace_whole_files_with_the_umask_mode(tmp_path):
    """Catches atomic writes leaving mkstemp's 0600 mode (a run directory other users cannot read) or temp
    files behind, or a failed write touching the old file."""
    old = os.umask(0o027)
    try:
        path = write_json_atomic(tmp_path / "summary.json", {"a": 1})
        assert path.read_text() == '{\n  "a": 1\n}\n'
        assert path.stat().st_mode & 0o777 == 0o640
        os.umask(0o022)
        write_text_atomic(path, "new\n")
        assert path.read_text() == "new\n" and path.stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(old)

    def fail(_fh):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, fail)
    assert path.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_checkpoint_round_trip_and_previous_kept(tmp_path):
    """Catches a checkpoint that does not load back, or a save that drops the previous good one."""
    checkpoint.save(_state(1), tmp_path)
    checkpoint.save(_state(2), tmp_path)
    assert checkpoint.load(tmp_path)["step"] == 2
    assert (tmp_path / checkpoint.PREVIOUS).exists()


def test_corrupt_checkpoint_falls_back_to_previous(tmp_path, capsys):
    """Catches a torn or corrupt newest checkpoint being used (or crashing the resume)."""
    checkpoint.save(_state(1), tmp_path)
    checkpoint.save(_state(2), tmp_path)
    data = (tmp_path / checkpoint.NAME).read_bytes()
    (tmp_path / checkpoint.NAME).write_bytes(data[: len(data) // 2])
    assert checkpoint.load(tmp_path)["step"] == 1
    assert "unusable" in capsys.readouterr().err


def test_kill_during_write_leaves_last_checkpoint(tmp_path):
    """Catches a writer that overwrites in place, so a crash mid-write loses the only checkpoint."""
    checkpoint.save(_state(1), tmp_path)
    pid = os.fork()
    if pid == 0:  # child: die in the middle of writing the temp file
        real_save = torch.save

        def dying_save(obj, fh):
            real_save(obj, fh)
            fh.flush()
            os._exit(9)

        torch.save = dying_save
        checkpoint.save(_state(2), tmp_path)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 9
    assert checkpoint.load(tmp_path)["step"] == 1


def full_masks(schedule: SilentSchedule, phase: str, step: int, num_layers: int) -> list[torch.Tensor]:
    """The silent sets of one pass as n-long masks (every agent asked)."""
    agents = torch.arange(schedule.num_agents)
    return [s.mask(agents) for s in schedule.layers(phase, step, num_layers)]


def test_silent_masks_by_count_are_keyed_and_exact():
    """Catches silent sets that differ between workers or do not have num_async members."""
    sched = SilentSchedule(FailureConfig(num_async=3), seed=4, num_agents=20)
    a, b = full_masks(sched, "train", 5, 4), full_masks(sched, "train", 5, 4)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert all(int(m.sum()) == 3 for m in a)
    assert not torch.equal(a[0], full_masks(sched, "train", 6, 4)[0])


def test_silent_masks_correlated_rate_and_trace(tmp_path):
    """Catches a correlation knob that does nothing, or a trace file that is ignored."""
    low = full_masks(SilentSchedule(FailureConfig(async_rate=0.1), seed=0, num_agents=400), "train", 0, 6)
    correlated = SilentSchedule(FailureConfig(async_rate=0.1, async_correlation=0.9), seed=0, num_agents=400)
    high = full_masks(correlated, "train", 0, 6)

    def stay(masks):
        return sum(int((m0 & m1).sum()) for m0, m1 in zip(masks, masks[1:])) / max(
            1, sum(int(m.sum()) for m in masks[:-1])
        )

    assert stay(high) > 3 * stay(low)
    trace = tmp_path / "t.csv"
    trace.write_text("step,layer,agent\n2,1,5\n2,1,7\n")
    masks = full_masks(SilentSchedule(FailureConfig(trace=str(trace)), seed=0, num_agents=10), "train", 2, 2)
    assert masks[0].nonzero().flatten().tolist() == [5, 7] and not masks[1].any()


def test_kill_injector_never_fires_twice(tmp_path):
    """Catches a kill that fires again after the restart (the run would never finish)."""
    inj = KillInjector(FailureConfig(kill=("0@3",)), seed=0, num_workers=2, run_dir=tmp_path)
    pid = os.fork()
    if pid == 0:
        inj.maybe_kill(0, 3)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == -9
    inj.maybe_kill(0, 3)  # the marker is there: returns instead of killing this test process
    assert kills_fired(tmp_path) == [{"worker": 0, "step": 3, "pid": pid, "signal": "SIGKILL"}]


def test_random_kills_follow_the_mean_time_between_failures():
    """Catches an MTBF injector that never fires, fires at another rate, or differs between workers."""
    inj = KillInjector(FailureConfig(kill_mtbf_steps=4.0), seed=1, num_workers=3, run_dir=None)
    victims = [inj._victim(step) for step in range(400)]
    assert victims == [KillInjector(FailureConfig(kill_mtbf_steps=4.0), seed=1, num_workers=3, run_dir=None)._victim(s)
                       for s in range(400)]  # fmt: skip
    fired = [v for v in victims if v is not None]
    assert 70 <= len(fired) <= 130 and set(fired) == {0, 1, 2}
