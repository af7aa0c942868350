"""The world texture compiled (numba, optional): pygame's painting and its 2x smoothscale, pixel for pixel.

When :class:`hebb_gym.car_render.StatePixelsRenderer` draws a new track it paints the world at 4 texels per
metre band by band on a pygame surface (black, the field's background, the grass patches, the road tiles and
kerbs, in Gymnasium's order) and stores each band's 2x2, 4x4, ... area averages with one pygame
``transform.smoothscale`` and one copy per level; a tile that turns grey repaints its neighbourhood the same
way. That reference takes some 30 ms per track (two thirds of it in smoothscale). Here:

* :func:`paint` paints a region into a uint32 array, in the same order with the same hit tests and the same
  band-relative vertices (pygame truncates them toward zero, so the band matters), the polygons filled as
  pygame fills them (:mod:`hebb_gym.pygame_fill`) and the colours packed as pygame packs them into a 32-bit
  surface without alpha (``0x00RRGGBB``);
* :func:`halve` stores the next level: for an exact halving pygame's filter (pygame-ce src_c/transform.c,
  ``filter_shrink_X`` then ``filter_shrink_Y``, 16.16 fixed point with step 2 and reciprocal 1/2) is
  ``floor((a + b) / 2)`` per byte across, then the same down the columns, computed here four bytes at a time in
  one 32-bit word (``(a & b) + (((a ^ b) >> 1) & 0x7F7F7F7F)``), straight from one level's texels into the next.

tests/test_car_render.py checks the levels equal the reference's word for word, after the build and after tiles
turned grey.
"""

from __future__ import annotations

import numpy as np

from hebb_gym.numba_jit import AVAILABLE, jit
from hebb_gym.pygame_fill import fill_polygon

__all__ = ["AVAILABLE", "halve", "paint"]

_LOW7 = np.uint32(0x7F7F7F7F)


@jit
def _paint(pixels, x0, y0, field, bg, grass_boxes, grass, quads, boxes, poly_tile, tile_colours,
           poly_colours):  # pragma: no cover - compiled
    h, w = pixels.shape
    # black, and the field's square (pygame's clipped rectangle fill)
    fx0, fx1 = max(field[0] - x0, 0), min(field[0] - x0 + field[2], w)
    fy0, fy1 = max(field[1] - y0, 0), min(field[1] - y0 + field[2], h)
    for y in range(h):
        row = pixels[y]
        if fy0 <= y < fy1 and fx0 < fx1:
            for x in range(fx0):
                row[x] = 0
            for x in range(fx0, fx1):
                row[x] = bg
            for x in range(fx1, w):
                row[x] = 0
        else:
            for x in range(w):
                row[x] = 0
    extent = np.zeros((h, 2), np.int64)  # fill_polygon's bookkeeping, not needed here
    cross = np.empty(4, np.int64)
    xs = np.empty(4, np.int64)
    ys = np.empty(4, np.int64)
    x1, y1 = x0 + w, y0 + h
    for g in range(grass_boxes.shape[0]):
        gx0, gy0, gx1, gy1 = grass_boxes[g, 0], grass_boxes[g, 1], grass_boxes[g, 2], grass_boxes[g, 3]
        if gx0 < x1 and gx1 >= x0 and gy0 < y1 and gy1 >= y0:
            a, b, c, d = int(gx0 - x0), int(gy0 - y0), int(gx1 - x0), int(gy1 - y0)
            xs[0], xs[1], xs[2], xs[3] = a, c, c, a
            ys[0], ys[1], ys[2], ys[3] = b, b, d, d
            fill_polygon(pixels, extent, xs, ys, 4, grass, cross)
    for j in range(quads.shape[0]):
        if boxes[j, 0] < x1 and boxes[j, 2] >= x0 and boxes[j, 1] < y1 and boxes[j, 3] >= y0:
            for v in range(4):
                xs[v] = int(quads[j, v, 0] - x0)
                ys[v] = int(quads[j, v, 1] - y0)
            t = poly_tile[j]
            colour = tile_colours[t] if t >= 0 else poly_colours[j]
            word = np.uint32((int(colour[0]) << 16) | (int(colour[1]) << 8) | int(colour[2]))
            fill_polygon(pixels, extent, xs, ys, 4, word, cross)


