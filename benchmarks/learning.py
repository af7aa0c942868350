"""Time to walk: wall-clock and env-steps until the search centre walks 20 m on HebbAnt-Default-v0 (MuJoCo).

    python benchmarks/learning.py [--methods hebbian:fast,static:fast,hebbian:paper,evotorch,static:fast:optimizer=clipup]
        [--budget-minutes M] [--target 20] [--seed 0] [--workers 2] [--out runs/bench-learning]

A method reaches the target at the first generation where its *search centre* (the ES mean, not the
best individual) walks ``--target`` metres on average over 10 fresh 1000-step episodes
(``info["distance"]`` after the last step, ``terminate_when_unhealthy=False``, no early stop, env seeds
disjoint from training). Methods:

* ``hebbian:PRESET`` / ``static:PRESET``: hebb-gym's trainer, ``agents.training.train(TrainConfig(
  preset=PRESET, agent=..., centre_every=K, ...))``, with the process backend on ``--workers`` cores.
  Every method trains on the registered MuJoCo body (``env_kwargs={}``, whatever a preset's
  ``[task.ant]`` table names: ``paper``'s PyBullet body runs here on MuJoCo with the same ES), and a
  preset's PyBullet-only fitness becomes its MuJoCo counterpart (``progress`` -> ``distance``,
  ``BULLET_ONLY_FITNESS``); its other settings (``paper``'s 960 steps, its early stop) stay.
  ``static:fast:optimizer=clipup:episodes=2`` puts training settings (TrainConfig's field names, the
  values as ``hebb-gym train`` reads them) over the preset: one option's effect is one more method.
  The centre is evaluated by the trainer itself (``centre_mean`` / ``centre_std`` in ``metrics.csv``,
  10 fresh 1000-step episodes without early stop, scored by distance whatever the training fitness:
  ``centre_fitness="distance"``); the run is one ``train`` call that stops itself at
  the target (``stop_centre``) or the budget (``max_minutes``). The wall-clock is measured around the
  call (worker start-up, centre evaluations and checkpoints included) and spread over the generations
  in proportion to their own ``eval_seconds + centre_seconds``. A method whose preset does not exist
  is skipped.
* ``evotorch``: the peer, EvoTorch's PGPE with ClipUp (``PEER_SETTINGS``) on the same policy network as
  hebb-gym's static agent (obs -> 128 -> 64 -> 8, tanh everywhere, no bias; 12,160 parameters) with
  EvoTorch's own observation normalisation (``GymNE(observation_normalization=True)``), ``--workers``
  Ray actors (serial for ``--workers 1``). Fitness: the distance after the episode, in env
  ``gym.make("HebbAnt-Default-v0", terminate_when_unhealthy=False, max_episode_steps=H)``. Its centre is
  evaluated every ``--centre-every`` generations (after that generation's update) in this process,
  inside the timed loop. The clock starts after ``ray.init`` and includes the actors' start-up.

Every run stops at the first generation boundary at or after its time budget (``--budget-minutes``;
default 60 for Hebbian, 30 for static, 60 for the peer) or when the target is reached. Outputs in
``--out``: ``curves.csv`` (method, generation, cumulative env_steps, wall_seconds, centre_mean,
centre_std; the curve ends at the first generation reaching the target; rows of methods not run this
time are kept), ``time_to_walk.png``, ``summary.md`` (the markdown table also printed), and one folder
per method (the hebb-gym run directory; the peer's ``metrics.csv`` and ``centre.pt``).
"""

from __future__ import annotations

import argparse
import functools
import logging
import math
import os
import random
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

ENV = "HebbAnt-Default-v0"
KINDS = ("hebbian", "static", "evotorch")
DEFAULT_BUDGET_MINUTES = {"hebbian": 60.0, "static": 30.0, "evotorch": 60.0}
#: The figure's line style per kind of method (its colour is the method's own).
LINE_STYLES = dict(zip(KINDS, ("--", "-", ":")))
CURVE_FIELDS = ("method", "generation", "env_steps", "wall_seconds", "centre_mean", "centre_std")
CENTRE_EPISODES = 10
CENTRE_STEPS = 1000
#: Every method trains on the registered MuJoCo env (``env_kwargs={}``). A preset's fitness that only the
#: PyBullet body reports (``paper``'s ``progress``: PyBullet's progress term) becomes its MuJoCo counterpart.
BULLET_ONLY_FITNESS = {"progress": "distance"}
#: The peer's network: the static agent's MLP (agents/policies/networks.py), as an EvoTorch net string.
PEER_NETWORK = ("Linear(obs_length, 128, False) >> Tanh() >> Linear(128, 64, False) >> Tanh()"
                " >> Linear(64, act_length, False) >> Tanh()")
