"""The quadruped variants on both backends: morphology read back from the compiled models, seeding,
divergence between variants, info["distance"] and the bullet info["progress"], the bullet burn-in, rendering and
clean close."""

from __future__ import annotations

import math
import os
import re
import tempfile

import gymnasium as gym
import numpy as np
import pytest

import hebb_gym  # noqa: F401  (registers the IDs)
from hebb_gym.ant import make_ant
from hebb_gym.ant_morphology import LEGS, lower_leg_lengths, scale_lower_legs, stock_xml

BACKENDS = ("mujoco", "bullet")
STOCK_LENGTH = 0.4 * math.sqrt(2.0)  # ankle capsule fromto "0 0 0 0.4 0.4 0" in both stock files

EXPECTED_SCALES = {
    "HebbAnt-Default-v0": {},
    "HebbAnt-LeftFrontLegDamage-v0": {"front_left": 0.25},
    "HebbAnt-RightFrontLegDamage-v0": {"front_right": 0.25},
    "HebbAnt-LongFrontLegs-v0": {"front_left": 1.5, "front_right": 1.5},
    "HebbAnt-LongRearLegs-v0": {"rear_left": 1.5, "rear_right": 1.5},
    "HebbAnt-FrontLegDamage-v0": {"front_left": 0.25},
}
VARIANT_IDS = tuple(k for k in EXPECTED_SCALES if k != "HebbAnt-Default-v0")


def _expected(scales: dict[str, float]) -> dict[str, float]:
    return {leg: STOCK_LENGTH * scales.get(leg, 1.0) for leg in LEGS}


def _actions(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n, 8)).astype(np.float32)


def _rollout(env: gym.Env, seed: int, actions: np.ndarray) -> np.ndarray:
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for a in actions:
        obs, *_ = env.step(a)
        out.append(obs)
    return np.asarray(out)


# --------------------------------------------------------------------------- the XML edit itself


def test_both_stock_models_have_the_same_lower_legs() -> None:
    for backend in BACKENDS:
        assert lower_leg_lengths(stock_xml(backend)) == pytest.approx(_expected({}), abs=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_scaling_edits_only_the_named_capsules(backend: str) -> None:
    xml = stock_xml(backend)
    edited = scale_lower_legs(xml, {"rear_left": 0.5, "front_right": 3.0})
    assert lower_leg_lengths(edited) == pytest.approx(_expected({"rear_left": 0.5, "front_right": 3.0}))
    # The leg mapping is by direction: XML "right_ankle_geom" is the rear-left leg, "fourth" the front-right.
    fromtos = dict(re.findall(r'fromto="([^"]+)"[^>]*name="(\w+_ankle_geom)"', edited))
    by_name = {name: [float(v) for v in ft.split()] for ft, name in fromtos.items()}
    assert by_name["right_ankle_geom"] == pytest.approx([0, 0, 0, -0.2, 0.2, 0])
    assert by_name["fourth_ankle_geom"] == pytest.approx([0, 0, 0, 1.2, -1.2, 0])
    assert by_name["left_ankle_geom"] == pytest.approx([0, 0, 0, 0.4, 0.4, 0])
    assert by_name["third_ankle_geom"] == pytest.approx([0, 0, 0, -0.4, -0.4, 0])
    assert scale_lower_legs(xml, None) == xml and scale_lower_legs(xml, {}) == xml


# --------------------------------------------------------------------------- compiled models


@pytest.mark.parametrize("env_id", tuple(EXPECTED_SCALES))
def test_mujoco_compiled_lower_legs(env_id: str) -> None:
    import mujoco

    env = gym.make(env_id)
    try:
        model = env.unwrapped.model
        expected = _expected(EXPECTED_SCALES[env_id])
        assert env.unwrapped.lower_leg_lengths() == pytest.approx(expected, rel=1e-9)
        # Independently of the helper: each ankle geom's half-length and its centre's distance from the
        # ankle joint are both L/2, and the centre lies in the leg's quadrant.
        quadrant = {"left_ankle_geom": (1, 1), "fourth_ankle_geom": (1, -1), "right_ankle_geom": (-1, 1),
                    "third_ankle_geom": (-1, -1)}
        leg_of = {(1, 1): "front_left", (1, -1): "front_right", (-1, 1): "rear_left", (-1, -1): "rear_right"}
        for name, signs in quadrant.items():
            g = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, name)
            half = float(model.geom_size[g][1])
            assert 2 * half == pytest.approx(expected[leg_of[signs]], rel=1e-9)
            assert float(np.linalg.norm(model.geom_pos[g])) == pytest.approx(half, rel=1e-9)
            assert tuple(np.sign(model.geom_pos[g][:2]).astype(int)) == signs
            assert float(model.geom_size[g][0]) == pytest.approx(0.08)  # radius untouched
    finally:
        env.close()


