"""The fast state_pixels renderer draws what Gymnasium draws, and changes nothing else."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import hebb_gym  # noqa: F401  (registers the ids)
from hebb_gym.car_racing import HebbCarRacing

STEPS = 300
VIEW_ROWS = 84  # rows above the indicator bar

# Colour prototypes after Gymnasium's smoothscale (which darkens by ~2 levels) and their class.
_PROTOTYPES = np.array(
    [
        *[(100, 100, 100), (102, 102, 102), (105, 105, 105)],  # road shades
        *[(253, 253, 253), (253, 0, 0)],  # kerbs (part of the road)
        *[(100, 202, 100), (100, 228, 100)],  # background, grass patches
        *[(202, 0, 0), (0, 0, 0), (75, 75, 75)],  # hull, wheels, wheel stripe
    ],
    dtype=np.float32,
)
_CLASS = np.array([0, 0, 0, 0, 0, 1, 1, 2, 2, 2])  # road, grass, car
_NAMES = ("road", "grass", "car")


def fixed_actions(n: int = STEPS) -> np.ndarray:
    """A fixed driving sequence: straight, then smoothly wandering steer with gas and some braking."""
    rng = np.random.default_rng(1234)
    actions = np.zeros((n, 3), np.float32)
    steer = 0.0
    for t in range(n):
        steer = float(np.clip(0.9 * steer + 0.3 * rng.normal(), -1.0, 1.0)) if t >= 40 else 0.0
        gas = 0.4 if t < 40 else (0.5 if rng.random() < 0.6 else 0.0)
        actions[t] = (steer, gas, 0.3 if rng.random() < 0.1 else 0.0)
    return actions


def classify(obs: np.ndarray) -> np.ndarray:
    """Road / grass / car label of each view pixel by its nearest prototype colour."""
    px = obs[:VIEW_ROWS].reshape(-1, 1, 3).astype(np.float32)
    nearest = np.argmin(((px - _PROTOTYPES[None]) ** 2).sum(axis=2), axis=1)
    return _CLASS[nearest].reshape(VIEW_ROWS, -1)


def run(renderer: str, seed: int, actions: np.ndarray, **kwargs) -> dict:
    env = gym.make("HebbCarRacing-Default-v0", renderer=renderer, **kwargs)
    obs, _ = env.reset(seed=seed)
    car = env.unwrapped.car
    frames, rewards, ends, states = [obs], [], [], []
    for a in actions:
        obs, r, terminated, truncated, _ = env.step(a)
        frames.append(obs)
        rewards.append(r)
        ends.append((terminated, truncated))
        states.append((*car.hull.position, car.hull.angle, *car.hull.linearVelocity, car.wheels[2].omega))
        if terminated or truncated:
            break
    env.close()
    return {"frames": np.array(frames), "rewards": rewards, "ends": ends, "states": np.array(states)}


@pytest.fixture(scope="module", params=[0, 7])
def episode_pair(request) -> tuple[dict, dict]:
    actions = fixed_actions()
    return run("fast", request.param, actions), run("exact", request.param, actions)


def test_same_physics_rewards_and_terminations(episode_pair) -> None:
    fast, exact = episode_pair
    assert fast["rewards"] == exact["rewards"]
    assert fast["ends"] == exact["ends"]
    np.testing.assert_array_equal(fast["states"], exact["states"])
    assert len(fast["rewards"]) == STEPS  # the sequence neither finishes a lap nor leaves the playfield
    assert sum(fast["rewards"]) > 0  # it does visit road tiles (they change colour when touched)


def test_observations_match_within_6_levels(episode_pair) -> None:
    fast, exact = episode_pair
    diff = np.abs(fast["frames"].astype(np.int16) - exact["frames"].astype(np.int16))
    per_frame = diff.reshape(len(diff), -1).mean(axis=1)
    assert per_frame.mean() <= 6.0, per_frame.mean()  # measured ~0.3 levels
    assert per_frame.max() <= 12.0, per_frame.max()  # no single frame is far off either (zoom-in included)
    # the indicator bar (speed, ABS, steering, gyro, score) matches closely on its own
    assert diff[:, VIEW_ROWS:].mean() <= 3.0


def test_road_grass_car_agree_on_98_percent_of_pixels(episode_pair) -> None:
    fast, exact = episode_pair
    agree = np.array([(classify(f) == classify(e)).mean() for f, e in zip(fast["frames"], exact["frames"])])
    assert agree.mean() >= 0.98, agree.mean()
    assert agree.min() >= 0.97, agree.min()  # worst frame: during the zoom-in of the first second
    # on the frame with the most road in view, every class covers about as many pixels in both
    busiest = int(np.argmax([(classify(e) == 0).sum() for e in exact["frames"]]))
    f_cls, e_cls = classify(fast["frames"][busiest]), classify(exact["frames"][busiest])
    for k, name in enumerate(_NAMES):
        assert (e_cls == k).sum() > 15, name
        assert abs(int((f_cls == k).sum()) - int((e_cls == k).sum())) <= 0.05 * (e_cls == k).sum() + 3, name


def test_domain_randomized_colours_match() -> None:
    actions = fixed_actions(60)
    fast = run("fast", 3, actions, domain_randomize=True)
    exact = run("exact", 3, actions, domain_randomize=True)
    assert fast["rewards"] == exact["rewards"]
    diff = np.abs(fast["frames"].astype(np.int16) - exact["frames"].astype(np.int16))
    assert diff.mean() <= 6.0


def test_reset_draws_each_new_track() -> None:
    """One env, several resets: the fast frame follows each new track (no stale world texture)."""
    fast = HebbCarRacing(renderer="fast")
    exact = HebbCarRacing(renderer="exact")
    for seed in (1, 2, 1):
        f, _ = fast.reset(seed=seed)
        e, _ = exact.reset(seed=seed)
        for _ in range(60):
            f, *_ = fast.step(np.array([0.0, 0.3, 0.0], np.float32))
            e, *_ = exact.step(np.array([0.0, 0.3, 0.0], np.float32))
        assert np.abs(f.astype(np.int16) - e).mean() <= 3.0


def test_touched_tiles_turn_grey_in_the_fast_world() -> None:
    """Gymnasium greys a tile when the car touches it; the fast world texture follows."""
    env = HebbCarRacing()
    env.reset(seed=0)
    for _ in range(80):
        env.step(np.array([0.0, 0.3, 0.0], np.float32))
    renderer = env._fast
    _, texels, size = renderer._levels[0]

    def texel_rgb(i: int) -> tuple[int, ...]:
        centre = np.mean(env.road[i].fixtures[0].shape.vertices, axis=0)
        u, v = (renderer._texel(centre) / 2).astype(int)
        return tuple(int(c) for c in texels.reshape(size, size)[v, u : u + 1].view(np.uint8)[2::-1])

    # tiles i % 3 == 2 start at 102 + 5.1 = 107 grey; visited ones are greyed to 102
    visited = [i for i, t in enumerate(env.road) if t.road_visited and i % 3 == 2]
    fresh = [i for i, t in enumerate(env.road) if not t.road_visited and i % 3 == 2]
    assert len(visited) >= 3 and len(fresh) >= 3
    assert {texel_rgb(i) for i in visited} == {(102, 102, 102)}
    assert {texel_rgb(i) for i in fresh[:20]} == {(107, 107, 107)}


def test_other_render_modes_still_work_with_fast_observations() -> None:
    env = gym.make("HebbCarRacing-WindWest-v0", render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(np.array([0.0, 0.5, 0.0], np.float32))
    frame = env.render()
    assert obs.shape == (96, 96, 3) and frame.shape == (400, 600, 3) and frame.dtype == np.uint8
    assert frame.std() > 10


def test_unknown_renderer_names_the_accepted_values() -> None:
    with pytest.raises(ValueError) as err:
        gym.make("HebbCarRacing-Default-v0", renderer="gpu")
    msg = str(err.value)
    assert "renderer" in msg and "'gpu'" in msg and "'fast'" in msg and "'exact'" in msg
