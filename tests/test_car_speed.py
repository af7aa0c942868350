"""The car's fast paths against the plain ones they replace by default: the batched CNN front end
(agents.policies.image_features) and the fused plastic update (agents.policies.fused_update, with numba)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import hebb_gym  # noqa: F401  (registers the IDs)
from agents import HebbianPolicy, LSTMPolicy, StaticPolicy
from agents.policies import fused_update
from agents.policies.image_features import ENV_VAR, ImageFeatures
from agents.policies.networks import (
    activation_buffer,
    conv_features,
    preprocess_images,
    spec_from_spaces,
)
from agents.policies.plastic_step import make_plan, plastic_step

CAR_ID = "HebbCarRacing-Default-v0"
CAR_ACTIONS = gym.spaces.Box(np.array([-1, 0, 0], np.float32), np.ones(3, np.float32))

torch.set_num_threads(1)


def _batches(policy, params, monkeypatch):
    """The same individuals twice: on the plain path (HEBB_GYM_FAST_CAR=0) and on the default one."""
    monkeypatch.setenv(ENV_VAR, "0")
    plain = policy.batch(params)
    monkeypatch.delenv(ENV_VAR)
    fast = policy.batch(params)
    assert not plain.fast_images and fast.fast_images
    return plain, fast


def test_fast_path_is_the_default_for_images_only(monkeypatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert HebbianPolicy.from_env(CAR_ID, seed=0).batch(np.zeros((1, HebbianPolicy.from_env(CAR_ID).num_params)))\
        .fast_images
    ant = HebbianPolicy.from_env("HebbAnt-Default-v0", seed=0)
    assert not ant.batch(ant.get_flat()[None]).fast_images  # the quadruped's MLP path is untouched
    monkeypatch.setenv(ENV_VAR, "0")
    car = StaticPolicy.from_env(CAR_ID, seed=0)
    assert not car.batch(car.get_flat()[None]).fast_images


@pytest.mark.parametrize("cls", [HebbianPolicy, StaticPolicy, LSTMPolicy])
def test_fast_path_acts_as_the_plain_path_on_a_short_episode(cls, monkeypatch) -> None:
    """Same observations (a real 40-step drive) -> the same actions, and the same plastic weights, to float32 rounding."""
    policy = cls.from_env(CAR_ID, seed=0)
    rng = np.random.default_rng(1)
    n_ind, n_env = 3, 2
    params = policy.get_flat()[None] + 0.1 * rng.standard_normal((n_ind, policy.num_params)).astype(np.float32)
    plain, fast = _batches(policy, params, monkeypatch)
    if cls is HebbianPolicy:  # the fast path's plastic update is the compiled kernel where numba is installed
        assert not plain.fused_update and fast.fused_update == fused_update.AVAILABLE
    s_plain = plain.initial_state(n_env, seed=[5, 6, 7])
    s_fast = fast.initial_state(n_env, seed=[5, 6, 7])
    envs = [gym.make(CAR_ID) for _ in range(n_ind * n_env)]
    try:
        obs = np.stack([env.reset(seed=k % n_env)[0] for k, env in enumerate(envs)]).reshape(n_ind, n_env, 96, 96, 3)
        moved = 0.0
        for _ in range(40):
            a_plain, _ = plain.act(obs, s_plain)
            a_fast, _ = fast.act(obs, s_fast)
            assert a_fast.dtype == a_plain.dtype and a_fast.shape == a_plain.shape
            np.testing.assert_allclose(a_fast, a_plain, rtol=1e-4, atol=1e-5)
            for w_plain, w_fast in zip(s_plain.weights, s_fast.weights):
                torch.testing.assert_close(w_fast, w_plain, rtol=1e-4, atol=1e-5)
            moved = max(moved, float(np.abs(a_plain - a_plain.mean(axis=(0, 1))).max()))
            flat = a_plain.reshape(n_ind * n_env, 3)  # both see the same frames: the envs follow the plain actions
            obs = np.stack([env.step(flat[k])[0] for k, env in enumerate(envs)]).reshape(obs.shape)
        assert moved > 0  # the individuals act differently: the comparison is not between constants
    finally:
        for env in envs:
            env.close()


@pytest.mark.parametrize(
    "space",
    [
        gym.spaces.Box(0, 255, (96, 96, 3), np.uint8),  # the car
        gym.spaces.Box(0, 255, (84, 84, 3), np.uint8),  # already the network's size: no resize
        gym.spaces.Box(0.0, 1.0, (64, 72, 1), np.float32),  # float pixels, one channel, upscaled
        gym.spaces.Box(-1.0, 1.0, (100, 90, 4), np.float32),  # a pixel range that does not start at 0
    ],
    ids=["car", "84x84", "float-1ch", "signed-4ch"],
)
def test_image_features_match_the_plain_front_end(space: gym.spaces.Box) -> None:
    spec = spec_from_spaces(space, CAR_ACTIONS)
    rng = np.random.default_rng(0)
    n_ind, n_env = 3, 2
    weights = [[torch.from_numpy(0.3 * rng.standard_normal(s).astype(np.float32)) for s in spec.conv_shapes]
               for _ in range(n_ind)]
    frames = np.stack([space.sample() for _ in range(n_ind * n_env)]).reshape(n_ind, n_env, *space.shape)
    x = torch.from_numpy(frames)
    before = x.clone()
    want = torch.stack([conv_features(preprocess_images(x[p], *spec.pixel_range), weights[p], spec.conv_strides)
                        for p in range(n_ind)])
    front = ImageFeatures(spec, weights, n_env)
    got = front(x)
    assert got.shape == (n_ind, n_env, spec.n_features) and got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert torch.equal(x, before)  # neither path scales the caller's frames in place
    again = front(x)  # the buffers are reused, the numbers do not drift
    torch.testing.assert_close(again, want, rtol=1e-4, atol=1e-5)


def test_image_features_refuse_a_vector_spec() -> None:
    spec = spec_from_spaces(gym.spaces.Box(-1, 1, (5,)), CAR_ACTIONS)
    with pytest.raises(ValueError, match="kind"):
        ImageFeatures(spec, [[]], 1)


NEEDS_NUMBA = pytest.mark.skipif(
    not fused_update.AVAILABLE, reason='numba is not installed (pip install "hebb-gym[speed]"): the torch update runs'
)
#: The rules with all four terms (the fused kernel's), and a shared one (rho > 1: coefficients gathered per synapse).
FUSED_RULES = [("ABCD_lr", 1), ("ABCD", 1), ("ABCD_lr_D_out", 1), ("ABCD_lr_D_in_and_out", 1), ("ABCD_lr", 7)]


def _random_plan_inputs(rule, rho, renorm, n_ind=3, n_env=2, seed=0):
    policy = HebbianPolicy.from_env(CAR_ID, seed=0, rule=rule, rho=rho, renorm=renorm)
    rng = np.random.default_rng(seed)
    params = rng.standard_normal((n_ind, policy.num_params)).astype(np.float32)
    batch = policy.batch(params)
    weights = batch.initial_state(n_env, seed=1).weights
    widths = [policy.spec.n_features] + [o for o, _ in policy.spec.dense_shapes]
    acts = [activation_buffer(n_ind, n_env, n) for n in widths]
    for a in acts:
        a.copy_(torch.from_numpy(rng.uniform(-1, 1, a.shape).astype(np.float32)))
    return batch, weights, acts


@NEEDS_NUMBA
@pytest.mark.parametrize("renorm", ["on", "off"])
@pytest.mark.parametrize(("rule", "rho"), FUSED_RULES, ids=[f"{r}-rho{k}" for r, k in FUSED_RULES])
def test_fused_update_equals_the_torch_update(rule, rho, renorm) -> None:
    batch, weights, acts = _random_plan_inputs(rule, rho, renorm)
    ref = [w.clone() for w in weights]
    new = [w.clone() for w in weights]
    plan_ref = make_plan(ref, acts, batch._stacked, batch.terms, batch.normalize)
    plan_new = make_plan(new, acts, batch._stacked, batch.terms, batch.normalize, fused=True)
    assert all(layer.fused is None for layer in plan_ref.layers)
    assert all(layer.fused is not None for layer in plan_new.layers)  # the kernel really runs
    for _ in range(3):  # a few steps: the renormalised weights feed the next update
        plastic_step(plan_ref)
        plastic_step(plan_new)
        for w_ref, w_new in zip(ref, new):
            torch.testing.assert_close(w_new, w_ref, rtol=1e-6, atol=1e-7)
    if renorm == "on":
        for w in new:
            torch.testing.assert_close(w.abs().amax(dim=(-2, -1)), torch.ones(w.shape[:2]))


@NEEDS_NUMBA
def test_fused_update_keeps_nan_and_zero_matrices_as_torch_does() -> None:
    batch, weights, acts = _random_plan_inputs("ABCD_lr", 1, "on", n_ind=2, n_env=1)
    for t in batch._stacked[0]:  # individual 1's first layer: no change at all, so its weights stay zero
        t[1].zero_()
    weights[0][1].zero_()
    weights[1][0, 0, 3, 5] = float("nan")  # individual 0's second layer: NaN spreads through the renormalisation
    ref = [w.clone() for w in weights]
    new = [w.clone() for w in weights]
    plastic_step(make_plan(ref, acts, batch._stacked, batch.terms, True))
    plastic_step(make_plan(new, acts, batch._stacked, batch.terms, True, fused=True))
    assert torch.isnan(new[1][0]).all() and not torch.isnan(new[1][1]).any()
    assert torch.equal(new[0][1], torch.zeros_like(new[0][1]))
    for w_ref, w_new in zip(ref, new):
        torch.testing.assert_close(w_new, w_ref, rtol=1e-6, atol=1e-7, equal_nan=True)


def test_fused_update_refuses_arrays_it_cannot_step() -> None:
    w = np.zeros((2, 1, 3, 4), np.float32)
    mul = add = np.zeros((2, 1, 2, 3, 4), np.float32)
    pre, post = np.zeros((2, 1, 4), np.float32), np.zeros((2, 1, 3), np.float32)
    fused_update.check_args(w, mul, add, pre, post)
    with pytest.raises(TypeError, match="float32"):
        fused_update.check_args(w.astype(np.float64), mul, add, pre, post)
    with pytest.raises(TypeError, match="numpy array"):
        fused_update.check_args(torch.from_numpy(w), mul, add, pre, post)
    with pytest.raises(ValueError, match="mul"):
        fused_update.check_args(w, np.zeros((2, 1, 2, 4, 3), np.float32), add, pre, post)
    with pytest.raises(ValueError, match="pre"):
        fused_update.check_args(w, mul, add, np.zeros((2, 1, 5), np.float32), post)


def test_without_numba_the_torch_update_runs(monkeypatch) -> None:
    monkeypatch.setattr(fused_update, "AVAILABLE", False)
    monkeypatch.delenv(ENV_VAR, raising=False)
    batch, weights, acts = _random_plan_inputs("ABCD_lr", 1, "on")
    assert not batch.fused_update
    plan = make_plan(weights, acts, batch._stacked, batch.terms, True, fused=True)
    assert all(layer.fused is None for layer in plan.layers)
