"""Per-frame cost of the car's conv stack: torch's kernels against the compiled pass, side by side in one run.

    python benchmarks/conv_stack.py [--individuals 8] [--envs 1] [--calls 300]

Both sides run what ``ImageFeatures.conv_stack`` does after the resize (scaling to [0, 1], conv 3 -> 6 k3,
max pooling, tanh, conv 6 -> 8 k5 s2, max pooling, tanh) on the same resized frames of
HebbCarRacing-Default-v0 (a reset and a short drive per env), P individuals each with its own conv weights
(normal, std 0.1: the policies' initial draw), E frames each:

* torch: ``ImageFeatures(compiled=False)``, the batched front end as it runs without numba (each
  individual's ``F.conv2d`` in oneDNN, pooled into buffers of the whole batch, ``tanh`` once per layer);
* compiled: ``ImageFeatures(compiled=True)``, :func:`agents.policies.conv_kernel.conv_stack`, one call for
  all P x E frames (needs numba: ``pip install "hebb-gym[speed]"``).

One thread (torch.set_num_threads(1), as in an evaluation worker). The calls alternate (torch, compiled,
torch, ...) after a few untimed ones (numba's compilation or cache load is not timed); each gets a fresh copy
of the resized frames, made outside the timing, since torch's path scales them in place. Each call's
wall-clock time and the CPU time of the benchmarking thread (``time.thread_time``: time the scheduler gives
other jobs is not counted) are kept; medians per frame, the ratio of the medians and the spread of the
back-to-back ratios are printed, with the copy and resize that both paths share (``ImageFeatures.resize``)
for scale. On a loaded machine only the ratios mean much.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

from _machine import cpu_model  # noqa: E402  (benchmarks/_machine.py, beside this script)

CAR = "HebbCarRacing-Default-v0"


def car_frames(n: int, seed: int = 0) -> np.ndarray:
    """``n`` frames (96x96x3 uint8) of the car driving: a reset and 5-25 steps of a random steering, per frame."""
    import gymnasium as gym

    import hebb_gym  # noqa: F401  (registers the IDs)

    env = gym.make(CAR)
    rng = np.random.default_rng(seed)
    frames = []
    try:
        for k in range(n):
            obs = env.reset(seed=seed + k)[0]
            for _ in range(int(rng.integers(5, 26))):
                obs = env.step(np.array([rng.uniform(-1, 1), 0.6, 0.0], np.float32))[0]
            frames.append(obs)
    finally:
        env.close()
    return np.stack(frames)


def measure(n_ind: int, n_env: int, calls: int, seed: int = 0) -> dict[str, Any]:
    """Per-call seconds (wall and thread CPU) of both conv stacks and of the shared resize, alternating."""
    import gymnasium as gym
    import torch

    from agents.policies.image_features import ImageFeatures
    from agents.policies.networks import spec_from_spaces

    torch.set_num_threads(1)
    space = gym.spaces.Box(0, 255, (96, 96, 3), np.uint8)
    spec = spec_from_spaces(space, gym.spaces.Box(np.array([-1, 0, 0], np.float32), np.ones(3, np.float32)))
    rng = np.random.default_rng(seed)
    weights = [[torch.from_numpy(0.1 * rng.standard_normal(s).astype(np.float32)) for s in spec.conv_shapes]
               for _ in range(n_ind)]
    x = torch.from_numpy(car_frames(n_ind * n_env, seed)).reshape(n_ind, n_env, *space.shape)
    fronts = {"torch": ImageFeatures(spec, weights, n_env, compiled=False),
              "compiled": ImageFeatures(spec, weights, n_env, compiled=True)}
    resized = fronts["torch"].resize(x).clone()
    diff = float((fronts["torch"].conv_stack(resized.clone()) - fronts["compiled"].conv_stack(resized.clone()))
                 .abs().max())
    wall: dict[str, list[float]] = {"resize": [], "torch": [], "compiled": []}
    cpu: dict[str, list[float]] = {k: [] for k in wall}

    def timed(name: str, fn: Any, *args: Any) -> None:
        t0, c0 = time.perf_counter(), time.thread_time()
        fn(*args)
        c1, t1 = time.thread_time(), time.perf_counter()
        wall[name].append(t1 - t0)
        cpu[name].append(c1 - c0)

    for k in range(5 + calls):
        images = [resized.clone(), resized.clone()]
        if k == 5:
            for v in (*wall.values(), *cpu.values()):
                v.clear()
        timed("torch", fronts["torch"].conv_stack, images[0])
        timed("compiled", fronts["compiled"].conv_stack, images[1])
        timed("resize", fronts["torch"].resize, x)
    return {"wall": wall, "cpu": cpu, "max_abs_diff": diff, "frames": n_ind * n_env}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--individuals", type=int, default=8, help="P, each with its own weights")
    parser.add_argument("--envs", type=int, default=1, help="E frames per individual")
    parser.add_argument("--calls", type=int, default=300, help="timed calls of each (alternating)")
    args = parser.parse_args(argv)
    for name in ("individuals", "envs", "calls"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    from agents.policies import conv_kernel

    if not conv_kernel.AVAILABLE:
        raise SystemExit('the compiled conv stack needs numba: pip install "hebb-gym[speed]"')
    load_before = os.getloadavg()
    res = measure(args.individuals, args.envs, args.calls)
    load_after = os.getloadavg()

    from agents.util.tables import markdown_table

    n = res["frames"]
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(f"{args.individuals} individuals x {args.envs} env(s) = {n} frames per call, {args.calls} alternating "
          f"calls of each; max |torch - compiled| of the features: {res['max_abs_diff']:.1e}")
    print()
    rows = []
    for clock in ("wall", "cpu"):
        t = {k: np.asarray(v) for k, v in res[clock].items()}
        pairs = t["torch"] / t["compiled"]
        q1, q3 = np.percentile(pairs, [25, 75])
        rows.append([clock, f"{np.median(t['resize']) / n * 1e3:.4f}", f"{np.median(t['torch']) / n * 1e3:.4f}",
                     f"{np.median(t['compiled']) / n * 1e3:.4f}",
                     f"{np.median(t['torch']) / np.median(t['compiled']):.2f}x", f"{q1:.2f}-{q3:.2f}"])
    print(markdown_table(["clock", "copy + resize (shared)", "torch conv stack", "compiled conv stack",
                          "torch / compiled", "back-to-back pairs (quartiles)"], rows))
    print("(ms per frame, medians)")
    return res


if __name__ == "__main__":
    main()
