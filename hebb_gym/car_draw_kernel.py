"""The fast renderer's per-step drawing compiled into one call (numba, optional): the same frame, far fewer calls.

:meth:`hebb_gym.car_render.StatePixelsRenderer.render`'s reference drawing makes some 60 small numpy and
pygame calls per frame (the texture lookup, the car's polygons on a screen-resolution patch and its two
box-filter products, the indicator bars and the score, the smoothscale rounding). :func:`draw_frame` does
the same work in one compiled call, in five passes over a float32 frame:

1. the view: each of the 96x84 pixel centres through the camera's affine map into the world texture level
   the renderer chose, with the reference's float32 arithmetic (same products and sums, same truncation);
2. the car: Gymnasium's polygons (4 wheels, their stripes, the hull) rasterised into a label image of the
   car's screen patch as pygame-ce's ``draw.polygon`` fills them (:mod:`hebb_gym.pygame_fill`), then
   area-averaged into
   the observation cells with the reference's float32 box-filter weights, accumulated in float64, and
   composited as the reference composites;
3. the indicator bars: the exact coverages of :class:`hebb_gym.car_overlay.CarOverlay` (the same float64
   cell arithmetic, rounded to float32 where the reference rounds);
4. the score: the overlay's cached text patch (rendered by pygame once per string), composited;
5. the finishing: the two truncations of pygame's smoothscale and the uint8 conversion.

Every pass but the car's box filter does the reference's float operations in its order, so those pixels are
the reference's bit for bit. The box filter's sums are float64 here and float32 matrix products (BLAS, in an
order of its own) there: the two differ by a few float32 ulps, which changes a frame only where a car-edge
pixel sits that close to a rounding step (tests/test_car_render.py bounds and counts it). Inputs are made by
the renderer and the overlay; :func:`check_car` and :func:`check_level` validate what they make once (per car,
per texture), and :func:`draw_frame` checks only the per-step vector's length. Without numba
(``pip install "hebb-gym[speed]"``) :data:`AVAILABLE` is False and the renderer draws the reference way.
"""

from __future__ import annotations

import math

import numpy as np
from gymnasium.envs.box2d.car_racing import STATE_H, STATE_W, WINDOW_H, WINDOW_W

from hebb_gym.car_overlay import (
    _IND_COLOUR,
    _IND_H,
    _IND_PLACE,
    _IND_S,
    _IND_SCALE,
    _WHEEL_R,
    _WHEEL_W,
    _WHITE,
)
from hebb_gym.car_screen import CAR_X, CAR_Y, SHRINK_X, SHRINK_Y, SX, SY, VIEW_ROWS
from hebb_gym.numba_jit import AVAILABLE, jit
from hebb_gym.pygame_fill import fill_polygon

__all__ = ["AVAILABLE", "STEP_SIZE", "WHEELS", "check_car", "check_level", "draw_frame"]

#: Wheels of Gymnasium's car, the only car the kernel draws.
WHEELS = 4
#: Layout of the per-step vector: the pose (hull x, y, angle, zoom; texel coordinates of the hull's position
#: and the view's two texel steps f*cos, f*sin), then x, y, angle, phase of each wheel, then the indicator values.
_POSE = 8
_N_BARS = len(_IND_PLACE)
STEP_SIZE = _POSE + 4 * WHEELS + _N_BARS
#: Labels of the car's patch, in Gymnasium's drawing order (a later polygon paints over an earlier one).
_EMPTY, _WHEEL, _STRIPE, _HULL = 0, 1, 2, 3