#: EvoTorch's PGPE + ClipUp settings for MuJoCo locomotion, from nnaisense/evotorch (commit cebcac4):
#: examples/scripts/rl_clipup.py (the ClipUp paper's experiments) and rl_gym.py give popsize 200 for
#: MuJoCo Humanoid, stdev_learning_rate 0.1, stdev_max_change 0.2, momentum 0.9 and
#: center_learning_rate = 0.75 * max_speed; for a tanh MLP policy (rl_clipup.py "pybullet_humanoid",
#: examples/notebooks/Brax_Experiments_with_PGPE.ipynb) max_speed 0.15 and radius_init 2.25
#: (= 15 * max_speed, the paper's rule of thumb). Their adaptive population (num_interactions =
#: 0.75 * H * popsize, popsize_max) never grows it here (no ant episode ends before H), so it is left out.
PEER_SETTINGS: dict[str, Any] = {
    "popsize": 200,
    "center_learning_rate": 0.75 * 0.15,
    "stdev_learning_rate": 0.1,
    "stdev_max_change": 0.2,
    "radius_init": 15 * 0.15,
    "optimizer": "clipup",
    "optimizer_config": {"max_speed": 0.15, "momentum": 0.9},
    "ranking_method": "centered",
    "symmetric": True,
}

log = logging.getLogger("benchmarks.learning")


# --------------------------------------------------------------------------- bookkeeping (no training)

@dataclass(frozen=True)
class Method:
    """One line of the benchmark: ``hebbian:PRESET``, ``static:PRESET`` (either with ``:key=value`` settings on
    top of the preset) or ``evotorch``."""

    kind: str
    preset: str | None = None
    options: tuple[tuple[str, Any], ...] = ()  # TrainConfig settings over the preset, in the order given

    @property
    def label(self) -> str:
        parts = [self.kind] + ([self.preset] if self.preset else []) + [f"{k}={v}" for k, v in self.options]
        return ":".join(parts)

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() or c in "._" else "-" for c in self.label)


def parse_methods(text: str) -> list[Method]:
    """``"hebbian:fast,static:fast:optimizer=clipup,evotorch"`` -> Methods; hebb-gym agents need a preset and
    may add any ``hebb-gym train`` setting as ``key=value`` (the field names of TrainConfig); the peer takes none."""
    from agents.training import TrainConfig
    from agents.util.settings import settings_of

    settings = settings_of(TrainConfig)
    fixed = {"agent", "env", "env_kwargs", "preset", "generations", "backend", "workers", "seed", "centre_every", "centre_episodes",
             "centre_max_steps", "centre_fitness", "centre_score", "stop_centre", "max_minutes"}  # set by the benchmark
    methods = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        kind, *rest = (p.strip() for p in item.split(":"))
        if kind not in KINDS:
            raise ValueError(f"method {item!r}: {kind!r} is not one of {', '.join(KINDS)}")
        if kind == "evotorch" and rest:
            raise ValueError(f"method {item!r}: the peer takes no preset or settings (its settings are PEER_SETTINGS)")
        if kind != "evotorch" and (not rest or not rest[0] or "=" in rest[0]):
            raise ValueError(f"method {item!r}: give a preset first, e.g. {kind}:fast or {kind}:fast:episodes=2")
        options = []
        for part in rest[1:]:
            key, eq, value = (t.strip() for t in part.partition("="))
            if not eq or key not in settings or key in fixed:
                raise ValueError(f"method {item!r}: {part!r} is not key=value with a training setting the benchmark "
                                 f"leaves free; accepted keys: {', '.join(k for k in settings if k not in fixed)}")
            options.append((key, settings[key].parse_text(value)))
        methods.append(Method(kind, rest[0] if rest else None, tuple(options)))
    if not methods:
        raise ValueError("--methods is empty")
    labels = [m.label for m in methods]
    if len(set(labels)) != len(labels):
        raise ValueError(f"--methods names a method twice: {labels}")
    return methods


