"""Hebbian, static and LSTM policies: batch == single runs, SB3 evaluate_policy, resets, files, bad input."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gymnasium.wrappers import TimeLimit
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

import hebb_gym  # noqa: F401  (registers the IDs)
from agents import HebbianPolicy, LSTMPolicy, StaticPolicy, load_policy
from agents.policies import FORMAT_VERSION, PolicyState
from agents.policies.networks import conv_features, preprocess_images

ANT_ID = "HebbAnt-Default-v0"
CAR_ID = "HebbCarRacing-Default-v0"
CLASSES = [HebbianPolicy, StaticPolicy, LSTMPolicy]

torch.set_num_threads(1)


def make(env_id: str, steps: int = 30, **kwargs) -> gym.Env:
    """A short-horizon env (TimeLimit), Monitor-wrapped as SB3's evaluate_policy expects."""
    return Monitor(TimeLimit(gym.make(env_id, **kwargs), max_episode_steps=steps))


@pytest.fixture(scope="module")
def ant_env() -> gym.Env:
    env = gym.make(ANT_ID)
    yield env
    env.close()


@pytest.fixture(scope="module")
def car_env() -> gym.Env:
    env = gym.make(CAR_ID)
    yield env
    env.close()


@pytest.fixture(scope="module")
def ant_obs(ant_env: gym.Env) -> np.ndarray:
    """A few real quadruped observations."""
    obs, _ = ant_env.reset(seed=0)
    out = [obs]
    for _ in range(5):
        obs, *_ = ant_env.step(ant_env.action_space.sample())
        out.append(obs)
    return np.stack(out)


@pytest.fixture(scope="module")
def car_obs(car_env: gym.Env) -> np.ndarray:
    """A few real car frames."""
    car_env.action_space.seed(0)
    obs, _ = car_env.reset(seed=0)
    out = [obs]
    for _ in range(5):
        obs, *_ = car_env.step(np.array([0.1, 0.5, 0.0], dtype=np.float32))
        out.append(obs)
    return np.stack(out)


# --- construction and flat vectors ---------------------------------------------------------------


def test_from_env_id_env_and_vecenv(ant_env: gym.Env) -> None:
    p = HebbianPolicy.from_env(ANT_ID, seed=0)
    assert p.env_id == ANT_ID and p.observation_space.shape == (27,) and p.action_space.shape == (8,)
    assert p.num_params == (27 * 128 + 128 * 64 + 64 * 8) * 5 == p.get_flat().shape[0]
    assert p.get_flat().dtype == np.float32
    q = HebbianPolicy.from_env(ant_env, seed=0)
    assert q.env_id == ANT_ID
    np.testing.assert_array_equal(p.get_flat(), q.get_flat())  # same seed, same parameters
    venv = DummyVecEnv([lambda: gym.make(ANT_ID)])
    r = StaticPolicy.from_env(venv, seed=1)
    venv.close()
    assert r.env_id == ANT_ID and r.num_params == 27 * 128 + 128 * 64 + 64 * 8
    assert not np.array_equal(HebbianPolicy.from_env(ant_env, seed=1).get_flat(), p.get_flat())


def test_parameter_counts_car(car_env: gym.Env) -> None:
    n_syn = 648 * 128 + 128 * 64 + 64 * 3
    conv = 6 * 3 * 3 * 3 + 8 * 6 * 5 * 5
    assert HebbianPolicy.from_env(car_env).num_params == n_syn * 5 + conv
    assert HebbianPolicy.from_env(car_env, rule="A", init="coevolved").num_params == n_syn + conv + n_syn
    assert HebbianPolicy.from_env(car_env, rho="N").num_params == 5 + conv
    assert StaticPolicy.from_env(car_env).num_params == n_syn + conv
    h = 128
    assert LSTMPolicy.from_env(car_env).num_params == conv + 4 * h * (648 + h + 1) + 64 * 128 + 3 * 64


