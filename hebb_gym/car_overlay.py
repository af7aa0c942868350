"""What the fast ``state_pixels`` renderer draws over the world each step: the car, the indicator bar
and the score, each as Gymnasium draws it on its 1000x800 screen and area-averaged into the observation.

The car is rasterised with pygame at screen resolution on a small patch around it (the camera turns
with the hull, so the hull's screen polygons depend on the zoom only); the bars are exact rectangle
coverages (pygame fills whole pixels, so a bar's picture depends on one integer); the score is rendered
with Gymnasium's font once per distinct string. This is the reference drawing; :meth:`CarOverlay.kernel_inputs`
hands the same car, score patch and indicator values to the compiled one (:mod:`hebb_gym.car_draw_kernel`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pygame
from gymnasium.envs.box2d import car_dynamics
from gymnasium.envs.box2d.car_racing import STATE_H, STATE_W, WINDOW_H, WINDOW_W

from hebb_gym.car_screen import CAR_X, CAR_Y, SX, SY, VIEW_ROWS, rgb

__all__ = ["CarOverlay"]

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


_IND_COLS = tuple(_cells(p * _IND_S, (p + 1) * _IND_S, SX, STATE_W) for p in _IND_PLACE[:5])
_IND_ROWS = _cells(WINDOW_H - 4 * _IND_H, WINDOW_H - 2 * _IND_H, SY, STATE_H)


def _box_weights(start: float, stop: int, step: float, lo: int, hi: int) -> np.ndarray:
    """Area weights of source pixels ``lo..hi-1`` in output cells ``[start + k*step, ...)`` (k < stop)."""
    edges = start + step * np.arange(stop + 1)
    px = np.arange(lo, hi, dtype=np.float64)
    left = np.maximum(edges[:-1, None], px[None, :])
    right = np.minimum(edges[1:, None], px[None, :] + 1.0)
    return (np.clip(right - left, 0.0, None) / step).astype(np.float32)


class CarOverlay:
    """Draws the car, the indicator bar and the score into an observation; caches per car and zoom."""

    def __init__(self) -> None:
        self._car: Any = None
        self._patches: dict[tuple, tuple] = {}
        self._bars: dict[tuple[int, int], tuple] = {}
        self._font: Any = None
        self._text_key: str | None = None
        self._text_patch: tuple | None = None

    def release(self) -> None:
        """Drop the cached car patches (a later draw rebuilds them)."""
        self._patches.clear()

    def draw(self, out: np.ndarray, env: Any, px: float, py: float, theta: float, zoom: float) -> None:
        """Car, indicators and score of ``env`` into ``out`` (96x96x3 float32, the view already sampled).

        ``(px, py)``, ``theta``: the hull's position and angle; ``zoom``: the camera's scale this frame.
        """
        self._draw_car(out, env.car, px, py, theta, zoom)
        self._draw_indicators(out, env)

    def _car_geometry(self, car: Any) -> None:
        """Cache the car's body-frame polygons (fixed for a car's life) and its box in the hull frame."""
        self._car = car
        self._hull_polys = [list(f.shape.vertices) for f in car.hull.fixtures]
        self._patches.clear()
        self._hull_colour = rgb(np.asarray(car.hull.color) * 255)
        self._wheel_poly = list(car.wheels[0].fixtures[0].shape.vertices)
        self._wheel_colour = rgb(np.asarray(car.wheels[0].color) * 255)
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
        # the same car as arrays, for the compiled drawing (hebb_gym.car_draw_kernel.check_car)
        self._kernel_car = (
            np.array([*self._car_box, *self._hull_colour, *self._wheel_colour], np.float64),
            np.array([vert for p in self._hull_polys for vert in p], np.float64).reshape(-1, 2),
            np.cumsum([0] + [len(p) for p in self._hull_polys]).astype(np.int64),
            np.array(self._wheel_poly, np.float64).reshape(-1, 2),
        )

    def _car_patch(self, zoom: float) -> tuple:
        """Drawing surface, box-filter weights and hull polygons for the car's screen box at ``zoom``."""
        bx0, by0, bx1, by1 = self._car_box
        x_lo, x_hi = (
            max(math.floor(CAR_X + bx0 * zoom), 0),
            min(math.ceil(CAR_X + bx1 * zoom) + 1, WINDOW_W),
        )
        y_lo, y_hi = (
            max(math.floor(CAR_Y + by0 * zoom), 0),
            min(math.ceil(CAR_Y + by1 * zoom) + 1, WINDOW_H),
        )
        key = (zoom, x_lo, x_hi, y_lo, y_hi)
        cached = self._patches.get(key)
        if cached is not None:
            return cached
        fy_lo, fy_hi = WINDOW_H - y_hi, WINDOW_H - y_lo  # flipped rows [fy_lo, fy_hi)
        j0, j1 = int(x_lo // SX), min(math.ceil(x_hi / SX), STATE_W)
        i0, i1 = int(fy_lo // SY), min(math.ceil(fy_hi / SY), VIEW_ROWS)
        wx = _box_weights(j0 * SX, j1 - j0, SX, x_lo, x_hi)
        # rows of the unflipped patch, top to bottom, are flipped rows fy_hi-1 down to fy_lo
        wy = np.ascontiguousarray(_box_weights(i0 * SY, i1 - i0, SY, fy_lo, fy_hi)[:, ::-1])
        surface = pygame.Surface((x_hi - x_lo, y_hi - y_lo), pygame.SRCALPHA, 32)
        pixels = np.frombuffer(surface.get_buffer(), dtype=np.uint8).reshape(
            y_hi - y_lo, surface.get_pitch() // 4, 4
        )
        # the camera turns with the hull, so the hull's screen polygons depend on the zoom only
        hull = [
            [(u * zoom + CAR_X - x_lo, v * zoom + CAR_Y - y_lo) for u, v in p] for p in self._hull_polys
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
        ox, oy = CAR_X - x_lo, CAR_Y - y_lo
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
        for k, value in enumerate(_indicator_values(env.car)):
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
            y_cells = _cells(end, WINDOW_H - _IND_H, SY, STATE_H)
        else:
            x_cells = _cells(place * _IND_S, end, SX, STATE_W)
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
        i0, j0, value, cover = self._score_patch(text)
        region = out[i0 : i0 + value.shape[0], j0 : j0 + value.shape[1]]
        region *= (1.0 - cover)[:, :, None]
        region += value[:, :, None]

    def _score_patch(self, text: str) -> tuple[int, int, np.ndarray, np.ndarray]:
        """(i0, j0, value, cover) of the score ``text``: its grey sum and its coverage per cell, float32."""
        if text != self._text_key:
            self._text_patch = self._render_score(text)
            self._text_key = text
        return self._text_patch

    def _render_score(self, text: str) -> tuple[int, int, np.ndarray, np.ndarray]:
        """Render ``text`` with Gymnasium's font and area-average it into observation cells."""
        if self._font is None:
            pygame.font.init()
            self._font = pygame.font.Font(pygame.font.get_default_font(), 42)
        surf = self._font.render(text, True, (255, 255, 255), (0, 0, 0))
        box = surf.get_rect()
        box.center = (60, WINDOW_H - WINDOW_H * 2.5 / 40.0)
        grey = pygame.surfarray.array3d(surf)[:, :, 0].T.astype(np.float32)  # (h, w)
        x_lo, y_lo = box.x, box.y
        x_hi, y_hi = x_lo + box.w, y_lo + box.h
        j0, j1 = int(max(x_lo, 0) // SX), min(math.ceil(x_hi / SX), STATE_W)
        i0, i1 = int(max(y_lo, 0) // SY), min(math.ceil(y_hi / SY), STATE_H)
        wx = _box_weights(j0 * SX, j1 - j0, SX, x_lo, x_hi)
        wy = _box_weights(i0 * SY, i1 - i0, SY, y_lo, y_hi)
        cover = wy.sum(axis=1)[:, None] * wx.sum(axis=1)[None, :]
        return (i0, j0, wy @ grey @ wx.T, cover)

    # ------------------------------------------------------------------ inputs of the compiled drawing
    def kernel_inputs(self, env: Any) -> tuple[tuple, tuple, list[float]]:
        """What :func:`hebb_gym.car_draw_kernel.draw_frame` draws of ``env`` this step.

        (car arrays, fixed for a car's life: see :func:`hebb_gym.car_draw_kernel.check_car`; the score's patch
        (i0, j0, value, cover); the per-step values: x, y, angle, phase of each wheel, then the indicators).
        """
        car = env.car
        if car is not self._car:
            self._car_geometry(car)
        values: list[float] = []
        for wheel in car.wheels:
            x, y = wheel.position
            values += (x, y, wheel.angle, wheel.phase)
        values += _indicator_values(car)
        text = f"{env.reward:04.0f}"
        patch = _SCORES.get(text)
        if patch is None:  # a score string is rendered once per process (the reference: once per change)
            if len(_SCORES) >= 4096:
                _SCORES.clear()
            patch = _SCORES[text] = self._render_score(text)
        return self._kernel_car, patch, values


#: Score patches of the compiled drawing by string, shared by the overlays of a process (a few hundred strings
#: in practice, about 1 KB each): rendering one costs about 0.3 ms, and the score changes every few steps.
_SCORES: dict[str, tuple[int, int, np.ndarray, np.ndarray]] = {}


def _indicator_values(car: Any) -> tuple[float, ...]:
    """The indicators' quantities in Gymnasium's order: speed, four wheel speeds, steering, yaw rate."""
    vx, vy = car.hull.linearVelocity
    wheels = car.wheels
    return (
        math.sqrt(vx * vx + vy * vy),
        wheels[0].omega,
        wheels[1].omega,
        wheels[2].omega,
        wheels[3].omega,
        wheels[0].joint.angle,
        car.hull.angularVelocity,
    )


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
