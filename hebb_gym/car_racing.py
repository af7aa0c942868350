"""CarRacing with adjustable tyre grip and a constant wind, and a fast ``state_pixels`` renderer."""

from __future__ import annotations

import math
import numbers
import types
from typing import Any

import numpy as np
from gymnasium.envs.box2d import car_dynamics
from gymnasium.envs.box2d.car_racing import CarRacing
from gymnasium.utils import EzPickle

from hebb_gym.car_render import StatePixelsRenderer

RENDERERS = ("fast", "exact")

# Gymnasium's wheel model reads the module constant FRICTION_LIMIT for both surfaces:
# grass grip is FRICTION_LIMIT * 0.6 and road grip FRICTION_LIMIT * tile.road_friction.
# Scaling that one constant scales road and grass grip alike.
if "FRICTION_LIMIT" not in car_dynamics.Car.step.__code__.co_names:  # pragma: no cover
    raise ImportError(
        "hebb_gym.car_racing needs gymnasium's car_dynamics.Car.step to read FRICTION_LIMIT; "
        "this gymnasium version computes grip differently and is not supported"
    )


def _real(name: str, value: Any, accepted: str, positive: bool = False) -> float:
    """Validate a finite real kwarg (and > 0 if ``positive``); ValueError naming it otherwise."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and positive:
        ok = value > 0
    if not ok:
        raise ValueError(f"{name}={value!r} is not accepted; accepted: {accepted}")
    return float(value)


def _grip_scaled_step(friction: float) -> types.FunctionType:
    """Gymnasium's own ``Car.step`` code bound to globals whose FRICTION_LIMIT is scaled by ``friction``."""
    stock = car_dynamics.Car.step
    scoped = dict(vars(car_dynamics))
    scoped["FRICTION_LIMIT"] = car_dynamics.FRICTION_LIMIT * friction
    return types.FunctionType(stock.__code__, scoped, stock.__name__, stock.__defaults__, stock.__closure__)


