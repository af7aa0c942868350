"""pygame-ce's ``draw.polygon`` fill (src_c/draw.c, ``draw_fillpoly``) transcribed for numba: the same pixels.

pygame truncates each vertex toward zero to integers, then fills scanline by scanline: the crossings of the
polygon's half-open edges with the row (the bottom row also closes the edges that end on it), each computed in
float32 and floored or ceiled by the parity of its place in the edge order, sorted, filled in pairs, and at the
end the horizontal edges strictly between the top and the bottom rows; every span clipped to the surface.
:func:`fill_polygon` does this into any 2-D array (labels for the car, 32-bit colour words for the world) for
polygons of 4 or more vertices (pygame fills triangles by another routine); tests/test_car_render.py compares
it with ``pygame.draw.polygon`` on random polygons, edges beyond the surface included.
"""

from __future__ import annotations

import math

import numpy as np

from hebb_gym.numba_jit import jit

__all__ = ["fill_polygon", "span"]


@jit
def span(pixels, extent, x1, y, x2, value):  # pragma: no cover - compiled
    """pygame's clipped horizontal line: ``value`` into pixels x1..x2 (inclusive, either order) of row y;
    ``extent[y]`` (first, last column painted) grows to cover them."""
    h, w = pixels.shape
    if y < 0 or y >= h:
        return
    if x2 < x1:
        x1, x2 = x2, x1
    x1 = max(x1, 0)
    x2 = min(x2, w - 1)
    if x2 < 0 or x1 >= w:
        return
    pixels[y, x1 : x2 + 1] = value
    extent[y, 0] = min(extent[y, 0], x1)
    extent[y, 1] = max(extent[y, 1], x2)


@jit
def fill_polygon(pixels, extent, xs, ys, n, value, cross):  # pragma: no cover - compiled
    """pygame-ce's ``draw_fillpoly`` (src_c/draw.c) of ``value`` for integer vertices ``xs[:n], ys[:n]``, n >= 4;
    ``cross``: int64 scratch of n entries; ``extent``: (rows, 2) int64, see :func:`span`.

    Scanline by scanline: the crossings of the half-open edges (the bottom row closes the edges that end on it),
    each computed in float32 and floored or ceiled by the parity of its place in the edge order, sorted, filled
    pairwise; then the horizontal edges strictly between the top and the bottom row.
    """
    miny = ys[0]
    maxy = ys[0]
    for i in range(1, n):
        miny = min(miny, ys[i])
        maxy = max(maxy, ys[i])
    if miny == maxy:
        minx = xs[0]
        maxx = xs[0]
        for i in range(1, n):
            minx = min(minx, xs[i])
            maxx = max(maxx, xs[i])
        span(pixels, extent, minx, miny, maxx, value)
        return
    for y in range(max(miny, 0), min(maxy, pixels.shape[0] - 1) + 1):  # rows off the array paint nothing
        m = 0
        for i in range(n):
            ip = i - 1 if i > 0 else n - 1
            y1 = ys[ip]
            y2 = ys[i]
            if y1 < y2:
                x1 = xs[ip]
                x2 = xs[i]
            elif y1 > y2:
                y2 = ys[ip]
                y1 = ys[i]
                x2 = xs[ip]
                x1 = xs[i]
            else:
                continue
            if (y >= y1 and y < y2) or (y == maxy and y2 == maxy):
                q = np.float32((y - y1) * (x2 - x1)) / np.float32(y2 - y1)
                cross[m] = (math.floor(q) if m % 2 == 0 else math.ceil(q)) + x1
                m += 1
        for a in range(1, m):  # insertion sort: a convex polygon crosses a row twice
            v = cross[a]
            b = a - 1
            while b >= 0 and cross[b] > v:
                cross[b + 1] = cross[b]
                b -= 1
            cross[b + 1] = v
        for a in range(0, m - 1, 2):
            span(pixels, extent, cross[a], y, cross[a + 1], value)
    for i in range(n):
        ip = i - 1 if i > 0 else n - 1
        y = ys[i]
        if miny < y and ys[ip] == y and y < maxy:
            span(pixels, extent, xs[i], y, xs[ip], value)