def test_set_flat_roundtrip_and_cache(ant_obs: np.ndarray) -> None:
    p = StaticPolicy.from_env(ANT_ID, seed=0)
    a0, _ = p.predict(ant_obs[0])
    v = p.get_flat()
    v[:] = np.random.default_rng(5).standard_normal(v.shape)
    p.set_flat(v.astype(np.float64))
    np.testing.assert_array_equal(p.get_flat(), v)
    a1, _ = p.predict(ant_obs[0])
    assert not np.allclose(a0, a1)  # the cached batch was rebuilt


def test_conv_stack_matches_torch_nn_reference(car_obs: np.ndarray) -> None:
    """The car's static stack equals conv -> tanh -> maxpool written with torch.nn on 84x84 [0, 1] frames."""
    g = torch.Generator().manual_seed(0)
    w1, w2 = torch.randn(6, 3, 3, 3, generator=g), torch.randn(8, 6, 5, 5, generator=g) * 0.2
    frames = torch.from_numpy(car_obs[:3])
    x = preprocess_images(frames)
    assert x.shape == (3, 3, 84, 84) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    ref = F.interpolate(frames.permute(0, 3, 1, 2).float() / 255, size=(84, 84), mode="bilinear")
    torch.testing.assert_close(x, ref)
    ref = F.max_pool2d(torch.tanh(F.conv2d(ref, w1)), 2)
    ref = F.max_pool2d(torch.tanh(F.conv2d(ref, w2, stride=2)), 2).flatten(1)
    got = conv_features(x, [w1, w2], (1, 2))
    assert got.shape == (3, 648)
    torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-6)


# --- batched == single ---------------------------------------------------------------------------


