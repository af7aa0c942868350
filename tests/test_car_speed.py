"""The car's fast paths against the plain ones they replace by default: the batched CNN front end
(agents.policies.image_features, its conv stack compiled by agents.policies.conv_kernel with numba) and the
fused plastic update (agents.policies.fused_update, with numba)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import hebb_gym  # noqa: F401  (registers the IDs)
from agents import HebbianPolicy, LSTMPolicy, StaticPolicy
from agents.policies import conv_kernel, fused_update
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
            assert fast._image_features.compiled == conv_kernel.AVAILABLE  # the compiled conv stack, with numba
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


NEEDS_NUMBA_CONV = pytest.mark.skipif(
    not conv_kernel.AVAILABLE, reason='numba is not installed (pip install "hebb-gym[speed]"): torch\'s convolutions run'
)


@pytest.fixture(scope="module")
def car_frames() -> np.ndarray:
    """12 real frames (96x96x3 uint8) of HebbCarRacing-Default-v0: two short drives, from the start and on the track."""
    frames = []
    env = gym.make(CAR_ID)
    try:
        rng = np.random.default_rng(3)
        for seed in (0, 1):
            frames.append(env.reset(seed=seed)[0])
            for k in range(30):
                obs = env.step(np.array([rng.uniform(-1, 1), 0.8, 0.0], np.float32))[0]
                if k % 6 == 5:
                    frames.append(obs)
    finally:
        env.close()
    return np.stack(frames)


def _conv_weights(spec, n_ind, rng, scale=0.3):
    return [[torch.from_numpy(scale * rng.standard_normal(s).astype(np.float32)) for s in spec.conv_shapes]
            for _ in range(n_ind)]


def _kernel_features(spec, weights, images, n_env):
    """conv_kernel.conv_stack on resized frames (P * E, C, 84, 84), any pixel range of the spec."""
    n_ind = len(weights)
    w1 = np.stack([w[0].numpy() for w in weights])
    w2 = np.stack([w[1].numpy() for w in weights])
    out = activation_buffer(n_ind, n_env, spec.n_features)
    arr = images.numpy()
    work = conv_kernel.workspace(w1.shape[2], w1.shape[1])
    conv_kernel.check_args(arr, w1, w2, n_env, out.numpy(), work)
    low, high = spec.pixel_range
    conv_kernel.conv_stack(arr, w1, w2, n_env, low, high - low, out.numpy(), work)
    return out


@NEEDS_NUMBA_CONV
@pytest.mark.parametrize("scale", [0.1, 0.3, 1.0])  # 0.1: the policies' initial std; 1.0: saturated tanh
def test_conv_kernel_equals_torch_conv_stack_on_real_frames(car_frames, scale) -> None:
    space = gym.make(CAR_ID).observation_space
    spec = spec_from_spaces(space, CAR_ACTIONS)
    assert conv_kernel.fits(spec.conv_shapes, spec.conv_strides)
    n_ind, n_env = 4, 3
    weights = _conv_weights(spec, n_ind, np.random.default_rng(int(scale * 10)), scale)
    x = torch.from_numpy(car_frames[: n_ind * n_env]).reshape(n_ind, n_env, *space.shape)
    images = preprocess_images(x.reshape(-1, *space.shape), *spec.pixel_range) * 255.0  # resized, unscaled
    want = torch.stack([conv_features(preprocess_images(x[p]), weights[p], spec.conv_strides) for p in range(n_ind)])
    got = _kernel_features(spec, weights, images, n_env)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert float(want.abs().max()) > 0.5 and float(want.std()) > 0.1  # features that vary, not a saturated constant


@NEEDS_NUMBA_CONV
@pytest.mark.parametrize(
    ("channels", "c1", "c2"),
    [(3, 6, 8), (1, 6, 8), (4, 6, 8), (3, 5, 7), (2, 1, 1)],  # the car's, other inputs, odd channel counts
)
def test_conv_kernel_equals_torch_conv_stack_on_random_images(channels, c1, c2) -> None:
    rng = np.random.default_rng(channels * 100 + c1 * 10 + c2)
    n_ind, n_env = 3, 2
    shapes = ((c1, channels, 3, 3), (c2, c1, 5, 5))
    assert conv_kernel.fits(shapes, (1, 2))
    weights = [[torch.from_numpy(0.3 * rng.standard_normal(s).astype(np.float32)) for s in shapes]
               for _ in range(n_ind)]
    # channels-last memory, as the resize makes it, pixel values in -1..1 (a range that does not start at 0)
    images = torch.from_numpy(rng.uniform(-1, 1, (n_ind * n_env, 84, 84, channels)).astype(np.float32))
    images = images.permute(0, 3, 1, 2)
    want = torch.stack([conv_features((images[p * n_env:(p + 1) * n_env] + 1) / 2, weights[p], (1, 2))
                        for p in range(n_ind)])
    w1 = np.stack([w[0].numpy() for w in weights])
    w2 = np.stack([w[1].numpy() for w in weights])
    out = activation_buffer(n_ind, n_env, c2 * 81)
    work = conv_kernel.workspace(channels, c1)
    conv_kernel.check_args(images.numpy(), w1, w2, n_env, out.numpy(), work)
    conv_kernel.conv_stack(images.numpy(), w1, w2, n_env, -1.0, 2.0, out.numpy(), work)
    torch.testing.assert_close(out, want, rtol=1e-4, atol=1e-5)


@NEEDS_NUMBA_CONV
def test_image_features_of_an_individual_do_not_depend_on_its_batch_mates(car_frames) -> None:
    """P x E frames in one call against each individual alone (and in another order): equal bit for bit."""
    space = gym.make(CAR_ID).observation_space
    spec = spec_from_spaces(space, CAR_ACTIONS)
    n_ind, n_env = 4, 3
    weights = _conv_weights(spec, n_ind, np.random.default_rng(7))
    x = torch.from_numpy(car_frames[: n_ind * n_env]).reshape(n_ind, n_env, *space.shape)
    front = ImageFeatures(spec, weights, n_env)
    assert front.compiled
    together = front(x).clone()
    for p in range(n_ind):
        alone = ImageFeatures(spec, [weights[p]], n_env)(x[p:p + 1])
        assert torch.equal(alone[0], together[p])
        for e in range(n_env):  # one env at a time: the frame's position in the call does not matter either
            single = ImageFeatures(spec, [weights[p]], 1)(x[p:p + 1, e:e + 1])
            assert torch.equal(single[0, 0], together[p, e])
    order = [2, 0, 3, 1]
    shuffled = ImageFeatures(spec, [weights[p] for p in order], n_env)(x[order])
    assert torch.equal(shuffled, together[order])


@NEEDS_NUMBA_CONV
def test_conv_kernel_keeps_nan_as_torch_does() -> None:
    space = gym.spaces.Box(0.0, 1.0, (84, 84, 3), np.float32)
    spec = spec_from_spaces(space, CAR_ACTIONS)
    rng = np.random.default_rng(5)
    weights = _conv_weights(spec, 3, rng)
    weights[1][0][2, 1, 0, 0] = float("nan")  # individual 1's first conv, output channel 2: NaN everywhere
    x = torch.from_numpy(np.stack([space.sample() for _ in range(3)])).reshape(3, 1, *space.shape)
    x[0, 0, 40, 50, 1] = float("nan")  # individual 0: one NaN pixel spreads to the features that see it
    want = torch.stack([conv_features(preprocess_images(x[p], 0.0, 1.0), weights[p], spec.conv_strides)
                        for p in range(3)])
    got = ImageFeatures(spec, weights, 1)(x)
    assert 0 < int(torch.isnan(want[0]).sum()) < want[0].numel() // 4
    assert torch.isnan(want[1]).all() and not torch.isnan(want[2]).any()
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5, equal_nan=True)


@NEEDS_NUMBA_CONV
def test_conv_kernel_tanh_is_within_float32_rounding_of_tanh() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-12, 12, 20_000), np.exp(rng.uniform(-20, 2.5, 5_000)), [0.0, 9.0, 50.0]])
    x = np.concatenate([x, -x]).astype(np.float32)
    got = np.array([conv_kernel._tanh(v) for v in x])
    np.testing.assert_allclose(got, np.tanh(x.astype(np.float64)), rtol=0, atol=4e-7)
    assert np.abs(got).max() == 1.0 and np.all(got[x == 0] == 0)
    assert np.isnan(conv_kernel._tanh(np.float32("nan")))
    assert conv_kernel._tanh(np.float32("inf")) == 1 and conv_kernel._tanh(np.float32("-inf")) == -1


def test_conv_kernel_refuses_arrays_it_cannot_compute() -> None:
    images = np.zeros((2, 3, 84, 84), np.float32)
    w1, w2 = np.zeros((2, 6, 3, 3, 3), np.float32), np.zeros((2, 8, 6, 5, 5), np.float32)
    out = np.zeros((2, 1, 648), np.float32)
    work = conv_kernel.workspace(3, 6)
    conv_kernel.check_args(images, w1, w2, 1, out, work)
    with pytest.raises(TypeError, match="float32"):
        conv_kernel.check_args(images.astype(np.float64), w1, w2, 1, out, work)
    with pytest.raises(TypeError, match="numpy array"):
        conv_kernel.check_args(torch.from_numpy(images), w1, w2, 1, out, work)
    with pytest.raises(ValueError, match="n_envs"):
        conv_kernel.check_args(images, w1, w2, 0, out, work)
    with pytest.raises(ValueError, match="images"):
        conv_kernel.check_args(images, w1, w2, 2, out, work)  # 2 individuals x 2 envs are 4 frames
    with pytest.raises(ValueError, match="w1"):
        conv_kernel.check_args(images, w1, np.zeros((2, 8, 5, 5, 5), np.float32), 1, out, work)
    with pytest.raises(ValueError, match="out"):
        conv_kernel.check_args(images, w1, w2, 1, np.zeros((2, 1, 647), np.float32), work)
    with pytest.raises(ValueError, match="work"):
        conv_kernel.check_args(images, w1, w2, 1, out, conv_kernel.workspace(1, 6))
    assert not conv_kernel.fits(((6, 3, 5, 5), (8, 6, 5, 5)), (1, 2))
    assert not conv_kernel.fits(((6, 3, 3, 3), (8, 6, 5, 5)), (1, 1))


def test_without_numba_image_features_run_torch_convolutions(monkeypatch) -> None:
    monkeypatch.setattr(conv_kernel, "AVAILABLE", False)
    space = gym.spaces.Box(0, 255, (96, 96, 3), np.uint8)
    spec = spec_from_spaces(space, CAR_ACTIONS)
    weights = _conv_weights(spec, 2, np.random.default_rng(2))
    x = torch.from_numpy(np.stack([space.sample() for _ in range(4)])).reshape(2, 2, *space.shape)
    front = ImageFeatures(spec, weights, 2)
    assert not front.compiled
    want = torch.stack([conv_features(preprocess_images(x[p]), weights[p], spec.conv_strides) for p in range(2)])
    torch.testing.assert_close(front(x), want, rtol=1e-4, atol=1e-5)


def test_image_features_compiled_switch(monkeypatch) -> None:
    spec = spec_from_spaces(gym.spaces.Box(0, 255, (96, 96, 3), np.uint8), CAR_ACTIONS)
    weights = _conv_weights(spec, 1, np.random.default_rng(4))
    assert not ImageFeatures(spec, weights, 1, compiled=False).compiled
    assert ImageFeatures(spec, weights, 1).compiled == conv_kernel.AVAILABLE
    with pytest.raises(TypeError, match="compiled"):
        ImageFeatures(spec, weights, 1, compiled=1)
    monkeypatch.setattr(conv_kernel, "AVAILABLE", False)
    with pytest.raises(ValueError, match="numba"):
        ImageFeatures(spec, weights, 1, compiled=True)
