"""The world texture compiled (numba, optional): pygame's painting and its 2x smoothscale, pixel for pixel.

When :class:`hebb_gym.car_render.StatePixelsRenderer` draws a new track its reference paints the world at
4 texels per metre band by band on a pygame surface (black, the field's background, the grass patches, the
road tiles and kerbs, in Gymnasium's order) and stores each band's 2x2, 4x4, ... area averages with one pygame
``transform.smoothscale`` and one copy per level; a tile that turns grey repaints its neighbourhood the same
way. That takes some 25-30 ms per track. :func:`paint_levels` does the same for a band (or a neighbourhood)
32 rows at a time, so the full-resolution rows never leave the cache:

* each 32-row strip is painted in the same order with the same hit tests and the same band-relative vertices
  (pygame truncates them toward zero, so the band matters, the strip does not: rows are filled independently),
  the polygons filled as pygame fills them (:mod:`hebb_gym.pygame_fill`) and the colours packed as pygame packs
  them into a 32-bit surface without alpha (``0x00RRGGBB``);
* then halved into each level in turn: for an exact halving pygame's filter (pygame-ce src_c/transform.c,
  ``filter_shrink_X`` then ``filter_shrink_Y``, 16.16 fixed point with step 2 and reciprocal 1/2) is
  ``floor((a + b) / 2)`` per byte across, then the same down the columns, computed here four bytes at a time in
  one 32-bit word (``(a & b) + (((a ^ b) >> 1) & 0x7F7F7F7F)``), each level from the one before.

tests/test_car_render.py checks the levels equal the reference's word for word, after the build and after tiles
turned grey.
"""

from __future__ import annotations

import numpy as np

from hebb_gym.numba_jit import AVAILABLE, jit
from hebb_gym.pygame_fill import fill_polygon

__all__ = ["AVAILABLE", "STRIP", "paint_levels"]

#: Full-resolution rows painted at a time (a multiple of 2**levels; 32 x 2752 texels is 352 KB).
STRIP = 32
_LOW7 = np.uint32(0x7F7F7F7F)


@jit
def _halve(src, sy, sx, dst, dy, dx, h, w):  # pragma: no cover - compiled
    """dst[dy:dy+h, dx:dx+w] = pygame's half-size smoothscale of src[sy:sy+2h, sx:sx+2w]."""
    one = np.uint32(1)
    for y in range(h):
        top = src[sy + 2 * y, sx : sx + 2 * w]  # row slices: the loop below then vectorises
        bottom = src[sy + 2 * y + 1, sx : sx + 2 * w]
        row = dst[dy + y, dx : dx + w]
        for x in range(w):
            a, b = top[2 * x], top[2 * x + 1]
            across_top = (a & b) + (((a ^ b) >> one) & _LOW7)  # per byte floor((a + b) / 2)
            a, b = bottom[2 * x], bottom[2 * x + 1]
            across_bottom = (a & b) + (((a ^ b) >> one) & _LOW7)
            row[x] = (across_top & across_bottom) + (((across_top ^ across_bottom) >> one) & _LOW7)


@jit
def _paint_levels(levels, x0, y0, h, w, field, bg, grass_boxes, grass, quads, boxes, poly_tile, tile_colours,
                  poly_colours):  # pragma: no cover - compiled
    # the polygons the reference draws in this band (its hit tests), vertices relative to the band, truncated
    x1, y1 = x0 + w, y0 + h
    n_grass, n_road = grass_boxes.shape[0], quads.shape[0]
    n = n_grass + n_road
    xs = np.empty((n, 4), np.int64)
    ys = np.empty((n, 4), np.int64)
    words = np.empty(n, np.uint32)
    order = np.empty(n, np.int64)  # grass first, then the road, each in the reference's order
    m = 0
    for g in range(n_grass):
        gx0, gy0, gx1, gy1 = grass_boxes[g, 0], grass_boxes[g, 1], grass_boxes[g, 2], grass_boxes[g, 3]
        if gx0 < x1 and gx1 >= x0 and gy0 < y1 and gy1 >= y0:
            a, b, c, d = int(gx0 - x0), int(gy0 - y0), int(gx1 - x0), int(gy1 - y0)
            xs[m, 0], xs[m, 1], xs[m, 2], xs[m, 3] = a, c, c, a
            ys[m, 0], ys[m, 1], ys[m, 2], ys[m, 3] = b, b, d, d
            words[m] = grass
            order[m] = g
            m += 1
    for j in range(n_road):
        if boxes[j, 0] < x1 and boxes[j, 2] >= x0 and boxes[j, 1] < y1 and boxes[j, 3] >= y0:
            for v in range(4):
                xs[m, v] = int(quads[j, v, 0] - x0)
                ys[m, v] = int(quads[j, v, 1] - y0)
            t = poly_tile[j]
            colour = tile_colours[t] if t >= 0 else poly_colours[j]
            words[m] = np.uint32((int(colour[0]) << 16) | (int(colour[1]) << 8) | int(colour[2]))
            m += 1
    strip = np.empty((STRIP, w), np.uint32)
    extent = np.zeros((STRIP, 2), np.int64)  # fill_polygon's bookkeeping, not needed here
    cross = np.empty(4, np.int64)
    sx = np.empty(4, np.int64)
    sy = np.empty(4, np.int64)
    fx0, fx1 = max(field[0] - x0, 0), min(field[0] - x0 + field[2], w)
    fy0, fy1 = field[1] - y0, field[1] - y0 + field[2]
    for s0 in range(0, h, STRIP):
        # black, and the field's square (pygame's clipped rectangle fill)
        for i in range(STRIP):
            row = strip[i]
            if fy0 <= s0 + i < fy1 and fx0 < fx1:
                row[:fx0] = 0
                row[fx0:fx1] = bg
                row[fx1:] = 0
            else:
                row[:] = 0
        for k in range(m):
            lo = min(min(ys[k, 0], ys[k, 1]), min(ys[k, 2], ys[k, 3]))
            hi = max(max(ys[k, 0], ys[k, 1]), max(ys[k, 2], ys[k, 3]))
            if hi < s0 or lo >= s0 + STRIP:
                continue
            for v in range(4):
                sx[v] = xs[k, v]
                sy[v] = ys[k, v] - s0  # an integer shift: the same rows as painting the whole band
            fill_polygon(strip, extent, sx, sy, 4, words[k], cross)
        # the strip's share of every level, each from the one before
        lx, ly, lh, lw = x0, y0 + s0, STRIP, w
        src = strip
        src_y, src_x = 0, 0
        for level in range(len(levels)):
            lx, ly, lh, lw = lx // 2, ly // 2, lh // 2, lw // 2
            _halve(src, src_y, src_x, levels[level], ly, lx, lh, lw)
            src = levels[level]
            src_y, src_x = ly, lx


