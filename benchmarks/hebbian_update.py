"""Cost of one plastic (Hebbian) update step: hebb-gym's batched kernel vs the original per-synapse loop.

    python benchmarks/hebbian_update.py [--repeats 7] [--number 30]

The reference is the formulation of the original code (Najarro & Risi, 2020): for every layer, loop
over input neuron i and output neuron j, look up synapse ``i * n_out + j``'s coefficients and add
``eta * (A*pre*post + B*pre + C*post + D)`` to ``w[j, i]``, compiled with numba (written here, not
imported). Car layers are then divided by their max |w| (inside the jitted function too, so the
reference is as fast as it can be). Both sides use float32, one thread, rule ``ABCD_lr``, and update
the three dense layers of the car (648 -> 128 -> 64 -> 3) or the quadruped (27 -> 128 -> 64 -> 8).
P individuals: the loop is called once per individual; hebb-gym updates all P in one call
(``HebbianBatch.update``). Times are the CPU time of the benchmarking thread (``time.thread_time``),
so time the scheduler gives to other jobs on a shared machine is not counted; blocks of the two
alternate and the best block of each is kept, so the remaining interference (shared caches and
memory bandwidth) affects both alike. numba is optional: without it only hebb-gym's times are shown.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch

from agents.policies.hebbian import HebbianPolicy

try:
    import numba
except ImportError:  # optional dependency (extra "bench")
    numba = None

NETS = {
    "car FC": (
        gym.spaces.Box(0, 255, (96, 96, 3), np.uint8),
        gym.spaces.Box(np.array([-1, 0, 0], np.float32), np.ones(3, np.float32)),
    ),
    "quadruped": (
        gym.spaces.Box(-np.inf, np.inf, (27,), np.float64),
        gym.spaces.Box(-1, 1, (8,), np.float32),
    ),
}


def _make_loop_step() -> Callable | None:
    """The original per-synapse loop (three layers, in-major synapse index), jitted; None without numba."""
    if numba is None:
        return None

    @numba.njit(cache=False, fastmath=False)
    def layer(coeffs, offset, w, pre, post):  # pragma: no cover - compiled
        n_out, n_in = w.shape
        for i in range(n_in):
            for j in range(n_out):
                idx = offset + i * n_out + j
                w[j, i] += coeffs[idx, 0] * (
                    coeffs[idx, 1] * pre[i] * post[j]
                    + coeffs[idx, 2] * pre[i]
                    + coeffs[idx, 3] * post[j]
                    + coeffs[idx, 4]
                )
        return offset + n_out * n_in

    @numba.njit(cache=False)
    def normalise(w):  # pragma: no cover - compiled
        m = np.float32(0.0)
        for v in w.ravel():
            a = abs(v)
            m = max(m, a)
        w /= m

    @numba.njit(cache=False)
    def step(coeffs, w1, w2, w3, o0, o1, o2, o3, norm):  # pragma: no cover - compiled
        off = layer(coeffs, 0, w1, o0, o1)
        off = layer(coeffs, off, w2, o1, o2)
        layer(coeffs, off, w3, o2, o3)
        if norm:
            normalise(w1)
            normalise(w2)
            normalise(w3)

    return step


def _best(fn: Callable[[], None], setup: Callable[[], None], number: int) -> float:
    """CPU seconds per call of one timed block of ``number`` calls (after ``setup``, not timed)."""
    setup()
    t0 = time.thread_time()
    for _ in range(number):
        fn()
    return (time.thread_time() - t0) / number


def bench(name: str, n_ind: int, loop_step: Callable | None, repeats: int, number: int) -> dict[str, float]:
    """Best per-call seconds of the loop (P calls) and of hebb-gym's one batched call."""
    obs_space, act_space = NETS[name]
    policy = HebbianPolicy(obs_space, act_space, seed=0)
    shapes = policy.spec.dense_shapes
    rng = np.random.default_rng(0)
    params = (0.01 * rng.standard_normal((n_ind, policy.num_params))).astype(np.float32)
    batch = policy.batch(params)
    w0 = [rng.uniform(-0.1, 0.1, (n_ind, 1, o, i)).astype(np.float32) for o, i in shapes]
    widths = [shapes[0][1]] + [o for o, _ in shapes]
    acts_np = [np.tanh(rng.standard_normal((n_ind, 1, n))).astype(np.float32) for n in widths]
    acts = [torch.from_numpy(a) for a in acts_np]
    weights = [torch.from_numpy(w.copy()) for w in w0]
    work = [torch.empty_like(w) for w in weights]  # scratch, as a policy state keeps it
    norm = policy.normalize

    def torch_setup() -> None:
        for w, src in zip(weights, w0):
            w.copy_(torch.from_numpy(src))

    def torch_step() -> None:
        batch.update(weights, acts, work)

    # the loop's inputs: per individual, coefficients (N, 5) in the original in-major synapse order
    n_syn = policy.num_synapses
    table = params[:, : n_syn * 5].reshape(n_ind, n_syn, 5)
    loop_coeffs = []
    for p in range(n_ind):
        blocks, off = [], 0
        for o, i in shapes:
            blocks.append(table[p, off : off + o * i].reshape(o, i, 5).transpose(1, 0, 2).reshape(o * i, 5))
            off += o * i
        loop_coeffs.append(np.ascontiguousarray(np.concatenate(blocks)))
    loop_w = [[w[p, 0].copy() for w in w0] for p in range(n_ind)]
    loop_a = [[a[p, 0].copy() for a in acts_np] for p in range(n_ind)]

    def loop_setup() -> None:
        for p in range(n_ind):
            for w, src in zip(loop_w[p], w0):
                w[...] = src[p, 0]

    def loop_run() -> None:
        for p in range(n_ind):
            w1, w2, w3 = loop_w[p]
            o0, o1, o2, o3 = loop_a[p]
            loop_step(loop_coeffs[p], w1, w2, w3, o0, o1, o2, o3, norm)

    if loop_step is not None:  # the two agree (checked once, before timing)
        loop_setup()
        torch_setup()
        loop_run()
        torch_step()
        for p in range(n_ind):
            for wl, wt in zip(loop_w[p], weights):
                np.testing.assert_allclose(wl, wt[p, 0].numpy(), rtol=1e-4, atol=1e-6)
    t_torch, t_loop = [], []
    for _ in range(repeats):
        t_torch.append(_best(torch_step, torch_setup, number))
        if loop_step is not None:
            t_loop.append(_best(loop_run, loop_setup, number))
    return {"synapses": n_syn, "torch": min(t_torch), "loop": min(t_loop) if t_loop else float("nan")}


