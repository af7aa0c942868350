"""The MuJoCo quadruped: Gymnasium's Ant-v5 on a morphology-edited ant.xml, contact forces left out."""

from __future__ import annotations

import os

# Headless rendering: pick EGL unless the user chose a backend; read by Gymnasium when a renderer is made.
os.environ.setdefault("MUJOCO_GL", "egl")

from collections.abc import Mapping  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from gymnasium import utils  # noqa: E402
from gymnasium.envs.mujoco.ant_v5 import AntEnv  # noqa: E402
from gymnasium.envs.mujoco.mujoco_env import expand_model_path  # noqa: E402

from hebb_gym.ant_morphology import (  # noqa: E402
    LEGS,
    leg_of_direction,
    model_file,
    require_display,
    scale_lower_legs,
    validate_leg_scales,
)


class HebbAntMujoco(AntEnv):
    """Ant-v5 whose lower legs are scaled per leg; reward and dynamics otherwise exactly Ant-v5's.

    Spaces: observation ``Box(-inf, inf, (27,), float64)`` (Ant-v5 without contact forces: torso z,
    torso quaternion, 8 joint angles, torso linear and angular velocity, 8 joint velocities); action
    ``Box(-1, 1, (8,), float32)`` torques in Ant-v5's actuator order (hip_4, ankle_4, hip_1, ankle_1,
    hip_2, ankle_2, hip_3, ankle_3 = front_right, front_left, rear_left, rear_right).
    Reward: Ant-v5's (forward velocity + healthy - control cost - contact cost).
    ``info["distance"]``: torso x position minus its value at the last reset.

    Args:
        leg_scales: leg -> positive scale of that lower-leg capsule's length
            (see :mod:`hebb_gym.ant_morphology`).
        xml_file: model to edit; default Gymnasium's stock ant.xml.
        include_cfrc_ext_in_observation: default False here (True gives Ant-v5's 105-dim observation).
        **kwargs: any other :class:`gymnasium.envs.mujoco.ant_v5.AntEnv` argument
            (render_mode, width, height, frame_skip, ctrl_cost_weight, ...).
    """

    def __init__(
        self,
        leg_scales: Mapping[str, float] | None = None,
        xml_file: str = "ant.xml",
        include_cfrc_ext_in_observation: bool = False,
        **kwargs: Any,
    ) -> None:
        scales = validate_leg_scales(leg_scales)
        require_display(kwargs.get("render_mode"))
        with open(expand_model_path(xml_file), encoding="utf-8") as f:
            xml_text = scale_lower_legs(f.read(), scales)
        # The model is compiled in AntEnv.__init__; the file is not needed afterwards.
        with model_file(xml_text) as path:
            super().__init__(
                xml_file=path, include_cfrc_ext_in_observation=include_cfrc_ext_in_observation, **kwargs
            )
        utils.EzPickle.__init__(
            self,
            leg_scales=scales,
            xml_file=xml_file,
            include_cfrc_ext_in_observation=include_cfrc_ext_in_observation,
            **kwargs,
        )
        self.leg_scales: dict[str, float] = {leg: 1.0 for leg in LEGS} | scales
        self._x_at_reset = 0.0

    def _torso_x(self) -> float:
        return float(self.data.qpos[0])

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Ant-v5 reset; also records the torso x that ``info["distance"]`` is measured from."""
        obs, info = super().reset(seed=seed, options=options)
        self._x_at_reset = self._torso_x()
        info["distance"] = 0.0
        return obs, info

    def step(self, action):
        """Ant-v5 step, with ``info["distance"]`` the torso's x progress since reset."""
        obs, reward, terminated, truncated, info = super().step(action)
        info["distance"] = self._torso_x() - self._x_at_reset
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        """Release the rendering contexts once; closing again (or after no render) is a no-op."""
        super().close()
        renderer = self.mujoco_renderer
        if renderer is not None and getattr(renderer, "_viewers", None):
            # Gymnasium closes the viewers but keeps them, so a second close() would free the GL
            # contexts twice; forget them instead (a later render() makes a fresh one).
            renderer._viewers.clear()
            renderer.viewer = None

    def lower_leg_lengths(self) -> dict[str, float]:
        """Lengths of the four lower-leg capsule segments in the compiled model (caps excluded)."""
        return compiled_lower_leg_lengths(self.model)


def compiled_lower_leg_lengths(model: Any) -> dict[str, float]:
    """Lower-leg capsule lengths (2 x half-length) of a compiled ``mujoco.MjModel``, legs by geom position."""
    import mujoco

    parents = set(int(p) for p in model.body_parentid[1:])
    lengths: dict[str, float] = {}
    for g in range(model.ngeom):
        body = int(model.geom_bodyid[g])
        if body == 0 or body in parents or model.geom_type[g] != mujoco.mjtGeom.mjGEOM_CAPSULE:
            continue
        # The capsule starts at the ankle joint (body origin), so its centre points along the leg.
        centre = np.asarray(model.geom_pos[g])
        lengths[leg_of_direction(centre[0], centre[1])] = 2.0 * float(model.geom_size[g][1])
    if set(lengths) != set(LEGS):
        raise ValueError(f"model has lower legs {sorted(lengths)}; expected {LEGS}")
    return {leg: lengths[leg] for leg in LEGS}
