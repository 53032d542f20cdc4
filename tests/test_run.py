"""The run layer's small pieces: the ETA and the checkpoint schema every run shares."""

import pytest

from metarl.config import TrainConfig
from metarl.run import checkpoint_state
from metarl.run_loop import ETA
from metarl.version import __version__


def test_eta_is_the_recent_mean_iteration_time_times_what_is_left():
    eta = ETA(total=10, window=2)
    assert eta.after(1, 4.0) == pytest.approx(4.0 * 9)
    assert eta.after(2, 2.0) == pytest.approx(3.0 * 8)  # mean of 4 and 2
    assert eta.after(3, 6.0) == pytest.approx(4.0 * 7)  # the window dropped the 4: mean of 2 and 6
    assert eta.after(10, 1.0) == 0.0


def test_every_checkpoint_carries_iteration_time_config_and_version():
    state = checkpoint_state(TrainConfig(seed=3), 7, 12.5, policy={"w": 1})
    assert state["policy"] == {"w": 1} and state["iteration"] == 7 and state["wall_time_s"] == 12.5
    assert state["config"]["seed"] == 3 and state["config"]["trpo"]["max_kl"] == 0.01
    assert state["metarl_version"] == __version__
