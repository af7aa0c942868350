"""Files of state (checkpoints, policies) that load without running code, with a checksum of their arrays.

``torch.load(weights_only=True)`` unpickles tensors, dicts, lists, tuples, strings, numbers, booleans
and None only, so a crafted file cannot execute anything; numpy arrays are stored as tensors tagged to
come back as arrays. A SHA-256 of every array (in a fixed traversal order) is stored beside the state
and checked on load, so a bit flip is a clear error rather than a NaN result.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.util.atomic import atomic_write

__all__ = ["StateFileError", "array_checksum", "from_safe", "load_state", "save_state", "to_safe"]

_ARRAY = "__ndarray__"


class StateFileError(ValueError):
    """A state file that is not one, is of another kind, or fails its checksum."""


def to_safe(obj: Any) -> Any:
    """``obj`` with numpy arrays as tagged tensors and numpy scalars as Python numbers (weights_only-loadable)."""
    if isinstance(obj, np.ndarray):
        return {_ARRAY: torch.from_numpy(np.ascontiguousarray(obj).copy())}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: to_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_safe(v) for v in obj)
    if obj is None or isinstance(obj, (bool, int, float, str, bytes, torch.Tensor)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in a state file; accepted: arrays, tensors, plain types")


def from_safe(obj: Any) -> Any:
    """Inverse of :func:`to_safe`."""
    if isinstance(obj, dict):
        if set(obj) == {_ARRAY} and isinstance(obj[_ARRAY], torch.Tensor):
            return obj[_ARRAY].numpy().copy()
        return {k: from_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(from_safe(v) for v in obj)
    return obj


def _tensors(obj: Any, path: str = ""):
    if isinstance(obj, torch.Tensor):
        yield path, obj
    elif isinstance(obj, dict):
        for k in sorted(obj, key=str):
            yield from _tensors(obj[k], f"{path}/{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _tensors(v, f"{path}/{i}")


def array_checksum(safe: Any) -> str:
    """SHA-256 over every tensor of a :func:`to_safe` object: its place, dtype, shape and bytes."""
    h = hashlib.sha256()
    for path, t in _tensors(safe):
        t = t.detach().cpu().contiguous()
        h.update(f"{path}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_state(path: str | os.PathLike, state: Any, kind: str) -> Path:
    """Write ``state`` as a file of ``kind`` (e.g. ``"hebb-gym-checkpoint"``), atomically, with its checksum."""
    safe = to_safe(state)
    payload = {"format": kind, "state": safe, "checksum": array_checksum(safe)}
    return atomic_write(path, lambda f: torch.save(payload, f))


def load_state(path: str | os.PathLike, kind: str) -> Any:
    """Read a :func:`save_state` file of ``kind`` without executing anything; checks kind and checksum."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, AttributeError, OSError) as exc:
        raise StateFileError(
            f"{path} is not a {kind} file: it is unreadable, truncated, or holds objects other than arrays and "
            f"plain values, which hebb-gym never loads ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != kind:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise StateFileError(f"{path} is not a {kind} file (it holds {found!r})")
    if array_checksum(payload.get("state")) != payload.get("checksum"):
        raise StateFileError(f"{path} fails its checksum: the file was changed or damaged after it was written")
    return from_safe(payload["state"])
