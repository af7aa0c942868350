"""Env ids as every command takes them, and the env kwargs of a task's rollouts: each decided here only."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import importlib
import json

import gymnasium as gym

import hebb_gym  # registers the hebb-gym ids
from hebb_gym.ant import BACKENDS as PHYSICS

__all__ = ["ENV_KWARGS_METADATA", "PHYSICS", "import_env_modules", "parse_env_ids", "parse_env_kwargs",
           "physics_env_kwargs", "rollout_env_kwargs", "task_of", "task_of_envs"]


def import_env_modules(names: Sequence[str]) -> None:
    """Import each module of ``names`` (which registers its Gymnasium ids), like rl-zoo3's ``--gym-packages``."""
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ValueError(f"env_module={name!r} could not be imported ({exc}); install it or check the name") from exc


def task_of(env_id: str) -> str | None:
    """``"car"`` or ``"ant"`` for the papers' tasks (hebb-gym ids, stock CarRacing / Ant), None for any other env."""
    try:
        return hebb_gym.task_of(env_id)
    except ValueError:
        return None


def _literal(text: str) -> Any:
    t = text.strip()
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(t)
        except ValueError:
            pass
    if t[:1] in "[{(\"":
        try:
            return json.loads(t.replace("(", "[").replace(")", "]"))
        except ValueError:
            pass
    return t


def parse_env_kwargs(text: str) -> dict[str, Any]:
    """``key=value,key=value`` -> a dict, values typed: ints, floats, true/false, none, JSON lists, else text.

    A JSON object (``{"friction": 2.0}``) is accepted as well.
    """
    t = text.strip()
    if not t:
        return {}
    if t.startswith("{"):
        try:
            d = json.loads(t)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a JSON object ({exc})") from None
        if not isinstance(d, dict):
            raise ValueError(f"{text!r} is not a JSON object")
        return d
    out: dict[str, Any] = {}
    for item in _split_top_level(t):
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ValueError(f"{item!r} is not key=value; accepted: key=value,key=value (e.g. friction=2.0,wind=250)")
        out[key.strip()] = _literal(value)
    return out


def _split_top_level(text: str) -> list[str]:
    """Split at commas outside brackets (so ``a=[1,2],b=3`` is two items)."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch in "[({"
        depth -= ch in "])}"
        if ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return [i for i in items if i.strip()]


def physics_env_kwargs(physics: str | None) -> dict[str, Any]:
    """The env kwargs that choose the quadruped's physics backend (``None``: the env's default, MuJoCo)."""
    return {} if physics is None else {"backend": physics}


#: Metadata of a config's ``env_kwargs`` field: extra ``gym.make`` kwargs, ``--env-kwargs key=value,...`` on
#: the command line, and ``--physics mujoco|bullet`` for the quadruped's backend (see :mod:`agents.util.settings`).
ENV_KWARGS_METADATA = {
    "help": "extra gym.make kwargs: key=value,... (numbers, true/false, none, JSON lists, text) or a JSON object",
    "parse": lambda text: parse_env_kwargs(text),
    "shorthand": ("physics", "backend", PHYSICS, "quadruped physics backend (default: the env's, mujoco)"),
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


def task_of_envs(env_ids: Sequence[str], name: str = "env") -> str | None:
    """The one task of ``env_ids`` (``"car"``, ``"ant"``, or None: other envs, all of one id).

    ValueError naming ``name`` if they mix tasks: variants of the car or of the quadruped go together,
    any other env only with itself.
    """
    tasks = {task_of(e) for e in env_ids}
    if len(tasks) != 1 or (None in tasks and len(set(env_ids)) != 1):
        shown = sorted(t or e for t, e in {(task_of(e), e) for e in env_ids})
        raise ValueError(f"{name}={list(env_ids)!r} mixes tasks {shown}; give variants of one task "
                         "(the car's or the quadruped's), or one other env id")
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
    if not env_termination and env_ids and task_of(env_ids[0]) == "ant":
        kwargs.setdefault("terminate_when_unhealthy", False)
    return kwargs
