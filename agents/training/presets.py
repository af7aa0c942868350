"""Presets: named sets of training settings, stored as TOML files in ``agents/training/presets/``.

A preset is a table of :class:`~agents.training.config.TrainConfig` fields (like rl-zoo3's hyperparameter
files); any field given explicitly overrides it, and the run's ``config.json`` records the resolved values
and the preset's name. ``paper`` reproduces the original code's ES and fitness; the others were chosen
from the measurements in ``docs/training.md``.
"""

from __future__ import annotations

import sys
from importlib import resources
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["list_presets", "load_preset", "preset_description"]

_PACKAGE = "agents.training"
_FOLDER = "presets"


def _files() -> dict[str, Any]:
    folder = resources.files(_PACKAGE) / _FOLDER
    return {f.name[: -len(".toml")]: f for f in folder.iterdir() if f.name.endswith(".toml")}


def list_presets() -> list[str]:
    """The names of the shipped presets, sorted."""
    return sorted(_files())


def _read(name: str) -> dict[str, Any]:
    files = _files()
    if not isinstance(name, str) or name not in files:
        raise ValueError(f"preset={name!r} is not known; accepted: {', '.join(sorted(files))}")
    try:
        return tomllib.loads(files[name].read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"preset {name!r} ({files[name]}) is not valid TOML: {exc}") from exc


def preset_description(name: str) -> str:
    """The one-line ``description`` of a preset."""
    return str(_read(name).get("description", ""))


def load_preset(name: str, allowed: set[str], agent: str | None = None,
                task_of: Any = None) -> dict[str, Any]:
    """The settings of preset ``name``: its ``[train]`` table, then ``[task.<task>]``, then ``[agent.<agent>]``.

    ``agent`` None means the preset's own ``agent`` (or the trainer's default ``hebbian``); ``task_of``:
    ``env ids -> task`` (``"car"``, ``"ant"`` or None), applied to the preset's ``env`` unless ``env`` is in
    ``overrides`` of the caller (pass a function of the ids the run will use). Keys outside ``allowed`` are
    a ValueError naming them and the accepted ones.
    """
    data = _read(name)
    settings = data.get("train", {})
    per_agent, per_task = data.get("agent", {}), data.get("task", {})
    if not all(isinstance(t, dict) for t in (settings, per_agent, per_task)):
        raise ValueError(f"preset {name!r}: [train], [task.<task>] and [agent.<kind>] must be tables of settings")
    out = dict(settings)
    task = task_of(out.get("env")) if task_of is not None else None
    out.update(per_task.get(task or "", {}))
    out.update(per_agent.get(agent or out.get("agent", "hebbian"), {}))
    unknown = sorted(set(out) - allowed)
    for section, tables in (("agent", per_agent), ("task", per_task)):
        for kind, table in tables.items():
            unknown += sorted(f"{section}.{kind}.{k}" for k in set(table) - allowed)
    if unknown:
        raise ValueError(f"preset {name!r} sets unknown key(s) {unknown}; accepted: {', '.join(sorted(allowed))}")
    if isinstance(out.get("env"), list):
        out["env"] = tuple(out["env"])
    return out