def parse_horizon(text: str) -> list[tuple[int, int]]:
    """An episode-horizon schedule: ``"1000"`` or ``"0:200,50:500,100:1000"`` (from generation G on, H steps)."""
    steps: list[tuple[int, int]] = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        gen, _, horizon = item.rpartition(":")
        steps.append((int(gen) if gen else 0, int(horizon)))
    steps.sort()
    if not steps or steps[0][0] != 0 or any(h < 1 for _, h in steps) or len({g for g, _ in steps}) != len(steps):
        raise ValueError(f"horizon schedule {text!r}: give H or G:H pairs starting at generation 0, H >= 1")
    return steps


def horizon_at(schedule: Sequence[tuple[int, int]], generation: int) -> int:
    """The horizon of ``generation`` under ``schedule``."""
    return [h for g, h in schedule if g <= generation][-1]


def _finite(x: Any) -> bool:
    return x is not None and x == x and math.isfinite(float(x))


def truncate_at_target(rows: Sequence[dict[str, Any]], target: float) -> tuple[list[dict[str, Any]], bool]:
    """The curve up to and including the first row whose centre mean reaches ``target``; and whether one did."""
    for i, row in enumerate(rows):
        if _finite(row.get("centre_mean")) and float(row["centre_mean"]) >= target:
            return list(rows[: i + 1]), True
    return list(rows), False


def spread_wall_clock(start: float, seconds: float, eval_seconds: Sequence[float]) -> list[float]:
    """Wall-clock at the end of each generation of a chunk that took ``seconds`` from ``start``.

    Within the chunk the time is spread in proportion to the generations' own ``eval_seconds`` (equal
    shares if those are all zero); the chunk's end is exact.
    """
    e = np.maximum(np.asarray(eval_seconds, dtype=float), 0.0)
    if len(e) == 0:
        return []
    share = e / e.sum() if e.sum() > 0 else np.full(len(e), 1.0 / len(e))
    walls = start + seconds * np.cumsum(share)
    walls[-1] = start + seconds
    return [float(w) for w in walls]


def summarise(label: str, rows: Sequence[dict[str, Any]], target: float) -> dict[str, Any]:
    """Headline numbers of one curve: reached?, wall-clock and env-steps at reaching (or spent), best centre."""
    curve, reached = truncate_at_target(rows, target)
    evaluated = [r for r in curve if _finite(r.get("centre_mean"))]
    best = max(evaluated, key=lambda r: float(r["centre_mean"]), default=None)
    last = curve[-1] if curve else {}
    return {
        "method": label,
        "reached": reached,
        "wall_seconds": float(last.get("wall_seconds", 0.0)),
        "env_steps": int(float(last.get("env_steps", 0))),
        "generations": int(float(last["generation"])) + 1 if curve else 0,
        "best_centre_mean": float(best["centre_mean"]) if best else math.nan,
        "best_centre_std": float(best["centre_std"]) if best and _finite(best.get("centre_std")) else math.nan,
    }


def _steps_text(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n:,}"


def markdown_summary(summaries: Sequence[dict[str, Any]], target: float) -> str:
    """The table of docs/benchmarks.md: method, reached?, wall-clock, env-steps, best centre mean."""
    from agents.util.tables import markdown_table

    target_text = f"{target:g} m"
    rows = []
    for s in summaries:
        more = "" if s["reached"] else "> "
        best = "-" if not _finite(s["best_centre_mean"]) else f"{s['best_centre_mean']:.2f}"
        if _finite(s["best_centre_std"]):
            best += f" ± {s['best_centre_std']:.2f}"
        rows.append([s["method"], "yes" if s["reached"] else "no", f"{more}{s['wall_seconds'] / 60:.1f} min",
                     f"{more}{_steps_text(s['env_steps'])}", f"{s['generations']}",
                     f"{best} m" if best != "-" else best])
    headers = ["method", f"reached {target_text}?", "wall-clock", "env-steps", "generations", "best centre mean"]
    return markdown_table(headers, rows)


