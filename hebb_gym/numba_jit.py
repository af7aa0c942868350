"""numba, where it is installed, for the fast renderer's compiled kernels (``pip install "hebb-gym[speed]"``).

:func:`jit` compiles a kernel lazily (at its first call; ``cache=True`` keeps the machine code beside the
module for the next process) or, without numba, hands the Python function back unchanged: the modules that
define kernels import without numba, and their callers check :data:`AVAILABLE` and draw the reference way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

try:  # optional: every kernel has a numpy/pygame reference
    import numba
except ImportError:  # pragma: no cover - depends on the environment
    numba = None

__all__ = ["AVAILABLE", "jit"]

#: Whether numba is importable (the compiled kernels can be used).
AVAILABLE = numba is not None


def jit(function: Callable[..., Any]) -> Callable[..., Any]:
    """``numba.njit(cache=True, nogil=True, boundscheck=False)`` (plain IEEE arithmetic: no fastmath, no FMA)."""
    if numba is None:  # pragma: no cover - depends on the environment
        return function
    return numba.njit(cache=True, nogil=True, boundscheck=False)(function)