# ---------------------------------------------------------------------------------------------- passes
@jit
def _view(buf, texels, size, dx, dy, step):  # pragma: no cover - compiled
    """Rows 0..83: the texel under each pixel centre (R, G, B of pygame's B, G, R, A words); rows 84..95: 0."""
    au0 = np.float32(step[4])
    av0 = np.float32(step[5])
    fc = np.float32(step[6])
    fs = np.float32(step[7])
    nfs = -fs
    top = np.int32(size - 1)
    zero = np.int32(0)
    au = np.empty(STATE_W, np.float32)  # the reference's per-column terms, rounded to float32 as there
    av = np.empty(STATE_W, np.float32)
    for j in range(STATE_W):
        au[j] = au0 + fc * dx[j]
        av[j] = av0 + fs * dx[j]
    at = np.empty(STATE_W, np.uint64)  # unsigned: no negative-index handling in the gather
    got = np.empty(STATE_W, np.int32)
    for i in range(VIEW_ROWS):
        bu = nfs * dy[i]
        bv = fc * dy[i]
        for j in range(STATE_W):  # float32 sums truncated to int32 as numpy's astype, then kept in the texture
            u = min(max(np.int32(au[j] + bu), zero), top)
            v = min(max(np.int32(av[j] + bv), zero), top)
            at[j] = np.uint64(v) * np.uint64(size) + np.uint64(u)
        for j in range(STATE_W):
            got[j] = texels[at[j]]
        row = buf[i].reshape(-1)
        for j in range(STATE_W):
            t = got[j]
            row[3 * j] = np.float32((t >> 16) & 255)
            row[3 * j + 1] = np.float32((t >> 8) & 255)
            row[3 * j + 2] = np.float32(t & 255)
    for i in range(VIEW_ROWS, STATE_H):
        for j in range(STATE_W):
            for ch in range(3):
                buf[i, j, ch] = 0.0


@jit
def _box_weights(start, n_cells, step, pixel, k_out, w_out):  # pragma: no cover - compiled
    """The reference's float32 area weights of the screen pixel [pixel, pixel + 1) in cells
    [start + step*k, start + step*(k+1)), k < n_cells; returns how many are nonzero (into k_out, w_out)."""
    k_near = math.floor((pixel - start) / step)  # a guess: its neighbours are tried too
    m = 0
    for k in range(k_near - 1, k_near + 2):
        if k < 0 or k >= n_cells:
            continue
        left = max(start + step * k, pixel)
        right = min(start + step * (k + 1), pixel + 1.0)
        weight = np.float32(max(right - left, 0.0) / step)
        if weight != 0:
            k_out[m] = k
            w_out[m] = weight
            m += 1
    return m