def merge_curves(old: Sequence[dict[str, Any]], new: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``old`` rows of methods not in ``new``, then ``new``."""
    fresh = {r["method"] for r in new}
    return [r for r in old if r["method"] not in fresh] + list(new)


def read_curves(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``curves.csv`` (numbers as floats, empty cells as NaN)."""
    from agents.util.csvfile import read_csv

    if not path.exists():
        return []
    out = []
    for row in read_csv(path):
        out.append({k: (v if k == "method" else (float(v) if v != "" else math.nan)) for k, v in row.items()})
    return out


def plot_curves(rows: Sequence[dict[str, Any]], target: float, path: Path) -> Path:
    """Centre mean against wall-clock (minutes) and against env-steps, one line per method, the target dashed."""
    from agents.util.figures import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110, sharey=True)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    colours = plt.get_cmap("tab10" if len(methods) <= 10 else "tab20").colors
    for k, m in enumerate(methods):
        colour, style = colours[k % len(colours)], LINE_STYLES.get(m.split(":")[0], "-")
        pts = [r for r in rows if r["method"] == m and _finite(r["centre_mean"])]
        if not pts:
            continue
        y = np.array([float(r["centre_mean"]) for r in pts])
        sd = np.array([float(r["centre_std"]) if _finite(r["centre_std"]) else 0.0 for r in pts])
        for ax, x in ((axes[0], np.array([float(r["wall_seconds"]) / 60 for r in pts])),
                      (axes[1], np.array([float(r["env_steps"]) / 1e6 for r in pts]))):
            ax.plot(x, y, marker=".", color=colour, ls=style, label=m)
            ax.fill_between(x, y - sd, y + sd, color=colour, alpha=0.15, lw=0)
    for ax, xlabel in ((axes[0], "wall-clock (minutes)"), (axes[1], "env steps (millions)")):
        ax.axhline(target, color="k", ls="--", lw=0.8, label=f"target {target:g} m")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"centre distance, mean of {CENTRE_EPISODES} episodes (m)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Time to walk on {ENV}")
    fig.tight_layout()
    return save_figure(fig, path)


# --------------------------------------------------------------------------- hebb-gym side

def hebb_unavailable(method: Method) -> str | None:
    """Why a hebb-gym method cannot run (its preset does not exist), or None."""
    from agents.training.presets import list_presets

    presets = list_presets()
    if method.preset not in presets:
        return f"preset {method.preset!r} does not exist (presets: {', '.join(presets) or 'none'})"
    return None


def hebb_config(method: Method, args: argparse.Namespace, budget_s: float) -> Any:
    """The trainer's config: the preset with the method's settings, and the benchmark's centre evaluation,
    target and budget."""
    from agents.training import TrainConfig

    options = {**dict(method.options), "agent": method.kind, "env": (ENV,)}
    fitness = TrainConfig.from_preset(method.preset, **options).fitness  # on the preset's own body
    options["fitness"] = BULLET_ONLY_FITNESS.get(fitness, fitness)
    return TrainConfig.from_preset(
        method.preset, **options, env_kwargs={},
        generations=args.max_generations or 100_000,
        backend="process", workers=args.workers, seed=args.seed, centre_every=args.centre_every,
        centre_episodes=CENTRE_EPISODES, centre_max_steps=CENTRE_STEPS, centre_fitness="distance",
        centre_score="mean", stop_centre=args.target,
        max_minutes=budget_s / 60.0)


def run_hebb(method: Method, run_dir: Path, args: argparse.Namespace, budget_s: float) -> list[dict[str, Any]]:
    """One hebb-gym training run until the target or the budget; the curve."""
    from agents.training import read_metrics, train
    from agents.training.rundir import trainer_seconds

    t0 = time.perf_counter()
    train(hebb_config(method, args, budget_s), run_dir, progress=False)
    seconds = time.perf_counter() - t0
    metrics = read_metrics(run_dir)
    walls = spread_wall_clock(0.0, seconds, [trainer_seconds(r) for r in metrics])
    rows, steps = [], 0
    for r, wall in zip(metrics, walls):
        steps += int(r["env_steps"])
        rows.append({"method": method.label, "generation": int(r["generation"]), "env_steps": steps,
                     "wall_seconds": round(wall, 3), "centre_mean": r["centre_mean"], "centre_std": r["centre_std"]})
    centres = [r["centre_mean"] for r in rows if _finite(r["centre_mean"])]
    log.info("%s: %d generations, %.1f min, %s env steps, centre %s", method.label, len(rows), seconds / 60,
             f"{steps:,}", f"{centres[-1]:.2f} m" if centres else "-")
    return rows


