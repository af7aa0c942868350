"""The plastic update and the renormalisation of a layer in one compiled pass (numba, optional).

For a rule with all four terms (``c_pp``, ``c_pre``, ``c_post``, ``c_const``: ABCD, ABCD_lr and their
``D_out`` / ``D_in_and_out`` variants, shared rules included, since a batch gathers every synapse's
coefficients) :func:`agents.policies.plastic_step.plastic_step` streams a layer's weights three times, its
four coefficients and a two-part scratch once per step, and the car's renormalisation reads the weights
twice more and writes them once. :func:`fused_step` does it all per (individual, env) matrix, row by row
while the row is in the cache:

    a = c_post + c_pp * pre;  b = c_const + c_pre * pre;  w = (w + a * post) + b

then max |w| of the matrix (from the float bits: |w| as an int32 orders as |w| does, and a NaN beats every
number, as in torch's ``amax``) and ``w *= 1 / max(max|w|, 1e-30)`` while the matrix is still in L2.

The numbers are those of the torch kernels: same float32 operations in the same order, with the
multiply-adds contracted to fused multiply-adds (``fastmath={"contract"}``) as torch's AVX2 kernels
compile them, so on such CPUs (the x86-64 machines this project runs on) they agree bit for bit;
tests/test_car_speed.py checks that to float32 rounding on every rule the kernel takes. Only the car's
batches use it (:class:`agents.policies.hebbian.HebbianBatch`), unless ``HEBB_GYM_FAST_CAR=0``; without
numba (``pip install "hebb-gym[speed]"``) the torch kernels run, and they stay the reference.
"""

from __future__ import annotations

import numpy as np

from hebb_gym import numba_jit

__all__ = ["AVAILABLE", "check_args", "fused_step"]

#: Whether numba is importable (the fused kernel can be used; the torch kernels are the fallback).
AVAILABLE = numba_jit.AVAILABLE


def _fused_step(
    w: np.ndarray,
    mul: np.ndarray,
    add: np.ndarray,
    pre: np.ndarray,
    post: np.ndarray,
    normalize: bool,
    x: np.ndarray,
    top: np.ndarray,
) -> None:  # pragma: no cover - compiled (its Python source is what numba compiles)
    n_p, n_e, n_o, n_i = w.shape
    shared = mul.shape[1] == 1
    one = np.float32(1.0)
    tiny = np.float32(1e-30)
    top_f = top.view(np.float32)
    for p in range(n_p):
        for e in range(n_e):
            c = 0 if shared else e
            for i in range(n_i):  # pre as a contiguous row (the activation buffers are row-padded)
                x[i] = pre[p, e, i]
            wm = w[p, e]
            bits = wm.view(np.int32)
            m = 0
            for o in range(n_o):
                y = post[p, e, o]
                row = wm[o]
                c_pp = mul[p, c, 0, o]
                c_pre = mul[p, c, 1, o]
                c_post = add[p, c, 0, o]
                c_const = add[p, c, 1, o]
                for i in range(n_i):
                    a = c_post[i] + c_pp[i] * x[i]
                    b = c_const[i] + c_pre[i] * x[i]
                    row[i] = (row[i] + a * y) + b
                if normalize:
                    row_bits = bits[o]
                    for i in range(n_i):
                        m = max(m, row_bits[i] & 0x7FFFFFFF)
            if normalize:
                top[0] = m
                hi = top_f[0]
                r = hi if np.isnan(hi) else one / max(hi, tiny)  # NaN stays NaN, as in torch's clamp_min
                flat = wm.reshape(-1)
                for k in range(flat.size):
                    flat[k] = flat[k] * r


_kernel = None


def fused_step(
    w: np.ndarray,
    mul: np.ndarray,
    add: np.ndarray,
    pre: np.ndarray,
    post: np.ndarray,
    normalize: bool,
    x: np.ndarray,
    top: np.ndarray,
) -> None:
    """One layer's plastic step in place (and ``w /= max|w|`` per matrix when ``normalize``).

    ``w (P, E, out, in)`` float32 C-contiguous; ``mul`` = [c_pp, c_pre] and ``add`` = [c_post, c_const],
    each ``(P, 1 or E, 2, out, in)`` float32 C-contiguous (:func:`agents.policies.rules.stack_terms`);
    ``pre (P, E, in)``, ``post (P, E, out)`` float32, rows contiguous; scratch ``x (in,)`` float32 and
    ``top (1,)`` int32. Shapes are checked once, where the plan is made (:func:`check_args`).
    """
    global _kernel
    if _kernel is None:
        if not numba_jit.AVAILABLE:
            raise RuntimeError('the fused update needs numba: pip install "hebb-gym[speed]"')
        _kernel = numba_jit.jit(_fused_step, fastmath={"contract"})
    _kernel(w, mul, add, pre, post, normalize, x, top)


def check_args(w: np.ndarray, mul: np.ndarray, add: np.ndarray, pre: np.ndarray, post: np.ndarray) -> None:
    """ValueError/TypeError unless the arrays fit :func:`fused_step` (dtypes, layouts, shapes)."""
    arrays = {"w": w, "mul": mul, "add": add, "pre": pre, "post": post}
    for name, a in arrays.items():
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} is a {type(a).__name__}; accepted: a numpy array")
        if a.dtype != np.float32:
            raise TypeError(f"{name} has dtype {a.dtype}; accepted: float32")
    if w.ndim != 4 or not w.flags.c_contiguous:
        raise ValueError(f"w must be a C-contiguous (P, E, out, in) array; got shape {w.shape}")
    n_p, n_e, n_o, n_i = w.shape
    for name in ("mul", "add"):
        a = arrays[name]
        if a.shape not in ((n_p, 1, 2, n_o, n_i), (n_p, n_e, 2, n_o, n_i)) or not a.flags.c_contiguous:
            raise ValueError(
                f"{name} must be C-contiguous ({n_p}, 1 or {n_e}, 2, {n_o}, {n_i}); got shape {a.shape}"
            )
    for name, width in (("pre", n_i), ("post", n_o)):
        a = arrays[name]
        if a.shape != (n_p, n_e, width) or a.strides[-1] != a.itemsize:
            raise ValueError(f"{name} must be ({n_p}, {n_e}, {width}) with contiguous rows; got {a.shape}")