@jit
def _car(buf, step, car, hull_xy, hull_starts, wheel_xy):  # pragma: no cover - compiled
    """Rasterise the car on its screen patch and area-average it into ``buf`` (see the module docstring)."""
    px, py, theta, zoom = step[0], step[1], step[2], step[3]
    x_lo = max(math.floor(CAR_X + car[0] * zoom), 0)
    x_hi = min(math.ceil(CAR_X + car[2] * zoom) + 1, WINDOW_W)
    y_lo = max(math.floor(CAR_Y + car[1] * zoom), 0)
    y_hi = min(math.ceil(CAR_Y + car[3] * zoom) + 1, WINDOW_H)
    fy_lo, fy_hi = WINDOW_H - y_hi, WINDOW_H - y_lo  # flipped rows [fy_lo, fy_hi)
    j0, j1 = int(x_lo // SX), min(math.ceil(x_hi / SX), STATE_W)
    i0, i1 = int(fy_lo // SY), min(math.ceil(fy_hi / SY), VIEW_ROWS)
    if i1 <= i0 or j1 <= j0 or x_hi <= x_lo or y_hi <= y_lo:
        return
    h, w = y_hi - y_lo, x_hi - x_lo
    labels = np.zeros((h, w), np.uint8)
    extent = np.empty((h, 2), np.int64)  # the painted columns of each row
    extent[:, 0] = w
    extent[:, 1] = -1
    cross = np.empty(hull_xy.shape[0] + 4, np.int64)
    xs = np.empty(hull_xy.shape[0] + 4, np.int64)
    ys = np.empty(hull_xy.shape[0] + 4, np.int64)
    c, s = math.cos(theta), math.sin(theta)
    ox, oy = CAR_X - x_lo, CAR_Y - y_lo
    for k in range(WHEELS):
        base = _POSE + 4 * k
        rx = step[base] - px
        ry = step[base + 1] - py
        # wheel frame -> hull frame (the camera turns with the hull) -> patch pixels
        ddx = (c * rx + s * ry) * zoom + ox
        ddy = (c * ry - s * rx) * zoom + oy
        phi = step[base + 2] - theta
        cp, sp = math.cos(phi) * zoom, math.sin(phi) * zoom
        for v in range(4):
            u_, v_ = wheel_xy[v, 0], wheel_xy[v, 1]
            xs[v] = int(cp * u_ - sp * v_ + ddx)
            ys[v] = int(sp * u_ + cp * v_ + ddy)
        fill_polygon(labels, extent, xs, ys, 4, _WHEEL, cross)
        # the lighter stripe that shows the wheel's rotation (car_overlay._wheel_stripe)
        phase = step[base + 3]
        s1, s2 = math.sin(phase), math.sin(phase + 1.2)
        if s1 > 0 and s2 > 0:
            continue
        c1, c2 = math.cos(phase), math.cos(phase + 1.2)
        if s1 > 0:
            c1 = math.copysign(1.0, c1) if c1 != 0 else 0.0
        if s2 > 0:
            c2 = math.copysign(1.0, c2) if c2 != 0 else 0.0
        for v in range(4):
            u_ = -_WHEEL_W if v == 0 or v == 3 else _WHEEL_W
            v_ = _WHEEL_R * (c1 if v < 2 else c2)
            xs[v] = int(cp * u_ - sp * v_ + ddx)
            ys[v] = int(sp * u_ + cp * v_ + ddy)
        fill_polygon(labels, extent, xs, ys, 4, _STRIPE, cross)
    for p in range(hull_starts.shape[0] - 1):
        a, b = hull_starts[p], hull_starts[p + 1]
        for v in range(a, b):  # the camera turns with the hull: hull frame -> patch pixels
            xs[v - a] = int(hull_xy[v, 0] * zoom + CAR_X - x_lo)
            ys[v - a] = int(hull_xy[v, 1] * zoom + CAR_Y - y_lo)
        fill_polygon(labels, extent, xs, ys, b - a, _HULL, cross)
    # box filter: per label, the covered area of each cell, from the reference's float32 weights; a pixel
    # meets at most two adjacent cells (a cell is 10.4 x 8.3 pixels), so each gets its first cell and two weights
    ni, nj = i1 - i0, j1 - j0
    col_k = np.empty(w, np.int64)
    col_w = np.zeros((w, 2), np.float64)
    ks = np.empty(3, np.int64)
    ws = np.empty(3, np.float64)
    for x in range(w):
        n_cells = _box_weights(j0 * SX, nj, SX, float(x_lo + x), ks, ws)
        if n_cells > 2 or (n_cells == 2 and ks[1] != ks[0] + 1):
            raise ValueError("a screen pixel meets more than two adjacent observation cells")
        col_k[x] = ks[0] if n_cells else 0
        for t in range(n_cells):
            col_w[x, ks[t] - ks[0]] = ws[t]
    line = np.zeros((4, nj + 1), np.float64)
    cover = np.zeros((4, ni, nj), np.float64)
    for r in range(h):  # patch rows run top to bottom on the unflipped screen: flipped row fy_hi - 1 - r
        if extent[r, 1] < 0:
            continue
        n_rows = _box_weights(i0 * SY, ni, SY, float(fy_hi - 1 - r), ks, ws)
        if n_rows == 0:
            continue
        lo, hi = nj, -1
        # line[label, k] += weights pixel by pixel, the running pair of sums kept in registers while the
        # label and the cell stay the same (the same additions in the same order as through memory)
        run_label, run_k = 0, 0
        acc0, acc1 = 0.0, 0.0
        for x in range(extent[r, 0], extent[r, 1] + 1):
            label = labels[r, x]
            k = col_k[x]
            if label != run_label or k != run_k:
                if run_label != _EMPTY:
                    line[run_label, run_k] = acc0
                    line[run_label, run_k + 1] = acc1
                run_label, run_k = label, k
                if label != _EMPTY:
                    acc0 = line[label, k]
                    acc1 = line[label, k + 1]
                    lo = min(lo, k)
                    hi = max(hi, k + 1)
            if label != _EMPTY:
                acc0 += col_w[x, 0]  # adding a zero weight leaves a sum as it is
                acc1 += col_w[x, 1]
        if run_label != _EMPTY:
            line[run_label, run_k] = acc0
            line[run_label, run_k + 1] = acc1
        hi = min(hi, nj - 1)
        for label in range(1, 4):
            for j in range(lo, hi + 1):
                if line[label, j] != 0.0:
                    for t in range(n_rows):
                        cover[label, ks[t], j] += ws[t] * line[label, j]
            for j in range(lo, hi + 2 if hi + 2 <= nj + 1 else nj + 1):
                line[label, j] = 0.0
    one = np.float32(1.0)
    inv255 = np.float32(1.0 / 255.0)
    for i in range(ni):
        for j in range(nj):
            cw, cs, ch_ = cover[_WHEEL, i, j], cover[_STRIPE, i, j], cover[_HULL, i, j]
            total = cw + cs + ch_
            if total == 0.0:
                continue
            keep = one - np.float32(255.0 * total) * inv255
            for ch in range(3):
                paint = np.float32(cw * car[7 + ch] + cs * _WHITE[ch] + ch_ * car[4 + ch])
                buf[i0 + i, j0 + j, ch] = buf[i0 + i, j0 + j, ch] * keep + paint


@jit
def _cells(a, b, step, n, ks, ws):  # pragma: no cover - compiled
    """car_overlay._cells: cells of width ``step`` touched by pygame's fill of the span a..b, with coverage."""
    lo = max(float(math.floor(min(a, b))), 0.0)
    hi = min(float(math.floor(max(a, b)) + 1), n * step)
    m = 0
    k = int(lo // step)
    while k < n and k * step < hi:
        cover = (min((k + 1) * step, hi) - max(k * step, lo)) / step
        if cover > 0:
            ks[m] = k
            ws[m] = cover
            m += 1
        k += 1
    return m


@jit
def _bars(buf, step):  # pragma: no cover - compiled
    """The indicator bars (CarOverlay._draw_indicators / _bar_patch), in Gymnasium's order."""
    xk = np.empty(STATE_W, np.int64)
    xw = np.empty(STATE_W, np.float64)
    yk = np.empty(STATE_H, np.int64)
    yw = np.empty(STATE_H, np.float64)
    one = np.float32(1.0)
    for k in range(_N_BARS):
        value = step[_POSE + 4 * WHEELS + k]
        if abs(value) <= 1e-4:
            continue
        val = value * _IND_SCALE[k]
        place = _IND_PLACE[k]
        if k < 5:  # vertical bar growing up from y = H - h
            end = math.floor(WINDOW_H - _IND_H - _IND_H * val)
            nx = _cells(place * _IND_S, (place + 1) * _IND_S, SX, STATE_W, xk, xw)
            ny = _cells(float(end), WINDOW_H - _IND_H, SY, STATE_H, yk, yw)
        else:  # horizontal bar growing right from x = place * s
            end = math.floor((place + val) * _IND_S)
            nx = _cells(place * _IND_S, float(end), SX, STATE_W, xk, xw)
            ny = _cells(WINDOW_H - 4 * _IND_H, WINDOW_H - 2 * _IND_H, SY, STATE_H, yk, yw)
        colour = _IND_COLOUR[k]
        for a in range(ny):
            for b in range(nx):
                cover = np.float32(yw[a] * xw[b])
                keep = one - cover
                for ch in range(3):
                    paint = cover * np.float32(colour[ch])
                    buf[yk[a], xk[b], ch] = buf[yk[a], xk[b], ch] * keep + paint


@jit
def _text(buf, value, cover, i0, j0):  # pragma: no cover - compiled
    """The score's cached patch (CarOverlay._draw_score)."""
    one = np.float32(1.0)
    for i in range(value.shape[0]):
        for j in range(value.shape[1]):
            keep = one - cover[i, j]
            for ch in range(3):
                buf[i0 + i, j0 + j, ch] = buf[i0 + i, j0 + j, ch] * keep + value[i, j]


@jit
def _finish(buf, out):  # pragma: no cover - compiled
    """pygame's smoothscale rounding (truncate after the x pass, then after the y pass) and uint8."""
    gx = np.float32(SHRINK_X)
    gy = np.float32(SHRINK_Y)
    src = buf.reshape(-1)
    dst = out.reshape(-1)
    for k in range(src.size):
        dst[k] = np.uint8(np.int32(np.floor(src[k] * gx) * gy))  # toward zero, as numpy's cast


@jit
def _draw(out, buf, texels, size, dx, dy, step, car, hull_xy, hull_starts, wheel_xy, text_value, text_cover,
          text_i0, text_j0):  # pragma: no cover - compiled
    _view(buf, texels, size, dx, dy, step)
    _car(buf, step, car, hull_xy, hull_starts, wheel_xy)
    _bars(buf, step)
    _text(buf, text_value, text_cover, text_i0, text_j0)
    _finish(buf, out)


# ---------------------------------------------------------------------------------------------- entry points
def draw_frame(
    buf: np.ndarray,
    texels: np.ndarray,
    size: int,
    dx: np.ndarray,
    dy: np.ndarray,
    step: np.ndarray,
    car: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    text: tuple[int, int, np.ndarray, np.ndarray],
) -> np.ndarray:
    """The 96x96x3 uint8 observation, drawn in one compiled call.

    ``buf``: (96, 96, 3) float32 scratch; ``texels``/``size``: the chosen world texture level (flat uint32,
    ``size`` x ``size``, :func:`check_level`); ``dx`` (96,) and ``dy`` (84,) float32: the pixel centres
    relative to the car on the screen; ``step``: float64 (:data:`STEP_SIZE`,), the pose, wheels and indicator
    values; ``car``: :func:`check_car`'s arrays; ``text``: the score's patch (i0, j0, value, cover).
    """
    if not AVAILABLE:
        raise RuntimeError('the compiled drawing needs numba: pip install "hebb-gym[speed]"')
    if step.shape != (STEP_SIZE,):
        raise ValueError(f"step has shape {step.shape}; accepted: ({STEP_SIZE},) float64")
    i0, j0, value, cover = text
    out = np.empty((STATE_H, STATE_W, 3), np.uint8)  # made here: one made in compiled code costs more to return
    _draw(out, buf, texels, size, dx, dy, step, *car, value, cover, i0, j0)
    return out


def check_car(car: np.ndarray, hull_xy: np.ndarray, hull_starts: np.ndarray, wheel_xy: np.ndarray) -> None:
    """ValueError unless the car's arrays fit :func:`draw_frame`.

    ``car``: float64 (10,): the car's box in the hull frame (x0, y0, x1, y1, metres), the hull's and the wheels'
    RGB; ``hull_xy``: float64 (V, 2) hull-frame vertices of all hull polygons, polygon p being rows
    ``hull_starts[p]:hull_starts[p+1]`` (int64, each polygon >= 4 vertices: pygame fills triangles otherwise);
    ``wheel_xy``: float64 (4, 2), a wheel's polygon in its own frame.
    """
    arrays = {"car": (car, np.float64, (10,)), "hull_xy": (hull_xy, np.float64, None),
              "hull_starts": (hull_starts, np.int64, None), "wheel_xy": (wheel_xy, np.float64, (4, 2))}
    for name, (a, dtype, shape) in arrays.items():
        if not isinstance(a, np.ndarray) or a.dtype != dtype or not a.flags.c_contiguous:
            raise ValueError(f"{name} must be a C-contiguous {np.dtype(dtype).name} array")
        if shape is not None and a.shape != shape:
            raise ValueError(f"{name} has shape {a.shape}; accepted: {shape}")
    if hull_xy.ndim != 2 or hull_xy.shape[1] != 2:
        raise ValueError(f"hull_xy has shape {hull_xy.shape}; accepted: (V, 2)")
    counts = np.diff(hull_starts)
    if hull_starts.ndim != 1 or len(hull_starts) < 2 or hull_starts[0] != 0 or hull_starts[-1] != len(hull_xy):
        raise ValueError(f"hull_starts={hull_starts.tolist()} must run from 0 to len(hull_xy)={len(hull_xy)}")
    if (counts < 4).any():
        raise ValueError(f"hull polygons have {counts.tolist()} vertices; the compiled fill takes >= 4 each")


def check_level(texels: np.ndarray, size: int, dx: np.ndarray, dy: np.ndarray) -> None:
    """ValueError unless a texture level and the pixel offsets fit :func:`draw_frame`."""
    if not isinstance(texels, np.ndarray) or texels.dtype != np.uint32 or texels.shape != (size * size,):
        raise ValueError(f"texels must be a flat uint32 array of {size}x{size} texels")
    if not texels.flags.c_contiguous:
        raise ValueError("texels must be C-contiguous")
    for name, a, n in (("dx", dx, STATE_W), ("dy", dy, VIEW_ROWS)):
        if not isinstance(a, np.ndarray) or a.dtype != np.float32 or a.shape != (n,):
            raise ValueError(f"{name} must be a float32 array of shape ({n},)")
