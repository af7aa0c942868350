"""The car's static conv stack, frame by frame in one compiled pass (numba, optional).

For each (individual, env) frame of a batch, with that individual's weights, :func:`conv_stack` computes
what :func:`agents.policies.networks.conv_features` does after the resize: the scaling to [0, 1],
``conv(C -> c1, k3, s1)``, 2x2 max pooling, ``tanh``, ``conv(c1 -> c2, k5, s2)``, 2x2 max pooling,
``tanh``, flattened (channel, row, column) into the caller's feature rows; no bias (the network has none).
A frame stays in L1/L2 from the first pass to the last, and all P x E frames of a batch take one call.

Every loop that does arithmetic runs over contiguous memory, so LLVM vectorises it without gathers:

* the 84x84 input is scaled into 16 *phase planes* per channel, plane ``(a, b)`` holding the pixels
  ``(4r + a, 4j + b)`` as 20 x 20 rows (rows and columns 80-83 feed no feature);
* the first convolution is computed per output phase ``(w, v)`` (outputs ``(4r + w, 4j + v)``): each of the
  nine taps reads one input phase plane at a fixed offset, so an input channel's 3x3 kernel is nine
  multiply-adds over a flat run of 400 outputs, for two output channels at once (they share the loads). The
  2x2 pooling of phases ``(2t + s, 2u + s')`` over s, s' is then an element-wise maximum of four planes, and
  it lands, with ``tanh``, in the phase plane ``(t, u)`` (pooled ``(2r + t, 2j + u)``) that the stride-2
  convolution reads the same way: a kernel row is five multiply-adds over 18 output rows of 20, for four
  output channels at once; its 2x2 pooling and ``tanh`` write the features;
* ``tanh`` is computed here (numba has no vector ``tanh``) as ``x P(x^2) / Q(x^2)`` with degree-4
  polynomials fitted for this module, on ``x`` clamped to [-9, 9] (``tanh(9)`` rounds to 1 in float32),
  result clamped to [-1, 1]: at most 3.2e-7 from the exact ``tanh`` (5.3 float32 ulps near +-1; sampled over
  50 M float32 inputs in -12..12), where torch's is within 3.3e-8 (0.6 ulps).

Outputs that reach no feature are not computed: the second convolution's last row and column (its pooling
floors them away) and the first's last four rows and columns (they feed only those). Positions computed and
dropped (the ends of the flat runs, where a row reads into the next one or into the zeroed padding of its
plane) feed nothing kept. NaN propagates as in torch (pooling and ``tanh``). The sums run in another order
than oneDNN's (per input channel the kernel's products, then added to the output's running sum; multiply-
adds contracted to FMA where the CPU has it), so the features agree with torch's to float32 rounding, not
bit for bit; every frame runs the same loops whatever the batch, so a frame's features do not depend, bit
for bit, on the other frames of its call. Without numba (``pip install "hebb-gym[speed]"``)
:class:`agents.policies.image_features.ImageFeatures` runs torch's convolutions instead, and they stay the
reference.
"""

from __future__ import annotations

import numpy as np

from hebb_gym import numba_jit

__all__ = ["AVAILABLE", "check_args", "conv_stack", "fits", "workspace"]

#: Whether numba is importable (the compiled conv stack can be used; torch's convolutions are the fallback).
AVAILABLE = numba_jit.AVAILABLE

#: Input side, kernel sides and strides, as in agents.policies.networks (each conv followed by 2x2 max pooling).
SIZE, K1, S1, K2, S2 = 84, 3, 1, 5, 2
_SIDE = 20  # row length of a phase plane (both layers' planes)
_PLANE = 424  # floats per phase plane in memory: 400 used, then zeros read only by dropped outputs
_OUT1 = 400  # first convolution: outputs computed per phase plane (20 x 20, 78 x 78 kept of 82 x 82)
_OUT2 = 360  # second convolution: outputs computed (18 rows of 20; 18 x 18 kept of 19 x 19)
_POOL2 = 9  # side of the last pooled maps
_CLAMP = 9.0  # tanh(x) rounds to 1 in float32 from here on
#: tanh(x) ~ x P(x^2) / Q(x^2) on [-9, 9], coefficients from the constant term up (relative-error fit).
_P = (1.0, 0.13381026685237885, 0.0034955888986587524, 2.0609095372492447e-05, 1.3354676475785254e-08)
_Q = (1.0, 0.4671434164047241, 0.025876985862851143, 0.0003285636194050312, 7.776565098538413e-07)


#: numba.njit with the kernel's options (lazy: compiled, or loaded from numba's cache, at the first call).
_compiled = numba_jit.jit(fastmath={"contract"}, error_model="numpy")


