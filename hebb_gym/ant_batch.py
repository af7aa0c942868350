"""A lean stepping path for a batch of MuJoCo quadrupeds: Ant-v5's step, vectorised over envs.

Gymnasium's ``AntEnv.step`` adds nearly half the physics time of a step in Python (observation
assembly, ``state_vector`` twice, reward terms through properties, the info dict, wrapper layers).
:class:`AntBatch` steps the envs' own ``MjData`` with the very calls Gymnasium makes
(``mj_step(model, data, nstep=frame_skip)`` then ``mj_rnePostConstraint``) and computes the
observation, reward, termination and ``info["distance"]`` for all stepped envs at once with
Ant-v5's formulas, term by term in the same floating-point order, so results are bit-for-bit those of
``env.step`` (tests/test_fast_ant.py checks it). :func:`supports` says when that holds; anything
else (another backend, rendering, contact forces in the observation, extra wrappers) takes the
generic path.
"""

from __future__ import annotations

from typing import Any, Sequence

import mujoco
import gymnasium as gym
import numpy as np
from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker, TimeLimit

from hebb_gym.ant_mujoco import HebbAntMujoco

__all__ = ["AntBatch", "supports", "time_limit"]

#: Wrappers ``gym.make`` adds that do not change what a step returns (the time limit is the caller's).
_PLAIN_WRAPPERS = (TimeLimit, OrderEnforcing, PassiveEnvChecker)


def time_limit(env: Any) -> int | None:
    """The ``max_episode_steps`` of the TimeLimit among ``env``'s wrappers (None if it has none)."""
    w = env
    while isinstance(w, gym.Wrapper):
        if isinstance(w, TimeLimit):
            return int(w._max_episode_steps)
        w = w.env
    return None


def supports(env: Any) -> bool:
    """True when :class:`AntBatch` reproduces ``env.step`` exactly: a plain, non-rendering HebbAntMujoco."""
    w = env
    while not isinstance(w, HebbAntMujoco):
        if type(w) not in _PLAIN_WRAPPERS:
            return False
        w = w.env
    try:
        return (
            type(w) is HebbAntMujoco
            and w.render_mode is None
            and not w._include_cfrc_ext_in_observation
            and w._exclude_current_positions_from_observation
            and w.model.na == 0
        )
    except AttributeError:  # a Gymnasium whose AntEnv keeps its settings elsewhere: not known to be exact
        return False


