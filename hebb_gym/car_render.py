"""Fast drawing of CarRacing's 96x96 ``state_pixels`` observation, the same picture as Gymnasium's.

Gymnasium draws every frame by transforming each road tile and grass patch onto a 1000x800
pygame surface and scaling it down to 96x96 (an area average). The world (background, grass
checkerboard, road and kerbs) only changes when a touched tile turns grey, so here it is painted
once per track at 4 texels per metre, band by band, and kept as its 2x2, 4x4, ... area averages
(about 13 MB). Each step then looks the 96x84 view up through the camera's affine map in one
vectorised gather from the level whose texel fits an observation pixel (0.5 m once zoomed in),
draws the car, the indicator bar and the score over it (:mod:`hebb_gym.car_overlay`), and applies
the rounding of pygame's smoothscale. The result matches Gymnasium's frame to a fraction of a grey
level on average (see tests/test_car_render.py) at a small fraction of the cost
(benchmarks/car_render.py). Screen sizes shared by both parts: :mod:`hebb_gym.car_screen`.

That drawing (pygame for the world, numpy and pygame, some 60 calls, for each frame) is the reference.
Where numba is importable the same pixels come from compiled kernels instead, unless ``HEBB_GYM_FAST_CAR=0``
(:mod:`hebb_gym.fast_car`): the world and its levels from :mod:`hebb_gym.car_world_kernel`, each frame from
one call of :mod:`hebb_gym.car_draw_kernel`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pygame
from gymnasium.envs.box2d.car_racing import (
    GRASS_DIM,
    PLAYFIELD,
    SCALE,
    STATE_H,
    STATE_W,
    WINDOW_H,
    ZOOM,
)

from hebb_gym import fast_car
from hebb_gym.car_overlay import CarOverlay
from hebb_gym.car_screen import CAR_X, CAR_Y, SHRINK_X, SHRINK_Y, SX, SY, VIEW_ROWS, rgb

__all__ = ["StatePixelsRenderer"]

#: Coarse texture levels (each half the resolution) for the zoom-in of the first second.
_LEVELS = 5
#: Level-0 rows drawn at a time when a track is built (a multiple of 2**_LEVELS).
_BAND = 256


class StatePixelsRenderer:
    """Draws ``state_pixels`` for a CarRacing env from a per-track world texture; one per env.

    ``compiled``: how the world texture and each frame are drawn. None (default): by the compiled kernels
    (:mod:`hebb_gym.car_world_kernel`, :mod:`hebb_gym.car_draw_kernel`) where numba is importable, unless
    ``HEBB_GYM_FAST_CAR=0`` (:mod:`hebb_gym.fast_car`, read at every frame and world update) selects the
    reference drawing (pygame and numpy: this module and :mod:`hebb_gym.car_overlay`); True or False: always
    the one or the other. Both give the same pixels (tests/test_car_render.py).
    """

    def __init__(self, texels_per_metre: float = 4.0, compiled: bool | None = None) -> None:
        self.texels_per_metre = float(texels_per_metre)
        self.compiled = compiled
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
        self._overlay = CarOverlay()
        # Observation-pixel centres in unflipped screen coordinates relative to the car.
        cols = (np.arange(STATE_W) + 0.5) * SX - CAR_X
        rows = (WINDOW_H - (np.arange(VIEW_ROWS) + 0.5) * SY) - CAR_Y
        self._dx = cols.astype(np.float32)
        self._dy = rows.astype(np.float32)
        self._buf = np.empty((STATE_H, STATE_W, 3), np.float32)  # the compiled drawing's float frame
        self._checked: tuple[Any, ...] = ()  # texture levels and car arrays check_level/check_car accepted

    @property
    def compiled(self) -> bool | None:
        """None: the compiled drawing where numba is importable, unless ``HEBB_GYM_FAST_CAR=0``;
        True/False: forced."""
        return self._compiled

    @compiled.setter
    def compiled(self, value: bool | None) -> None:
        if value is not None and not isinstance(value, bool):
            raise ValueError(f"compiled={value!r} is not accepted; accepted: None, True, False")
        if value and not _kernel().AVAILABLE:
            raise RuntimeError('compiled=True needs numba: pip install "hebb-gym[speed]"')
        self._compiled = value

    def uses_compiled(self) -> bool:
        """Whether the next frame is drawn by the compiled kernel."""
        if self._compiled is None:
            return fast_car.fast_path_enabled() and _kernel().AVAILABLE
        return self._compiled

    # ------------------------------------------------------------------ world texture
    def invalidate(self) -> None:
        """Forget the drawn track; the next render draws the current one."""
        self._road_poly = None

    def release(self) -> None:
        """Drop the textures (about 13 MB at 4 texels/m); a later render rebuilds them."""
        self._road_poly = None
        self._band = None
        self._levels = []
        self._checked = ()
        self._overlay.release()

    def _texel(self, pts: np.ndarray) -> np.ndarray:
        """World metres -> texel coordinates of the full-resolution drawing (level 0)."""
        return (pts + PLAYFIELD) * self.texels_per_metre + self._pad

    def _build_world(self, env: Any) -> None:
        """Draw background, grass, road and kerbs for this track, band by band, into the sampled levels."""
        self._bg, self._grass = rgb(env.bg_color), rgb(env.grass_color)
        # Road tiles keep their colour arrays live (the contact listener greys a tile a wheel or
        # the hull touches): make them rows of one array so a step finds recoloured tiles at once.
        tiles = list(env.road)
        colours = np.array([t.color for t in tiles], dtype=np.float64).reshape(-1, 3)
        by_id = {id(t.color): i for i, t in enumerate(tiles)}
        paints: list[Any] = []
        tile_entry = np.zeros(len(tiles), dtype=np.int64)
        new_poly = []
        # for the compiled painting: each polygon's tile (its colour is that tile's row), or its own colour
        poly_tile = np.full(len(env.road_poly), -1, dtype=np.int64)
        poly_colours = np.zeros((len(env.road_poly), 3))
        for k, (poly, colour) in enumerate(env.road_poly):
            i = by_id.get(id(colour))
            if i is not None:
                tiles[i].color = colours[i]
                colour = colours[i]
                tile_entry[i] = k
                poly_tile[k] = i
            else:
                poly_colours[k] = tuple(colour)[:3]
            new_poly.append((poly, colour))
            paints.append(colour)
        self._poly_tile, self._poly_colours = poly_tile, poly_colours
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
        if self.uses_compiled():
            for y0 in range(0, size, _BAND):  # the reference's bands (its vertices are band-relative)
                self._paint_levels(0, y0, min(_BAND, size - y0), size)
            return
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
            draw(target, rgb(paints[j]), quad)

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

    def _paint_levels(self, x0: int, y0: int, h: int, w: int) -> None:
        """:meth:`_paint` then :meth:`_store` for the h x w texels at (x0, y0), compiled
        (:func:`hebb_gym.car_world_kernel.paint_levels`): the same texels."""
        r, g, b = self._bg
        gr, gg, gb = self._grass
        _world_kernel().paint_levels(
            tuple(texels.reshape(size, size) for _, texels, size in self._levels), x0, y0, h, w,
            (self._pad, self._pad, self._field_side), (r << 16) | (g << 8) | b, self._grass_boxes,
            (gr << 16) | (gg << 8) | gb, self._quads, self._boxes, self._poly_tile, self._tile_colours,
            self._poly_colours,
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
            if self.uses_compiled():
                self._paint_levels(x0, y0, y1 - y0, x1 - x0)
                continue
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
        t = env.t
        zoom = 0.1 * SCALE * max(1 - t, 0) + ZOOM * SCALE * min(t, 1)
        hull = env.car.hull
        px, py = hull.position
        theta = hull.angle
        if self.uses_compiled():
            return self._render_compiled(env, px, py, theta, zoom)
        out = np.empty((STATE_H, STATE_W, 3), np.float32)
        out[:VIEW_ROWS] = self._sample(px, py, theta, zoom)
        out[VIEW_ROWS:] = 0.0
        self._overlay.draw(out, env, px, py, theta, zoom)
        # Gymnasium's frame goes through pygame's smoothscale, whose fixed-point box filter
        # truncates twice (x pass, then y pass) and so darkens by up to 2 levels: do the same.
        out *= SHRINK_X
        np.floor(out, out=out)
        out *= SHRINK_Y
        return out.astype(np.uint8)  # values are convex mixes of 0..255 colours, truncation = floor

    def _level(self, zoom: float) -> int:
        """The coarsest texture level whose texel is no wider than an observation pixel at ``zoom``."""
        footprint = SX / zoom  # metres per observation pixel
        level = 0
        while level + 1 < len(self._levels) and footprint * self._levels[level + 1][0] >= 1.0:
            level += 1
        return level

    def _render_compiled(self, env: Any, px: float, py: float, theta: float, zoom: float) -> np.ndarray:
        """The same frame as the reference drawing, by :func:`hebb_gym.car_draw_kernel.draw_frame`."""
        kernel = _kernel()
        flat, size, u0, v0, fc, fs = self._view(px, py, theta, zoom)
        car, text, values = self._overlay.kernel_inputs(env)
        if len(self._checked) != 2 or flat is not self._checked[0] or car is not self._checked[1]:
            kernel.check_level(flat, size, self._dx, self._dy)
            kernel.check_car(*car)
            if len(env.car.wheels) != kernel.WHEELS:
                raise ValueError(
                    f"the car has {len(env.car.wheels)} wheels; the compiled drawing knows {kernel.WHEELS}"
                )
            self._checked = (flat, car)
        values[:0] = (px, py, theta, zoom, u0, v0, fc, fs)  # the reference's view map (:meth:`_view`)
        step = np.array(values, np.float64)
        return kernel.draw_frame(self._buf, flat, size, self._dx, self._dy, step, car, text)

    def _view(self, px: float, py: float, theta: float, zoom: float) -> tuple[np.ndarray, int, float, float, float, float]:
        """The texture level that fits ``zoom`` (flat texels, side) and the view's map into it: view pixel (i, j)
        is texel (u0 + fc * dx[j] - fs * dy[i], v0 + fs * dx[j] + fc * dy[i]); the same for both drawings."""
        r, flat, size = self._levels[self._level(zoom)]
        f = r / zoom
        pad = self._pad * r / self.texels_per_metre
        return (flat, size, (px + PLAYFIELD) * r + pad, (py + PLAYFIELD) * r + pad, f * math.cos(theta),
                f * math.sin(theta))

    def _sample(self, px: float, py: float, theta: float, zoom: float) -> np.ndarray:
        """Look the view's pixel centres up in the texture level that fits the current zoom."""
        flat, size, u0, v0, fc, fs = self._view(px, py, theta, zoom)
        # texel (u, v) of view pixel (i, j) = (au[j] + bu[i], av[j] + bv[i])
        au = u0 + fc * self._dx
        bu = (-fs) * self._dy
        av = v0 + fs * self._dx
        bv = fc * self._dy
        ui = (au[None, :] + bu[:, None]).astype(np.int32)
        vi = (av[None, :] + bv[:, None]).astype(np.int32)
        # the view leaves the texture only near the playfield's edge or while zoomed out
        if min(au[0], au[-1]) + min(bu[0], bu[-1]) < 0 or max(au[0], au[-1]) + max(bu[0], bu[-1]) >= size - 1:
            np.clip(ui, 0, size - 1, out=ui)
        if min(av[0], av[-1]) + min(bv[0], bv[-1]) < 0 or max(av[0], av[-1]) + max(bv[0], bv[-1]) >= size - 1:
            np.clip(vi, 0, size - 1, out=vi)
        vi *= size
        vi += ui
        texels = flat.take(vi).view(np.uint8).reshape(VIEW_ROWS, STATE_W, 4)
        return texels[:, :, 2::-1]  # pygame's 32-bit surfaces store B, G, R, A


def _kernel() -> Any:
    """:mod:`hebb_gym.car_draw_kernel`, imported at the first use (it imports numba, which takes a while)."""
    from hebb_gym import car_draw_kernel

    return car_draw_kernel


def _world_kernel() -> Any:
    """:mod:`hebb_gym.car_world_kernel`, imported at the first use (it imports numba)."""
    from hebb_gym import car_world_kernel

    return car_world_kernel


def _pixels(surface: pygame.Surface) -> np.ndarray:
    """A flat uint32 copy of a 32-bit surface's pixels, row by row (the surface stays unlocked)."""
    w, h = surface.get_size()
    rows = np.frombuffer(surface.get_buffer(), dtype=np.uint32).reshape(h, surface.get_pitch() // 4)
    return np.array(rows[:, :w]).reshape(-1)
