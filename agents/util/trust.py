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


_KEY_BYTES = 32


def _key() -> bytes:
    home = Path(os.environ.get("HEBB_GYM_HOME") or Path.home() / ".local" / "share" / "hebb-gym")
    path = home / "trust.key"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        tmp = home / f".trust.key.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(_KEY_BYTES))
        try:
            os.link(tmp, path)  # whole or not at all; another process may have made it meanwhile
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    key = path.read_bytes()
    if len(key) < _KEY_BYTES:
        raise ValueError(f"{path} holds {len(key)} bytes, not a {_KEY_BYTES}-byte key; delete it (models signed "
                         "with it will then need --trust-pickles)")
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