def paint_levels(levels: tuple[np.ndarray, ...], x0: int, y0: int, h: int, w: int, field: tuple[int, int, int],
                 bg: int, grass_boxes: np.ndarray, grass: int, quads: np.ndarray, boxes: np.ndarray,
                 poly_tile: np.ndarray, tile_colours: np.ndarray, poly_colours: np.ndarray) -> None:
    """Paint the world's band of h x w full-resolution texels at (x0, y0) and store it into every level.

    ``levels``: the 2x2, 4x4, ... levels, square C-contiguous uint32 arrays, each half the one before;
    ``x0, y0, h, w``: multiples of 2**len(levels) (so is :data:`STRIP`), the band inside the levels; ``field``:
    the field square's corner and side in texels; ``bg``, ``grass``: colour words; ``grass_boxes`` (G, 4) and
    ``boxes`` (N, 4) float64: x0, y0, x1, y1 of each grass patch and road polygon; ``quads`` (N, 4, 2) float64:
    the road polygons (tiles and kerbs in Gymnasium's order); polygon j's colour is
    ``tile_colours[poly_tile[j]]`` (live: the tiles that turn grey) or, where ``poly_tile[j] < 0``,
    ``poly_colours[j]`` ((N, 3) float64), truncated to integers as pygame truncates colours.
    """
    if not isinstance(levels, tuple) or not levels:
        raise ValueError("levels must be a non-empty tuple of arrays")
    align = 2 ** len(levels)
    for k, level in enumerate(levels):
        side = levels[0].shape[0] >> k
        if (not isinstance(level, np.ndarray) or level.dtype != np.uint32 or level.shape != (side, side)
                or not level.flags.c_contiguous):
            raise ValueError(
                f"levels[{k}] must be a C-contiguous uint32 ({side}, {side}) array, half the one before"
            )
    if STRIP % align or min(x0, y0, h, w) < 0 or any(v % align for v in (x0, y0, h, w)):
        raise ValueError(f"x0={x0}, y0={y0}, h={h}, w={w} must be multiples of {align} (and of {STRIP} for h)")
    if h % STRIP or 2 * levels[0].shape[0] < max(x0 + w, y0 + h):
        raise ValueError(f"the band {w}x{h} at ({x0}, {y0}) must lie in the levels (h a multiple of {STRIP})")
    n = len(quads)
    shapes = (quads.shape, boxes.shape, poly_tile.shape, poly_colours.shape)
    if shapes != ((n, 4, 2), (n, 4), (n,), (n, 3)):
        raise ValueError(
            f"quads {quads.shape}, boxes {boxes.shape}, poly_tile {poly_tile.shape} and poly_colours "
            f"{poly_colours.shape} must describe the same {n} polygons: (N, 4, 2), (N, 4), (N,), (N, 3)"
        )
    if grass_boxes.ndim != 2 or grass_boxes.shape[1] != 4:
        raise ValueError(f"grass_boxes has shape {grass_boxes.shape}; accepted: (G, 4)")
    if n and poly_tile.max() >= len(tile_colours):
        raise ValueError(f"poly_tile refers to tile {poly_tile.max()} of {len(tile_colours)}")
    if not AVAILABLE:
        raise RuntimeError('the compiled world needs numba: pip install "hebb-gym[speed]"')
    _paint_levels(levels, x0, y0, h, w, np.array(field, np.int64), np.uint32(bg), grass_boxes, np.uint32(grass),
                  quads, boxes, poly_tile, tile_colours, poly_colours)
