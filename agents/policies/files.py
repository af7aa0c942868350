"""The policy file format: one torch file per policy, written atomically, read back with ``weights_only``.

A file holds a dict: ``format`` (:data:`FILE_MAGIC`), ``format_version`` (:data:`FORMAT_VERSION`),
``class`` (the policy class's name, as registered by :func:`register_policy_class`), ``env_id``,
``observation_space`` and ``action_space`` (:func:`agents.policies.spaces.describe_space`), ``options``,
``seed``, ``flat`` (the float32 parameter vector as a tensor), ``assignment`` (Hebbian shared rules, else
None) and ``obs_norm`` (the observation normaliser's state, or None). ``Policy.save`` and ``Policy.load``
(:mod:`agents.policies.base`) build and read that dict.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import torch

from agents.util.atomic import atomic_write
from agents.util.statefile import array_checksum

__all__ = [
    "FILE_MAGIC",
    "FORMAT_VERSION",
    "policy_class_named",
    "read_policy_file",
    "register_policy_class",
    "write_policy_file",
]

#: Version of the policy file format written by ``Policy.save``; newer files are refused.
FORMAT_VERSION = 1
#: The ``format`` field that marks a hebb-gym policy file.
FILE_MAGIC = "hebb-gym-policy"

_CLASSES: dict[str, type] = {}
_T = TypeVar("_T", bound=type)


def register_policy_class(cls: _T) -> _T:
    """Class decorator: make policy files (and ``load_policy``) know a policy class by its name."""
    _CLASSES[cls.__name__] = cls
    return cls


def policy_class_named(name: str, path: str | os.PathLike) -> type:
    """The registered policy class called ``name`` (read from the file ``path``), else a ValueError."""
    cls = _CLASSES.get(name)
    if cls is None:
        raise ValueError(f"{path} holds an unknown policy class {name!r}; accepted: {sorted(_CLASSES)}")
    return cls


def write_policy_file(path: str | os.PathLike, fields: dict[str, Any]) -> Path:
    """Write a policy file's dict with ``torch.save``, atomically, with a checksum of its arrays."""
    fields = {**fields, "checksum": array_checksum({k: v for k, v in fields.items() if k != "checksum"})}
    return atomic_write(path, lambda f: torch.save(fields, f))


def read_policy_file(path: str | os.PathLike) -> dict[str, Any]:
    """The dict of a policy file; a ValueError for anything else or for a newer format version."""
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise ValueError(f"{path} is not a readable hebb-gym policy file: {exc}") from exc
    if not isinstance(d, dict) or d.get("format") != FILE_MAGIC:
        raise ValueError(f"{path} is not a hebb-gym policy file")
    version = d.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path} has policy format version {version!r}, newer than this hebb-gym reads "
            f"({FORMAT_VERSION}); "
            "upgrade hebb-gym"
        )
    if "checksum" in d and array_checksum({k: v for k, v in d.items() if k != "checksum"}) != d["checksum"]:
        raise ValueError(f"{path} fails its checksum: the file was changed or damaged after it was written")
    return d
