"""The batched CNN front end (agents.policies.image_features) against the plain path it replaces by default."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import hebb_gym  # noqa: F401  (registers the IDs)
from agents import HebbianPolicy, LSTMPolicy, StaticPolicy
from agents.policies.image_features import ENV_VAR, ImageFeatures
from agents.policies.networks import conv_features, preprocess_images, spec_from_spaces

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
