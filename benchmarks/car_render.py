"""Step throughput of HebbCarRacing-Default-v0 (fast renderer) against Gymnasium's CarRacing-v3.

All envs are made with ``gym.make`` (same wrappers), reset with the same seed and driven by
the same action sequence; they are stepped in alternating chunks so that load from other
processes hits them alike. The drawing share is measured by timing each env's ``_render``
call inside ``step``; the rest of a step is physics (Box2D and the car model) and bookkeeping,
which the last row measures alone by skipping the drawing.

    python benchmarks/car_render.py --steps 1000
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import gymnasium as gym
import numpy as np

import hebb_gym  # noqa: F401  (registers the HebbCarRacing ids)


def action_sequence(steps: int, seed: int) -> np.ndarray:
    """Smoothed random driving (steer, gas, brake) so the car moves, turns and sometimes leaves the road."""
    rng = np.random.default_rng(seed)
    actions = np.zeros((steps, 3), np.float32)
    steer = 0.0
    for t in range(steps):
        steer = float(np.clip(0.9 * steer + 0.3 * rng.normal(), -1.0, 1.0))
        actions[t] = (steer, 0.5 if rng.random() < 0.6 else 0.0, 0.3 if rng.random() < 0.1 else 0.0)
    return actions


class _Timed:
    """An env plus counters: time in ``step``, time in drawing inside it, steps, resets."""

    def __init__(self, env_id: str, seed: int, draw: bool = True, **kwargs: Any) -> None:
        self.env = gym.make(env_id, **kwargs)
        self.seed = seed
        self.step_s = 0.0
        self.draw_s = 0.0
        self.reset_s = 0.0
        self.steps = 0
        self.resets = 0
        base = self.env.unwrapped
        blank = np.zeros(base.observation_space.shape, np.uint8)
        draw = base._render if draw else (lambda mode: blank.copy())

        def timed_render(mode: str) -> Any:
            t0 = time.perf_counter()
            try:
                return draw(mode)
            finally:
                self.draw_s += time.perf_counter() - t0

        base._render = timed_render
        self._reset()
        # the reset's own first frame is not a step
        self.draw_s = 0.0

    def _reset(self) -> None:
        t0 = time.perf_counter()
        self.env.reset(seed=self.seed + self.resets)
        self.reset_s += time.perf_counter() - t0
        self.resets += 1

    def run(self, actions: np.ndarray) -> None:
        """Step through ``actions``; episodes that end are reset (reset time is kept apart)."""
        for a in actions:
            draw_before = self.draw_s
            t0 = time.perf_counter()
            _, _, terminated, truncated, _ = self.env.step(a)
            self.step_s += time.perf_counter() - t0
            self.steps += 1
            if terminated or truncated:
                draw_in_step = self.draw_s - draw_before
                self._reset()
                self.draw_s = draw_before + draw_in_step


def main(argv: list[str] | None = None) -> None:
    """Run both envs on one action sequence and print steps/s, their ratio and where the time goes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="steps per env (default 1000)")
    parser.add_argument("--chunk", type=int, default=50, help="steps per env before switching (default 50)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.chunk < 1:
        parser.error("--steps and --chunk must be >= 1")

    actions = action_sequence(args.steps, args.seed)
    stock = _Timed("CarRacing-v3", args.seed)
    fast = _Timed("HebbCarRacing-Default-v0", args.seed)
    exact = _Timed("HebbCarRacing-Default-v0", args.seed, renderer="exact")
    blind = _Timed("HebbCarRacing-Default-v0", args.seed, draw=False)
    runners = (stock, fast, exact, blind)
    for start in range(0, args.steps, args.chunk):
        chunk = actions[start : start + args.chunk]
        for runner in runners:
            runner.run(chunk)

    rows = [
        ("CarRacing-v3 (Gymnasium)", stock),
        ("HebbCarRacing-Default-v0 exact", exact),
        ("HebbCarRacing-Default-v0 fast", fast),
        ("  same, drawing skipped (physics)", blind),
    ]
    base_rate = stock.steps / stock.step_s
    print(f"{args.steps} steps each, same actions, seed {args.seed}, chunks of {args.chunk}\n")
    header = (
        f"{'env':34s} {'steps/s':>9s} {'ms/step':>8s} {'ratio':>7s} {'drawing':>8s} "
        f"{'physics+rest':>13s} {'ms/reset':>9s}"
    )
    print(header)
    print("-" * len(header))
    for name, r in rows:
        rate = r.steps / r.step_s
        draw = r.draw_s / r.step_s
        print(
            f"{name:34s} {rate:9.0f} {1e3 * r.step_s / r.steps:8.3f} {rate / base_rate:6.1f}x "
            f"{100 * draw:7.1f}% {100 * (1 - draw):12.1f}% {1e3 * r.reset_s / r.resets:9.1f}"
        )
    physics = (fast.step_s - fast.draw_s) / fast.steps
    print(
        f"\nfast env: {1e3 * fast.draw_s / fast.steps:.3f} ms drawing + {1e3 * physics:.3f} ms physics and "
        f"bookkeeping per step; Gymnasium draws for {1e3 * stock.draw_s / stock.steps:.3f} ms"
    )
    for r in runners:
        r.env.close()


if __name__ == "__main__":
    main()
