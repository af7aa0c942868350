"""The task scores and early stops on constructed streams of rewards and distances (no environment), and the
original code's quadruped rule on one short real PyBullet episode."""

from __future__ import annotations

import numpy as np
import pytest

from agents.evaluation.scores import (
    ANT_BACKWARD_STREAK,
    ANT_GRACE_STEPS,
    CAR_NEGATIVE_STREAK,
    ORIGINAL_STOPS,
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


ORIGINAL_BULLET = task_score("ant", "progress", "original", backend="bullet")


def test_the_original_quadruped_rule():
    assert ORIGINAL_BULLET == TaskScore("progress", ORIGINAL_STOPS["ant"])
    assert ORIGINAL_STOPS["ant"] == StreakStop("env-progress", 31, 201, from_grace=True, fall=True)
    assert task_score("ant", early_stop="original").score == "distance"  # the MuJoCo default keeps its score
    with pytest.raises(ValueError, match="backend 'bullet' only, not on 'mujoco"):
        task_score("ant", "progress")
    with pytest.raises(ValueError, match="backend 'bullet' only, not on 'mujoco'"):
        task_score("ant", "progress", backend="mujoco")
    with pytest.raises(ValueError, match="the car reports none"):
        task_score("car", "progress")
    with pytest.raises(ValueError, match=r"fitness='distance' needs an env reporting info\['distance'\]; the car"):
        task_score("car", "distance")  # it would score every episode NaN
    with pytest.raises(ValueError, match="accepted there: auto, return$"):
        task_score("car", "reward-no-alive")
    assert task_score(None, "progress").score == "progress"  # any other env: whatever it reports


def test_the_original_stop_ends_a_fall_only_after_step_200():
    n, forward = 400, [0.01] * 400
    down = [True] * n
    # fallen from the start (the burnt-in ant lies at 0.25 m): it ends at the first step past 200, t = 201
    assert stop_step(ORIGINAL_BULLET, [0.0] * n, progress=forward, fallen=down) == ANT_GRACE_STEPS + 1
    # a fall before step 201 is ignored; one later ends the episode at that step
    early = [50 <= t <= 200 for t in range(n)]
    assert stop_step(ORIGINAL_BULLET, [0.0] * n, progress=forward, fallen=early) is None
    late = [t == 333 for t in range(n)]
    assert stop_step(ORIGINAL_BULLET, [0.0] * n, progress=forward, fallen=late) == 333
    assert stop_step(ORIGINAL_BULLET, [0.0] * n, progress=forward, fallen=down, early_stop=False) is None
    # the task's own rule ('auto') and an env reporting no fall ignore it
    assert stop_step(task_score("ant"), [0.0] * n, np.cumsum(forward), fallen=down) is None
    assert stop_step(ORIGINAL_BULLET, [0.0] * n, progress=forward) is None


def test_the_original_stop_counts_the_envs_progress_where_reported():
    n = 400
    ahead = np.cumsum(np.full(n, 0.01))  # the torso moves forward every step ...
    back = np.full(n, -0.5)  # ... while PyBullet's progress term is negative every step
    rule = task_score("ant", early_stop="original")
    # counting from step 201 on, the 31st negative step (t = 231) ends it; the torso's distance is not consulted
    assert stop_step(rule, [0.0] * n, ahead, progress=back) == ANT_GRACE_STEPS + ANT_BACKWARD_STREAK + 1
    assert stop_step(rule, [0.0] * n, -ahead, progress=-back) is None
    # without info["progress"] (MuJoCo) it counts the torso's x progress, as before
    assert stop_step(rule, [0.0] * n, -ahead) == 231
    assert stop_step(rule, [0.0] * n, ahead) is None
    # 'auto' keeps the torso's progress even where the env reports its own
    assert stop_step(task_score("ant"), [0.0] * n, ahead, progress=back) is None


def test_progress_fitness_sums_the_reported_progress():
    rng = np.random.default_rng(1)
    progress = rng.normal(0.0, 0.3, 50)
    track = EpisodeScores(ORIGINAL_BULLET, 1, early_stop=False)
    for t, p in enumerate(progress):
        track.update(t, np.array([0]), np.array([1.0]), np.array([0.0]), env_progress=np.array([p]))
    assert track.scores[0] == pytest.approx(progress.sum(), abs=1e-12) and track.returns[0] == 50.0
    with pytest.raises(ValueError, match=r"needs an env reporting info\['progress'\]"):
        EpisodeScores(ORIGINAL_BULLET, 1).update(0, np.array([0]), np.array([1.0]), np.array([0.0]))


def test_a_real_pybullet_ant_lying_still_is_stopped_at_step_201():
    import gymnasium as gym

    import hebb_gym  # noqa: F401
    from agents.evaluation.rollout import GymStepper, rollout
    from agents.policies import StaticPolicy

    env = gym.make("HebbAnt-Default-v0", backend="bullet", max_episode_steps=260)
    try:
        policy = StaticPolicy.from_env(env, seed=0)
        batch = policy.batch(np.zeros((1, policy.num_params), dtype=np.float32))  # zero weights: zero torques

        def run(rule):
            return rollout(batch, batch.initial_state(1, seed=0), GymStepper([env]), [3], score=rule, early_stop=True)

        stopped = run(ORIGINAL_BULLET)
        assert stopped.lengths[0, 0] == ANT_GRACE_STEPS + 2  # steps 0..201: it lies at z = 0.25, fallen
        assert abs(stopped.scores[0, 0]) < 1.0  # lying still makes (almost) no progress
        no_fall = TaskScore("progress", StreakStop("env-progress", 31, 201, from_grace=True))
        assert run(no_fall).lengths[0, 0] >= 232  # without the fall the streak could end it at t = 231 at the soonest
    finally:
        env.close()