@pytest.mark.parametrize("env_id", tuple(EXPECTED_SCALES))
def test_bullet_compiled_lower_legs(env_id: str) -> None:
    env = gym.make(env_id, backend="bullet")
    try:
        env.reset(seed=0)
        u = env.unwrapped
        expected = _expected(EXPECTED_SCALES[env_id])
        # Collision shapes, measured through their AABBs at load time.
        assert u.lower_leg_lengths() == pytest.approx(expected, abs=1e-6)
        # Independently: the lower-leg links' inertial frames sit at the capsule centres (L/2 from the
        # ankle), and their visual capsules carry the length too.
        client, body = u._p, u.robot.objects[0]
        links = {client.getJointInfo(body, j)[12].decode(): j for j in range(client.getNumJoints(body))}
        leg_of_link = {"front_left_foot": "front_left", "front_right_foot": "rear_left",
                       "left_back_foot": "rear_right", "right_back_foot": "front_right"}
        visual = {v[1]: v[3] for v in client.getVisualShapeData(body)}
        for link_name, leg in leg_of_link.items():
            j = links[link_name]
            centre = np.asarray(client.getDynamicsInfo(body, j)[3])
            assert float(np.linalg.norm(centre)) == pytest.approx(expected[leg] / 2, abs=1e-6)
            assert visual[j][0] == pytest.approx(expected[leg], abs=1e-6)
            assert visual[j][1] == pytest.approx(0.08, abs=1e-6)
    finally:
        env.close()


def test_custom_scales_any_leg_both_backends() -> None:
    scales = {"rear_right": 0.7, "front_left": 2.0}
    for backend in BACKENDS:
        env = make_ant(leg_scales=scales, backend=backend)
        try:
            env.reset(seed=0)
            assert env.lower_leg_lengths() == pytest.approx(_expected(scales), abs=1e-6)
        finally:
            env.close()


def test_front_leg_damage_right_side() -> None:
    for backend in BACKENDS:
        env = gym.make("HebbAnt-FrontLegDamage-v0", side="right", backend=backend)
        try:
            env.reset(seed=0)
            expected = _expected({"front_right": 0.25})
            assert env.unwrapped.lower_leg_lengths() == pytest.approx(expected, abs=1e-6)
        finally:
            env.close()


# --------------------------------------------------------------------------- spaces, seeding, divergence


@pytest.mark.parametrize(
    ("backend", "dim", "dtype"), [("mujoco", 27, np.float64), ("bullet", 28, np.float32)]
)
def test_spaces(backend: str, dim: int, dtype: type) -> None:
    env = gym.make("HebbAnt-Default-v0", backend=backend)
    try:
        assert env.observation_space.shape == (dim,) and env.observation_space.dtype == dtype
        assert env.action_space.shape == (8,)
        assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
        assert env.spec.max_episode_steps == 1000
        obs, info = env.reset(seed=0)
        assert env.observation_space.contains(obs) and info["distance"] == 0.0
    finally:
        env.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_same_actions_same_observations(backend: str) -> None:
    actions = _actions(60)
    a = gym.make("HebbAnt-LeftFrontLegDamage-v0", backend=backend)
    b = gym.make("HebbAnt-LeftFrontLegDamage-v0", backend=backend)
    try:
        first = _rollout(a, 7, actions)
        _rollout(b, 123, _actions(30, seed=1))  # b has lived through another episode first
        assert np.array_equal(first, _rollout(b, 7, actions))
        assert np.array_equal(first, _rollout(a, 7, actions))  # and a again, after its own episode
        assert not np.array_equal(first[0], _rollout(a, 8, actions[:0])[0])  # the seed matters
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_variants_diverge_from_default(backend: str) -> None:
    actions = _actions(40)
    default = gym.make("HebbAnt-Default-v0", backend=backend)
    try:
        ref = _rollout(default, 3, actions)
    finally:
        default.close()
    for env_id in VARIANT_IDS:
        env = gym.make(env_id, backend=backend)
        try:
            traj = _rollout(env, 3, actions)
        finally:
            env.close()
        assert np.max(np.abs(traj - ref)) > 1e-2, env_id