class HebbCarRacing(CarRacing):
    """
    ## Description
    Gymnasium's CarRacing (Box2D, top-down racing from pixels) with two physical knobs for
    meta-learning research -- tyre grip and a constant wind -- and a fast drawing of the
    96x96 observation. With the default kwargs the physics, rewards and termination are
    exactly Gymnasium's ``CarRacing-v3``.

    ## Action Space
    ``continuous=True``: ``Box([-1, 0, 0], [1, 1, 1], float32)`` -- steering (-1 full left,
    +1 full right), gas, brake. ``continuous=False``: ``Discrete(5)`` -- do nothing, steer right,
    steer left, gas, brake.

    ## Observation Space
    ``Box(0, 255, (96, 96, 3), uint8)``: the top-down view that follows the car (zooming in
    during the first second) with the indicator bar at the bottom (speed, four wheel speeds,
    steering angle, yaw rate, score).

    ## Rewards
    -0.1 every step and +1000/N for every track tile visited first (N tiles in the track);
    -100 and termination when the car leaves the playfield.

    ## Episode End
    Terminated when the lap is complete (``lap_complete_percent`` of the tiles visited and
    the start tile reached) or the car leaves the playfield; the registered IDs truncate at
    1000 steps.

    ## Arguments
    All of CarRacing's: ``render_mode``, ``verbose``, ``lap_complete_percent=0.95``,
    ``domain_randomize=False``, ``continuous=True``. And:

    * ``friction=1.0`` (> 0): multiplies the tyre grip limit on road and on grass alike
      (Gymnasium's ``FRICTION_LIMIT``; grass keeps its 0.6 ratio to road). 2.0 gives twice the
      lateral and braking force before the wheels slide, 0.5 half: from 20 m/s, locked wheels
      stop in about 0.28 m (x2), 0.74 m (x1) and 1.65 m (x0.5).
    * ``wind=0.0`` (finite, Box2D newtons): a constant force on the hull's centre along the
      world x axis, applied every physics step; negative pushes west (-x), positive east.
      For scale: the car weighs 7.3 kg, a tyre grips with at most 400 N on road (240 N on
      grass) at ``friction=1``, and a rolling tyre resists side slip with about 82 N per m/s.
      The wind IDs use 250 N (``hebb_gym.variants.WIND_FORCE``): a car standing on the road
      drifts downwind at about 0.8 m/s (1.6-1.9 m in 2 s); a driver that steers against it
      stays on the track (a simple track-following controller loses it at 850-1000 N, near
      the 960 N grass grip of four tyres).
    * ``renderer="fast"`` (``"fast"`` or ``"exact"``): how the ``state_pixels`` observation is
      drawn. ``"fast"`` draws the static world once per reset and samples it through the
      camera transform (see :mod:`hebb_gym.car_render`); ``"exact"`` is Gymnasium's own
      per-tile pygame drawing. Both give the same physics and rewards; ``render_mode``
      ``"rgb_array"`` and ``"human"`` always use Gymnasium's drawing.

    ```python
    >>> import gymnasium as gym, hebb_gym
    >>> env = gym.make("HebbCarRacing-WindWest-v0")
    >>> env = gym.make("HebbCarRacing-Default-v0", friction=0.7, wind=150.0, continuous=False)

    ```
    """

    def __init__(
        self,
        render_mode: str | None = None,
        verbose: bool = False,
        lap_complete_percent: float = 0.95,
        domain_randomize: bool = False,
        continuous: bool = True,
        friction: float = 1.0,
        wind: float = 0.0,
        renderer: str = "fast",
    ) -> None:
        friction = _real(
            "friction", friction, "a finite real number > 0 (1.0 is Gymnasium's grip)", positive=True
        )
        wind = _real("wind", wind, "a finite real number of Box2D newtons along world x (negative is west)")
        if not isinstance(renderer, str) or renderer not in RENDERERS:
            raise ValueError(
                f"renderer={renderer!r} is not accepted; accepted: {', '.join(map(repr, RENDERERS))}"
            )
        super().__init__(
            render_mode=render_mode,
            verbose=verbose,
            lap_complete_percent=lap_complete_percent,
            domain_randomize=domain_randomize,
            continuous=continuous,
        )
        EzPickle.__init__(
            self,
            render_mode=render_mode,
            verbose=verbose,
            lap_complete_percent=lap_complete_percent,
            domain_randomize=domain_randomize,
            continuous=continuous,
            friction=friction,
            wind=wind,
            renderer=renderer,
        )
        self.friction = friction
        self.wind = wind
        self.renderer = renderer
        self._grip_step = None if friction == 1.0 else _grip_scaled_step(friction)
        self._hooked_car: Any = None
        self._fast: StatePixelsRenderer | None = None
        if renderer == "fast":
            self._fast = StatePixelsRenderer()

    def _hook_car(self) -> None:
        """Give a freshly built car the scaled grip and the wind, right before each world step."""
        car = self.car
        self._hooked_car = car
        if self._grip_step is None and self.wind == 0.0:
            return  # Gymnasium's car, untouched
        grip_step = self._grip_step or car_dynamics.Car.step
        force = (self.wind, 0.0)
        hull = car.hull

        def step(dt: float) -> None:
            grip_step(car, dt)
            if force[0]:
                hull.ApplyForceToCenter(force, True)  # CarRacing.step calls world.Step right after

        car.step = step

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Reset as CarRacing does; the fast renderer draws the new track at the first frame."""
        if self._fast is not None:
            self._fast.invalidate()
        return super().reset(seed=seed, options=options)

    def step(self, action: np.ndarray | int | None) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Step as CarRacing does, with this env's grip and wind acting on the car."""
        if self.car is not self._hooked_car and self.car is not None:
            self._hook_car()
        return super().step(action)

    def close(self) -> None:
        """Close as CarRacing does and free the fast renderer's textures."""
        if self._fast is not None:
            self._fast.release()
        super().close()

    def _render(self, mode: str) -> Any:
        """``state_pixels`` through the fast renderer when selected; everything else as Gymnasium draws it."""
        if mode == "state_pixels" and self._fast is not None and "t" in self.__dict__:
            return self._fast.render(self)
        return super()._render(mode)