# --------------------------------------------------------------------------- the peer: EvoTorch PGPE + ClipUp

def derive_seed(*parts: Any) -> int:
    """A 32-bit seed from a tuple of ints / strings, stable across processes and Python versions."""
    return int(np.random.SeedSequence([zlib.crc32(str(p).encode()) for p in parts]).generate_state(1)[0])


def centre_seeds(seed: int, generation: int, episodes: int = CENTRE_EPISODES) -> list[int]:
    """Env seeds of a centre evaluation: fresh per generation, all >= 2**32 (training envs are seeded below 2**31)."""
    return [2**32 + derive_seed(seed, "centre", generation, e) for e in range(episodes)]


class DistanceReward(gym.Wrapper):
    """Reward = this step's x progress, so an episode's return is ``info["distance"]`` after its last step."""

    def reset(self, **kwargs: Any) -> Any:
        obs, info = self.env.reset(**kwargs)
        self._distance = 0.0
        return obs, info

    def step(self, action: Any) -> Any:
        obs, _, terminated, truncated, info = self.env.step(action)
        progress = float(info["distance"]) - self._distance
        self._distance = float(info["distance"])
        return obs, progress, terminated, truncated, info


def make_peer_env(horizon: int, **kwargs: Any) -> Any:
    """The peer's training env (called inside each Ray actor): seeded from the actor's numpy RNG, one torch thread."""
    import torch

    import hebb_gym  # noqa: F401  (registers the env ids inside Ray actors)

    torch.set_num_threads(1)
    env = DistanceReward(gym.make(ENV, terminate_when_unhealthy=False, max_episode_steps=horizon, **kwargs))
    env.reset(seed=int(np.random.randint(2**31)))  # later resets continue this RNG
    return env


def _peer_problem(horizon_max: int, horizon: int, workers: int) -> Any:
    """EvoTorch's GymNE on the peer env whose episode length can change between generations (synced to actors)."""
    from evotorch.neuroevolution import GymNE

    class ScheduledGymNE(GymNE):
        def set_episode_length(self, n: int) -> None:
            self._episode_length = int(n)

        def _make_sync_data_for_actors(self) -> Any:
            data = super()._make_sync_data_for_actors() or {}
            return {**data, "episode_length": self._episode_length}

        def _use_sync_data_from_main(self, received: dict) -> None:
            received = dict(received)
            if "episode_length" in received:
                self._episode_length = received.pop("episode_length")
            super()._use_sync_data_from_main(received)

    return ScheduledGymNE(env=functools.partial(make_peer_env, horizon_max), network=PEER_NETWORK,
                          observation_normalization=True, episode_length=horizon,
                          num_actors=workers if workers > 1 else 0)


class CentreEvaluator:
    """Mean and std of ``info["distance"]`` over fresh full-length episodes, stepped together (one policy call a step)."""

    def __init__(self, episodes: int = CENTRE_EPISODES, steps: int = CENTRE_STEPS) -> None:
        import hebb_gym  # noqa: F401

        self.steps = steps
        self.envs = [gym.make(ENV, terminate_when_unhealthy=False, max_episode_steps=steps) for _ in range(episodes)]

    def __call__(self, policy: Any, seeds: Sequence[int]) -> tuple[float, float, int]:
        import torch

        obs = np.stack([env.reset(seed=s)[0] for env, s in zip(self.envs, seeds)])
        distance = np.zeros(len(self.envs))
        running = np.ones(len(self.envs), dtype=bool)
        steps = 0
        with torch.no_grad():
            for _ in range(self.steps):
                actions = policy(torch.as_tensor(obs, dtype=torch.float32)).numpy()
                for i in np.flatnonzero(running):
                    o, _, terminated, truncated, info = self.envs[i].step(actions[i])
                    obs[i], distance[i] = o, info["distance"]
                    running[i] = not (terminated or truncated)
                    steps += 1
                if not running.any():
                    break
        return float(distance.mean()), float(distance.std()), steps

    def close(self) -> None:
        for env in self.envs:
            env.close()