# --------------------------------------------------------------------------- distance and burn-in


def test_mujoco_distance_is_torso_x_progress() -> None:
    env = gym.make("HebbAnt-LongFrontLegs-v0")
    try:
        _, info0 = env.reset(seed=1)
        x0 = float(env.unwrapped.data.qpos[0])
        assert info0["x_position"] == x0 and info0["distance"] == 0.0
        for a in _actions(50, seed=2):
            _, _, terminated, _, info = env.step(a)
            torso_xpos = float(env.unwrapped.data.body("torso").xpos[0])  # one mj_step behind qpos
            assert info["distance"] == pytest.approx(torso_xpos - x0, abs=0.05)
            assert info["distance"] == float(env.unwrapped.data.qpos[0]) - x0 == info["x_position"] - x0
            if terminated:
                break
        assert abs(info["distance"]) > 1e-3
    finally:
        env.close()


def test_bullet_distance_is_torso_x_progress() -> None:
    env = gym.make("HebbAnt-LongRearLegs-v0", backend="bullet")
    try:
        env.reset(seed=1)
        u = env.unwrapped
        body = u.robot.objects[0]
        x0 = u._p.getBasePositionAndOrientation(body)[0][0]
        for a in _actions(50, seed=2):
            _, _, _, _, info = env.step(a)
            x = u._p.getBasePositionAndOrientation(body)[0][0]
            assert info["distance"] == pytest.approx(x - x0, abs=1e-12)
        assert abs(info["distance"]) > 1e-3
    finally:
        env.close()


def test_bullet_reset_leaves_the_robot_settled_on_the_floor() -> None:
    raw = gym.make("HebbAnt-Default-v0", backend="bullet", burn_in_steps=0)
    env = gym.make("HebbAnt-Default-v0", backend="bullet")
    try:
        raw.reset(seed=4)
        z_spawn = raw.unwrapped.robot.robot_body.get_position()[2]
        assert z_spawn == pytest.approx(0.75, abs=1e-3)  # without the burn-in it starts in the air

        obs, _ = env.reset(seed=4)
        u = env.unwrapped
        z = u.robot.robot_body.get_position()[2]
        speed = np.linalg.norm(u.robot.robot_body.speed())
        # Torso (a 0.25 m sphere) resting at its zero-torque height, at rest.
        assert 0.24 < z < 0.3 and speed < 0.05
        assert obs[0] == pytest.approx(z - z_spawn, abs=1e-5)  # the returned obs is after the burn-in
        assert np.abs(obs[3:6]).max() < 0.05  # body velocity entries ~0
        obs2, _, terminated, _, _ = env.step(np.zeros(8, dtype=np.float32))
        assert abs(u.robot.robot_body.get_position()[2] - z) < 1e-3 and not terminated
    finally:
        raw.close()
        env.close()


BULLET_DT = 0.0165  # AntBulletEnv's control step: 4 x 0.0165 / 4 s


def _mean_xy(client) -> np.ndarray:
    """The mean x, y of the centres of mass of every body's base and links in the world (ant and floor)."""
    xy = []
    for i in range(client.getNumBodies()):
        body = client.getBodyUniqueId(i)
        xy.append(client.getBasePositionAndOrientation(body)[0][:2])
        xy.extend(client.getLinkState(body, j)[0][:2] for j in range(client.getNumJoints(body)))
    return np.mean(xy, axis=0)


def _potential_from_positions(client) -> float:
    """PyBullet's potential recomputed from the world: -|target 1 km ahead - mean xy| / dt."""
    x, y = _mean_xy(client)
    return -math.hypot(1000.0 - x, 0.0 - y) / BULLET_DT