def fits(conv_shapes: tuple[tuple[int, ...], ...], strides: tuple[int, ...]) -> bool:
    """Whether a network's conv stack is one :func:`conv_stack` computes (the car's: k3 s1, then k5 s2)."""
    if len(conv_shapes) != 2 or tuple(strides) != (S1, S2):
        return False
    (c1, c_in, k1, k1b), (c2, c1b, k2, k2b) = conv_shapes
    return (k1, k1b, k2, k2b) == (K1, K1, K2, K2) and c1b == c1 and min(c_in, c1, c2) >= 1


def workspace(n_channels: int, n_hidden: int) -> tuple[np.ndarray, ...]:
    """Zeroed scratch for :func:`conv_stack` (input and hidden phase planes, accumulators); reuse it."""
    return (
        np.zeros((16 * n_channels, _PLANE), np.float32),
        np.zeros((2, 4, _OUT1), np.float32),
        np.zeros((4 * n_hidden, _PLANE), np.float32),
        np.zeros((4, _OUT2), np.float32),
    )


@_compiled
def _poly4(t, c):  # pragma: no cover - compiled (inlined): c[0] + c[1] t + ... + c[4] t^4 in float32, Horner
    y = np.float32(c[4]) * t + np.float32(c[3])
    y = y * t + np.float32(c[2])
    y = y * t + np.float32(c[1])
    return y * t + np.float32(c[0])


@_compiled
def _tanh(x):  # pragma: no cover - compiled (inlined into the kernel)
    c = np.float32(_CLAMP)
    one = np.float32(1.0)
    x = c if x > c else (-c if x < -c else x)  # noqa: FURB136 (comparisons, so NaN stays NaN)
    t = x * x
    y = x * _poly4(t, _P) / _poly4(t, _Q)
    return one if y > one else (-one if y < -one else y)  # noqa: FURB136 (NaN stays NaN)


@_compiled
def _max(a, b):  # pragma: no cover - compiled (inlined); NaN wins, as in torch.maximum
    return a if (a > b) | np.isnan(a) else b


@_compiled
def _u(i):  # pragma: no cover - compiled (inlined)
    """An offset as uint64: indices of that type skip numba's negative-index wraparound, so loops stay affine."""
    return np.uint64(i)


