"""Steps/s of every hebb-gym variant next to its stock Gymnasium env, measured side by side in one run.

    python benchmarks/envs.py [--steps 2000] [--car-steps 300] [--repeats 3]

Each pair is timed in alternating blocks (stock, variant, stock, variant, ...) with the same seeded
random actions, and the best block of each is kept, so background load affects both alike. The
ratio is variant time per step over stock time per step: 1.05 means the variant costs 5% more.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Any, Callable

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

import hebb_gym  # noqa: E402
from hebb_gym.variants import VARIANTS  # noqa: E402


def _stock(task: str, backend: str) -> tuple[str, Callable[[], gym.Env]]:
    if task == "car":
        return "CarRacing-v3", lambda: gym.make("CarRacing-v3")
    if backend == "bullet":
        import pybullet_envs_gymnasium  # noqa: F401

        return "AntBulletEnv-v0", lambda: gym.make("AntBulletEnv-v0")
    # Like for like: the variants leave contact forces out of the observation, so the stock env does too.
    return "Ant-v5 (no cfrc)", lambda: gym.make("Ant-v5", include_cfrc_ext_in_observation=False)


def _time_block(env: gym.Env, actions: np.ndarray, seed: int, burn_in: int = 0, reset_on_done: bool = True) -> float:
    """Seconds per step over one block of ``len(actions)`` steps (resets and burn-in excluded from the timing)."""

    def reset() -> None:
        env.reset(seed=seed)
        for _ in range(burn_in):
            env.step(np.zeros_like(actions[0]))

    reset()
    elapsed, n = 0.0, 0
    for a in actions:
        t0 = time.perf_counter()
        _, _, terminated, truncated, _ = env.step(a)
        elapsed += time.perf_counter() - t0
        n += 1
        if (terminated or truncated) and reset_on_done:
            reset()
    return elapsed / n


def measure(
    make_a: Callable[[], gym.Env], make_b: Callable[[], gym.Env], steps: int, repeats: int, stock_burn_in: int = 0
) -> tuple[float, float]:
    """Best seconds/step of two envs (stock first) timed in alternating blocks with identical actions.

    ``stock_burn_in`` zero-action steps after each stock reset, and no resets on termination, put
    the stock PyBullet ant in the state the variant's reset leaves it in (on the floor), so the
    two simulate the same kind of contact-rich motion.
    """
    reset_on_done = stock_burn_in == 0
    env_a, env_b = make_a(), make_b()
    try:
        space = env_a.action_space
        space.seed(0)
        actions = np.stack([space.sample() for _ in range(steps)])
        _time_block(env_a, actions[: max(10, steps // 10)], 0, stock_burn_in, reset_on_done)  # warm-up
        _time_block(env_b, actions[: max(10, steps // 10)], 0, 0, reset_on_done)
        best_a, best_b = np.inf, np.inf
        for r in range(repeats):
            best_a = min(best_a, _time_block(env_a, actions, r, stock_burn_in, reset_on_done))
            best_b = min(best_b, _time_block(env_b, actions, r, 0, reset_on_done))
    finally:
        env_a.close()
        env_b.close()
    return best_a, best_b


def main(argv: list[str] | None = None) -> list[list[Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="steps per block for the quadruped")
    parser.add_argument("--car-steps", type=int, default=300, help="steps per block for the car")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ids", default="", help="comma-separated variant ids (default: all)")
    parser.add_argument("--modes", default="exact,fast,mujoco,bullet", help="renderers / backends to measure")
    args = parser.parse_args(argv)

    rows: list[list[Any]] = []
    cases: list[tuple[str, str, dict[str, Any]]] = []
    wanted = set(args.ids.split(",")) if args.ids else None
    for v in VARIANTS:
        if wanted is not None and v.id not in wanted:
            continue
        if v.task == "car":
            cases.append((v.id, "exact", {"renderer": "exact"}))
            cases.append((v.id, "fast", {"renderer": "fast"}))
        else:
            cases += [(v.id, "mujoco", {"backend": "mujoco"}), (v.id, "bullet", {"backend": "bullet"})]
    cases = [c for c in cases if c[1] in args.modes.split(",")]
    for env_id, mode, kw in cases:
        task = hebb_gym.task_of(env_id)
        stock_name, make_stock = _stock(task, mode)
        steps = args.car_steps if task == "car" else args.steps
        burn_in = 40 if mode == "bullet" else 0  # the variant's reset includes the same 40 steps
        t_stock, t_var = measure(make_stock, lambda: gym.make(env_id, **kw), steps, args.repeats, burn_in)
        rows.append([env_id, mode, stock_name, 1.0 / t_stock, 1.0 / t_var, t_var / t_stock])
        print(f"{env_id:32s} {mode:7s} stock {1 / t_stock:9.0f}/s  variant {1 / t_var:9.0f}/s  "
              f"cost ratio {t_var / t_stock:.3f}", flush=True)

    from agents.util.tables import markdown_table

    print()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, gymnasium {gym.__version__}")
    print(markdown_table(
        ["variant", "backend/renderer", "stock env", "stock steps/s", "variant steps/s", "cost ratio"], rows
    ))
    return rows


if __name__ == "__main__":
    main()
