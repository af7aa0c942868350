"""The screen geometry of Gymnasium's CarRacing that the fast ``state_pixels`` renderer reproduces.

Gymnasium draws a 1000x800 screen and scales it down to the 96x96 observation; these are the sizes and
places of that picture and the rounding gains of the scaling, shared by the world texture
(:mod:`hebb_gym.car_render`), the car and indicator overlay (:mod:`hebb_gym.car_overlay`) and the compiled
drawing of both (:mod:`hebb_gym.car_draw_kernel`).
"""

from __future__ import annotations

from typing import Any

from gymnasium.envs.box2d.car_racing import STATE_H, STATE_W, WINDOW_H, WINDOW_W

__all__ = ["BAR_TOP", "CAR_X", "CAR_Y", "SHRINK_X", "SHRINK_Y", "SX", "SY", "VIEW_ROWS", "rgb"]

#: Screen pixels of Gymnasium's 1000x800 frame per observation pixel (x, y).
SX = WINDOW_W / STATE_W
SY = WINDOW_H / STATE_H
#: Observation rows above the indicator bar (the bar covers screen rows 700..799 = rows 84..95).
BAR_TOP = WINDOW_H - 5 * (WINDOW_H / 40.0)
VIEW_ROWS = round(BAR_TOP / SY)
#: Where Gymnasium puts the car on its (unflipped) screen.
CAR_X = WINDOW_W / 2
CAR_Y = WINDOW_H / 4
#: Gain of pygame's smoothscale 1000 -> 96 (x) and 800 -> 96 (y) passes: 16.16 fixed-point
#: step times its truncated reciprocal; each pass then truncates to an integer.
SHRINK_X = (65536 * WINDOW_W // STATE_W) * (2**32 // (65536 * WINDOW_W // STATE_W)) / 2**32
SHRINK_Y = (65536 * WINDOW_H // STATE_H) * (2**32 // (65536 * WINDOW_H // STATE_H)) / 2**32


def rgb(colour: Any) -> tuple[int, int, int]:
    """A pygame colour from Gymnasium's float or int colour triples (truncated, as Gymnasium does)."""
    return (int(colour[0]), int(colour[1]), int(colour[2]))