@_compiled
def _row_taps(first, row, col):  # pragma: no cover - compiled (inlined)
    """Flat offsets (into the phase planes seen as one row) of a 3-wide kernel row's taps: input rows
    ``4r + row`` (plane row ``row % 4``, ``row // 4`` rows on), columns ``4j + col + kx`` (likewise), of the
    channel whose phase planes start at plane ``first``."""
    base = first + 4 * (row % 4)
    shift = _SIDE * (row // 4)
    return (
        _u(_PLANE * (base + col % 4) + shift + col // 4),
        _u(_PLANE * (base + (col + 1) % 4) + shift + (col + 1) // 4),
        _u(_PLANE * (base + (col + 2) % 4) + shift + (col + 2) // 4),
    )


@_compiled
def _conv_stack(images, w1, w2, n_envs, low, inv_span, out, planes, acc1, hidden, acc2):  # pragma: no cover
    # Arrays are indexed in place, never sliced in the loops (a view costs two reference-count updates);
    # the flat runs use uint64 offsets (see _u).
    n_frames, c_in = images.shape[0], images.shape[1]
    c1, c2 = w1.shape[1], w2.shape[1]
    side = _SIDE
    xf, af = planes.reshape(-1), acc1.reshape(-1)  # acc1: (2 channels, 4 phases, _OUT1)
    hf, gf = hidden.reshape(-1), acc2.reshape(-1)  # acc2: (4 channels, _OUT2)
    n1, n2 = _u(_OUT1), _u(_OUT2)
    for f in range(n_frames):
        p = f // n_envs
        e = f - p * n_envs
        # scaling into the 16 phase planes of each channel: plane 4a + b holds pixels (4r + a, 4j + b)
        for c in range(c_in):
            for a in range(4):
                for r in range(side):
                    y = 4 * r + a
                    for b in range(4):
                        k = _PLANE * (16 * c + 4 * a + b) + side * r
                        for j in range(side):
                            xf[k + j] = (images[f, c, y, 4 * j + b] - low) * inv_span
        # conv 1, two output channels a pass (their nine taps share the loads), per output phase
        # (2t + s, 2u + s'); pooled over (s, s') into hidden plane (t, u), tanh
        for o in range(0, c1, 2):
            o_b = min(o + 1, c1 - 1)  # an odd last channel is paired with itself
            for t in range(2):
                for u in range(2):
                    for s in range(2):
                        for s_ in range(2):
                            ka = _u(_OUT1 * (2 * s + s_))  # channel o's accumulator of this phase
                            kb = ka + _u(4 * _OUT1)  # channel o_b's
                            row = 2 * t + s
                            col = 2 * u + s_
                            for c in range(c_in):
                                k00, k01, k02 = _row_taps(16 * c, row, col)
                                k10, k11, k12 = _row_taps(16 * c, row + 1, col)
                                k20, k21, k22 = _row_taps(16 * c, row + 2, col)
                                a00, a01, a02 = w1[p, o, c, 0, 0], w1[p, o, c, 0, 1], w1[p, o, c, 0, 2]
                                a10, a11, a12 = w1[p, o, c, 1, 0], w1[p, o, c, 1, 1], w1[p, o, c, 1, 2]
                                a20, a21, a22 = w1[p, o, c, 2, 0], w1[p, o, c, 2, 1], w1[p, o, c, 2, 2]
                                b00, b01, b02 = w1[p, o_b, c, 0, 0], w1[p, o_b, c, 0, 1], w1[p, o_b, c, 0, 2]
                                b10, b11, b12 = w1[p, o_b, c, 1, 0], w1[p, o_b, c, 1, 1], w1[p, o_b, c, 1, 2]
                                b20, b21, b22 = w1[p, o_b, c, 2, 0], w1[p, o_b, c, 2, 1], w1[p, o_b, c, 2, 2]
                                first = c == 0
                                for q in range(n1):
                                    y00, y01, y02 = xf[k00 + q], xf[k01 + q], xf[k02 + q]
                                    y10, y11, y12 = xf[k10 + q], xf[k11 + q], xf[k12 + q]
                                    y20, y21, y22 = xf[k20 + q], xf[k21 + q], xf[k22 + q]
                                    sa = (a00 * y00 + a01 * y01 + a02 * y02 + a10 * y10 + a11 * y11 + a12 * y12
                                          + a20 * y20 + a21 * y21 + a22 * y22)
                                    sb = (b00 * y00 + b01 * y01 + b02 * y02 + b10 * y10 + b11 * y11 + b12 * y12
                                          + b20 * y20 + b21 * y21 + b22 * y22)
                                    if first:
                                        af[ka + q] = sa
                                        af[kb + q] = sb
                                    else:
                                        af[ka + q] += sa
                                        af[kb + q] += sb
                    for k, ch in enumerate((o, o_b)):
                        m = _u(4 * _OUT1 * k)  # the channel's four phase accumulators, one after the other
                        m1, m2, m3 = m + n1, m + _u(2 * _OUT1), m + _u(3 * _OUT1)
                        kh = _u(_PLANE * (4 * ch + 2 * t + u))
                        for q in range(n1):
                            hf[kh + q] = _tanh(_max(_max(af[m + q], af[m1 + q]), _max(af[m2 + q], af[m3 + q])))
        # conv 2, four output channels a pass: kernel row ky reads hidden planes (ky % 2, 0 and 1) shifted
        # by ky // 2 rows (stride 2); then pooled and tanh, into the feature row
        for o in range(0, c2, 4):
            chans = (o, min(o + 1, c2 - 1), min(o + 2, c2 - 1), min(o + 3, c2 - 1))  # the last ones may repeat
            acc2[:] = 0.0
            ga, gb, gc, gd = _u(0), n2, _u(2 * _OUT2), _u(3 * _OUT2)
            o_a, o_b, o_c, o_d = chans
            for c in range(c1):
                for ky in range(K2):
                    k0 = _PLANE * (4 * c + 2 * (ky % 2)) + side * (ky // 2)  # even pooled columns; odd ones: k1
                    h0, h1, h2, h3, h4 = _u(k0), _u(k0 + _PLANE), _u(k0 + 1), _u(k0 + _PLANE + 1), _u(k0 + 2)
                    a0, a1, a2 = w2[p, o_a, c, ky, 0], w2[p, o_a, c, ky, 1], w2[p, o_a, c, ky, 2]
                    a3, a4 = w2[p, o_a, c, ky, 3], w2[p, o_a, c, ky, 4]
                    b0, b1, b2 = w2[p, o_b, c, ky, 0], w2[p, o_b, c, ky, 1], w2[p, o_b, c, ky, 2]
                    b3, b4 = w2[p, o_b, c, ky, 3], w2[p, o_b, c, ky, 4]
                    c0, c1_, c2_ = w2[p, o_c, c, ky, 0], w2[p, o_c, c, ky, 1], w2[p, o_c, c, ky, 2]
                    c3, c4 = w2[p, o_c, c, ky, 3], w2[p, o_c, c, ky, 4]
                    d0, d1, d2 = w2[p, o_d, c, ky, 0], w2[p, o_d, c, ky, 1], w2[p, o_d, c, ky, 2]
                    d3, d4 = w2[p, o_d, c, ky, 3], w2[p, o_d, c, ky, 4]
                    for q in range(n2):
                        y0, y1, y2, y3, y4 = hf[h0 + q], hf[h1 + q], hf[h2 + q], hf[h3 + q], hf[h4 + q]
                        gf[ga + q] += a0 * y0 + a1 * y1 + a2 * y2 + a3 * y3 + a4 * y4
                        gf[gb + q] += b0 * y0 + b1 * y1 + b2 * y2 + b3 * y3 + b4 * y4
                        gf[gc + q] += c0 * y0 + c1_ * y1 + c2_ * y2 + c3 * y3 + c4 * y4
                        gf[gd + q] += d0 * y0 + d1 * y1 + d2 * y2 + d3 * y3 + d4 * y4
            for k in range(4):
                first_feature = chans[k] * _POOL2 * _POOL2
                for i in range(_POOL2):
                    for j in range(_POOL2):
                        q = 2 * side * i + 2 * j
                        m = _max(_max(acc2[k, q], acc2[k, q + 1]), _max(acc2[k, q + side], acc2[k, q + side + 1]))
                        out[p, e, first_feature + _POOL2 * i + j] = _tanh(m)


def conv_stack(
    images: np.ndarray,
    w1: np.ndarray,
    w2: np.ndarray,
    n_envs: int,
    low: float,
    span: float,
    out: np.ndarray,
    work: tuple[np.ndarray, ...],
) -> None:
    """Features of ``P * E`` frames into ``out (P, E, c2 * 81)``, frame ``k`` with individual ``k // n_envs``'s weights.

    ``images (P * E, C, 84, 84)`` float32, any strides (the resized frames, pixel values in [low, low + span]);
    ``w1 (P, c1, C, 3, 3)`` and ``w2 (P, c2, c1, 5, 5)`` float32 C-contiguous (torch's layout per individual);
    ``work`` from :func:`workspace`. Shapes are checked once, where the buffers are made (:func:`check_args`).
    """
    if not numba_jit.AVAILABLE:
        raise RuntimeError('the compiled conv stack needs numba: pip install "hebb-gym[speed]"')
    _conv_stack(images, w1, w2, n_envs, np.float32(low), np.float32(1.0 / span), out, *work)


def check_args(
    images: np.ndarray, w1: np.ndarray, w2: np.ndarray, n_envs: int, out: np.ndarray, work: tuple[np.ndarray, ...]
) -> None:
    """ValueError/TypeError unless the arrays fit :func:`conv_stack` (dtypes, layouts, shapes)."""
    arrays = {"images": images, "w1": w1, "w2": w2, "out": out}
    for name, a in arrays.items():
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} is a {type(a).__name__}; accepted: a numpy array")
        if a.dtype != np.float32:
            raise TypeError(f"{name} has dtype {a.dtype}; accepted: float32")
    if isinstance(n_envs, bool) or not isinstance(n_envs, (int, np.integer)) or n_envs < 1:
        raise ValueError(f"n_envs={n_envs!r}; accepted: a positive integer")
    if w1.ndim != 5 or w2.ndim != 5 or not (w1.flags.c_contiguous and w2.flags.c_contiguous):
        raise ValueError(f"w1 and w2 must be C-contiguous (P, out, in, k, k); got shapes {w1.shape}, {w2.shape}")
    n_ind, c1, c_in = w1.shape[:3]
    c2 = w2.shape[1]
    if w1.shape[3:] != (K1, K1) or w2.shape != (n_ind, c2, c1, K2, K2):
        raise ValueError(
            f"w1 {w1.shape} and w2 {w2.shape} are not a (P, c1, C, {K1}, {K1}) and (P, c2, c1, {K2}, {K2}) pair"
        )
    if images.shape != (n_ind * n_envs, c_in, SIZE, SIZE):
        raise ValueError(f"images must be ({n_ind * n_envs}, {c_in}, {SIZE}, {SIZE}); got {images.shape}")
    n_feat = c2 * _POOL2 * _POOL2
    if out.shape != (n_ind, n_envs, n_feat) or out.strides[-1] != out.itemsize:
        raise ValueError(f"out must be ({n_ind}, {n_envs}, {n_feat}) with contiguous rows; got {out.shape}")
    want = [(a.shape, a.dtype) for a in workspace(c_in, c1)]
    if (
        not isinstance(work, tuple)
        or not all(isinstance(a, np.ndarray) and a.flags.c_contiguous for a in work)
        or [(a.shape, a.dtype) for a in work] != want
    ):
        raise ValueError(f"work must be workspace({c_in}, {c1}) (C-contiguous float32 scratch)")
