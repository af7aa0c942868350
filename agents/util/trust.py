"""Which pickled files this machine's hebb-gym wrote itself: an HMAC of their bytes with a local secret key.

Stable-Baselines3 models (``model.zip``) and ``vecnormalize.pkl`` are pickles: loading one runs whatever
code its author put in it. ``hebb-gym ppo`` signs the files it writes with a key kept in
``$HEBB_GYM_HOME/trust.key`` (default ``~/.local/share/hebb-gym``, created on first use, mode 0600);
a file whose signature checks out was written here and loads without asking. Any other (a model someone
shared, a directory from another machine) needs an explicit ``trust_pickles=True`` / ``--trust-pickles``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Iterable

__all__ = ["is_signed_here", "sign"]


def _key() -> bytes:
    home = Path(os.environ.get("HEBB_GYM_HOME") or Path.home() / ".local" / "share" / "hebb-gym")
    path = home / "trust.key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        home.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it meanwhile
            return path.read_bytes()
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return key


def sign(blobs: Iterable[bytes]) -> str:
    """The HMAC-SHA256 (hex) of ``blobs`` (each file's bytes, in order) under this machine's key."""
    mac = hmac.new(_key(), digestmod=hashlib.sha256)
    for b in blobs:
        mac.update(hashlib.sha256(b).digest())
    return mac.hexdigest()


def is_signed_here(blobs: Iterable[bytes], signature: object) -> bool:
    """Whether ``signature`` is this machine's :func:`sign` of ``blobs``."""
    return isinstance(signature, str) and hmac.compare_digest(sign(blobs), signature)