def test_bullet_progress_is_the_change_of_the_potential_of_all_parts() -> None:
    env = gym.make("HebbAnt-LongFrontLegs-v0", backend="bullet")
    try:
        env.reset(seed=3)
        client = env.unwrapped._p
        assert client.getNumBodies() == 2 and client.getNumJoints(client.getBodyUniqueId(1)) == 20  # 22 parts
        before = start = _potential_from_positions(client)
        x0 = _mean_xy(client)[0]
        total = 0.0
        for a in _actions(60, seed=5):
            info = env.step(a)[4]
            now = _potential_from_positions(client)
            assert info["progress"] == pytest.approx(now - before, abs=1e-8)
            assert info["progress"] == env.unwrapped.rewards[1]  # the reward's own term
            z = env.unwrapped.robot.body_real_xyz[2]
            assert info["fallen"] == (z <= 0.26) or abs(z - 0.26) < 1e-6  # (the test sees z in float32)
            before, total = now, total + info["progress"]
        assert total == pytest.approx(before - start, abs=1e-7)
        # the scale: 1/dt per metre the 22-part mean (floor included) moved towards the target
        assert total * BULLET_DT == pytest.approx(_mean_xy(client)[0] - x0, abs=1e-6)
        assert abs(total) > 1e-2
    finally:
        env.close()


def test_the_progress_fitness_of_a_bullet_rollout_is_the_change_of_the_potential() -> None:
    from agents.evaluation.fitness import EnvPool, FitnessConfig
    from agents.evaluation.rollout import GymStepper, Hook, rollout
    from agents.policies import HebbianPolicy

    config = FitnessConfig(("HebbAnt-Default-v0",), max_steps=40, early_stop="original", fitness="progress",
                           env_kwargs={"backend": "bullet", "obs_before_burn_in": True})
    pool = EnvPool(config)
    stepper = pool.stepper("HebbAnt-Default-v0", 2)
    assert isinstance(stepper, GymStepper)  # PyBullet envs step through env.step

    class Potentials(Hook):
        def __init__(self) -> None:
            self.seen: list[list[float]] = []

        def after_step(self, step) -> None:
            self.seen.append([_potential_from_positions(env.unwrapped._p) for env in stepper.envs])

    policy = HebbianPolicy.from_env(pool.get("HebbAnt-Default-v0", 1)[0], seed=2)
    batch = policy.batch(np.stack([policy.get_flat()] * 2))
    try:
        state = batch.initial_state(1, seed=[0, 1])
        stepper.reset([8, 9])
        start = np.array([_potential_from_positions(env.unwrapped._p) for env in stepper.envs])
        hook = Potentials()
        result = rollout(batch, state, stepper, [8, 9], max_steps=40, score=config.score, early_stop=True,
                         hooks=[hook])
        end = np.array(hook.seen[-1])
        np.testing.assert_allclose(result.scores[:, 0], end - start, rtol=0, atol=1e-7)
        assert np.all(np.abs(result.scores) > 1e-3) and result.lengths.tolist() == [[40], [40]]
    finally:
        pool.close()


def test_bullet_obs_before_burn_in_is_the_stock_reset_observation() -> None:
    stale = gym.make("HebbAnt-Default-v0", backend="bullet", obs_before_burn_in=True)
    raw = gym.make("HebbAnt-Default-v0", backend="bullet", burn_in_steps=0)
    env = gym.make("HebbAnt-Default-v0", backend="bullet")
    try:
        first, _ = stale.reset(seed=6)
        np.testing.assert_array_equal(first, raw.reset(seed=6)[0])  # the robot still in the air
        settled, _ = env.reset(seed=6)
        assert first[0] == 0.0 and settled[0] < -0.4  # z - spawn z: the burn-in dropped it 0.5 m
        for a in _actions(5, seed=7):  # the same state underneath: only the returned observation differs
            a_obs, *_ = stale.step(a)
            b_obs, *_ = env.step(a)
            np.testing.assert_array_equal(a_obs, b_obs)
    finally:
        for e in (stale, raw, env):
            e.close()


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        ({"backend": "ode"}, ("backend", "'ode'", "'mujoco'", "'bullet'")),
        ({"leg_scales": {"middle_leg": 1.0}}, ("leg_scales", "'middle_leg'", "'front_left'")),
        ({"leg_scales": {"front_left": 0.0}}, ("leg_scales['front_left']", "0.0", "positive")),
        ({"leg_scales": {"rear_right": -1.5}}, ("leg_scales['rear_right']", "-1.5", "positive")),
        ({"leg_scales": {"rear_left": float("nan")}}, ("leg_scales['rear_left']", "nan", "finite")),
        ({"leg_scales": {"rear_left": float("inf")}}, ("leg_scales['rear_left']", "inf", "finite")),
        ({"leg_scales": {"rear_left": "2"}}, ("leg_scales['rear_left']", "'2'", "float")),
        ({"leg_scales": {"front_right": 0.0}, "backend": "bullet"}, ("leg_scales['front_right']", "0.0")),
    ],
)
def test_bad_ant_input_raises_at_make(kwargs: dict, fragments: tuple[str, ...]) -> None:
    with pytest.raises(ValueError) as err:
        gym.make("HebbAnt-Default-v0", **kwargs)
    for fragment in fragments:
        assert fragment in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        ({"side": "middle"}, ("side", "'middle'", "'left'", "'right'")),
        ({"side": "right", "backend": "physx"}, ("backend", "'physx'", "'mujoco'")),
    ],
)
def test_bad_front_leg_damage_input_raises_at_make(kwargs: dict, fragments: tuple[str, ...]) -> None:
    with pytest.raises(ValueError) as err:
        gym.make("HebbAnt-FrontLegDamage-v0", **kwargs)
    for fragment in fragments:
        assert fragment in str(err.value)


