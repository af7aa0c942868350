"""Entry points of the HebbAnt IDs: one quadruped, two physics backends, morphology by per-leg scales.

Spaces per backend (action is always ``Box(-1, 1, (8,), float32)``, hip and ankle torques of 4 legs):

- ``backend="mujoco"`` (default): :class:`hebb_gym.ant_mujoco.HebbAntMujoco`, Gymnasium's Ant-v5
  without contact forces: observation ``Box(-inf, inf, (27,), float64)``; reward Ant-v5's.
- ``backend="bullet"``: :class:`hebb_gym.ant_bullet.HebbAntBullet`, pybullet_envs_gymnasium's
  AntBulletEnv (the original paper's simulator): observation ``Box(-inf, inf, (28,), float32)``;
  reward AntBulletEnv's; ``reset`` includes 40 zero-action steps, after which the torso rests on the
  floor, so the stock "not alive" termination is off by default (``terminate_when_unhealthy=False``).

Both report ``info["distance"]``, the torso's x progress since reset; the bullet backend also reports
PyBullet's own ``info["progress"]`` (its reward's progress term) and ``info["fallen"]`` (its ``done``
test). Legs are named by position (front = +x, the rewarded walking direction; left = +y): see
:mod:`hebb_gym.ant_morphology`.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before anything imports MuJoCo's renderer: headless by default

from collections.abc import Mapping  # noqa: E402
from typing import Any  # noqa: E402

import gymnasium as gym  # noqa: E402

from hebb_gym.ant_morphology import validate_leg_scales  # noqa: E402
from hebb_gym.variants import DAMAGED_LEG_SCALE  # noqa: E402

BACKENDS: tuple[str, ...] = ("mujoco", "bullet")
#: The backends whose env reports PyBullet's ``info["progress"]`` and ``info["fallen"]``.
PROGRESS_BACKENDS: tuple[str, ...] = ("bullet",)
SIDES: tuple[str, ...] = ("left", "right")


def make_ant(
    leg_scales: Mapping[str, float] | None = None, backend: str = "mujoco", **kwargs: Any
) -> gym.Env:
    """Build the quadruped with the given lower-leg scales on a backend; other kwargs go to the env class.

    Args:
        leg_scales: leg -> positive finite scale of its lower-leg length; legs ``front_left``,
            ``front_right``, ``rear_left``, ``rear_right``; missing legs keep scale 1.
        backend: ``"mujoco"`` (Ant-v5 kwargs pass through, e.g. ``render_mode``, ``ctrl_cost_weight``)
            or ``"bullet"`` (``render_mode``, ``burn_in_steps``, ``terminate_when_unhealthy``,
            ``obs_before_burn_in``).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is not a backend; accepted: {', '.join(map(repr, BACKENDS))}")
    scales = validate_leg_scales(leg_scales)
    if backend == "mujoco":
        from hebb_gym.ant_mujoco import HebbAntMujoco

        return HebbAntMujoco(leg_scales=scales, **kwargs)
    from hebb_gym.ant_bullet import HebbAntBullet

    return HebbAntBullet(leg_scales=scales, **kwargs)


def make_front_leg_damage(side: str = "left", backend: str = "mujoco", **kwargs: Any) -> gym.Env:
    """The quadruped with one front lower leg at 1/4 of its length: ``side="left"`` (+y) or ``"right"``."""
    if side not in SIDES:
        raise ValueError(f"side={side!r} is not a side; accepted: {', '.join(map(repr, SIDES))}")
    if "leg_scales" in kwargs:
        raise TypeError("leg_scales is fixed by make_front_leg_damage; use make_ant(leg_scales=...) instead")
    return make_ant(leg_scales={f"front_{side}": DAMAGED_LEG_SCALE}, backend=backend, **kwargs)