def run_evotorch(run_dir: Path, args: argparse.Namespace, budget_s: float, schedule: Sequence[tuple[int, int]],
                 centre_episodes: int = CENTRE_EPISODES, centre_steps: int = CENTRE_STEPS) -> list[dict[str, Any]]:
    """PGPE + ClipUp until the target or the budget; the curve (and the peer's own metrics in ``run_dir``)."""
    import torch
    from evotorch.algorithms import PGPE

    from agents.util.csvfile import write_csv

    logging.getLogger("evotorch").setLevel(logging.WARNING)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    settings = {**PEER_SETTINGS, "popsize": args.peer_popsize}
    started_ray = False
    if args.workers > 1:
        import ray

        if not ray.is_initialized():
            started_ray = True
            ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING, object_store_memory=256 * 2**20)
    run_dir.mkdir(parents=True)
    t0 = time.perf_counter()
    evaluator = CentreEvaluator(centre_episodes, centre_steps)
    problem = _peer_problem(max(h for _, h in schedule), horizon_at(schedule, 0), args.workers)
    # no problem.manual_seed: EvoTorch 0.6.1 actors then call a non-existent Problem.seed (core.py, EvaluationActor);
    # the problem draws from torch's global generator, seeded above
    searcher = PGPE(problem, **settings)
    rows: list[dict[str, Any]] = []
    metrics: list[dict[str, Any]] = []
    steps, g = 0, 0
    try:
        while True:
            problem.set_episode_length(horizon_at(schedule, g))
            before = problem.interaction_count
            t_gen = time.perf_counter()
            searcher.step()
            gen_seconds = time.perf_counter() - t_gen
            gen_steps = problem.interaction_count - before
            steps += gen_steps
            mean = std = math.nan
            centre_seconds = 0.0
            if (g + 1) % args.centre_every == 0:
                t_c = time.perf_counter()
                policy = problem.to_policy(searcher.status["center"])
                mean, std, _ = evaluator(policy, centre_seeds(args.seed, g, centre_episodes))
                centre_seconds = time.perf_counter() - t_c
            wall = time.perf_counter() - t0
            rows.append({"method": "evotorch", "generation": g, "env_steps": steps, "wall_seconds": round(wall, 3),
                         "centre_mean": mean, "centre_std": std})
            metrics.append({"generation": g, "env_steps": gen_steps, "eval_seconds": round(gen_seconds, 3),
                            "centre_seconds": round(centre_seconds, 3), "horizon": horizon_at(schedule, g),
                            "mean": float(searcher.status["mean_eval"]),
                            "best": float(searcher.status["pop_best_eval"]),
                            "stdev_norm": float(torch.linalg.norm(searcher.status["stdev"])),
                            "centre_mean": mean, "centre_std": std})
            write_csv(run_dir / "metrics.csv", metrics, nonfinite="")
            if _finite(mean):
                log.info("evotorch: generation %d, %.1f min, %s env steps, centre %.2f ± %.2f m", g, wall / 60,
                         f"{steps:,}", mean, std)
            g += 1
            if (_finite(mean) and mean >= args.target) or wall >= budget_s or \
                    (args.max_generations is not None and g >= args.max_generations):
                break
        torch.save({"center": searcher.status["center"].clone(), "settings": settings, "network": PEER_NETWORK,
                    "obs_mean": problem.get_observation_stats().mean,
                    "obs_stdev": problem.get_observation_stats().stdev}, run_dir / "centre.pt")
    finally:
        evaluator.close()
        if problem._actors is not None:  # GymNE's kill_actors fails on a serial problem
            problem.kill_actors()
        if started_ray:
            import ray

            ray.shutdown()
    return rows


# --------------------------------------------------------------------------- main

