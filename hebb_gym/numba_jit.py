"""numba, where it is installed, for the package's compiled kernels (``pip install "hebb-gym[speed]"``): the car's
drawing (:mod:`hebb_gym.car_draw_kernel`, :mod:`hebb_gym.car_world_kernel`), its conv stack
(:mod:`agents.policies.conv_kernel`) and the fused plastic update (:mod:`agents.policies.fused_update`).

:func:`jit` compiles a kernel lazily (at its first call; ``cache=True`` keeps the machine code beside the
module for the next process) or, without numba, hands the Python function back unchanged: the modules that
define kernels import without numba, and their callers check :data:`AVAILABLE` and run the reference code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

try:  # optional: every kernel has a numpy/pygame/torch reference
    import numba
except ImportError:  # pragma: no cover - depends on the environment
    numba = None

__all__ = ["AVAILABLE", "jit"]

#: Whether numba is importable (the compiled kernels can be used).
AVAILABLE = numba is not None

#: The options of every kernel: cached, no GIL, no bounds checks; by default plain IEEE arithmetic (no fastmath,
#: no FMA), which a kernel may change (``fastmath={"contract"}``).
_OPTIONS = {"cache": True, "nogil": True, "boundscheck": False}


def jit(function: Callable[..., Any] | None = None, **options: Any) -> Any:
    """``numba.njit(cache=True, nogil=True, boundscheck=False, **options)``: ``@jit`` or ``@jit(fastmath=...)``."""
    def compile_lazily(f: Callable[..., Any]) -> Callable[..., Any]:
        if numba is None:  # pragma: no cover - depends on the environment
            return f
        return numba.njit(**{**_OPTIONS, **options})(f)

    return compile_lazily if function is None else compile_lazily(function)
