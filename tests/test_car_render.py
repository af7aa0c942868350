"""The fast state_pixels renderer draws what Gymnasium draws, and changes nothing else; its compiled drawing
(hebb_gym.car_draw_kernel, with numba) draws what its reference drawing draws."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import gymnasium as gym
import numpy as np
import pygame
import pytest

import hebb_gym  # noqa: F401  (registers the ids)
from hebb_gym import car_draw_kernel, car_world_kernel, pygame_fill
from hebb_gym.car_racing import HebbCarRacing
from hebb_gym.fast_car import ENV_VAR

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


# ---------------------------------------------------------------------------------------------- compiled drawing
needs_numba = pytest.mark.skipif(
    not car_draw_kernel.AVAILABLE,
    reason='numba is not installed (pip install "hebb-gym[speed]"): the reference drawing runs instead',
)


def steering_actions(n: int, seed: int) -> np.ndarray:
    """Random smoothed steering with gas and some braking from the first step (the car leaves the road too):
    the benchmark's driving (benchmarks/car_render.py), so the test draws what the timing draws."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "car_render.py"
    spec = importlib.util.spec_from_file_location("bench_car_render", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.action_sequence(n, seed)


def both_drawings(seed: int, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every frame of one episode drawn both ways from the same state: (compiled, reference, rewards)."""
    env = HebbCarRacing()
    env.reset(seed=seed)
    renderer = env._fast
    compiled, reference, rewards = [], [], []
    for a in actions:
        _, r, terminated, truncated, _ = env.step(a)
        rewards.append(r)
        renderer.compiled = False
        reference.append(renderer.render(env))
        renderer.compiled = True
        compiled.append(renderer.render(env))
        if terminated or truncated:
            break
    env.close()
    return np.array(compiled), np.array(reference), np.array(rewards)


@needs_numba
@pytest.mark.parametrize("seed, actions", [(0, "fixed"), (7, "fixed"), (3, "steering"), (11, "steering")])
def test_compiled_frames_are_the_reference_frames(seed, actions) -> None:
    """Zoom-in, driving, tiles turning grey, bars moving: the compiled frames are the reference's (measured:
    identical on every pixel; the bound leaves room for the car's box filter, float64 sums against BLAS's
    float32)."""
    acts = fixed_actions() if actions == "fixed" else steering_actions(STEPS, seed)
    compiled, reference, rewards = both_drawings(seed, acts)
    assert len(compiled) == STEPS
    assert rewards.max() > 1.0  # tiles were visited, so they turned grey in the world texture
    bars = reference[:, VIEW_ROWS:]
    assert len({b.tobytes() for b in bars}) > STEPS // 3  # the indicator bars and the score move
    diff = np.abs(compiled.astype(np.int16) - reference)
    assert diff.max() <= 1, diff.max()
    assert (diff == 0).mean() >= 0.9999, (diff == 0).mean()


@needs_numba
def test_compiled_drawing_changes_nothing_else() -> None:
    """Two envs, one drawn each way: the same observations, rewards and car states step by step."""
    actions = steering_actions(120, 5)
    runs = []
    for compiled in (True, False):
        env = HebbCarRacing()
        env._fast.compiled = compiled
        obs, _ = env.reset(seed=5)
        frames, rewards, states = [obs], [], []
        for a in actions:
            obs, r, *_ = env.step(a)
            frames.append(obs)
            rewards.append(r)
            states.append((*env.car.hull.position, env.car.hull.angle, *env.car.hull.linearVelocity))
        runs.append((np.array(frames), rewards, np.array(states)))
        env.close()
    (f_c, r_c, s_c), (f_r, r_r, s_r) = runs
    assert r_c == r_r
    np.testing.assert_array_equal(s_c, s_r)
    assert np.abs(f_c.astype(np.int16) - f_r).max() <= 1


def test_fast_car_switch_selects_the_drawing(monkeypatch) -> None:
    renderer = HebbCarRacing()._fast
    monkeypatch.setenv(ENV_VAR, "0")
    assert not renderer.uses_compiled()  # read at every frame
    monkeypatch.delenv(ENV_VAR)
    assert renderer.uses_compiled() == car_draw_kernel.AVAILABLE
    renderer.compiled = False
    assert not renderer.uses_compiled()
    monkeypatch.setattr(car_draw_kernel, "AVAILABLE", False)
    renderer.compiled = None
    assert not renderer.uses_compiled()  # without numba: the reference drawing
    with pytest.raises(RuntimeError, match="numba"):
        renderer.compiled = True
    with pytest.raises(ValueError, match="compiled"):
        renderer.compiled = "yes"


@needs_numba
def test_compiled_fill_is_pygames_polygon_fill() -> None:
    """Random convex quadrilaterals and octagons, some beyond the surface's edges: the same pixels as
    pygame.draw.polygon."""
    rng = np.random.default_rng(0)
    h, w = 40, 50
    for trial in range(300):
        n = 4 if trial % 3 else 8
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        centre = rng.uniform(-10, 60, 2)
        radius = rng.uniform(0.3, 30, 2)
        pts = [(centre[0] + radius[0] * np.cos(a), centre[1] + radius[1] * np.sin(a)) for a in angles]
        surface = pygame.Surface((w, h), pygame.SRCALPHA, 32)
        surface.fill((0, 0, 0, 0))
        pygame.draw.polygon(surface, (255, 255, 255), [(float(x), float(y)) for x, y in pts])
        expected = pygame.surfarray.array_alpha(surface).T > 0
        labels = np.zeros((h, w), np.uint8)
        extent = np.empty((h, 2), np.int64)
        xs = np.array([int(x) for x, _ in pts], np.int64)  # pygame truncates float vertices toward zero
        ys = np.array([int(y) for _, y in pts], np.int64)
        pygame_fill.fill_polygon(labels, extent, xs, ys, n, 1, np.empty(n, np.int64))
        np.testing.assert_array_equal(labels > 0, expected, err_msg=f"trial {trial}: {pts}")


def test_compiled_inputs_are_checked() -> None:
    overlay_env = HebbCarRacing()
    overlay_env.reset(seed=0)
    car, _, values = overlay_env._fast._overlay.kernel_inputs(overlay_env)
    car_draw_kernel.check_car(*car)
    assert len(values) + 8 == car_draw_kernel.STEP_SIZE
    box, hull_xy, starts, wheel = car
    with pytest.raises(ValueError, match="car"):
        car_draw_kernel.check_car(box.astype(np.float32), hull_xy, starts, wheel)
    with pytest.raises(ValueError, match="hull_starts"):
        car_draw_kernel.check_car(box, hull_xy, starts[:-1], wheel)
    with pytest.raises(ValueError, match=">= 4"):
        car_draw_kernel.check_car(box, hull_xy[:3], np.array([0, 3]), wheel)
    with pytest.raises(ValueError, match="texels"):
        car_draw_kernel.check_level(np.zeros(10, np.uint32), 4, np.zeros(96, np.float32), np.zeros(84, np.float32))
    with pytest.raises(ValueError, match="dy"):
        car_draw_kernel.check_level(np.zeros(16, np.uint32), 4, np.zeros(96, np.float32), np.zeros(96, np.float32))
    if car_draw_kernel.AVAILABLE:
        with pytest.raises(ValueError, match="step"):
            car_draw_kernel.draw_frame(None, None, 0, None, None, np.zeros(3), car, None)
    overlay_env.close()


@needs_numba
@pytest.mark.parametrize("seed, randomize", [(0, False), (9, True)])
def test_compiled_world_texture_is_the_reference_texture(seed, randomize) -> None:
    """The world's levels, painted and halved by the compiled kernels, equal pygame's word for word: after the
    build and after driving over tiles (each greyed tile repaints its neighbourhood)."""
    textures = []
    for compiled in (True, False):
        env = HebbCarRacing(domain_randomize=randomize)
        env._fast.compiled = compiled
        env.reset(seed=seed)
        built = [texels.copy() for _, texels, _ in env._fast._levels]
        for a in fixed_actions(150):
            env.step(a)
        assert env.tile_visited_count >= 3
        textures.append((built, [texels.copy() for _, texels, _ in env._fast._levels]))
        env.close()
    (built_c, driven_c), (built_r, driven_r) = textures
    for c, r in zip(built_c + driven_c, built_r + driven_r):
        np.testing.assert_array_equal(c, r)
    assert any((a != b).any() for a, b in zip(built_r, driven_r))  # the driving did grey some texels


def test_compiled_world_inputs_are_checked() -> None:
    levels = (np.zeros((64, 64), np.uint32), np.zeros((32, 32), np.uint32))
    no_grass, no_road = np.zeros((0, 4)), (np.zeros((0, 4, 2)), np.zeros((0, 4)), np.zeros(0, np.int64))
    args = (0, 0, 32, 32, (0, 0, 8), 0, no_grass, 0, *no_road, np.zeros((1, 3)), np.zeros((0, 3)))
    with pytest.raises(ValueError, match="levels\\[1\\]"):
        car_world_kernel.paint_levels((levels[0], levels[0]), *args)
    with pytest.raises(ValueError, match="multiples of 4"):
        car_world_kernel.paint_levels(levels, 2, *args[1:])
    with pytest.raises(ValueError, match="must lie in the levels"):
        car_world_kernel.paint_levels(levels, 0, 128, *args[2:])
    with pytest.raises(ValueError, match="same 2 polygons"):
        car_world_kernel.paint_levels(levels, *args[:8], np.zeros((2, 4, 2)), np.zeros((2, 4)),
                                      np.zeros(3, np.int64), np.zeros((1, 3)), np.zeros((2, 3)))
