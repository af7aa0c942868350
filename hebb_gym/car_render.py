"""Fast drawing of CarRacing's 96x96 ``state_pixels`` observation, the same picture as Gymnasium's.

Gymnasium draws every frame by transforming each road tile and grass patch onto a 1000x800
pygame surface and scaling it down to 96x96 (an area average). The world (background, grass
checkerboard, road and kerbs) only changes when a touched tile turns grey, so here it is painted
once per track at 4 texels per metre, band by band, and kept as its 2x2, 4x4, ... area averages
(about 13 MB). Each step then looks the 96x84 view up through the camera's affine map in one
vectorised gather from the level whose texel fits an observation pixel (0.5 m once zoomed in),
draws the car with pygame at screen resolution on a small patch and area-averages it in, builds
the indicator bar from exact rectangle coverages, and applies the rounding of pygame's
smoothscale. The result matches Gymnasium's frame to a fraction of a grey level on average
(see tests/test_car_render.py) at a small fraction of the cost (benchmarks/car_render.py).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pygame
from gymnasium.envs.box2d import car_dynamics
from gymnasium.envs.box2d.car_racing import (
    GRASS_DIM,
    PLAYFIELD,
    SCALE,
    STATE_H,
    STATE_W,
    WINDOW_H,
    WINDOW_W,
    ZOOM,
)

#: Screen pixels of Gymnasium's 1000x800 frame per observation pixel (x, y).
_SX = WINDOW_W / STATE_W
_SY = WINDOW_H / STATE_H
#: Observation rows above the indicator bar (the bar covers screen rows 700..799 = rows 84..95).
_BAR_TOP = WINDOW_H - 5 * (WINDOW_H / 40.0)
_VIEW_ROWS = round(_BAR_TOP / _SY)
#: Where Gymnasium puts the car on its (unflipped) screen.
_CAR_X = WINDOW_W / 2
_CAR_Y = WINDOW_H / 4

#: Gain of pygame's smoothscale 1000 -> 96 (x) and 800 -> 96 (y) passes: 16.16 fixed-point
#: step times its truncated reciprocal; each pass then truncates to an integer.
_SHRINK_X = (65536 * WINDOW_W // STATE_W) * (2**32 // (65536 * WINDOW_W // STATE_W)) / 2**32
_SHRINK_Y = (65536 * WINDOW_H // STATE_H) * (2**32 // (65536 * WINDOW_H // STATE_H)) / 2**32
#: Coarse texture levels (each half the resolution) for the zoom-in of the first second.
_LEVELS = 5
#: Level-0 rows drawn at a time when a track is built (a multiple of 2**_LEVELS).
_BAND = 256

_WHEEL_W = car_dynamics.WHEEL_W * car_dynamics.SIZE
_WHEEL_R = car_dynamics.WHEEL_R * car_dynamics.SIZE


#: Indicator bars in Gymnasium's order: speed, four wheel speeds, steering, yaw rate.
_IND_S = WINDOW_W / 40.0
_IND_H = WINDOW_H / 40.0
_IND_PLACE = (5, 7, 8, 9, 10, 20, 30)
_IND_SCALE = (0.02, 0.01, 0.01, 0.01, 0.01, -10.0, -0.8)
_IND_COLOUR = (
    (255, 255, 255),
    (0, 0, 255),
    (0, 0, 255),
    (51, 0, 255),
    (51, 0, 255),
    (0, 255, 0),
    (255, 0, 0),
)
_WHITE = car_dynamics.WHEEL_WHITE


def _cells(a: float, b: float, step: float, n: int) -> list[tuple[int, float]]:
    """Output cells of width ``step`` touched by the pixels pygame fills for a span a..b, with coverage.

    pygame fills pixels floor(min) .. floor(max) inclusive, i.e. the interval [floor(min), floor(max) + 1).
    """
    lo = max(float(math.floor(min(a, b))), 0.0)
    hi = min(float(math.floor(max(a, b)) + 1), n * step)
    cells = []
    k = int(lo // step)
    while k < n and k * step < hi:
        cover = (min((k + 1) * step, hi) - max(k * step, lo)) / step
        if cover > 0:
            cells.append((k, cover))
        k += 1
    return cells


_IND_COLS = tuple(_cells(p * _IND_S, (p + 1) * _IND_S, _SX, STATE_W) for p in _IND_PLACE[:5])
_IND_ROWS = _cells(WINDOW_H - 4 * _IND_H, WINDOW_H - 2 * _IND_H, _SY, STATE_H)


def _box_weights(start: float, stop: int, step: float, lo: int, hi: int) -> np.ndarray:
    """Area weights of source pixels ``lo..hi-1`` in output cells ``[start + k*step, ...)`` (k < stop)."""
    edges = start + step * np.arange(stop + 1)
    px = np.arange(lo, hi, dtype=np.float64)
    left = np.maximum(edges[:-1, None], px[None, :])
    right = np.minimum(edges[1:, None], px[None, :] + 1.0)
    return (np.clip(right - left, 0.0, None) / step).astype(np.float32)


class StatePixelsRenderer:
    """Draws ``state_pixels`` for a CarRacing env from a per-track world texture; one per env."""

    def __init__(self, texels_per_metre: float = 4.0) -> None:
        self.texels_per_metre = float(texels_per_metre)
        # Black margin around the field, wide enough to stay >= 1 texel at the coarsest level.
        self._pad = 2**_LEVELS
        align = 2**_LEVELS  # so every level is an exact 2**L area average of the drawing
        self._size = -(-(math.ceil(2 * PLAYFIELD * self.texels_per_metre) + 2 * self._pad) // align) * align
        self._band: pygame.Surface | None = None
        # Field square and grass patches in level-0 texels (the track changes, they do not).
        field = self._texel(np.array([-PLAYFIELD, PLAYFIELD]))
        self._field_side = round(field[1] - field[0])
        patches = [(gx, gy) for gx in range(-20, 20, 2) for gy in range(-20, 20, 2)]
        corners = np.array([[gx, gy, gx + 1, gy + 1] for gx, gy in patches], dtype=np.float64) * GRASS_DIM
        self._grass_boxes = self._texel(corners)
        self._levels: list[tuple[float, np.ndarray, int]] = []
        self._road_poly: Any = None
        self._car: Any = None
        self._patches: dict[tuple, tuple] = {}
        self._bars: dict[tuple[int, int], tuple] = {}
        self._font: Any = None
        self._text_key: str | None = None
        self._text_patch: tuple | None = None
        # Observation-pixel centres in unflipped screen coordinates relative to the car.
        cols = (np.arange(STATE_W) + 0.5) * _SX - _CAR_X
        rows = (WINDOW_H - (np.arange(_VIEW_ROWS) + 0.5) * _SY) - _CAR_Y
        self._dx = cols.astype(np.float32)
        self._dy = rows.astype(np.float32)

    # ------------------------------------------------------------------ world texture
    def invalidate(self) -> None:
        """Forget the drawn track; the next render draws the current one."""
        self._road_poly = None

    def release(self) -> None:
        """Drop the textures (about 13 MB at 4 texels/m); a later render rebuilds them."""
        self._road_poly = None
        self._band = None
        self._levels = []
        self._patches.clear()

    def _texel(self, pts: np.ndarray) -> np.ndarray:
        """World metres -> texel coordinates of the full-resolution drawing (level 0)."""
        return (pts + PLAYFIELD) * self.texels_per_metre + self._pad

    def _build_world(self, env: Any) -> None:
        """Draw background, grass, road and kerbs for this track, band by band, into the sampled levels."""
        self._bg, self._grass = _rgb(env.bg_color), _rgb(env.grass_color)
        # Road tiles keep their colour arrays live (the contact listener greys a tile a wheel or
        # the hull touches): make them rows of one array so a step finds recoloured tiles at once.
        tiles = list(env.road)
        colours = np.array([t.color for t in tiles], dtype=np.float64).reshape(-1, 3)
        by_id = {id(t.color): i for i, t in enumerate(tiles)}
        paints: list[Any] = []
        tile_entry = np.zeros(len(tiles), dtype=np.int64)
        new_poly = []
        for k, (poly, colour) in enumerate(env.road_poly):
            i = by_id.get(id(colour))
            if i is not None:
                tiles[i].color = colours[i]
                colour = colours[i]
                tile_entry[i] = k
            new_poly.append((poly, colour))
            paints.append(colour)
        env.road_poly[:] = new_poly
        self._road_poly = env.road_poly
        quads = self._texel(np.array([poly for poly, _ in new_poly], dtype=np.float64).reshape(-1, 4, 2))
        self._quads, self._paints, self._tile_entry = quads, paints, tile_entry
        self._boxes = np.concatenate([quads.min(axis=1), quads.max(axis=1)], axis=1)  # x0, y0, x1, y1
        self._tile_colours = colours
        self._drawn_colours = colours.copy()
        size = self._size
        if not self._levels:
            self._levels = [
                (self.texels_per_metre / 2**level, np.zeros((size >> level) ** 2, np.uint32), size >> level)
                for level in range(1, _LEVELS + 1)
            ]
        if self._band is None:
            self._band = pygame.Surface((size, _BAND), depth=32)
        for y0 in range(0, size, _BAND):
            band = self._band.subsurface(pygame.Rect(0, 0, size, min(_BAND, size - y0)))
            self._paint(band, 0, y0)
            self._store(band, 0, y0)

    def _paint(self, target: pygame.Surface, x0: int, y0: int) -> None:
        """Paint field, grass and road in Gymnasium's order into ``target`` (corner at texel x0, y0)."""
        w, h = target.get_size()
        target.fill((0, 0, 0))
        side = self._field_side
        target.fill(self._bg, pygame.Rect(self._pad - x0, self._pad - y0, side, side))
        draw = pygame.draw.polygon
        x1, y1 = x0 + w, y0 + h
        grass = self._grass_boxes
        hit = np.flatnonzero(
            (grass[:, 0] < x1) & (grass[:, 2] >= x0) & (grass[:, 1] < y1) & (grass[:, 3] >= y0)
        )
        for gx0, gy0, gx1, gy1 in (grass[hit] - (x0, y0, x0, y0)).tolist():
            draw(target, self._grass, [(gx0, gy0), (gx1, gy0), (gx1, gy1), (gx0, gy1)])
        box = self._boxes
        hit = np.flatnonzero((box[:, 0] < x1) & (box[:, 2] >= x0) & (box[:, 1] < y1) & (box[:, 3] >= y0))
        paints = self._paints
        for j, quad in zip(hit.tolist(), (self._quads[hit] - (x0, y0)).tolist()):
            draw(target, _rgb(paints[j]), quad)

    def _store(self, region: pygame.Surface, x0: int, y0: int) -> None:
        """Write the 2x2, 4x4, ... area averages of a painted level-0 region into the levels."""
        small = region
        for _, texels, size in self._levels:
            w, h = small.get_size()
            small = pygame.transform.smoothscale(small, (w // 2, h // 2))
            x0, y0 = x0 // 2, y0 // 2
            texels.reshape(size, size)[y0 : y0 + h // 2, x0 : x0 + w // 2] = _pixels(small).reshape(
                h // 2, w // 2
            )

    def _update_tiles(self) -> None:
        """Repaint the neighbourhood of tiles the contact listener recoloured and refresh the levels there."""
        if np.array_equal(self._tile_colours, self._drawn_colours):
            return
        changed = np.flatnonzero((self._tile_colours != self._drawn_colours).any(axis=1))
        align = 2**_LEVELS
        for i in changed:
            self._drawn_colours[i] = self._tile_colours[i]
            x0, y0, x1, y1 = self._boxes[int(self._tile_entry[i])]
            x0, y0 = (int(x0) - 2) // align * align, (int(y0) - 2) // align * align
            x1, y1 = -(-(int(x1) + 3) // align) * align, -(-(int(y1) + 3) // align) * align
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, self._size), min(y1, self._size)
            region = pygame.Surface((x1 - x0, y1 - y0), depth=32)
            self._paint(region, x0, y0)
            self._store(region, x0, y0)

    # ------------------------------------------------------------------ per step
    def render(self, env: Any) -> np.ndarray:
        """The 96x96x3 uint8 observation Gymnasium's ``_render("state_pixels")`` would return."""
        if self._road_poly is not env.road_poly or not self._levels:
            self._build_world(env)
        else:
            self._update_tiles()
        car = env.car
        t = env.t
        zoom = 0.1 * SCALE * max(1 - t, 0) + ZOOM * SCALE * min(t, 1)
        hull = car.hull
        px, py = hull.position
        theta = hull.angle
        out = np.empty((STATE_H, STATE_W, 3), np.float32)
        out[:_VIEW_ROWS] = self._sample(px, py, theta, zoom)
        out[_VIEW_ROWS:] = 0.0
        self._draw_car(out, car, px, py, theta, zoom)
        self._draw_indicators(out, env)
        # Gymnasium's frame goes through pygame's smoothscale, whose fixed-point box filter
        # truncates twice (x pass, then y pass) and so darkens by up to 2 levels: do the same.
        out *= _SHRINK_X
        np.floor(out, out=out)
        out *= _SHRINK_Y
        return out.astype(np.uint8)  # values are convex mixes of 0..255 colours, truncation = floor

    def _sample(self, px: float, py: float, theta: float, zoom: float) -> np.ndarray:
        """Look the view's pixel centres up in the texture level that fits the current zoom."""
        footprint = _SX / zoom  # metres per observation pixel
        level = 0
        # the coarsest level whose texel is no wider than an observation pixel
        while level + 1 < len(self._levels) and footprint * self._levels[level + 1][0] >= 1.0:
            level += 1
        r, flat, size = self._levels[level]
        c, s = math.cos(theta), math.sin(theta)
        f = r / zoom
        pad = self._pad * r / self.texels_per_metre
        # texel (u, v) of view pixel (i, j) = (u0 + au[j] + bu[i], v0 + av[j] + bv[i])
        au = (px + PLAYFIELD) * r + pad + (f * c) * self._dx
        bu = (-f * s) * self._dy
        av = (py + PLAYFIELD) * r + pad + (f * s) * self._dx
        bv = (f * c) * self._dy
        ui = (au[None, :] + bu[:, None]).astype(np.int32)
        vi = (av[None, :] + bv[:, None]).astype(np.int32)
        # the view leaves the texture only near the playfield's edge or while zoomed out
        if min(au[0], au[-1]) + min(bu[0], bu[-1]) < 0 or max(au[0], au[-1]) + max(bu[0], bu[-1]) >= size - 1:
            np.clip(ui, 0, size - 1, out=ui)
        if min(av[0], av[-1]) + min(bv[0], bv[-1]) < 0 or max(av[0], av[-1]) + max(bv[0], bv[-1]) >= size - 1:
            np.clip(vi, 0, size - 1, out=vi)
        vi *= size
        vi += ui
        texels = flat.take(vi).view(np.uint8).reshape(_VIEW_ROWS, STATE_W, 4)
        return texels[:, :, 2::-1]  # pygame's 32-bit surfaces store B, G, R, A

    def _car_geometry(self, car: Any) -> None:
        """Cache the car's body-frame polygons (fixed for a car's life) and its box in the hull frame."""
        self._car = car
        self._hull_polys = [list(f.shape.vertices) for f in car.hull.fixtures]
        self._patches.clear()
        self._hull_colour = _rgb(np.asarray(car.hull.color) * 255)
        self._wheel_poly = list(car.wheels[0].fixtures[0].shape.vertices)
        self._wheel_colour = _rgb(np.asarray(car.wheels[0].color) * 255)
        # Bounding box of the car in the hull frame (the camera turns with the hull): the hull,
        # and each wheel turned through its whole steering range, plus slack for joint play.
        pts = [vert for p in self._hull_polys for vert in p]
        for x, y in car_dynamics.WHEELPOS:
            for a in np.linspace(-0.5, 0.5, 11):
                ca, sa = math.cos(a), math.sin(a)
                pts += [
                    (x * car_dynamics.SIZE + ca * u - sa * v, y * car_dynamics.SIZE + sa * u + ca * v)
                    for u, v in self._wheel_poly
                ]
        pts_arr = np.array(pts)
        self._car_box = (*(pts_arr.min(axis=0) - 0.3), *(pts_arr.max(axis=0) + 0.3))  # x0, y0, x1, y1 metres

    def _car_patch(self, zoom: float) -> tuple:
        """Drawing surface, box-filter weights and hull polygons for the car's screen box at ``zoom``."""
        bx0, by0, bx1, by1 = self._car_box
        x_lo, x_hi = (
            max(math.floor(_CAR_X + bx0 * zoom), 0),
            min(math.ceil(_CAR_X + bx1 * zoom) + 1, WINDOW_W),
        )
        y_lo, y_hi = (
            max(math.floor(_CAR_Y + by0 * zoom), 0),
            min(math.ceil(_CAR_Y + by1 * zoom) + 1, WINDOW_H),
        )
        key = (zoom, x_lo, x_hi, y_lo, y_hi)
        cached = self._patches.get(key)
        if cached is not None:
            return cached
        fy_lo, fy_hi = WINDOW_H - y_hi, WINDOW_H - y_lo  # flipped rows [fy_lo, fy_hi)
        j0, j1 = int(x_lo // _SX), min(math.ceil(x_hi / _SX), STATE_W)
        i0, i1 = int(fy_lo // _SY), min(math.ceil(fy_hi / _SY), _VIEW_ROWS)
        wx = _box_weights(j0 * _SX, j1 - j0, _SX, x_lo, x_hi)
        # rows of the unflipped patch, top to bottom, are flipped rows fy_hi-1 down to fy_lo
        wy = np.ascontiguousarray(_box_weights(i0 * _SY, i1 - i0, _SY, fy_lo, fy_hi)[:, ::-1])
        surface = pygame.Surface((x_hi - x_lo, y_hi - y_lo), pygame.SRCALPHA, 32)
        pixels = np.frombuffer(surface.get_buffer(), dtype=np.uint8).reshape(
            y_hi - y_lo, surface.get_pitch() // 4, 4
        )
        # the camera turns with the hull, so the hull's screen polygons depend on the zoom only
        hull = [
            [(u * zoom + _CAR_X - x_lo, v * zoom + _CAR_Y - y_lo) for u, v in p] for p in self._hull_polys
        ]
        cached = (surface, pixels[:, : x_hi - x_lo], (x_lo, y_lo), (i0, i1, j0, j1), wx.T.copy(), wy, hull)
        if len(self._patches) > 64:  # only the zoom-in of the first second makes new ones
            self._patches.clear()
        self._patches[key] = cached
        return cached

    def _draw_car(self, out: np.ndarray, car: Any, px: float, py: float, theta: float, zoom: float) -> None:
        """Rasterise the car as Gymnasium does (pygame, screen pixels) on a patch; area-average it in."""
        if car is not self._car:
            self._car_geometry(car)
        surface, pixels, (x_lo, y_lo), (i0, i1, j0, j1), wxt, wy, hull = self._car_patch(zoom)
        if i1 <= i0 or j1 <= j0:
            return
        surface.fill((0, 0, 0, 0))
        c, s = math.cos(theta), math.sin(theta)
        ox, oy = _CAR_X - x_lo, _CAR_Y - y_lo
        draw = pygame.draw.polygon
        for wheel in car.wheels:
            rx, ry = wheel.position
            rx -= px
            ry -= py
            # wheel frame -> hull frame (the camera turns with the hull) -> patch pixels
            dx = (c * rx + s * ry) * zoom + ox
            dy = (c * ry - s * rx) * zoom + oy
            phi = wheel.angle - theta
            cp, sp = math.cos(phi) * zoom, math.sin(phi) * zoom
            draw(
                surface,
                self._wheel_colour,
                [(cp * u - sp * v + dx, sp * u + cp * v + dy) for u, v in self._wheel_poly],
            )
            stripe = _wheel_stripe(wheel.phase)
            if stripe is not None:
                draw(surface, _WHITE, [(cp * u - sp * v + dx, sp * u + cp * v + dy) for u, v in stripe])
        for poly in hull:
            draw(surface, self._hull_colour, poly)
        img = pixels.astype(np.float32)  # (h, w, 4): B, G, R, alpha
        h, w = img.shape[:2]
        rows = (wy @ img.reshape(h, w * 4)).reshape(i1 - i0, w, 4)
        bgra = np.matmul(rows.transpose(0, 2, 1), wxt)  # (rows, 4, cols)
        region = out[i0:i1, j0:j1]
        region *= (1.0 - bgra[:, 3] * (1.0 / 255.0))[:, :, None]
        region += bgra[:, 2::-1].transpose(0, 2, 1)

    def _draw_indicators(self, out: np.ndarray, env: Any) -> None:
        """Speed, wheel speeds, steering and yaw-rate bars plus the score, as exact area coverages."""
        car = env.car
        vx, vy = car.hull.linearVelocity
        wheels = car.wheels
        values = (
            math.sqrt(vx * vx + vy * vy),
            wheels[0].omega,
            wheels[1].omega,
            wheels[2].omega,
            wheels[3].omega,
            wheels[0].joint.angle,
            car.hull.angularVelocity,
        )
        for k, value in enumerate(values):
            if abs(value) <= 1e-4:
                continue
            val = value * _IND_SCALE[k]
            place = _IND_PLACE[k]
            # pygame fills whole pixels, so a bar's picture depends on one integer: its moving end
            if k < 5:  # vertical bar growing up from y = H - h
                key = (k, math.floor(WINDOW_H - _IND_H - _IND_H * val))
            else:  # horizontal bar growing right from x = place * s
                key = (k, math.floor((place + val) * _IND_S))
            patch = self._bars.get(key)
            if patch is None:
                patch = self._bar_patch(k, key[1])
            i0, i1, j0, j1, keep, paint = patch
            region = out[i0:i1, j0:j1]
            region *= keep
            region += paint
        self._draw_score(out, f"{env.reward:04.0f}")

    def _bar_patch(self, k: int, end: int) -> tuple:
        """Area coverage of indicator ``k`` whose moving end is pixel ``end``, cached (the set is small)."""
        place = _IND_PLACE[k]
        if k < 5:
            x_cells = _IND_COLS[k]
            y_cells = _cells(end, WINDOW_H - _IND_H, _SY, STATE_H)
        else:
            x_cells = _cells(place * _IND_S, end, _SX, STATE_W)
            y_cells = _IND_ROWS
        if not x_cells or not y_cells:
            patch: tuple = (0, 0, 0, 0, 1.0, 0.0)
        else:
            cover = np.outer([w for _, w in y_cells], [w for _, w in x_cells]).astype(np.float32)[:, :, None]
            i0, j0 = y_cells[0][0], x_cells[0][0]
            patch = (
                i0,
                i0 + len(y_cells),
                j0,
                j0 + len(x_cells),
                1.0 - cover,
                cover * np.array(_IND_COLOUR[k], np.float32),
            )
        if len(self._bars) > 4096:
            self._bars.clear()
        self._bars[(k, end)] = patch
        return patch

    def _draw_score(self, out: np.ndarray, text: str) -> None:
        """The score text, rendered with Gymnasium's font once per distinct string."""
        if text != self._text_key:
            if self._font is None:
                pygame.font.init()
                self._font = pygame.font.Font(pygame.font.get_default_font(), 42)
            surf = self._font.render(text, True, (255, 255, 255), (0, 0, 0))
            box = surf.get_rect()
            box.center = (60, WINDOW_H - WINDOW_H * 2.5 / 40.0)
            grey = pygame.surfarray.array3d(surf)[:, :, 0].T.astype(np.float32)  # (h, w)
            x_lo, y_lo = box.x, box.y
            x_hi, y_hi = x_lo + box.w, y_lo + box.h
            j0, j1 = int(max(x_lo, 0) // _SX), min(math.ceil(x_hi / _SX), STATE_W)
            i0, i1 = int(max(y_lo, 0) // _SY), min(math.ceil(y_hi / _SY), STATE_H)
            wx = _box_weights(j0 * _SX, j1 - j0, _SX, x_lo, x_hi)
            wy = _box_weights(i0 * _SY, i1 - i0, _SY, y_lo, y_hi)
            cover = wy.sum(axis=1)[:, None] * wx.sum(axis=1)[None, :]
            self._text_patch = (i0, j0, wy @ grey @ wx.T, cover)
            self._text_key = text
        i0, j0, value, cover = self._text_patch
        region = out[i0 : i0 + value.shape[0], j0 : j0 + value.shape[1]]
        region *= (1.0 - cover)[:, :, None]
        region += value[:, :, None]


def _rgb(colour: Any) -> tuple[int, int, int]:
    """A pygame colour from Gymnasium's float or int colour triples (truncated, as Gymnasium does)."""
    return (int(colour[0]), int(colour[1]), int(colour[2]))


def _pixels(surface: pygame.Surface) -> np.ndarray:
    """A flat uint32 copy of a 32-bit surface's pixels, row by row (the surface stays unlocked)."""
    w, h = surface.get_size()
    rows = np.frombuffer(surface.get_buffer(), dtype=np.uint32).reshape(h, surface.get_pitch() // 4)
    return np.array(rows[:, :w]).reshape(-1)


def _wheel_stripe(phase: float) -> list[tuple[float, float]] | None:
    """The lighter stripe Gymnasium draws on a wheel to show its rotation, in the wheel frame."""
    s1, s2 = math.sin(phase), math.sin(phase + 1.2)
    if s1 > 0 and s2 > 0:
        return None
    c1, c2 = math.cos(phase), math.cos(phase + 1.2)
    if s1 > 0:
        c1 = math.copysign(1.0, c1) if c1 != 0 else 0.0
    if s2 > 0:
        c2 = math.copysign(1.0, c2) if c2 != 0 else 0.0
    return [
        (-_WHEEL_W, _WHEEL_R * c1),
        (_WHEEL_W, _WHEEL_R * c1),
        (_WHEEL_W, _WHEEL_R * c2),
        (-_WHEEL_W, _WHEEL_R * c2),
    ]
