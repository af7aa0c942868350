"""ES throughput on HebbAnt-Default-v0 (MuJoCo) against the physics limit, measured side by side in one run.

    python benchmarks/es_throughput.py [--popsize 64] [--max-steps 500] [--generations 2] [--repeats 3] [--quick]

Three measurements:

* **ES**: env-steps/s of whole generations of the Hebbian agent (rule ABCD_lr, 60,800 parameters) on the
  ``process`` backend with 1 and 2 workers, driven as the trainer drives a backend (ask, generation,
  tell); episodes run full length (early stop off, ``terminate_when_unhealthy=False``). The first
  generation (worker start-up, env creation) is a warm-up and not timed.
* **limit**: the same number of processes, each owning the same number of envs of the same compiled
  model, stepping their ``MjData`` with raw ``mujoco.mj_step(model, data, nstep=frame_skip)`` in a tight
  loop under random controls, as many env steps as a generation (env steps = mj_steps / frame_skip).
  No policy, no Python env, no IPC: what the simulator alone allows on this machine.
* **bytes**: what the trainer sends to workers per generation (``GenerationResult.bytes_sent``), for
  the quadruped policy and for the car policy (458,002 parameters), next to the one-time start-up
  message: after start-up only seeds, slice bounds and the fitness vector travel.

ES and limit runs alternate (limit 1, ES 1, limit 2, ES 2, repeated) and the best of the repeats is
kept, so background load hits both alike; the ratios of back-to-back pairs and the rates per CPU second
of the stepping processes (less sensitive to other load) are printed beside them. Aims (issue 4): ES >= 0.7 of the limit, >= 1.7x from 1 to
2 workers, bytes per generation independent of the parameter count.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import time
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

from _machine import cpu_model  # noqa: E402  (benchmarks/_machine.py, beside this script)

ANT = "HebbAnt-Default-v0"
CAR = "HebbCarRacing-Default-v0"
FULL_EPISODES = {"terminate_when_unhealthy": False}


def _limit_process(env_id: str, env_kwargs: dict[str, Any], n_envs: int, max_steps: int, seed: int,
                   barrier: Any, results: Any) -> None:
    """One limit process: ``n_envs`` envs' MjData stepped round-robin with raw mj_step for ``max_steps`` each."""
    import gymnasium as gym
    import mujoco

    import hebb_gym  # noqa: F401

    envs = [gym.make(env_id, **env_kwargs) for _ in range(n_envs)]
    for k, env in enumerate(envs):
        env.reset(seed=seed + k)
    pairs = [(env.unwrapped.model, env.unwrapped.data) for env in envs]
    frame_skip = envs[0].unwrapped.frame_skip
    nu = pairs[0][0].nu
    controls = np.random.default_rng(seed).uniform(-1.0, 1.0, (max_steps, n_envs, nu))
    barrier.wait()
    start, cpu_start = time.monotonic(), time.process_time()
    mj_steps = 0
    for t in range(max_steps):
        row = controls[t]
        for k, (m, d) in enumerate(pairs):
            d.ctrl[:] = row[k]
            mujoco.mj_step(m, d, nstep=frame_skip)
        mj_steps += frame_skip * n_envs
    end, cpu = time.monotonic(), time.process_time() - cpu_start
    results.put((mj_steps // frame_skip, start, end, cpu))
    for env in envs:
        env.close()


def physics_limit(workers: int, popsize: int, max_steps: int, seed: int = 0) -> tuple[float, float]:
    """Env steps/s of raw mj_step on ``workers`` processes sharing ``popsize`` envs of ``max_steps`` steps.

    Returns (env steps per wall-clock second, env steps per CPU second of those processes).
    """
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(workers), ctx.Queue()
    sizes = np.diff(np.linspace(0, popsize, workers + 1).round().astype(int))
    procs = [ctx.Process(target=_limit_process, args=(ANT, FULL_EPISODES, int(n), max_steps, seed + 1000 * w,
                                                      barrier, results))
             for w, n in enumerate(sizes)]
    for p in procs:
        p.start()
    got = [results.get(timeout=900) for _ in procs]
    for p in procs:
        p.join()
    steps = sum(g[0] for g in got)
    return steps / (max(g[2] for g in got) - min(g[1] for g in got)), steps / sum(g[3] for g in got)


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds so far of processes ``pids`` (Linux /proc; NaN elsewhere)."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def drive(env: str, popsize: int, max_steps: int, workers: int, generations: int, warmup: int = 1,
          generic: bool = False) -> tuple[float, float, list[int], int, int]:
    """Run ``warmup + generations`` generations on the process backend as the trainer does.

    ``generic``: step every env through Gymnasium's ``env.step`` (``HEBB_GYM_FAST_ANT=0`` in the workers).
    Returns env steps per wall-clock second and per worker CPU second over the timed generations, bytes
    sent per generation, start-up bytes and the number of parameters.
    """
    from agents.evaluation.backends import make_backend
    from agents.evaluation.fitness import derive_seed
    from agents.es.params import strategy_factory
    from agents.training import build_policy
    from agents.training import TrainConfig

    cfg = TrainConfig(env=(env,), popsize=popsize, max_steps=max_steps, early_stop=False, workers=workers,
                      env_kwargs=dict(FULL_EPISODES) if env == ANT else {})
    policy = build_policy(cfg)
    factory = strategy_factory(policy, cfg)
    strategy = factory()
    at_start = {"state": strategy.state_dict()}
    previous = os.environ.get("HEBB_GYM_FAST_ANT")
    os.environ["HEBB_GYM_FAST_ANT"] = "0" if generic else "1"  # read by the spawned workers
    try:
        backend = make_backend("process", policy, strategy, factory, cfg.fitness_config(), workers=workers,
                               snapshot=lambda: at_start["state"])
    finally:
        if previous is None:
            del os.environ["HEBB_GYM_FAST_ANT"]
        else:
            os.environ["HEBB_GYM_FAST_ANT"] = previous
    init_bytes = int(getattr(backend, "bytes_sent", 0))
    tell = None
    sent: list[int] = []
    steps, seconds, cpu = 0, 0.0, 0.0
    try:
        for g in range(warmup + generations):
            cpu0 = _cpu_seconds(backend.pids)
            t0 = time.perf_counter()
            at_start["state"] = strategy.state_dict()
            strategy.ask()
            res = backend.generation(tell, derive_seed(cfg.seed, "generation", g))
            fitness = res.fitness
            finite = np.isfinite(fitness)
            clean = np.where(finite, fitness, fitness[finite].min() if finite.any() else 0.0)
            strategy.tell(clean)
            tell = clean
            elapsed = time.perf_counter() - t0
            cpu_used = _cpu_seconds(backend.pids) - cpu0
            sent.append(int(res.bytes_sent) - (init_bytes if g == 0 else 0))
            if g >= warmup:
                steps += res.env_steps
                seconds += elapsed
                cpu += cpu_used
    finally:
        backend.close()
    return steps / seconds, steps / cpu if cpu else float("nan"), sent, init_bytes, policy.num_params


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--popsize", type=int, default=64)
    parser.add_argument("--max-steps", type=int, default=500, help="episode length (every episode runs full length)")
    parser.add_argument("--generations", type=int, default=2, help="timed generations per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats; the best is kept")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--bytes-popsize", type=int, default=None, help="popsize of the bytes runs (default --popsize)")
    parser.add_argument("--no-generic", action="store_true",
                        help="skip the reference runs through Gymnasium's env.step (HEBB_GYM_FAST_ANT=0)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: popsize 16, 100 steps, 1 repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.popsize, args.max_steps, args.generations, args.repeats = 16, 100, 1, 1
    bytes_popsize = args.bytes_popsize or args.popsize
    load_before = os.getloadavg()

    limit: dict[int, float] = {}
    es: dict[int, float] = {}
    generic: dict[int, float] = {}
    cpu: dict[str, float] = {}  # env steps per CPU second: "limit", "es", "generic" (best over all runs)
    paired: dict[int, list[float]] = {w: [] for w in args.workers}  # ES / limit of back-to-back runs
    for r in range(args.repeats):
        for w in args.workers:
            lim, lim_cpu = physics_limit(w, args.popsize, args.max_steps, seed=r)
            rate, rate_cpu, _, _, _ = drive(ANT, args.popsize, args.max_steps, w, args.generations)
            limit[w] = max(limit.get(w, 0.0), lim)
            es[w] = max(es.get(w, 0.0), rate)
            paired[w].append(rate / lim)
            cpu["limit"] = max(cpu.get("limit", 0.0), lim_cpu)
            cpu["es"] = max(cpu.get("es", 0.0), rate_cpu)
            line = (f"repeat {r}: {w} worker(s): limit {lim:6.0f} env-steps/s ({lim_cpu:4.0f}/CPU-s), "
                    f"ES {rate:6.0f} ({rate_cpu:4.0f}/CPU-s) = {rate / lim:.2f} of the limit")
            if not args.no_generic:
                slow, slow_cpu, _, _, _ = drive(ANT, args.popsize, args.max_steps, w, args.generations, generic=True)
                generic[w] = max(generic.get(w, 0.0), slow)
                cpu["generic"] = max(cpu.get("generic", 0.0), slow_cpu)
                line += f"; ES through env.step {slow:6.0f} ({slow_cpu:4.0f}/CPU-s) = {slow / lim:.2f}"
            print(line, f"[load {os.getloadavg()[0]:.1f}]", flush=True)

    byte_rows = []
    for env, steps in ((ANT, 5), (CAR, 3)):
        w = max(args.workers)
        _, _, sent, init_bytes, n_params = drive(env, bytes_popsize, steps, w, generations=2)
        byte_rows.append((env, n_params, w, init_bytes, sent))

    from agents.util.tables import markdown_table

    load_after = os.getloadavg()
    print()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(f"ES: HebbianPolicy ABCD_lr on {ANT}, popsize {args.popsize}, {args.max_steps} steps per episode "
          f"(full length), best of {args.repeats} x {args.generations} timed generations")
    print()
    headers = ["workers", "limit env-steps/s (raw mj_step)", "ES env-steps/s", "ES / limit",
               "ES / limit, back-to-back runs (median; range)"]
    rows = [[w, f"{limit[w]:.0f}", f"{es[w]:.0f}", f"{es[w] / limit[w]:.2f}",
             f"{np.median(paired[w]):.2f}; {min(paired[w]):.2f}-{max(paired[w]):.2f}"] for w in args.workers]
    if generic:
        headers += ["ES through env.step", "its / limit"]
        for row, w in zip(rows, args.workers):
            row += [f"{generic[w]:.0f}", f"{generic[w] / limit[w]:.2f}"]
    print(markdown_table(headers, rows))
    print()
    cpu_rows = [["raw mj_step (limit)", f"{cpu['limit']:.0f}", "1.00"], ["ES", f"{cpu['es']:.0f}", f"{cpu['es'] / cpu['limit']:.2f}"]]
    if "generic" in cpu:
        cpu_rows.append(["ES through env.step", f"{cpu['generic']:.0f}", f"{cpu['generic'] / cpu['limit']:.2f}"])
    print(markdown_table(["per CPU second of the stepping processes", "env steps", "of the limit"], cpu_rows))
    if 1 in es and len(args.workers) > 1:
        print()
        rows = [[f"1 -> {w}", f"{limit[w] / limit[1]:.2f}x", f"{es[w] / es[1]:.2f}x"] for w in args.workers if w != 1]
        print(markdown_table(["workers", "limit speed-up", "ES speed-up"], rows))
    print()
    print(markdown_table(
        ["policy", "parameters", "workers", "start-up bytes (once)", "bytes sent per generation (gen 0, 1, 2)"],
        [[f"Hebbian on {env}", f"{n:,}", w, f"{init:,}", ", ".join(f"{b:,}" for b in sent)]
         for env, n, w, init, sent in byte_rows],
    ))
    return {"limit": limit, "es": es, "generic": generic, "cpu": cpu, "paired": paired, "bytes": byte_rows}


if __name__ == "__main__":
    main()
