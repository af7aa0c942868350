"""The lean quadruped stepping path equals Gymnasium's ``env.step`` bit for bit, and is only used where it does."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import hebb_gym  # noqa: F401  (registers the ids)
from hebb_gym.ant_batch import AntBatch, supports
from agents.evaluation.fitness import EnvPool, evaluate_slice
from agents.es.params import candidate_params, strategy_factory
from agents.training import build_policy
from agents.training import TrainConfig

ANT = "HebbAnt-Default-v0"


@pytest.mark.parametrize(
    ("env_id", "kwargs", "scale"),
    [
        (ANT, {"terminate_when_unhealthy": False}, 1.0),
        (ANT, {}, 1.5),  # large torques flip some ants: terminations are compared too
        ("HebbAnt-LongFrontLegs-v0", {}, 1.0),
    ],
)
def test_steps_equal_gymnasium_bit_for_bit(env_id, kwargs, scale):
    n, steps = 3, 300
    ref = [gym.make(env_id, max_episode_steps=steps, **kwargs) for _ in range(n)]
    fast = AntBatch([gym.make(env_id, max_episode_steps=steps, **kwargs) for _ in range(n)])
    seeds = [11, 12, 13]
    obs_ref = np.stack([env.reset(seed=s)[0] for env, s in zip(ref, seeds)])
    np.testing.assert_array_equal(fast.reset(seeds), obs_ref)
    rng = np.random.default_rng(0)
    active = np.ones(n, dtype=bool)
    terminations = 0
    for t in range(steps):
        actions = rng.uniform(-scale, scale, (n, 8)).astype(np.float32)
        index = np.flatnonzero(active)
        if index.size == 0:
            break
        obs, reward, terminated, distance = fast.step(index, actions[index])
        for k, j in enumerate(index):
            o, r, term, _, info = ref[j].step(actions[j])
            assert obs[k].tobytes() == o.tobytes(), (t, j)
            assert reward[k].tobytes() == np.float64(r).tobytes(), (t, j, reward[k], r)
            assert bool(terminated[k]) == term, (t, j)
            assert distance[k] == info["distance"], (t, j)
            if term:
                active[j] = False
                terminations += 1
    if scale > 1.0:
        assert terminations > 0, "no ant fell over; the termination branch went untested"
    for env in ref:
        env.close()


def test_only_plain_mujoco_ants_take_the_fast_path():
    assert supports(gym.make(ANT, max_episode_steps=10))
    assert supports(gym.make("HebbAnt-RightFrontLegDamage-v0"))
    assert not supports(gym.make(ANT, include_cfrc_ext_in_observation=True))
    assert not supports(gym.wrappers.ClipAction(gym.make(ANT)))
    assert not supports(gym.make("Ant-v5"))
    with pytest.raises(ValueError, match="not a plain HebbAntMujoco"):
        AntBatch([gym.make(ANT), gym.make(ANT, include_cfrc_ext_in_observation=True)])


@pytest.mark.parametrize(
    "kw",
    [
        dict(early_stop=True, max_steps=150, env_kwargs={"terminate_when_unhealthy": True}),  # ants fall over
        dict(early_stop=True, max_steps=300, env_kwargs={"terminate_when_unhealthy": False}),  # backward streaks
        dict(early_stop=False, episodes=2, max_steps=60, env=(ANT, "HebbAnt-LongRearLegs-v0"),
             env_kwargs={"terminate_when_unhealthy": False}),
    ],
)
def test_fitnesses_equal_the_generic_path(kw):
    cfg = TrainConfig(**{"popsize": 6, "sigma": 0.1, "seed": 3, **kw})
    policy = build_policy(cfg)
    strategy = strategy_factory(policy, cfg)()
    params, assignment = candidate_params(strategy, strategy.ask(), 0, 6)
    fast_pool, generic_pool = EnvPool(cfg.fitness_config()), EnvPool(cfg.fitness_config())
    generic_pool.fast_ant = lambda env_id, count: None  # force Gymnasium's env.step
    try:
        assert fast_pool.fast_ant(cfg.env[0], 6 * cfg.episodes) is not None
        fast = evaluate_slice(policy, params, range(6), 99, fast_pool, assignment)
        generic = evaluate_slice(policy, params, range(6), 99, generic_pool, assignment)
    finally:
        fast_pool.close()
        generic_pool.close()
    np.testing.assert_array_equal(fast.fitness, generic.fitness)
    np.testing.assert_array_equal(fast.per_env, generic.per_env)
    assert fast.env_steps == generic.env_steps
    if kw["early_stop"]:
        assert fast.env_steps < 6 * cfg.max_steps, "no episode ended early; the stopping branches went untested"


def test_the_fast_path_can_be_switched_off(monkeypatch):
    cfg = TrainConfig(popsize=2, max_steps=5)
    monkeypatch.setenv("HEBB_GYM_FAST_ANT", "0")
    pool = EnvPool(cfg.fitness_config())
    try:
        assert pool.fast_ant(ANT, 2) is None
    finally:
        pool.close()
    monkeypatch.delenv("HEBB_GYM_FAST_ANT")
    pool = EnvPool(TrainConfig(popsize=2, max_steps=5, env_kwargs={"include_cfrc_ext_in_observation": True})
                   .fitness_config())
    try:
        assert pool.fast_ant(ANT, 2) is None  # a 105-dim observation is not what AntBatch computes
    finally:
        pool.close()
