"""The lean quadruped stepping path equals Gymnasium's ``env.step`` bit for bit, and is only used where it does.

The early stops are exercised on both paths by policies built to trigger them on any machine (not by
random individuals whose chaotic trajectories happen to end early on one CPU): a constant-action static
policy that flattens its legs until the torso sinks below the healthy height (termination), and a
Hebbian policy whose "D" term is a clock that sweeps the hips slowly after the grace period, pushing the
planted body backwards for some 45 steps in a row (the backward-streak stop). Both motions are
quasi-static, so rounding differences between CPUs do not grow into a different outcome.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import hebb_gym  # noqa: F401  (registers the ids)
from hebb_gym.ant_batch import AntBatch, supports
from agents.evaluation.fitness import EnvPool, evaluate_slice
from agents.evaluation.rollout import AntStepper, GymStepper, rollout
from agents.evaluation.scores import ANT_GRACE_STEPS, task_score
from agents.policies import HebbianPolicy, StaticPolicy
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


# Action indices of each leg's hip and ankle (Ant-v5 actuator order: hip_4, ankle_4, hip_1, ankle_1, ...).
HIP, ANKLE = (2, 4, 6, 0), (3, 5, 7, 1)
#: Legs flat out: the torso sinks from about 0.7 to 0.38 within 6 steps.
FLAT_LEGS = (1, -1, 1, -1, -1, 1, -1, 1)
#: Ankles pressed down: the torso stays above 0.6.
STANDING = (0, 1, 0, 1, 0, -1, 0, -1)
SUNK = {"terminate_when_unhealthy": True, "healthy_z_range": (0.41, 1.0)}


def _dense_flat(policy, weights, prefix="dense"):
    flat = policy.get_flat()
    layout = dict(policy.layout)
    for j, w in enumerate(weights):
        flat[layout[f"{prefix}.{j}"]] = w.ravel()
    return flat


def _unit_input(policy):
    """Dense weights with a unit that is exactly 1 in both hidden layers (tanh(100 z), z the torso height)."""
    weights = [np.zeros(shape) for shape in policy.spec.dense_shapes]
    weights[0][0, 0] = weights[1][0, 0] = 100.0
    return weights


def constant_actions(policy, actions):
    """Flat static weights whose actions are exactly ``actions`` (+-1) whatever the observation."""
    weights = _unit_input(policy)
    weights[2][:, 0] = 100.0 * np.asarray(actions, dtype=np.float64)
    return _dense_flat(policy, weights)


def backward_pusher(policy, t0=230, width=15):
    """Flat parameters of a Hebbian "AD"/coevolved policy: ankles pressed down, hips swept by a clock.

    With A = 0 a synapse's weight is its initial value plus D per step, so hip action k is
    ``tanh(hips[k] * (t - t0) / width)``: held still at -hips[k], then swept to +hips[k] around step t0;
    the feet stick and the torso moves backwards about 0.9 m, every step for some 45 steps.
    """
    hips, ankles = (-1, 1, 1, 1), (1, 1, -1, -1)
    init = _unit_input(policy)
    drift = [np.zeros(shape) for shape in policy.spec.dense_shapes]
    for k in range(4):
        init[2][HIP[k], 0] = -hips[k] * t0 / width
        drift[2][HIP[k], 0] = hips[k] / width
        init[2][ANKLE[k], 0] = 100.0 * ankles[k]
    flat = _dense_flat(policy, init, prefix="init")
    coefficients = np.zeros((policy.num_synapses, 2))  # ("A", "D") per synapse
    coefficients[:, 1] = np.concatenate([d.ravel() for d in drift])
    flat[dict(policy.layout)["rules"]] = coefficients.ravel()
    return flat


def _both_paths(policy, flats, max_steps, early_stop, env_kwargs):
    """rollout() of ``flats`` (one episode each) through AntBatch and through env.step, same seeds."""
    results = []
    for lean in (True, False):
        envs = [gym.make(ANT, max_episode_steps=max_steps, **env_kwargs) for _ in flats]
        stepper = AntStepper(AntBatch(envs)) if lean else GymStepper(envs)
        batch = policy.batch(np.stack(flats))
        state = batch.initial_state(1, seed=list(range(len(flats))))
        results.append(rollout(batch, state, stepper, [21 + k for k in range(len(flats))], max_steps=max_steps,
                               score=task_score("ant"), early_stop=early_stop, stop_nonfinite=True))
        for env in envs:
            env.close()
    for name in ("scores", "returns", "distances", "lengths", "nonfinite"):
        np.testing.assert_array_equal(getattr(results[0], name), getattr(results[1], name), err_msg=name)
    assert results[0].steps == results[1].steps
    return results[0]


def test_a_sinking_body_terminates_on_both_paths():
    policy = StaticPolicy.from_env(ANT, seed=0)
    flats = [constant_actions(policy, FLAT_LEGS), constant_actions(policy, STANDING)]
    result = _both_paths(policy, flats, 60, False, SUNK)
    assert result.lengths[0, 0] < 15, "the flat-legged body did not sink below the healthy height"
    assert result.lengths[1, 0] == 60  # standing it stays healthy: the termination was the sinking


def test_a_body_pushed_backwards_stops_early_on_both_paths():
    policy = HebbianPolicy.from_env(ANT, seed=0, rule="AD", init="coevolved")
    pusher = backward_pusher(policy)
    on = _both_paths(policy, [pusher], 300, True, {"terminate_when_unhealthy": False})
    assert ANT_GRACE_STEPS < on.lengths[0, 0] < 260, "the backward streak did not end the episode"
    off = _both_paths(policy, [pusher], 300, False, {"terminate_when_unhealthy": False})
    assert off.lengths[0, 0] == 300 and off.distances[0, 0] < on.distances[0, 0] - 0.3  # it kept going back


@pytest.mark.parametrize(
    ("kw", "designed"),
    [
        # individual 0 sinks below the healthy height: terminations
        (dict(agent="static", early_stop=True, max_steps=150, env_kwargs=SUNK), "sinker"),
        # individual 0 is pushed backwards after the grace period: backward-streak stops
        (dict(agent="hebbian", rule="AD", init="coevolved", early_stop=True, max_steps=300,
              env_kwargs={"terminate_when_unhealthy": False}), "pusher"),
        (dict(early_stop=False, episodes=2, max_steps=60, env=(ANT, "HebbAnt-LongRearLegs-v0"),
              env_kwargs={"terminate_when_unhealthy": False}), None),
    ],
)
def test_fitnesses_equal_the_generic_path(kw, designed):
    cfg = TrainConfig(**{"popsize": 6, "sigma": 0.1, "seed": 3, **kw})
    policy = build_policy(cfg)
    strategy = strategy_factory(policy, cfg)()
    params, assignment = candidate_params(strategy, strategy.ask(), 0, 6)
    if designed == "sinker":
        params[0] = constant_actions(policy, FLAT_LEGS)
    elif designed == "pusher":
        params[0] = backward_pusher(policy)
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
