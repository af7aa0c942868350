"""HebbCarRacing on the real Box2D simulator: kwargs, wind, grip, determinism, discrete actions."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import hebb_gym  # noqa: F401  (registers the ids)
from hebb_gym.car_racing import HebbCarRacing
from hebb_gym.variants import HIGH_FRICTION, LOW_FRICTION, WIND_FORCE

STILL = np.zeros(3, np.float32)


def _drive(env: gym.Env, actions: np.ndarray, seed: int) -> tuple[list[float], np.ndarray, np.ndarray]:
    """Rewards, hull poses (x, y, angle) and last observation of one seeded run."""
    obs, _ = env.reset(seed=seed)
    car = env.unwrapped.car
    rewards, poses = [], []
    for a in actions:
        obs, r, terminated, truncated, _ = env.step(a)
        rewards.append(r)
        poses.append((*car.hull.position, car.hull.angle))
        if terminated or truncated:
            break
    return rewards, np.array(poses), obs


def _random_actions(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.uniform([-1, 0, 0], [1, 1, 0.3], size=(n, 3))
    return a.astype(np.float32)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"friction": 0.0}, "friction"),
        ({"friction": -1.0}, "friction"),
        ({"friction": float("nan")}, "friction"),
        ({"friction": float("inf")}, "friction"),
        ({"friction": "high"}, "friction"),
        ({"friction": True}, "friction"),
        ({"wind": float("nan")}, "wind"),
        ({"wind": float("-inf")}, "wind"),
        ({"wind": "west"}, "wind"),
        ({"renderer": "opengl"}, "renderer"),
    ],
)
def test_bad_kwargs_raise_value_error_naming_argument(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError) as err:
        HebbCarRacing(**kwargs)
    msg = str(err.value)
    assert name in msg and repr(kwargs[name]) in msg and "accepted" in msg
    with pytest.raises(ValueError, match=name):
        gym.make("HebbCarRacing-Default-v0", **kwargs)


def test_kwargs_are_stored_and_stock_kwargs_pass_through() -> None:
    env = HebbCarRacing(friction=np.float32(1.5), wind=-12, lap_complete_percent=0.5, continuous=False)
    assert (env.friction, env.wind, env.renderer) == (1.5, -12.0, "fast")
    assert env.lap_complete_percent == 0.5 and env.action_space == gym.spaces.Discrete(5)
    for env_id, friction, wind in [
        ("HebbCarRacing-HighFriction-v0", HIGH_FRICTION, 0.0),
        ("HebbCarRacing-LowFriction-v0", LOW_FRICTION, 0.0),
        ("HebbCarRacing-WindWest-v0", 1.0, -WIND_FORCE),
        ("HebbCarRacing-WindEast-v0", 1.0, WIND_FORCE),
    ]:
        base = gym.make(env_id).unwrapped
        assert (base.friction, base.wind) == (friction, wind)


def test_wind_pushes_a_standing_car_west_and_east() -> None:
    """Zero actions for 2 s: the wind IDs carry the car downwind of where Default leaves it."""
    actions = np.repeat(STILL[None], 100, axis=0)
    x = {}
    for variant in ("Default", "WindWest", "WindEast"):
        _, poses, _ = _drive(gym.make(f"HebbCarRacing-{variant}-v0"), actions, seed=3)
        x[variant] = poses[-1, 0]
    west, east = x["WindWest"] - x["Default"], x["WindEast"] - x["Default"]
    # rolling tyres resist side slip with ~82 N per m/s each: ~WIND/328 m/s of drift (~0.8 m/s at 250 N)
    assert -5.0 < west < -0.8, west
    assert 0.8 < east < 5.0, east


def test_wind_is_a_force_along_world_x() -> None:
    """Twice the wind, about twice the westward drift of a standing car: a force, not a set speed."""
    actions = np.repeat(STILL[None], 50, axis=0)
    _, p0, _ = _drive(HebbCarRacing(), actions, seed=1)
    _, p1, _ = _drive(HebbCarRacing(wind=-200.0), actions, seed=1)
    _, p2, _ = _drive(HebbCarRacing(wind=-400.0), actions, seed=1)
    d1, d2 = p1[-1, :2] - p0[-1, :2], p2[-1, :2] - p0[-1, :2]
    assert d1[0] < -0.3 and d2[0] < -0.6
    assert d2[0] / d1[0] == pytest.approx(2.0, rel=0.15)


def _braking_distance(friction: float, v0: float = 20.0) -> tuple[float, float]:
    """Accelerate straight to v0, then lock the brakes: distance slid and speed when braking began."""
    env = HebbCarRacing(friction=friction)
    env.reset(seed=0)
    hull = env.car.hull
    for _ in range(200):
        speed = math.hypot(*hull.linearVelocity)
        if speed >= v0:
            break
        env.step(np.array([0.0, 0.3, 0.0], np.float32))
    start = np.array(hull.position)
    for _ in range(200):
        env.step(np.array([0.0, 0.0, 1.0], np.float32))
        if math.hypot(*hull.linearVelocity) < 0.05:
            break
    return float(np.linalg.norm(np.array(hull.position) - start)), speed


def test_higher_friction_stops_shorter() -> None:
    """Locked wheels slide at the grip limit: braking distance from 20 m/s falls as friction rises."""
    low, v_low = _braking_distance(LOW_FRICTION)
    default, v_default = _braking_distance(1.0)
    high, v_high = _braking_distance(HIGH_FRICTION)
    assert max(v_low, v_default, v_high) - min(v_low, v_default, v_high) < 0.5  # same speed at the brake
    # measured: about 1.65 m (x0.5), 0.74 m (x1), 0.28 m (x2)
    assert low > 1.6 * default > 0
    assert default > 1.6 * high > 0


def test_higher_friction_accelerates_faster_from_rest() -> None:
    """Full gas spins the rear wheels; more grip turns more of it into speed."""
    speeds = []
    for friction in (LOW_FRICTION, 1.0, HIGH_FRICTION):
        env = HebbCarRacing(friction=friction)
        env.reset(seed=0)
        for _ in range(15):
            env.step(np.array([0.0, 1.0, 0.0], np.float32))
        speeds.append(math.hypot(*env.car.hull.linearVelocity))
    assert speeds[0] < 0.8 * speeds[1] and speeds[1] < speeds[2]


def test_default_has_gymnasiums_physics() -> None:
    """Default variant = CarRacing-v3: same rewards and car poses under the same seed and actions."""
    actions = _random_actions(40, seed=5)
    r_stock, p_stock, _ = _drive(gym.make("CarRacing-v3"), actions, seed=11)
    r_ours, p_ours, _ = _drive(gym.make("HebbCarRacing-Default-v0"), actions, seed=11)
    assert r_stock == r_ours
    np.testing.assert_array_equal(p_stock, p_ours)


@pytest.mark.parametrize("env_id", ["HebbCarRacing-LowFriction-v0", "HebbCarRacing-WindEast-v0"])
def test_same_seed_same_run_and_variants_diverge(env_id: str) -> None:
    actions = _random_actions(60, seed=2)
    r1, p1, o1 = _drive(gym.make(env_id), actions, seed=7)
    r2, p2, o2 = _drive(gym.make(env_id), actions, seed=7)
    assert r1 == r2
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_array_equal(o1, o2)
    _, p_default, _ = _drive(gym.make("HebbCarRacing-Default-v0"), actions, seed=7)
    assert np.abs(p1[-1, :2] - p_default[-1, :2]).max() > 0.1


def test_reset_reseeds_the_same_env() -> None:
    env = gym.make("HebbCarRacing-WindWest-v0")
    actions = _random_actions(30, seed=4)
    first = _drive(env, actions, seed=9)
    _drive(env, actions, seed=10)
    again = _drive(env, actions, seed=9)
    assert first[0] == again[0]
    np.testing.assert_array_equal(first[1], again[1])
    np.testing.assert_array_equal(first[2], again[2])


def test_discrete_actions() -> None:
    env = gym.make("HebbCarRacing-LowFriction-v0", continuous=False)
    assert env.action_space == gym.spaces.Discrete(5)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (96, 96, 3) and obs.dtype == np.uint8
    car = env.unwrapped.car
    speeds, steering = [], []
    for a in [3] * 30 + [1] * 10 + [2] * 10 + [4] * 10 + [0] * 5:
        obs, reward, _terminated, _truncated, _ = env.step(a)
        assert env.observation_space.contains(obs) and np.isfinite(reward)
        speeds.append(math.hypot(*car.hull.linearVelocity))
        steering.append(car.wheels[0].joint.angle)
    assert speeds[29] > 3.0  # gas
    assert steering[39] < -0.3 and steering[49] > steering[39] + 0.4  # right, then back to the left
    assert speeds[59] < 0.5 * speeds[49]  # brake
    with pytest.raises(gym.error.InvalidAction):
        env.step(7)


def test_passes_gymnasium_check_env() -> None:
    check_env(gym.make("HebbCarRacing-WindEast-v0").unwrapped, skip_render_check=True)