# --------------------------------------------------------------------------- files, rendering, close


def test_mujoco_model_file_is_removed_after_load(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    env = gym.make("HebbAnt-LongRearLegs-v0")
    env.close()
    benv = gym.make("HebbAnt-LongRearLegs-v0", backend="bullet")
    benv.reset(seed=0)
    benv.close()
    assert os.listdir(tmp_path) == []


def test_bullet_rgb_array_render_headless() -> None:
    env = gym.make("HebbAnt-Default-v0", backend="bullet", render_mode="rgb_array")
    try:
        env.reset(seed=0)
        frame = env.render()
        assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8 and frame.std() > 1
    finally:
        env.close()


def test_mujoco_rgb_array_render_headless() -> None:
    env = gym.make("HebbAnt-RightFrontLegDamage-v0", render_mode="rgb_array", width=64, height=48)
    try:
        env.reset(seed=0)
        frame = env.render()
        assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8 and frame.std() > 1
    finally:
        env.close()


def test_bullet_close_releases_physics_clients() -> None:
    import pybullet

    envs = [gym.make(i, backend="bullet") for i in EXPECTED_SCALES]
    ids = []
    for k, env in enumerate(envs):
        env.reset(seed=k)
        ids.append(env.unwrapped.physicsClientId)
    assert len(set(ids)) == len(ids)
    assert all(pybullet.getConnectionInfo(physicsClientId=i)["isConnected"] for i in ids)
    for env in envs:
        env.close()
        env.close()  # idempotent
    assert not any(pybullet.getConnectionInfo(physicsClientId=i)["isConnected"] for i in ids)
    # Many make/close cycles do not accumulate servers: ids are recycled.
    for k in range(20):
        env = gym.make("HebbAnt-Default-v0", backend="bullet", burn_in_steps=0)
        env.reset(seed=k)
        assert env.unwrapped.physicsClientId <= max(ids)
        env.close()
    # A closed env can be reset again: it opens a fresh server and behaves as before.
    env = gym.make("HebbAnt-LongFrontLegs-v0", backend="bullet")
    try:
        before = _rollout(env, 2, _actions(10))
        env.close()
        assert np.array_equal(before, _rollout(env, 2, _actions(10)))
        assert env.unwrapped.lower_leg_lengths()["front_left"] == pytest.approx(1.5 * STOCK_LENGTH, abs=1e-6)
    finally:
        env.close()


def test_mujoco_close_is_idempotent_after_render() -> None:
    env = gym.make("HebbAnt-Default-v0", render_mode="rgb_array", width=32, height=32)
    env.reset(seed=0)
    env.render()
    env.close()
    env.close()
    assert env.unwrapped.mujoco_renderer._viewers == {}


@pytest.mark.parametrize("backend", BACKENDS)
def test_human_render_without_display_is_refused_not_fatal(backend: str, monkeypatch) -> None:
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(RuntimeError, match="rgb_array"):
        gym.make("HebbAnt-Default-v0", backend=backend, render_mode="human")
