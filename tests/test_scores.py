"""The task scores and early stops on constructed streams of rewards and distances (no environment)."""

from __future__ import annotations

import numpy as np
import pytest

from agents.evaluation.scores import (
    ANT_BACKWARD_STREAK,
    ANT_GRACE_STEPS,
    CAR_NEGATIVE_STREAK,
    RETURN,
    EpisodeScores,
    StreakStop,
    TaskScore,
    discard_diverged,
    stop_step,
    task_score,
)

CAR, ANT = task_score("car"), task_score("ant")


def test_the_papers_numbers():
    assert (CAR_NEGATIVE_STREAK, ANT_GRACE_STEPS, ANT_BACKWARD_STREAK) == (20, 200, 30)
    assert CAR == TaskScore("return", StreakStop("reward", 20))
    assert ANT == TaskScore("distance", StreakStop("progress", 30, 200))
    with pytest.raises(ValueError, match="task='bogus' has no score"):
        task_score("bogus")
    with pytest.raises(ValueError, match="signal='speed' is not known"):
        StreakStop("speed", 3)
    with pytest.raises(ValueError, match="score='length' is not known"):
        TaskScore("length")


def test_car_stops_after_20_negative_rewards_in_a_row():
    assert stop_step(CAR, [-0.1] * 20) == 19
    assert stop_step(CAR, [-0.1] * 19) is None
    # a positive (or zero) reward restarts the count
    assert stop_step(CAR, [-0.1] * 19 + [3.0] + [-0.1] * 20) == 39
    assert stop_step(CAR, [-0.1] * 19 + [0.0] + [-0.1] * 19) is None
    assert stop_step(CAR, [-0.1] * 100, early_stop=False) is None
    assert stop_step(RETURN, [-0.1] * 100) is None  # evaluation: no early stop


def test_quadruped_stops_after_step_200_when_moving_back_30_steps():
    back = -0.01 * np.arange(1, 401)  # backwards from the first step on
    assert stop_step(ANT, [0.0] * 400, back) == ANT_GRACE_STEPS  # the streak ran long before the grace ended
    forward_then_back = np.concatenate([0.01 * np.arange(1, 251), 2.5 - 0.01 * np.arange(1, 151)])
    assert stop_step(ANT, [0.0] * 400, forward_then_back) == 250 + 30 - 1  # 30th backward step, t = 279
    # after the grace period: 29 steps back, one step forward, 29 back: never 30 in a row
    late = np.concatenate([np.full(220, 1.0), 1.0 - 0.01 * np.arange(1, 30), [0.8], 0.8 - 0.01 * np.arange(1, 30)])
    assert stop_step(ANT, [0.0] * len(late), late) is None
    assert stop_step(ANT, [0.0] * 400, np.zeros(400)) is None  # standing still is no progress backwards
    assert stop_step(ANT, [0.0] * 400, back, early_stop=False) is None
    # the reward does not matter to the quadruped's stop, the distance does not to the car's
    assert stop_step(ANT, [-1.0] * 400, forward_then_back) == 279
    assert stop_step(CAR, [1.0] * 400, back) is None


def test_episode_scores_batched_equal_one_stream_each():
    rng = np.random.default_rng(0)
    m, steps = 5, 320
    rewards = rng.normal(-0.05, 0.1, (steps, m))
    distances = np.cumsum(rng.normal(-0.002, 0.01, (steps, m)), axis=0)
    track = EpisodeScores(ANT, m)
    active, ended = np.ones(m, dtype=bool), np.full(m, -1)
    for t in range(steps):
        index = np.flatnonzero(active)
        stop = track.update(t, index, rewards[t, index], distances[t, index])
        active[index[stop]] = False
        ended[index[stop]] = t
    for k in range(m):
        expected = stop_step(ANT, rewards[:, k], distances[:, k])
        assert ended[k] == (-1 if expected is None else expected)
        n = steps if expected is None else expected + 1
        assert track.lengths[k] == n
        assert track.returns[k] == pytest.approx(rewards[:n, k].sum())
        assert track.scores[k] == distances[n - 1, k]


def test_distance_is_kept_where_none_is_reported():
    track = EpisodeScores(RETURN, 2)
    index = np.array([0, 1])
    track.update(0, index, np.array([1.0, 2.0]), np.array([0.5, np.nan]), np.array([True, False]))
    track.update(1, index, np.array([1.0, 2.0]), np.array([np.nan, np.nan]), np.array([False, False]))
    np.testing.assert_array_equal(track.distances, [0.5, np.nan])
    np.testing.assert_array_equal(track.scores, [2.0, 4.0])


def test_a_diverged_individual_scores_nan_in_every_episode():
    scores = np.array([[1.0, 2.0], [3.0, np.inf], [5.0, 6.0]])
    diverged = np.array([[False, False], [False, False], [False, True]])
    out = discard_diverged(scores, diverged)
    np.testing.assert_array_equal(out, [[1.0, 2.0], [3.0, np.nan], [np.nan, np.nan]])
