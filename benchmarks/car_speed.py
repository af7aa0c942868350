"""ES env-steps/s on HebbCarRacing-Default-v0: the plain CNN path against the batched one, side by side in one run.

    python benchmarks/car_speed.py [--popsize 16] [--max-steps 300] [--workers 1] [--repeats 3] [--quick]

Two measurements, both of the Hebbian agent (rule ABCD_lr, fast renderer, early stop off, whole episodes):

* **split**: one worker's slice evaluated in this process (``agents.evaluation.fitness.evaluate_slice``,
  what a process-backend worker runs), with the time of each part taken by wrapping the functions that do
  it: simulation (Box2D and the car model: ``env.step`` less its drawing), drawing (the fast renderer,
  the world texture of each new track included), resets (less their drawing), preprocessing (resize to
  84x84 and scaling), convolutions (with pooling and tanh), dense forward, plastic update with
  renormalisation, and the rest (the rollout loop, the action head). Each part's own time (nested calls
  subtracted). The batched front end does preprocessing and convolutions in one call, so its time is
  split by timing the same batch's parts alone afterwards (``--no-split-front`` to skip): its
  preprocessing is the copy and the resize (``ImageFeatures.resize``), the scaling is counted with its
  convolutions (``ImageFeatures.conv_stack`` does it, in the compiled conv pass where numba is installed).
* **ES**: env-steps/s of whole generations on the ``process`` backend, driven as the trainer drives a
  backend (ask, generation, tell); the first generation (start-up, env creation) is not timed.

The plain path (``HEBB_GYM_FAST_CAR=0``: resize and convolutions individual by individual, the torch
kernels for the plastic update and the fast renderer's reference drawing, numpy and pygame, as before the
batched front end, the fused update and the compiled drawing) and the default path (with numba installed,
the plastic update is ``agents.policies.fused_update``'s compiled pass and the drawing
``hebb_gym.car_world_kernel``'s and ``hebb_gym.car_draw_kernel``'s, the same pixels) alternate in every
repeat (plain, fast, plain, fast, ...) with the same seeds; medians and the ratio of the medians are
printed, and the ratio of each back-to-back pair. Both paths use the fast renderer, which reads the switch
at every frame, so the split run's shared envs draw the way the path being timed selects.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np

from _machine import cpu_model  # noqa: E402  (benchmarks/_machine.py, beside this script)
from hebb_gym.fast_car import ENV_VAR  # noqa: E402

CAR = "HebbCarRacing-Default-v0"
PARTS = ("simulation", "drawing", "resets", "preprocessing", "convolutions", "dense forward",
         "plastic update", "other")


@contextmanager
def path(fast: bool) -> Iterator[None]:
    """Select the fast or the plain CNN path for batches (and spawned workers) made inside the block."""
    previous = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = "1" if fast else "0"
    try:
        yield
    finally:
        if previous is None:
            del os.environ[ENV_VAR]
        else:
            os.environ[ENV_VAR] = previous


class Split:
    """Exclusive wall-clock time per part, from wrapped functions (nested calls subtracted from their caller)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._stack: list[float] = []
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, name: str, part: str) -> None:
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            self._stack.append(0.0)
            try:
                return original(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                inner = self._stack.pop()
                self.seconds[part] = self.seconds.get(part, 0.0) + dt - inner
                if self._stack:
                    self._stack[-1] += dt

        setattr(owner, name, timed)
        self._undo.append(lambda: setattr(owner, name, original))

    def restore(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


def _setup(popsize: int, max_steps: int) -> tuple[Any, Any, np.ndarray]:
    from agents.evaluation.fitness import EnvPool
    from agents.training import TrainConfig, build_policy

    cfg = TrainConfig(env=(CAR,), popsize=popsize, max_steps=max_steps, early_stop=False)
    policy = build_policy(cfg)
    rng = np.random.default_rng(0)
    params = policy.get_flat()[None] + cfg.sigma * rng.standard_normal((popsize, policy.num_params)).astype(np.float32)
    return policy, EnvPool(cfg.fitness_config()), params


def split_run(policy: Any, pool: Any, params: np.ndarray, fast: bool, seed: int, split_front: bool = True
              ) -> tuple[float, dict[str, float]]:
    """One slice evaluated in this process with the parts timed; (env-steps/s, ms per env-step by part)."""
    import torch

    from agents.evaluation import rollout as ro
    from agents.evaluation.fitness import evaluate_slice
    from agents.policies import batch as batch_mod
    from agents.policies import hebbian, image_features
    from hebb_gym.car_racing import HebbCarRacing

    torch.set_num_threads(1)
    split = Split()
    split.wrap(HebbCarRacing, "_render", "drawing")
    split.wrap(ro.GymStepper, "step", "simulation")
    split.wrap(ro.GymStepper, "reset", "resets")
    split.wrap(batch_mod, "preprocess_images", "preprocessing")
    split.wrap(batch_mod.PolicyBatch, "_conv_one", "convolutions")
    split.wrap(image_features.ImageFeatures, "__call__", "front end")
    split.wrap(hebbian, "plastic_step", "plastic update")
    split.wrap(hebbian.HebbianBatch, "_forward", "dense forward")
    fronts: list[Any] = []
    original_of = batch_mod.PolicyBatch._image_features_of

    def keep_front(self: Any, x: Any) -> Any:
        out = original_of(self, x)
        if self._image_features is not None and not fronts:
            fronts.append((self._image_features, x.clone()))
        return out

    batch_mod.PolicyBatch._image_features_of = keep_front
    try:
        with path(fast):
            t0 = time.perf_counter()
            result = evaluate_slice(policy, params, range(len(params)), seed, pool)
            total = time.perf_counter() - t0
    finally:
        batch_mod.PolicyBatch._image_features_of = original_of
        split.restore()
    seconds = dict(split.seconds)
    front = seconds.pop("front end", 0.0)
    if front and fronts and split_front:  # divide the front end's time as its parts take it alone
        pre, conv = _front_parts(*fronts[0])
        seconds["preprocessing"] = front * pre / (pre + conv)
        seconds["convolutions"] = front * conv / (pre + conv)
    elif front:
        seconds["convolutions"] = front
    seconds["other"] = total - sum(seconds.values())
    steps = result.env_steps
    return steps / total, {k: seconds.get(k, 0.0) / steps * 1e3 for k in PARTS}


def _front_parts(front: Any, x: Any, number: int = 20) -> tuple[float, float]:
    """Seconds of the batched front end's preprocessing (copy and resize) and of the rest, on the same frames."""
    times = []
    for f in (lambda: front.resize(x), lambda: front(x)):
        f()
        t0 = time.perf_counter()
        for _ in range(number):
            f()
        times.append(time.perf_counter() - t0)
    return times[0], max(times[1] - times[0], 0.0)


def es_rate(popsize: int, max_steps: int, workers: int, generations: int, fast: bool) -> float:
    """Env-steps/s of ``generations`` timed generations (after one warm-up) on the process backend."""
    from agents.es.params import strategy_factory
    from agents.evaluation.backends import make_backend
    from agents.evaluation.fitness import derive_seed
    from agents.training import TrainConfig, build_policy

    cfg = TrainConfig(env=(CAR,), popsize=popsize, max_steps=max_steps, early_stop=False, workers=workers)
    policy = build_policy(cfg)
    factory = strategy_factory(policy, cfg)
    strategy = factory()
    at_start = {"state": strategy.state_dict()}
    with path(fast):  # read by the spawned workers
        backend = make_backend("process", policy, strategy, factory, cfg.fitness_config(), workers=workers,
                               snapshot=lambda: at_start["state"])
    tell = None
    steps, seconds = 0, 0.0
    try:
        for g in range(1 + generations):
            t0 = time.perf_counter()
            at_start["state"] = strategy.state_dict()
            strategy.ask()
            res = backend.generation(tell, derive_seed(cfg.seed, "generation", g))
            finite = np.isfinite(res.fitness)
            tell = np.where(finite, res.fitness, res.fitness[finite].min() if finite.any() else 0.0)
            strategy.tell(tell)
            if g:
                steps += res.env_steps
                seconds += time.perf_counter() - t0
    finally:
        backend.close()
    return steps / seconds


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--popsize", type=int, default=16, help="individuals per generation (ES runs)")
    parser.add_argument("--split-individuals", type=int, default=8, help="individuals of the in-process split run")
    parser.add_argument("--max-steps", type=int, default=300, help="episode length (every episode runs full length)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--generations", type=int, default=1, help="timed generations per ES measurement")
    parser.add_argument("--repeats", type=int, default=3, help="alternating plain/fast repeats; medians kept")
    parser.add_argument("--no-es", action="store_true", help="only the in-process split runs")
    parser.add_argument("--no-split-front", action="store_true",
                        help="report the batched front end as convolutions, without timing its parts alone")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 4 individuals, 60 steps, 1 repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.popsize, args.split_individuals, args.max_steps, args.repeats = 4, 4, 60, 1
    load_before = os.getloadavg()

    policy, pool, params = _setup(args.split_individuals, args.max_steps)
    split_run(policy, pool, params, True, seed=0, split_front=False)  # warm-up: envs made, tracks built once
    rates: dict[str, list[float]] = {"plain": [], "fast": []}
    parts: dict[str, list[dict[str, float]]] = {"plain": [], "fast": []}
    es: dict[str, list[float]] = {"plain": [], "fast": []}
    for r in range(args.repeats):
        for name in ("plain", "fast"):
            rate, ms = split_run(policy, pool, params, name == "fast", seed=1 + r,
                                 split_front=not args.no_split_front)
            rates[name].append(rate)
            parts[name].append(ms)
            line = f"repeat {r}: {name:5s} split run {rate:6.0f} env-steps/s"
            if not args.no_es:
                es[name].append(es_rate(args.popsize, args.max_steps, args.workers, args.generations, name == "fast"))
                line += f"; ES {es[name][-1]:6.0f} env-steps/s"
            print(line, f"[load {os.getloadavg()[0]:.1f}]", flush=True)
    pool.close()

    from agents.util.tables import markdown_table

    load_after = os.getloadavg()
    print()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    from agents.policies import fused_update

    print(f"fused plastic update on the fast path: {'yes (numba)' if fused_update.AVAILABLE else 'no (numba absent)'}")
    from hebb_gym import car_draw_kernel

    print(f"compiled drawing on the fast path: {'yes (numba)' if car_draw_kernel.AVAILABLE else 'no (numba absent)'}")
    print(f"HebbianPolicy ABCD_lr on {CAR}, fast renderer, {args.max_steps}-step episodes (early stop off); "
          f"split: {args.split_individuals} individuals x 1 episode in one process; "
          f"ES: popsize {args.popsize}, {args.workers} worker(s), {args.generations} timed generation(s); "
          f"medians of {args.repeats} alternating repeats")
    print()
    med = {name: {k: float(np.median([p[k] for p in parts[name]])) for k in PARTS} for name in parts}
    rows = []
    for k in PARTS:
        rows.append([k, f"{med['plain'][k]:.3f}", f"{med['fast'][k]:.3f}",
                     f"{med['plain'][k] / med['fast'][k]:.2f}x" if med["fast"][k] > 0 else "-"])
    tot = {name: sum(med[name].values()) for name in med}
    rows.append(["**total**", f"{tot['plain']:.3f}", f"{tot['fast']:.3f}", f"{tot['plain'] / tot['fast']:.2f}x"])
    print(markdown_table(["part (ms per env-step)", "plain", "fast", "plain / fast"], rows))
    print()
    rows = [["split run (one worker's slice, in process)", f"{np.median(rates['plain']):.0f}",
             f"{np.median(rates['fast']):.0f}", f"{np.median(rates['fast']) / np.median(rates['plain']):.2f}x",
             ", ".join(f"{f / p:.2f}" for p, f in zip(rates["plain"], rates["fast"]))]]
    if es["plain"]:
        rows.append([f"ES, process backend, {args.workers} worker(s)", f"{np.median(es['plain']):.0f}",
                     f"{np.median(es['fast']):.0f}", f"{np.median(es['fast']) / np.median(es['plain']):.2f}x",
                     ", ".join(f"{f / p:.2f}" for p, f in zip(es["plain"], es["fast"]))])
    print(markdown_table(["env-steps/s (median)", "plain", "fast", "fast / plain", "back-to-back pairs"], rows))
    return {"rates": rates, "parts": parts, "es": es}


if __name__ == "__main__":
    main()
