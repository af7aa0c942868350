"""The one lockstep rollout loop: hooks are called as documented, non-finite actions, the car's early stop."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import hebb_gym  # noqa: F401  (registers the ids)
from agents.evaluation.fitness import EnvPool, FitnessConfig, evaluate_slice
from agents.evaluation.rollout import GymStepper, Hook, Step, rollout
from agents.evaluation.scores import task_score
from agents.policies import HebbianPolicy, StaticPolicy

ANT, CAR = "HebbAnt-Default-v0", "HebbCarRacing-Default-v0"


class Recorder(Hook):
    """Logs every call and sends the negated actions from step 2 on."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def before_act(self, t, state):
        self.calls.append(("before_act", t, state.n_envs))

    def actions(self, t, actions):
        self.calls.append(("actions", t, actions.shape))
        return -actions if t >= 2 else actions

    def after_step(self, step: Step):
        self.calls.append(("after_step", step.t, step.index.tolist(), step.done.tolist()))
        if step.t >= 2:
            np.testing.assert_array_equal(step.sent[step.index], -step.actions[step.index])


def _envs(env_id, n, max_steps, **kwargs):
    return [gym.make(env_id, max_episode_steps=max_steps, **kwargs) for _ in range(n)]


def test_hooks_are_called_each_step_in_order():
    policy = HebbianPolicy.from_env(ANT, seed=1)
    batch = policy.batch(np.stack([policy.get_flat()] * 2))
    hook = Recorder()
    envs = _envs(ANT, 4, 4)
    state = batch.initial_state(2, seed=[0, 0])  # both individuals draw the same initial weights
    result = rollout(batch, state, GymStepper(envs), [5, 6, 5, 6], hooks=[hook])
    assert [c[:2] for c in hook.calls] == [(name, t) for t in range(4) for name in ("before_act", "actions",
                                                                                    "after_step")]
    assert hook.calls[1][2] == (2, 2, 8)  # actions (individuals, episodes, act)
    assert hook.calls[-1][2:] == ([0, 1, 2, 3], [True] * 4)  # the time limit ends all four at step 3
    np.testing.assert_array_equal(result.lengths, [[4, 4], [4, 4]])
    # same params and init seed, same env seeds: both individuals play the same episodes
    np.testing.assert_array_equal(result.returns[0], result.returns[1])
    assert result.steps == 16 and not result.nonfinite.any()
    with pytest.raises(ValueError, match="accepted: 4 of each"):
        rollout(batch, batch.initial_state(2, seed=0), GymStepper(envs[:3]), [0, 1, 2])


@pytest.mark.filterwarnings("ignore:.*NaN value", "ignore:.*not within the observation space")  # NaNs sent on
def test_nonfinite_actions_are_flagged_and_optionally_end_the_episode():
    pendulum = StaticPolicy.from_env("Pendulum-v1", seed=0)  # numpy physics: NaN actions pass through quietly
    bad = pendulum.get_flat()
    bad[dict(pendulum.layout)["dense.2"]] = np.nan
    batch = pendulum.batch(np.stack([pendulum.get_flat(), bad]))
    for stop_nonfinite, lengths in ((True, [[10], [0]]), (False, [[10], [10]])):
        envs = _envs("Pendulum-v1", 2, 10)
        r = rollout(batch, batch.initial_state(1, 0), GymStepper(envs), [0, 1], stop_nonfinite=stop_nonfinite)
        np.testing.assert_array_equal(r.nonfinite, [[False], [True]])
        np.testing.assert_array_equal(r.lengths, lengths)  # stopped, or sent to the env anyway and only flagged
    # training fitness: the diverged individual scores NaN, the other one its distance
    policy = StaticPolicy.from_env(ANT, seed=0)
    bad = policy.get_flat()
    bad[dict(policy.layout)["dense.2"]] = np.nan
    pool = EnvPool(FitnessConfig((ANT,), max_steps=10, env_kwargs={"terminate_when_unhealthy": False}))
    try:
        res = evaluate_slice(policy, np.stack([policy.get_flat(), bad]), [0, 1], 7, pool)
    finally:
        pool.close()
    assert np.isfinite(res.fitness[0]) and np.isnan(res.fitness[1]) and res.env_steps == 10


def test_the_car_stops_after_20_negative_rewards():
    policy = StaticPolicy.from_env(CAR, seed=0)
    policy.set_flat(np.zeros(policy.num_params))  # steer 0, gas = brake = 0.5: the car stays put
    batch = policy.batch(policy.get_flat()[None])
    lengths = []
    for early_stop in (True, False):
        envs = _envs(CAR, 1, 60)
        r = rollout(batch, batch.initial_state(1, 0), GymStepper(envs), [3], max_steps=60,
                    score=task_score("car"), early_stop=early_stop)
        lengths.append(int(r.lengths[0, 0]))
        assert r.scores[0, 0] == r.returns[0, 0] and np.isnan(r.distances[0, 0])
        envs[0].close()
    assert lengths[0] < 40 and lengths[1] == 60
