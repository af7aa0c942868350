"""Env ids as every command takes them, and the env kwargs of a task's rollouts: each decided here only."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import gymnasium as gym

import hebb_gym  # registers the hebb-gym ids
from hebb_gym.ant import BACKENDS as PHYSICS

__all__ = ["ENV_KWARGS_METADATA", "PHYSICS", "parse_env_ids", "physics_env_kwargs", "rollout_env_kwargs",
           "task_of_envs"]


def physics_env_kwargs(physics: str | None) -> dict[str, Any]:
    """The env kwargs that choose the quadruped's physics backend (``None``: the env's default, MuJoCo)."""
    return {} if physics is None else {"backend": physics}


#: Metadata of a config's ``env_kwargs`` field: extra ``gym.make`` kwargs, set on the command line by
#: ``--physics mujoco|bullet`` (see :mod:`agents.util.settings`).
ENV_KWARGS_METADATA = {
    "help": "quadruped physics backend (default: the env's, mujoco)", "flag": "physics", "flag_type": str | None,
    "flag_default": None, "flag_choices": PHYSICS, "from_flag": physics_env_kwargs,
}


def parse_env_ids(env: str | Sequence[str], one_task: bool = True, name: str = "env") -> tuple[str, ...]:
    """Comma-separated text or a sequence of ids -> a tuple of registered Gymnasium ids, in order.

    ``one_task``: the ids must all be variants of one task (``hebb_gym.task_of``; the car or the
    quadruped). ``name`` is the argument named in the ``ValueError`` raised for an empty list, an
    unregistered id or (with ``one_task``) mixed or unknown tasks.
    """
    if isinstance(env, str):
        ids = tuple(e.strip() for e in env.split(",") if e.strip())
    elif isinstance(env, Sequence) and all(isinstance(e, str) for e in env):
        ids = tuple(env)
    else:
        raise TypeError(f"{name}={env!r} must be an env id, comma-separated ids or a sequence of id strings")
    if not ids:
        raise ValueError(f"{name} is empty; give at least one env id (see `hebb-gym envs`)")
    for e in ids:
        if e not in gym.registry:
            raise ValueError(f"{name}={e!r} is not a registered Gymnasium id; accepted: any registered id, e.g. "
                             f"{', '.join(hebb_gym.variants('ant') + hebb_gym.variants('car'))} "
                             "(see `hebb-gym envs`)")
    if one_task:
        task_of_envs(ids, name)
    return ids


def task_of_envs(env_ids: Sequence[str], name: str = "env") -> str:
    """The one task (``"car"`` or ``"ant"``) of ``env_ids``; ValueError naming ``name`` if they mix tasks."""
    tasks = {hebb_gym.task_of(e) for e in env_ids}  # raises on an id of no known task
    if len(tasks) != 1:
        raise ValueError(f"{name}={list(env_ids)!r} mixes tasks {sorted(tasks)}; give variants of one task")
    return tasks.pop()


def rollout_env_kwargs(env_ids: Sequence[str], env_kwargs: Mapping[str, Any] | None = None,
                       env_termination: bool = False) -> dict[str, Any]:
    """The env kwargs rollouts of ``env_ids`` use: ``env_kwargs``, and for the quadruped, unless
    ``env_termination``, its own unhealthy termination off (``terminate_when_unhealthy=False``, where
    ``env_kwargs`` does not set it).

    Random plastic networks make the MuJoCo ant hop above Ant-v5's healthy range (z > 1) within a few
    dozen steps; as in the original code, the trainer's early stop judges an episode instead. ES training,
    the leave-one-out cells (every agent) and ``compare --no-env-termination`` all take their env kwargs
    from here.
    """
    kwargs = dict(env_kwargs or {})
    if not env_termination and env_ids and _task_or_none(env_ids[0]) == "ant":
        kwargs.setdefault("terminate_when_unhealthy", False)
    return kwargs


def _task_or_none(env_id: str) -> str | None:
    try:
        return hebb_gym.task_of(env_id)
    except ValueError:  # an env of no known task has no quadruped termination to turn off
        return None
