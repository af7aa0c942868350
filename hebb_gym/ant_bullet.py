"""The PyBullet quadruped: pybullet_envs_gymnasium's AntBulletEnv on a morphology-edited ant.xml.

This is the simulator of the original Hebbian paper (Najarro & Risi 2020). Differences from the stock
``AntBulletEnv-v0``, all deliberate: the model's lower legs can be scaled per leg; ``reset`` runs
``burn_in_steps`` (40) zero-action steps so the episode starts with the robot already dropped onto
the floor, as the paper's code did (optionally returning the observation from before it, as that code
fed its policy first); ``info`` reports PyBullet's own progress term and fall test; the joint noise of ``reset(seed=)`` comes from the env's own
``np_random``; the physics client is always a private DIRECT (or GUI) connection, never an
existing shared-memory server; ``close()`` releases it; pybullet's C-level stdout chatter is muted.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any


def _flush_c_stdio() -> None:
    """Flush C stdio buffers, so text printf'd while muted is dropped now rather than printed at exit."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence C-level writes to file descriptors 1 and 2 for the block (pybullet's printf chatter).

    Python exceptions raised inside still propagate and are reported after the descriptors are back.
    """
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                _flush_c_stdio()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        for fd in saved:
            os.close(fd)


with _quiet_stdout():  # "pybullet build time: ..." is printed (to stderr) on first import
    import pybullet
    from pybullet_envs_gymnasium.gym_locomotion_envs import AntBulletEnv, WalkerBaseBulletEnv
    from pybullet_envs_gymnasium.robot_locomotors import Ant
    from pybullet_utils import bullet_client

import gymnasium  # noqa: E402
import numpy as np  # noqa: E402

from hebb_gym.ant_morphology import (  # noqa: E402
    LEGS,
    leg_of_direction,
    model_file,
    require_display,
    scale_lower_legs,
    stock_xml,
    validate_leg_scales,
)

#: Zero-action steps at the start of every episode (the original paper's burn-in).
BURN_IN_STEPS = 40


class _EditedAnt(Ant):
    """PyBullet's Ant robot loading the given MJCF text instead of pybullet_data's ant.xml."""

    def __init__(self, xml_text: str) -> None:
        super().__init__()
        self._xml_text = xml_text
        self.compiled_lengths: dict[str, float] | None = None

    def reset(self, bullet_client: Any) -> np.ndarray:
        if self.doneLoading:
            return super().reset(bullet_client)
        # MJCFBasedRobot joins data path and model_xml; an absolute path wins in os.path.join.
        with model_file(self._xml_text) as path:
            self.model_xml = path
            try:
                return super().reset(bullet_client)
            finally:
                self.model_xml = "ant.xml"

    def addToScene(self, bullet_client: Any, bodies: Any) -> Any:
        if self.compiled_lengths is None and not np.isscalar(bodies):
            # First call comes straight after loadMJCF: every joint is at 0, so the legs lie flat.
            self.compiled_lengths = _lengths_from_aabbs(bullet_client, bodies[0])
        return super().addToScene(bullet_client, bodies)


def _lengths_from_aabbs(client: Any, body: int) -> dict[str, float]:
    """Lower-leg capsule lengths from the collision AABBs of the leaf links, valid while the legs lie flat.

    ``getCollisionShapeData`` crashes (segfault) on MJCF ``fromto`` capsules in pybullet 3.2.7, so the
    collision shapes are measured through their bounding boxes: a horizontal capsule of length L and
    radius r (plus margin m) spans L|u_x| + 2(r+m) in x, L|u_y| + 2(r+m) in y and 2(r+m) in z.
    """
    n = client.getNumJoints(body)
    parents = {client.getJointInfo(body, j)[16] for j in range(n)}
    base = np.asarray(client.getBasePositionAndOrientation(body)[0])
    lengths: dict[str, float] = {}
    for link in range(n):
        if link in parents:
            continue
        lo, hi = (np.asarray(v) for v in client.getAABB(body, link))
        ext = hi - lo
        centre = (hi + lo) / 2 - base
        lengths[leg_of_direction(centre[0], centre[1])] = float(np.hypot(ext[0] - ext[2], ext[1] - ext[2]))
    if set(lengths) != set(LEGS):
        raise RuntimeError(f"bullet model has lower legs {sorted(lengths)}; expected {LEGS}")
    return {leg: lengths[leg] for leg in LEGS}


class HebbAntBullet(AntBulletEnv):
    """AntBulletEnv with per-leg lower-leg scales, a 40-step zero-action burn-in in reset, and clean close.

    Spaces (as stock ``AntBulletEnv-v0``): observation ``Box(-inf, inf, (28,), float32)``, values
    clipped to [-5, 5]: [torso z - spawn z, sin and cos of the angle to the walk target (+x),
    0.3 x torso velocity (x, y, z) in the yaw frame, roll, pitch], 8 joint (position scaled to
    [-1, 1] between limits, 0.1 x speed) pairs, 4 foot contacts; action ``Box(-1, 1, (8,), float32)``.
    Joint and foot order is the XML's: front_left (hip_1, ankle_1), rear_left (hip_2, ankle_2),
    rear_right (hip_3, ankle_3), front_right (hip_4, ankle_4).
    Reward: the stock one (alive bonus + potential progress towards +x - electricity - joints at limit).
    ``info`` of every step:

    - ``"distance"``: torso x minus its value at the end of reset (after the burn-in);
    - ``"progress"``: the reward's progress term, PyBullet's own value: the change of the potential
      ``-|target - body_xyz| / dt`` over the step, the target 1 km ahead along +x, ``body_xyz`` the mean
      x and y of the centres of mass of all 22 parts PyBullet tracks (the 21 links of the ant and the
      floor, which stays at 0), dt = 0.0165 s; what the original code summed as its fitness;
    - ``"fallen"``: PyBullet's ``done`` test, its alive bonus is -1 (torso centre at or below 0.26 m);
      it ends the episode only with ``terminate_when_unhealthy``.

    Args:
        leg_scales: leg -> positive scale of that lower-leg capsule's length
            (see :mod:`hebb_gym.ant_morphology`).
        render_mode: ``None``, ``"rgb_array"`` (headless camera image) or ``"human"`` (GUI window).
        burn_in_steps: zero-action steps run inside ``reset``; 40 as in the paper.
        terminate_when_unhealthy: end the episode when the stock alive test fails (torso centre
            below 0.26 m). Default False: without torque the legs splay and the torso (radius
            0.25) rests on the floor by the end of the burn-in, so the stock test would end almost
            every episode at its first step. The alive bonus (+1 / -1) stays in the reward either
            way; the paper's code likewise ignored ``done`` during the first 200 steps.
    """

    def __init__(
        self,
        leg_scales: Mapping[str, float] | None = None,
        render_mode: str | None = None,
        burn_in_steps: int = BURN_IN_STEPS,
        terminate_when_unhealthy: bool = False,
        obs_before_burn_in: bool = False,
    ) -> None:
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(
                f"render_mode={render_mode!r} is not supported; accepted: None, "
                + ", ".join(map(repr, self.metadata["render_modes"]))
            )
        require_display(render_mode)
        is_int = isinstance(burn_in_steps, (int, np.integer)) and not isinstance(burn_in_steps, bool)
        if not is_int or burn_in_steps < 0:
            raise ValueError(f"burn_in_steps={burn_in_steps!r} is not allowed; accepted: an int >= 0")
        scales = validate_leg_scales(leg_scales)
        xml_text = scale_lower_legs(stock_xml("bullet"), scales)
        self.robot = _EditedAnt(xml_text)
        WalkerBaseBulletEnv.__init__(self, self.robot, render_mode=render_mode)
        # Seeding is reset(seed=) only: hide the stock pre-Gymnasium seed() (check_env flags it).
        self.seed = None  # type: ignore[assignment]
        self.leg_scales: dict[str, float] = {leg: 1.0 for leg in LEGS} | scales
        self.burn_in_steps = int(burn_in_steps)
        self.terminate_when_unhealthy = bool(terminate_when_unhealthy)
        self.obs_before_burn_in = bool(obs_before_burn_in)
        self._x_at_reset = 0.0

    def _connect(self) -> None:
        """Open this env's own physics server (never a shared-memory one) with the stock settings."""
        mode = pybullet.GUI if self.render_mode == "human" else pybullet.DIRECT
        with _quiet_stdout():
            self._p = bullet_client.BulletClient(connection_mode=mode)
        self._p.resetSimulation()
        self._p.setPhysicsEngineParameter(deterministicOverlappingPairs=1)
        self._p.configureDebugVisualizer(pybullet.COV_ENABLE_GUI, 0)
        self.physicsClientId = self._p._client
        self.ownsPhysicsClient = True

    def _torso_x(self) -> float:
        return float(self.robot.robot_body.get_position()[0])

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Stock reset seeded from the env's ``np_random``, then the zero-action burn-in.

        The observation is the one after the burn-in, or with ``obs_before_burn_in`` the stock reset's.
        """
        gymnasium.Env.reset(self, seed=seed)
        self.robot.np_random = self.np_random  # initial joint noise
        if self.physicsClientId < 0:
            self._connect()
        with _quiet_stdout():
            obs, info = WalkerBaseBulletEnv.reset(self, seed=None, options=options)
        first = obs
        zero = np.zeros(self.action_space.shape, dtype=np.float32)
        for _ in range(self.burn_in_steps):
            obs, _, _, _, _ = WalkerBaseBulletEnv.step(self, zero)
        if self.obs_before_burn_in:
            obs = first
        self._x_at_reset = self._torso_x()
        info = dict(info)
        info["distance"] = 0.0
        return np.asarray(obs, dtype=np.float32), info

    def step(self, action):
        """Stock step and reward; ``info`` has ``distance``, ``progress`` and ``fallen`` (see the class)."""
        obs, reward, terminated, truncated, info = WalkerBaseBulletEnv.step(self, np.asarray(action))
        if not self.terminate_when_unhealthy:
            terminated = not bool(np.isfinite(obs).all())
        info = dict(info)
        info["distance"] = self._torso_x() - self._x_at_reset
        info["progress"] = float(self.rewards[1])  # [alive, progress, electricity, joints at limit, feet]
        info["fallen"] = bool(self._alive < 0)
        info["reward_survive"] = float(self.rewards[0])  # the alive bonus (+1 / -1), as Ant-v5 names it
        return np.asarray(obs, dtype=np.float32), float(reward), terminated, truncated, info

    def render(self):
        """Stock render: an RGB array from pybullet's camera (software renderer when headless)."""
        if self.render_mode == "rgb_array" and self.physicsClientId < 0:
            raise RuntimeError("render() before reset(): call reset() first")
        return super().render()

    def close(self) -> None:
        """Disconnect this env's physics server; a later reset() starts a fresh one."""
        if self.ownsPhysicsClient and self.physicsClientId >= 0:
            try:
                self._p.disconnect()
            except pybullet.error:
                pass
        self.physicsClientId = -1
        self.ownsPhysicsClient = False
        # Everything below lived in the old server; rebuild it on the next reset.
        self.scene = None
        self.stateId = -1
        self.robot.doneLoading = 0
        self.robot.parts = None
        self.robot.jdict = None
        self.robot.ordered_joints = None
        self.robot.robot_body = None

    def lower_leg_lengths(self) -> dict[str, float]:
        """Lower-leg capsule lengths of the loaded collision model (measured at load, legs flat)."""
        if self.robot.compiled_lengths is None:
            raise RuntimeError("the model is loaded on the first reset(); call reset() first")
        return dict(self.robot.compiled_lengths)
