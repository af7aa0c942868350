"""Step throughput of HebbCarRacing-Default-v0 (fast renderer) against Gymnasium's CarRacing-v3.

All envs are made with ``gym.make`` (same wrappers), reset with the same seed and driven by
the same action sequence; they are stepped in alternating chunks so that load from other
processes hits them alike. The drawing share is measured by timing each env's ``_render``
call inside ``step``; the rest of a step is physics (Box2D and the car model) and bookkeeping,
which the last row measures alone by skipping the drawing.

The fast renderer draws with compiled kernels where numba is installed (hebb_gym.car_world_kernel,
hebb_gym.car_draw_kernel); a second fast env draws the reference way (numpy and pygame, what
``HEBB_GYM_FAST_CAR=0`` selects), and the last lines compare the two: medians over the chunks of
the drawing time per step and per reset (the world texture of a new track), and of each chunk's ratio.
``--episode-steps`` truncates episodes sooner (ES evaluates 200-300 steps), so resets weigh as in ES.

    python benchmarks/car_render.py --steps 1000
    python benchmarks/car_render.py --steps 2000 --episode-steps 200
"""

from __future__ import annotations

import argparse
import os
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

    def __init__(self, env_id: str, seed: int, draw: bool = True, compiled: bool | None = None,
                 **kwargs: Any) -> None:
        self.env = gym.make(env_id, **kwargs)
        self.seed = seed
        self.step_s = 0.0
        self.draw_s = 0.0
        self.reset_s = 0.0
        self.reset_draw_s = 0.0
        self.steps = 0
        self.resets = 0
        self.timed_resets = 0
        # per chunk: step s, draw s, reset draw s, steps, resets
        self.chunks: list[tuple[float, float, float, int, int]] = []
        # per drawing call: wall s, CPU s of this thread, whether in a reset
        self.frames: list[tuple[float, float, bool]] = []
        self._in_reset = False
        base = self.env.unwrapped
        if compiled is not None:
            base._fast.compiled = compiled  # False: the reference drawing, as HEBB_GYM_FAST_CAR=0 selects
        blank = np.zeros(base.observation_space.shape, np.uint8)
        draw = base._render if draw else (lambda mode: blank.copy())

        def timed_render(mode: str) -> Any:
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                return draw(mode)
            finally:
                wall = time.perf_counter() - t0
                self.draw_s += wall
                self.frames.append((wall, time.thread_time() - c0, self._in_reset))

        base._render = timed_render
        self._reset()
        # the first reset (numba's compilation or cache load included) is neither a step nor a timed reset
        self.draw_s = self.reset_s = self.reset_draw_s = 0.0
        self.timed_resets = 0
        self.frames.clear()

    def _reset(self) -> None:
        draw_before = self.draw_s
        t0 = time.perf_counter()
        self._in_reset = True
        try:
            self.env.reset(seed=self.seed + self.resets)
        finally:
            self._in_reset = False
        self.reset_s += time.perf_counter() - t0
        self.reset_draw_s += self.draw_s - draw_before
        self.resets += 1
        self.timed_resets += 1

    def run(self, actions: np.ndarray) -> None:
        """Step through ``actions``; episodes that end are reset (reset time is kept apart)."""
        before = (self.step_s, self.draw_s, self.reset_draw_s, self.steps, self.timed_resets)
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
        after = (self.step_s, self.draw_s, self.reset_draw_s, self.steps, self.timed_resets)
        self.chunks.append(tuple(b - a for a, b in zip(before, after)))