class AntBatch:
    """Steps a fixed list of (reset) HebbAntMujoco envs together; envs are addressed by index.

    The envs' time limits are not applied here (``step`` bypasses the wrappers); ``time_limits`` lists
    them for the caller.
    """

    def __init__(self, envs: Sequence[Any]) -> None:
        if not envs:
            raise ValueError("envs is empty; give at least one env")
        for k, env in enumerate(envs):
            if not supports(env):
                raise ValueError(f"envs[{k}] ({env!r}) is not a plain HebbAntMujoco; use env.step instead")
        self.wrapped = list(envs)
        self.envs = [env.unwrapped for env in envs]
        self.time_limits = [time_limit(env) for env in envs]  # max_episode_steps of each env, None: no limit
        first = self.envs[0]
        for name in ("frame_skip", "_forward_reward_weight", "_ctrl_cost_weight", "_contact_cost_weight",
                     "_healthy_reward", "_terminate_when_unhealthy", "_healthy_z_range", "_contact_force_range",
                     "_main_body"):
            if any(getattr(u, name) != getattr(first, name) for u in self.envs):
                raise ValueError(f"envs differ in {name.lstrip('_')}; an AntBatch needs identical settings")
        shapes = {(u.model.nq, u.model.nv, u.model.nbody, u.model.nu) for u in self.envs}
        if len(shapes) != 1:
            raise ValueError(f"envs have different model sizes {sorted(shapes)}; an AntBatch needs one model layout")
        self.models = [u.model for u in self.envs]
        self.datas = [u.data for u in self.envs]
        self.nstep = int(first.frame_skip)
        self.main = int(first.model.body(first._main_body).id)
        self.dt = np.array([u.dt for u in self.envs])  # Gymnasium's dt: timestep * frame_skip, per env
        n, nq, nv, nbody = len(self.envs), first.model.nq, first.model.nv, first.model.nbody
        self.nq = nq
        self.state = np.zeros((n, nq + nv))  # [qpos, qvel] after the last step (Ant-v5's state_vector)
        self.cfrc = np.zeros((n, nbody, 6))
        self.xy = np.zeros((n, 2))  # main body x, y after the last step or reset
        self.x0 = np.zeros(n)  # torso x at reset: info["distance"] is measured from it
        self.survive_reward = np.zeros(0)  # the alive bonus of the envs of the last step, in their order
        # Views into each MjData, made once (MuJoCo never moves these buffers): saves attribute look-ups per step.
        self._views = [
            (m, d, d.ctrl, d.qpos, d.qvel, d.cfrc_ext, d.xpos[self.main, :2], self.state[k, :nq], self.state[k, nq:])
            for k, (m, d) in enumerate(zip(self.models, self.datas))
        ]

    def reset(self, seeds: Sequence[int | None]) -> np.ndarray:
        """Reset env k with ``seeds[k]`` through its wrappers; returns the observations ``(n, obs)``."""
        if len(seeds) != len(self.wrapped):
            raise ValueError(f"seeds has {len(seeds)} entries; accepted: one per env ({len(self.wrapped)})")
        obs = np.stack([env.reset(seed=s)[0] for env, s in zip(self.wrapped, seeds)])
        nq = self.nq
        for k, (u, d) in enumerate(zip(self.envs, self.datas)):
            self.state[k, :nq] = d.qpos
            self.state[k, nq:] = d.qvel
            self.xy[k] = d.xpos[self.main, :2]
            self.x0[k] = u._x_at_reset
        return obs

    def step(self, index: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step envs ``index (m,)`` with ``actions (m, act)``; returns obs ``(m, obs)``, reward, terminated, distance.

        Exactly Ant-v5's ``step`` (and HebbAntMujoco's ``info["distance"]``) for each of them.
        """
        index = np.asarray(index, dtype=np.intp)
        state, cfrc, xy = self.state, self.cfrc, self.xy
        before = xy[index]
        step, post, nstep, views = mujoco.mj_step, mujoco.mj_rnePostConstraint, self.nstep, self._views
        for k, j in enumerate(index.tolist()):
            m, d, ctrl, qpos, qvel, cfrc_ext, xpos, state_q, state_v = views[j]
            ctrl[:] = actions[k]
            step(m, d, nstep)
            post(m, d)
            state_q[:] = qpos
            state_v[:] = qvel
            cfrc[j] = cfrc_ext
            xy[j] = xpos
        first = self.envs[0]
        s = state[index]
        x_velocity = (xy[index, 0] - before[:, 0]) / self.dt[index]
        forward_reward = x_velocity * first._forward_reward_weight
        min_z, max_z = first._healthy_z_range
        z = s[:, 2]
        healthy = np.isfinite(s).all(axis=1) & (min_z <= z) & (z <= max_z)
        healthy_reward = healthy * first._healthy_reward
        self.survive_reward = healthy_reward  # Ant-v5's info["reward_survive"]
        rewards = forward_reward + healthy_reward
        a = np.asarray(actions)
        ctrl_cost = first._ctrl_cost_weight * np.sum(np.square(a), axis=-1)
        lo, hi = first._contact_force_range
        c = np.clip(cfrc[index], lo, hi)
        contact_cost = first._contact_cost_weight * np.sum(np.square(c).reshape(c.shape[0], c.shape[1] * c.shape[2]), axis=-1)
        costs = ctrl_cost + contact_cost
        reward = rewards - costs
        terminated = ~healthy & bool(first._terminate_when_unhealthy)
        distance = s[:, 0] - self.x0[index]
        return s[:, 2:], reward, terminated, distance
