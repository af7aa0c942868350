"""Observation and action spaces of the policies: plain-dict descriptions (for policy files), comparison,
and the spaces of whatever a policy is built for (a gymnasium Env, an SB3 VecEnv or an env id)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

import hebb_gym  # noqa: F401  (registers the hebb-gym IDs, so spaces_of takes them)

__all__ = ["describe_space", "same_space", "space_from_description", "spaces_of"]


def describe_space(space: gym.Space) -> dict[str, Any]:
    """A plain-dict description of a Box or Discrete space (what policy files store)."""
    if isinstance(space, gym.spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": np.asarray(space.low, dtype=np.float64).ravel().tolist(),
            "high": np.asarray(space.high, dtype=np.float64).ravel().tolist(),
        }
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    raise TypeError(f"space {space!r} is not supported; accepted: Box or Discrete")


def space_from_description(d: dict[str, Any]) -> gym.Space:
    """Rebuild a space from :func:`describe_space` output."""
    if d["type"] == "Box":
        shape = tuple(d["shape"])
        low = np.asarray(d["low"], dtype=np.float64).reshape(shape).astype(d["dtype"])
        high = np.asarray(d["high"], dtype=np.float64).reshape(shape).astype(d["dtype"])
        return gym.spaces.Box(low=low, high=high, shape=shape, dtype=np.dtype(d["dtype"]))
    if d["type"] == "Discrete":
        return gym.spaces.Discrete(d["n"], start=d.get("start", 0))
    raise ValueError(f"space description of type {d.get('type')!r} is not supported; accepted: Box, Discrete")


def same_space(a: gym.Space, b: gym.Space) -> bool:
    """Whether two spaces are equal: same type, and for a Box the same shape, dtype and bounds."""
    if type(a) is not type(b):
        return False
    if isinstance(a, gym.spaces.Box):
        return (
            a.shape == b.shape
            and a.dtype == b.dtype
            and np.array_equal(a.low, b.low)
            and np.array_equal(a.high, b.high)
        )
    return a == b


def spaces_of(env_or_id: Any) -> tuple[gym.Space, gym.Space, str | None]:
    """(observation_space, action_space, env_id) of a gym.Env, an SB3 VecEnv or an env id."""
    if isinstance(env_or_id, str):
        env = gym.make(env_or_id)
        try:
            return env.observation_space, env.action_space, env_or_id
        finally:
            env.close()
    if isinstance(env_or_id, gym.Env):
        spec = env_or_id.spec
        return env_or_id.observation_space, env_or_id.action_space, (spec.id if spec is not None else None)
    if hasattr(env_or_id, "num_envs") and hasattr(env_or_id, "observation_space"):  # SB3 VecEnv
        env_id = None
        try:
            spec = env_or_id.get_attr("spec", indices=[0])[0]
            env_id = spec.id if spec is not None else None
        except (AttributeError, IndexError, TypeError):  # a VecEnv whose sub-envs have no spec
            env_id = None
        return env_or_id.observation_space, env_or_id.action_space, env_id
    raise TypeError(
        f"env_or_id={env_or_id!r} is not accepted; use a gymnasium Env, an SB3 VecEnv or a registered env id"
    )