def main(argv: list[str] | None = None) -> None:
    """Run both envs on one action sequence and print steps/s, their ratio and where the time goes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="steps per env (default 1000)")
    parser.add_argument("--chunk", type=int, default=50, help="steps per env before switching (default 50)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episode-steps", type=int, default=None,
                        help="truncate episodes after this many steps (default: the registered 1000)")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.chunk < 1:
        parser.error("--steps and --chunk must be >= 1")
    if args.episode_steps is not None and args.episode_steps < 1:
        parser.error("--episode-steps must be >= 1")
    from hebb_gym import car_draw_kernel

    limit = {} if args.episode_steps is None else {"max_episode_steps": args.episode_steps}
    actions = action_sequence(args.steps, args.seed)
    load_before = os.getloadavg()[0]
    stock = _Timed("CarRacing-v3", args.seed, **limit)
    fast = _Timed("HebbCarRacing-Default-v0", args.seed, **limit)
    reference = _Timed("HebbCarRacing-Default-v0", args.seed, compiled=False, **limit)
    exact = _Timed("HebbCarRacing-Default-v0", args.seed, renderer="exact", **limit)
    blind = _Timed("HebbCarRacing-Default-v0", args.seed, draw=False, **limit)
    runners = (stock, fast, reference, exact, blind)
    for start in range(0, args.steps, args.chunk):
        chunk = actions[start : start + args.chunk]
        for runner in runners if (start // args.chunk) % 2 == 0 else runners[::-1]:
            runner.run(chunk)

    compiled = fast.env.unwrapped._fast.uses_compiled()
    rows = [
        ("CarRacing-v3 (Gymnasium)", stock),
        ("HebbCarRacing-Default-v0 exact", exact),
        ("HebbCarRacing-Default-v0 fast, reference drawing", reference),
        ("HebbCarRacing-Default-v0 fast" + (", compiled" if compiled else " (numba absent)"), fast),
        ("  same, drawing skipped (physics)", blind),
    ]
    base_rate = stock.steps / stock.step_s
    episodes = f"episodes of at most {args.episode_steps} steps" if limit else "registered episode limit (1000)"
    print(f"{args.steps} steps each, same actions, seed {args.seed}, chunks of {args.chunk} (order alternating), "
          f"{episodes}; load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after\n")
    header = (
        f"{'env':50s} {'steps/s':>9s} {'ms/step':>8s} {'ratio':>7s} {'drawing':>8s} "
        f"{'physics+rest':>13s} {'ms/reset':>9s}"
    )
    print(header)
    print("-" * len(header))
    for name, r in rows:
        rate = r.steps / r.step_s
        draw = r.draw_s / r.step_s
        print(
            f"{name:50s} {rate:9.0f} {1e3 * r.step_s / r.steps:8.3f} {rate / base_rate:6.1f}x "
            f"{100 * draw:7.1f}% {100 * (1 - draw):12.1f}% "
            + (f"{1e3 * r.reset_s / r.timed_resets:9.1f}" if r.timed_resets else f"{'-':>9s}")
        )
    physics = (fast.step_s - fast.draw_s) / fast.steps
    print(
        f"\nfast env: {1e3 * fast.draw_s / fast.steps:.3f} ms drawing + {1e3 * physics:.3f} ms physics and "
        f"bookkeeping per step; Gymnasium draws for {1e3 * stock.draw_s / stock.steps:.3f} ms"
    )
    # the compiled drawing against the reference drawing (the same steps, in alternating chunks)
    name = "compiled" if compiled else "fast (numba absent)"
    print(f"\ndrawing, {name} against reference (wall | CPU time of the drawing thread, which other load "
          f"touches less):")
    step_frames = [np.array([f[:2] for f in r.frames if not f[2]]) for r in (reference, fast)]
    med = [np.median(f, axis=0) * 1e3 for f in step_frames]
    print(f"  per frame of a step, median of {len(step_frames[1])}: reference {med[0][0]:.3f} | "
          f"{med[0][1]:.3f} ms, {name} {med[1][0]:.3f} | {med[1][1]:.3f} ms: "
          f"{med[0][0] / med[1][0]:.2f}x | {med[0][1] / med[1][1]:.2f}x")
    totals = [np.array([f[:2] for f in r.frames]).sum(axis=0) * 1e3 / r.steps for r in (reference, fast)]
    print(f"  per step, all drawing (frames, greyed tiles, the world of each reset), mean: reference "
          f"{totals[0][0]:.3f} | {totals[0][1]:.3f} ms, {name} {totals[1][0]:.3f} | {totals[1][1]:.3f} ms: "
          f"{totals[0][0] / totals[1][0]:.2f}x | {totals[0][1] / totals[1][1]:.2f}x")
    ratios = [(d_r + r_r) / n_r / max((d_f + r_f) / n_f, 1e-12)
              for (_, d_r, r_r, n_r, _), (_, d_f, r_f, n_f, _) in zip(reference.chunks, fast.chunks)]
    print(f"  per chunk of {args.chunk} steps, wall: median of the {len(ratios)} ratios {np.median(ratios):.2f}x")
    resets = [np.array([f[:2] for f in r.frames if f[2]]) for r in (reference, fast)]
    if len(resets[0]) and len(resets[1]):
        med = [np.median(f, axis=0) * 1e3 for f in resets]
        print(f"  per reset (the world texture of a new track and the first frame), median of {len(resets[1])}: "
              f"reference {med[0][0]:.1f} | {med[0][1]:.1f} ms, {name} {med[1][0]:.1f} | {med[1][1]:.1f} ms")
    print(f"numba (compiled drawing): {'yes' if car_draw_kernel.AVAILABLE else 'no'}")
    for r in runners:
        r.env.close()


if __name__ == "__main__":
    main()