def _copy_state(state: PolicyState, p: int, e: int, batch) -> PolicyState:
    """The (p, e) slice of a batch state as a fresh P=1, E=1 state of ``batch``."""
    single = batch.initial_state(1, 0)
    single.weights = [w[p : p + 1, e : e + 1].clone() for w in state.weights]
    if state.memory is not None:
        single.memory = tuple(m[p : p + 1, e : e + 1].clone() for m in state.memory)
    return single


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("task", ["ant", "car"])
def test_batch_equals_single_runs(cls, task: str, ant_obs: np.ndarray, car_obs: np.ndarray) -> None:
    obs_seq = ant_obs if task == "ant" else car_obs
    env_id = ANT_ID if task == "ant" else CAR_ID
    options = {"rho": 64} if cls is HebbianPolicy and task == "ant" else {}
    policy = cls.from_env(env_id, seed=3, **options)
    n_ind, n_env = 3, 2
    rng = np.random.default_rng(0)
    params = policy.get_flat()[None] + 0.05 * rng.standard_normal((n_ind, policy.num_params)).astype(
        np.float32
    )
    batch = policy.batch(params)
    state = batch.initial_state(n_env, seed=7)
    singles = [[policy.batch(params[p : p + 1]) for _ in range(n_env)] for p in range(n_ind)]
    single_states = [[_copy_state(state, p, e, singles[p][e]) for e in range(n_env)] for p in range(n_ind)]
    for t in range(3):
        # each (individual, env) sees its own observation
        obs = np.stack(
            [np.stack([obs_seq[(t + p + 2 * e) % len(obs_seq)] for e in range(n_env)]) for p in range(n_ind)]
        )
        actions, state = batch.act(obs, state)
        assert actions.shape == (n_ind, n_env, *policy.action_space.shape)
        for p in range(n_ind):
            for e in range(n_env):
                a1, single_states[p][e] = singles[p][e].act(obs[p : p + 1, e : e + 1], single_states[p][e])
                np.testing.assert_allclose(actions[p, e], a1[0, 0], rtol=1e-5, atol=1e-6)
                for wb, ws in zip(batch.plastic_weights(state), single_states[p][e].weights):
                    torch.testing.assert_close(wb[p, e], ws[0, 0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("task", ["ant", "car"])
def test_results_are_bitwise_independent_of_batch_mates(cls, task: str, ant_obs, car_obs) -> None:
    """An individual's actions and weights do not depend on which others share its batch (bit for bit).

    The trainer relies on this: the same seed gives the same fitnesses for any worker count.
    """
    env_id, obs_seq = (ANT_ID, ant_obs) if task == "ant" else (CAR_ID, car_obs)
    policy = cls.from_env(env_id, seed=0)
    rng = np.random.default_rng(0)
    params = policy.get_flat()[None] + 0.05 * rng.standard_normal((5, policy.num_params)).astype(np.float32)
    sub = [1, 3]
    b_all, b_sub = policy.batch(params), policy.batch(params[sub])
    s_all, s_sub = b_all.initial_state(2, seed=[7, 8, 9, 10, 11]), b_sub.initial_state(2, seed=[8, 10])
    for t in range(3):
        obs = np.stack([np.stack([obs_seq[(t + p + e) % len(obs_seq)] for e in range(2)]) for p in range(5)])
        a_all, _ = b_all.act(obs, s_all)
        a_sub, _ = b_sub.act(obs[sub], s_sub)
        np.testing.assert_array_equal(a_all[sub], a_sub)
        for w_all, w_sub in zip(s_all.weights, s_sub.weights):
            assert torch.equal(w_all[sub], w_sub)


def test_per_individual_seeds_do_not_depend_on_slicing(ant_obs: np.ndarray) -> None:
    """With one seed per individual, an individual's weights and resets ignore its batch mates."""
    policy = HebbianPolicy.from_env(ANT_ID, seed=0)
    params = np.stack([policy.get_flat()] * 3)
    full = policy.batch(params)
    alone = policy.batch(params[1:2])
    s_full = full.initial_state(2, seed=[10, 11, 12])
    s_alone = alone.initial_state(2, seed=[11])
    for wf, wa in zip(s_full.weights, s_alone.weights):
        assert torch.equal(wf[1:2], wa)
    start = np.array([[True, False], [False, True], [True, True]])
    full.act(np.broadcast_to(ant_obs[0], (3, 2, 27)), s_full, episode_start=start)
    alone.act(np.broadcast_to(ant_obs[0], (1, 2, 27)), s_alone, episode_start=start[1:2])
    for wf, wa in zip(s_full.weights, s_alone.weights):
        torch.testing.assert_close(wf[1:2], wa)
    with pytest.raises(ValueError, match="one per individual"):
        full.initial_state(2, seed=[1, 2])


def test_batch_with_explicit_assignment(ant_obs: np.ndarray) -> None:
    """Per-individual assignments: identity on rho=1 equals the default; rho=N shares one rule."""
    p1 = HebbianPolicy.from_env(ANT_ID, seed=0)
    n = p1.num_synapses
    params = np.stack([p1.get_flat()] * 2)
    b_default = p1.batch(params)
    b_ident = p1.batch(params, assignment=np.stack([np.arange(n)] * 2))
    for ta, tb in zip(b_default.terms, b_ident.terms):
        for x, y in zip(ta, tb):
            torch.testing.assert_close(x, y)
    pn = HebbianPolicy.from_env(ANT_ID, rho="N", seed=0)
    assert pn.num_rules == 1 and pn.num_params == 5
    bn = pn.batch(pn.get_flat()[None])
    for terms in bn.terms:
        for t in terms:
            assert torch.all(t == t.flatten()[0])
    # rho=64: each individual may carry its own assignment
    p64 = HebbianPolicy.from_env(ANT_ID, rho=64, seed=0)
    m = p64.num_rules
    rng = np.random.default_rng(1)
    assign = rng.integers(0, m, size=(2, n))
    b = p64.batch(np.stack([p64.get_flat()] * 2), assignment=assign)
    table = p64.get_flat().reshape(m, 5)
    eta_a0 = (table[:, 0] * table[:, 1])[assign[1, : 128 * 27]].reshape(128, 27)
    np.testing.assert_allclose(b.terms[0][0][1, 0].numpy(), eta_a0, rtol=1e-6)
    with pytest.raises(ValueError, match="assignment"):
        p64.batch(np.stack([p64.get_flat()] * 2), assignment=assign[:1])
    with pytest.raises(ValueError, match="assignment"):
        p64.batch(p64.get_flat()[None], assignment=np.full((1, n), m))


# --- SB3 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("env_id", [ANT_ID, CAR_ID])
def test_evaluate_policy_on_dummy_vec_env(cls, env_id: str) -> None:
    venv = DummyVecEnv([lambda: make(env_id), lambda: make(env_id)])
    venv.seed(0)
    policy = cls.from_env(venv, seed=0)
    mean, std = evaluate_policy(policy, venv, n_eval_episodes=2, deterministic=True)
    venv.close()
    assert np.isfinite(mean) and np.isfinite(std)


def test_discrete_car_actions() -> None:
    env = make(CAR_ID, steps=5, continuous=False)
    policy = HebbianPolicy.from_env(env, seed=0)
    obs, _ = env.reset(seed=0)
    state = None
    for _ in range(3):
        action, state = policy.predict(obs, state)
        assert env.action_space.contains(action)
        obs, *_ = env.step(action)
    env.close()


def test_episode_start_resets_plastic_weights(ant_obs: np.ndarray) -> None:
    policy = HebbianPolicy.from_env(ANT_ID, seed=0)
    obs = ant_obs[:2]
    _, state = policy.predict(obs)
    before = [w.clone() for w in state.weights]
    _, state = policy.predict(obs, state, episode_start=np.array([False, False]))
    changed = [w.clone() for w in state.weights]
    for w0, w1 in zip(before, changed):
        assert not torch.equal(w0[0, 1], w1[0, 1])
    state.frozen = True  # observe the reset alone
    _, state = policy.predict(obs, state, episode_start=np.array([True, False]))
    for w1, w2 in zip(changed, state.weights):
        assert torch.equal(w1[0, 1], w2[0, 1])  # env 1 untouched
        assert not torch.equal(w1[0, 0], w2[0, 0])  # env 0 re-drawn ...
        assert float(w2[0, 0].abs().max()) <= 0.1  # ... from uniform [-0.1, 0.1]
    # co-evolved initial weights: a reset restores exactly the evolved ones
    pc = HebbianPolicy.from_env(ANT_ID, seed=0, init="coevolved")
    _, st = pc.predict(obs)
    _, st = pc.predict(obs, st, episode_start=np.array([True, True]))
    st.frozen = True
    _, st = pc.predict(obs, st, episode_start=np.array([False, True]))
    init0 = torch.from_numpy(pc.get_flat()[dict(pc.layout)["init.0"]]).reshape(128, 27)
    assert torch.equal(st.weights[0][0, 1], init0)
    assert not torch.equal(st.weights[0][0, 0], init0)


def test_episode_start_resets_lstm_memory(ant_obs: np.ndarray) -> None:
    policy = LSTMPolicy.from_env(ANT_ID, seed=0)
    fresh, _ = policy.predict(ant_obs[3:5])
    _, state = policy.predict(ant_obs[:2])
    _, state = policy.predict(ant_obs[1:3], state)
    again, state = policy.predict(ant_obs[3:5], state, episode_start=np.array([True, False]))
    np.testing.assert_allclose(again[0], fresh[0], rtol=1e-6)
    assert not np.allclose(again[1], fresh[1])


# --- plasticity per task -------------------------------------------------------------------------


def test_car_plastic_layers_keep_max_abs_one() -> None:
    env = make(CAR_ID, steps=20)
    policy = HebbianPolicy.from_env(env, seed=0)
    obs, _ = env.reset(seed=0)
    state = None
    for _ in range(8):
        action, state = policy.predict(obs, state)
        for w in state.weights:
            np.testing.assert_allclose(w.abs().amax(dim=(-2, -1)).numpy(), 1.0, rtol=1e-6)
        obs, *_ = env.step(action)
    env.close()


def test_quadruped_weights_change_every_step() -> None:
    env = make(ANT_ID, steps=20)
    policy = HebbianPolicy.from_env(env, seed=0)
    obs, _ = env.reset(seed=0)
    state = policy.initial_state(1, seed=0)
    for _ in range(8):
        before = [w.clone() for w in state.weights]
        action, state = policy.predict(obs, state)
        for w0, w1 in zip(before, state.weights):
            assert (w1 != w0).float().mean() > 0.99  # essentially every synapse moves
        assert float(max(w.abs().max() for w in state.weights)) > 0.1  # unbounded: no renormalisation
        obs, *_ = env.step(action)
    env.close()


@pytest.mark.parametrize("init", ["uniform", "normal", "xavier"])
def test_plastic_weight_inits(init: str) -> None:
    policy = HebbianPolicy.from_env(ANT_ID, seed=0, init=init, init_scale=0.2)
    w = policy.initial_state(64, seed=0).weights[0]  # (1, 64, 128, 27)
    if init == "uniform":
        assert float(w.abs().max()) <= 0.2 and float(w.abs().max()) > 0.19
    elif init == "normal":
        assert abs(float(w.std()) - 0.2) < 0.01
    else:
        bound = (6 / (128 + 27)) ** 0.5
        assert bound * 0.95 < float(w.abs().max()) <= bound
    assert abs(float(w.mean())) < 0.01


def test_frozen_state_keeps_weights(ant_obs: np.ndarray) -> None:
    policy = HebbianPolicy.from_env(ANT_ID, seed=0)
    batch = policy.batch(np.stack([policy.get_flat()] * 2))
    state = batch.initial_state(3, seed=0)
    state.frozen = True
    before = [w.clone() for w in batch.plastic_weights(state)]
    batch.act(np.broadcast_to(ant_obs[0], (2, 3, 27)), state)
    for w0, w1 in zip(before, batch.plastic_weights(state)):
        assert torch.equal(w0, w1)
    state.weights[0].zero_()  # probes edit weights in place
    state.frozen = False
    batch.act(np.broadcast_to(ant_obs[0], (2, 3, 27)), state)
    assert torch.isfinite(state.weights[0]).all()


# --- files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, env_id, options",
    [
        (HebbianPolicy, ANT_ID, {"rho": 32, "rule": "ABC_lr"}),
        (HebbianPolicy, CAR_ID, {"init": "coevolved", "rule": "A"}),
        (StaticPolicy, ANT_ID, {}),
        (LSTMPolicy, CAR_ID, {}),
    ],
)
def test_save_load_identical_actions(tmp_path, cls, env_id, options, ant_obs, car_obs) -> None:
    obs = ant_obs[:2] if env_id == ANT_ID else car_obs[:2]
    policy = cls.from_env(env_id, seed=4, **options)
    if cls is HebbianPolicy and "rho" in options:
        policy.assignment = np.random.default_rng(0).integers(0, policy.num_rules, policy.num_synapses)
    path = tmp_path / "policy.pt"
    policy.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["policy.pt"]  # no temp file left behind
    loaded = load_policy(path)
    assert type(loaded) is cls and loaded.env_id == env_id and loaded.options == policy.options
    np.testing.assert_array_equal(loaded.get_flat(), policy.get_flat())
    s1, s2 = policy.initial_state(2, seed=9), loaded.initial_state(2, seed=9)
    for _ in range(3):
        a1, s1 = policy.predict(obs, s1)
        a2, s2 = loaded.predict(obs, s2)
        np.testing.assert_array_equal(a1, a2)
    assert type(cls.load(path, env=gym.make(env_id))) is cls


def test_load_refusals(tmp_path, car_env: gym.Env) -> None:
    path = tmp_path / "static.pt"
    StaticPolicy.from_env(ANT_ID, seed=0).save(path)
    with pytest.raises(ValueError, match="StaticPolicy, not a HebbianPolicy"):
        HebbianPolicy.load(path)
    with pytest.raises(ValueError, match="made for observation"):
        StaticPolicy.load(path, env=car_env)
    d = torch.load(path, weights_only=True)
    d["format_version"] = FORMAT_VERSION + 1
    newer = tmp_path / "newer.pt"
    torch.save(d, newer)
    with pytest.raises(ValueError, match="newer"):
        load_policy(newer)
    d["format_version"], d["class"] = FORMAT_VERSION, "MysteryPolicy"
    unknown = tmp_path / "unknown.pt"
    torch.save(d, unknown)
    with pytest.raises(ValueError, match=r"unknown policy class 'MysteryPolicy'; accepted: \['Hebbian"):
        load_policy(unknown)
    torch.save({"flat": d["flat"]}, unknown)
    with pytest.raises(ValueError, match="is not a hebb-gym policy file"):
        load_policy(unknown)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a policy")
    with pytest.raises(ValueError, match="not a readable hebb-gym policy"):
        load_policy(junk)


def test_pickle_roundtrip(ant_obs: np.ndarray) -> None:
    """Workers receive policies by pickle; the copy acts the same."""
    policy = HebbianPolicy.from_env(ANT_ID, seed=0, rho=16)
    policy.predict(ant_obs[:2])  # fills the batch cache, which is not shipped
    copy = pickle.loads(pickle.dumps(policy))
    assert copy._batch_cache is None
    a1, _ = policy.predict(ant_obs[:2], policy.initial_state(2, seed=1))
    a2, _ = copy.predict(ant_obs[:2], copy.initial_state(2, seed=1))
    np.testing.assert_array_equal(a1, a2)


# --- bad input -----------------------------------------------------------------------------------


def test_bad_input(ant_obs: np.ndarray) -> None:
    policy = HebbianPolicy.from_env(ANT_ID, seed=0)
    other = HebbianPolicy.from_env(ANT_ID, seed=0)
    with pytest.raises(ValueError, match=r"observation has shape \(26,\)"):
        policy.predict(np.zeros(26))
    with pytest.raises(TypeError, match="observation has dtype"):
        policy.predict(np.array(["a"] * 27))
    _, state = policy.predict(ant_obs[:2])
    with pytest.raises(ValueError, match="episode_start"):
        policy.predict(ant_obs[:2], state, episode_start=np.array([True, False, True]))
    with pytest.raises(ValueError, match="another policy"):
        other.predict(ant_obs[:2], state)
    with pytest.raises(TypeError, match="PolicyState"):
        policy.predict(ant_obs[:2], state=(np.zeros(3),))
    with pytest.raises(ValueError, match="state is for 2 envs"):
        policy.predict(ant_obs[:3], state)
    with pytest.raises(ValueError, match=r"vector has shape \(3,\)"):
        policy.set_flat(np.zeros(3))
    with pytest.raises(TypeError, match="vector has dtype"):
        policy.set_flat(np.array(["x"] * policy.num_params))
    with pytest.raises(ValueError, match="params has shape"):
        policy.batch(policy.get_flat())
    with pytest.raises(ValueError, match="not a known Hebbian rule"):
        HebbianPolicy.from_env(ANT_ID, rule="Oja")
    with pytest.raises(ValueError, match="rho"):
        HebbianPolicy.from_env(ANT_ID, rho=0)
    with pytest.raises(ValueError, match="rho"):
        HebbianPolicy.from_env(ANT_ID, rho=10**6)
    with pytest.raises(TypeError, match="rho"):
        HebbianPolicy.from_env(ANT_ID, rho=1.5)
    with pytest.raises(ValueError, match="init"):
        HebbianPolicy.from_env(ANT_ID, init="zeros")
    with pytest.raises(TypeError, match="unknown option"):
        StaticPolicy.from_env(ANT_ID, rule="A")
    with pytest.raises(TypeError, match="env_or_id"):
        HebbianPolicy.from_env(42)
    batch = policy.batch(policy.get_flat()[None])
    st = batch.initial_state(2, seed=0)
    with pytest.raises(ValueError, match=r"obs has shape"):
        batch.act(ant_obs[:2], st)
    with pytest.raises(ValueError, match="n_envs"):
        batch.initial_state(0, seed=0)