def auto_horizon(methods: Sequence[Method], skipped: dict[str, str], args: argparse.Namespace) -> str:
    """The peer's horizon for ``--horizon auto``: the hebb-gym presets' ``max_steps`` if they agree, else 1000."""
    horizons = set()
    for m in methods:
        if m.kind != "evotorch" and m.label not in skipped:
            horizons.add(hebb_config(m, args, 60.0).max_steps)
    if len(horizons) > 1:
        log.warning("the presets' horizons differ (%s); the peer uses 1000 (set --horizon)", sorted(horizons))
    return str(horizons.pop()) if len(horizons) == 1 else "1000"


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default="hebbian:fast,static:fast,hebbian:paper,evotorch",
                        help="comma list of hebbian:PRESET, static:PRESET and evotorch")
    parser.add_argument("--budget-minutes", type=float, default=None,
                        help="time budget of every method (default: 60 Hebbian, 30 static, 60 evotorch)")
    parser.add_argument("--target", type=float, default=20.0, help="centre mean distance to reach (m)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="CPU cores of every method (processes / Ray actors)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-learning"))
    parser.add_argument("--centre-every", type=int, default=5,
                        help="evaluate the centre every K generations (all methods)")
    parser.add_argument("--horizon", default="auto",
                        help="the peer's training horizon: H, a schedule G:H,G:H,... or auto (the presets' max_steps)")
    parser.add_argument("--peer-popsize", type=int, default=PEER_SETTINGS["popsize"])
    parser.add_argument("--max-generations", type=int, default=None, help="cap on every method's generations")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.centre_every < 1:
        parser.error("--workers and --centre-every must be >= 1")
    try:
        methods = parse_methods(args.methods)
    except ValueError as exc:
        parser.error(str(exc))
    have_evotorch = False
    if any(m.kind == "evotorch" for m in methods):
        try:  # before logging.basicConfig: EvoTorch configures its own logger on import
            import evotorch  # noqa: F401

            have_evotorch = True
        except ImportError:
            pass
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    skipped: dict[str, str] = {}
    for m in methods:
        if m.kind != "evotorch":
            reason = hebb_unavailable(m)
        else:
            reason = None if have_evotorch else 'EvoTorch is not installed (pip install "hebb-gym[bench]")'
        if reason is None and (args.out / m.slug).exists():
            reason = f"{args.out / m.slug} exists; delete it or choose another --out"
        if reason is not None:
            skipped[m.label] = reason
            log.warning("skipping %s: %s", m.label, reason)
    schedule = parse_horizon(auto_horizon(methods, skipped, args) if args.horizon == "auto" else args.horizon)

    args.out.mkdir(parents=True, exist_ok=True)
    new_rows: list[dict[str, Any]] = []
    for m in methods:
        if m.label in skipped:
            continue
        budget = 60 * (args.budget_minutes if args.budget_minutes is not None else DEFAULT_BUDGET_MINUTES[m.kind])
        log.info("%s: budget %.1f min, target %g m", m.label, budget / 60, args.target)
        if m.kind == "evotorch":
            rows = run_evotorch(args.out / m.slug, args, budget, schedule)
        else:
            rows = run_hebb(m, args.out / m.slug, args, budget)
        rows, _ = truncate_at_target(rows, args.target)
        new_rows.extend(rows)

    from agents.util.atomic import atomic_write_text
    from agents.util.csvfile import write_csv

    curves = merge_curves(read_curves(args.out / "curves.csv"), new_rows)
    if not curves:
        log.warning("nothing ran and %s holds no earlier curves", args.out / "curves.csv")
        return []
    write_csv(args.out / "curves.csv", curves, CURVE_FIELDS, nonfinite="")
    plot_curves(curves, args.target, args.out / "time_to_walk.png")
    summaries = [summarise(m, [r for r in curves if r["method"] == m], args.target)
                 for m in dict.fromkeys(r["method"] for r in curves)]
    table = markdown_summary(summaries, args.target)
    atomic_write_text(args.out / "summary.md", table + "\n")
    print(table)
    for label, reason in skipped.items():
        print(f"skipped {label}: {reason}")
    print(f"curves: {args.out / 'curves.csv'}, figure: {args.out / 'time_to_walk.png'}")
    return summaries


if __name__ == "__main__":
    main()