def main(argv: list[str] | None = None) -> None:
    """Print the table of per-step costs and ratios."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7, help="timed blocks per measurement (best kept)")
    ap.add_argument("--number", type=int, default=30, help="calls per timed block")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    loop_step = _make_loop_step()
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, numba "
        f"{numba.__version__ if numba else 'absent'}, {platform.processor() or platform.machine()}, 1 thread"
    )
    if loop_step is None:
        print("numba is not installed (pip install 'hebb-gym[bench]'): the loop reference is skipped")
    rows = []
    for name in NETS:
        res = {p: bench(name, p, loop_step, args.repeats, args.number) for p in (1, 32)}
        for p in (1, 32):
            r = res[p]
            rows.append(
                (
                    name,
                    r["synapses"],
                    p,
                    r["loop"] * 1e3,
                    r["torch"] * 1e3,
                    r["loop"] / r["torch"],
                    r["torch"] / res[1]["torch"],
                )
            )
    head = ("net", "synapses", "P", "numba loop ms", "hebb-gym ms", "loop/hebb-gym", "hebb-gym P/P=1")
    print()
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for name, n, p, tl, tt, ratio, scale in rows:
        loop = f"{tl:.3f}" if tl == tl else "skipped"  # nan without numba
        speedup = f"{ratio:.2f}x" if ratio == ratio else "-"
        print(f"| {name} | {n} | {p} | {loop} | {tt:.3f} | {speedup} | {scale:.2f}x |")
    print()
    print("aims: loop/hebb-gym >= 1 at P=1; hebb-gym P=32/P=1 <= 8")


if __name__ == "__main__":
    main()