@jit
def _halve(src, dst):  # pragma: no cover - compiled
    h, w = dst.shape
    for y in range(h):
        top = src[2 * y]
        bottom = src[2 * y + 1]
        row = dst[y]
        for x in range(w):
            a, b = top[2 * x], top[2 * x + 1]
            across_top = (a & b) + (((a ^ b) >> 1) & _LOW7)  # per byte floor((a + b) / 2)
            a, b = bottom[2 * x], bottom[2 * x + 1]
            across_bottom = (a & b) + (((a ^ b) >> 1) & _LOW7)
            row[x] = (across_top & across_bottom) + (((across_top ^ across_bottom) >> 1) & _LOW7)


def paint(pixels: np.ndarray, x0: int, y0: int, field: tuple[int, int, int], bg: int, grass_boxes: np.ndarray,
          grass: int, quads: np.ndarray, boxes: np.ndarray, poly_tile: np.ndarray, tile_colours: np.ndarray,
          poly_colours: np.ndarray) -> None:
    """Paint the world's region with corner texel (x0, y0) into ``pixels`` (h, w) uint32 (a view is fine).

    ``field``: the field square's corner and side in texels; ``bg``, ``grass``: colour words; ``grass_boxes``
    (G, 4) and ``boxes`` (N, 4) float64: x0, y0, x1, y1 of each grass patch and road polygon; ``quads`` (N, 4, 2)
    float64: the road polygons (tiles and kerbs in Gymnasium's order); polygon j's colour is
    ``tile_colours[poly_tile[j]]`` (live: the tiles that turn grey) or, where ``poly_tile[j] < 0``,
    ``poly_colours[j]`` ((N, 3) float64, truncated to integers as pygame's colours).
    """
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint32 or pixels.ndim != 2:
        raise ValueError("pixels must be a 2-D uint32 array")
    n = len(quads)
    if quads.shape != (n, 4, 2) or boxes.shape != (n, 4) or poly_tile.shape != (n,) or poly_colours.shape != (n, 3):
        raise ValueError(
            f"quads {quads.shape}, boxes {boxes.shape}, poly_tile {poly_tile.shape} and poly_colours "
            f"{poly_colours.shape} must describe the same {n} polygons: (N, 4, 2), (N, 4), (N,), (N, 3)"
        )
    if n and (poly_tile.max() >= len(tile_colours)):
        raise ValueError(f"poly_tile refers to tile {poly_tile.max()} of {len(tile_colours)}")
    if not AVAILABLE:
        raise RuntimeError('the compiled world needs numba: pip install "hebb-gym[speed]"')
    _paint(pixels, x0, y0, np.array(field, np.int64), np.uint32(bg), grass_boxes, np.uint32(grass), quads, boxes,
           poly_tile, tile_colours, poly_colours)


def halve(src: np.ndarray, dst: np.ndarray) -> None:
    """``dst`` (h, w) = pygame's smoothscale of ``src`` (2h, 2w) to half size; 2-D uint32 arrays (views allowed)."""
    for name, a in (("src", src), ("dst", dst)):
        if not isinstance(a, np.ndarray) or a.dtype != np.uint32 or a.ndim != 2:
            raise ValueError(f"{name} must be a 2-D uint32 array")
    if src.shape != (2 * dst.shape[0], 2 * dst.shape[1]):
        raise ValueError(f"src has shape {src.shape}; accepted: twice dst's {dst.shape}")
    if not AVAILABLE:
        raise RuntimeError('the compiled world needs numba: pip install "hebb-gym[speed]"')
    _halve(src, dst)
