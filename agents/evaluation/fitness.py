"""Lockstep fitness evaluation: a slice of the population drives a batch of envs, one policy call per step.

The fitness of an individual is the mean over the training variants (the meta-task) of its
per-episode score: the episode return for the car, ``info["distance"]`` for the quadruped. The
early stops of the original code end hopeless episodes: the car after 20 consecutive negative
rewards, the quadruped after step 200 once it has moved backwards 30 steps in a row.

MuJoCo quadrupeds are stepped through :class:`hebb_gym.ant_batch.AntBatch` (Ant-v5's step vectorised
over envs, bit-for-bit equal to ``env.step``) wherever it is exact; everything else, or every env when
the environment variable ``HEBB_GYM_FAST_ANT=0`` is set, goes through Gymnasium's ``env.step``.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field
from typing import Any, Sequence

import gymnasium as gym
import numpy as np

import hebb_gym
from agents.evaluation.envs import parse_env_ids

CAR_NEGATIVE_STREAK = 20
ANT_GRACE_STEPS = 200
ANT_BACKWARD_STREAK = 30


@dataclass(frozen=True)
class FitnessConfig:
    """What one fitness evaluation runs: the variants, episodes per variant, horizon, env options."""

    env_ids: tuple[str, ...]
    episodes: int = 1
    max_steps: int = 1000
    early_stop: bool = True
    env_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "env_ids", parse_env_ids(self.env_ids, name="env_ids"))
        if self.episodes < 1:
            raise ValueError(f"episodes={self.episodes!r} must be >= 1")
        if self.max_steps < 1:
            raise ValueError(f"max_steps={self.max_steps!r} must be >= 1")

    @property
    def task(self) -> str:
        return hebb_gym.task_of(self.env_ids[0])


@dataclass
class SliceResult:
    """Fitness of each individual of a slice, plus counters for the log."""

    fitness: np.ndarray
    env_steps: int
    per_env: np.ndarray  # (n, len(env_ids)) mean score per variant


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed from a tuple of ints/strings, stable across processes and Python versions."""
    return int(np.random.SeedSequence([zlib.crc32(str(p).encode()) for p in parts]).generate_state(2, np.uint64)[0] >> np.uint64(1))


class EnvPool:
    """Envs kept open between generations, one list per variant, grown on demand."""

    def __init__(self, config: FitnessConfig) -> None:
        self.config = config
        self._envs: dict[str, list[gym.Env]] = {e: [] for e in config.env_ids}
        self._fast: dict[tuple[str, int], Any] = {}

    def get(self, env_id: str, count: int) -> list[gym.Env]:
        envs = self._envs[env_id]
        while len(envs) < count:
            envs.append(gym.make(env_id, max_episode_steps=self.config.max_steps, **self.config.env_kwargs))
        return envs[:count]

    def fast_ant(self, env_id: str, count: int) -> Any:
        """An :class:`hebb_gym.ant_batch.AntBatch` over ``get(env_id, count)``, or None where it is not exact."""
        key = (env_id, count)
        if key not in self._fast:
            envs = self.get(env_id, count)
            self._fast[key] = None
            if os.environ.get("HEBB_GYM_FAST_ANT", "1") == "0":
                return None
            try:
                from hebb_gym import ant_batch as fast_ant
            except ImportError:  # no MuJoCo: the generic path is the only one
                return None
            if all(fast_ant.supports(env) for env in envs):
                self._fast[key] = fast_ant.AntBatch(envs)
        return self._fast[key]

    def close(self) -> None:
        self._fast.clear()
        for envs in self._envs.values():
            for env in envs:
                env.close()
            envs.clear()


def evaluate_slice(
    policy: Any,
    params: np.ndarray,
    individual_ids: Sequence[int],
    generation_seed: int,
    pool: EnvPool,
    assignment: np.ndarray | None = None,
) -> SliceResult:
    """Fitness of ``params`` (n, D), individuals ``individual_ids`` of the generation seeded ``generation_seed``.

    Every individual meets the same env seeds (common random numbers); its plastic-weight
    initialisation is seeded by its own id, so a fitness does not depend on how the population
    is sliced over workers.
    """
    cfg = pool.config
    n = len(individual_ids)
    params = np.asarray(params, dtype=np.float32)
    if params.ndim != 2 or params.shape[0] != n:
        raise ValueError(f"params shape {params.shape} does not match {n} individual ids")
    batch = policy.batch(params, assignment=assignment)
    per_env = np.zeros((n, len(cfg.env_ids)))
    steps = 0
    for v, env_id in enumerate(cfg.env_ids):
        env_seeds = [derive_seed(generation_seed, "env", env_id, e) for e in range(cfg.episodes)]
        init_seeds = [derive_seed(generation_seed, "init", env_id, i) for i in individual_ids]
        fast = pool.fast_ant(env_id, n * cfg.episodes) if cfg.task != "car" else None
        if fast is not None:
            scores, used = _lockstep_fast_ant(batch, fast, n, env_seeds, init_seeds, cfg)
        else:
            scores, used = _lockstep(batch, pool.get(env_id, n * cfg.episodes), n, env_seeds, init_seeds, cfg)
        per_env[:, v] = scores.mean(axis=1)
        steps += used
    return SliceResult(per_env.mean(axis=1), steps, per_env)


def _lockstep(
    batch: Any, envs: list[gym.Env], n: int, env_seeds: list[int], init_seeds: list[int], cfg: FitnessConfig
) -> tuple[np.ndarray, int]:
    """Run n individuals x E episodes together; returns scores (n, E) and env steps taken."""
    E = len(env_seeds)
    car = cfg.task == "car"
    obs0 = [envs[i * E + e].reset(seed=env_seeds[e])[0] for i in range(n) for e in range(E)]
    obs = np.stack(obs0).reshape((n, E) + obs0[0].shape)
    state = batch.initial_state(E, seed=init_seeds)
    active = np.ones((n, E), dtype=bool)
    returns = np.zeros((n, E))
    distance = np.zeros((n, E))
    streak = np.zeros((n, E), dtype=np.int64)
    diverged = np.zeros(n, dtype=bool)
    steps = 0
    for t in range(cfg.max_steps):
        actions, state = batch.act(obs, state)
        bad = active & ~np.isfinite(np.asarray(actions, dtype=np.float64).reshape(n, E, -1)).all(axis=2)
        if bad.any():
            diverged |= bad.any(axis=1)
            active &= ~bad
        for i, e in zip(*np.nonzero(active)):
            env = envs[i * E + e]
            o, r, terminated, truncated, info = env.step(actions[i, e])
            steps += 1
            obs[i, e] = o
            returns[i, e] += r
            if car:
                streak[i, e] = streak[i, e] + 1 if r < 0 else 0
                stop = cfg.early_stop and streak[i, e] >= CAR_NEGATIVE_STREAK
            else:
                step_progress = info["distance"] - distance[i, e]
                distance[i, e] = info["distance"]
                streak[i, e] = streak[i, e] + 1 if step_progress < 0 else 0
                stop = cfg.early_stop and t >= ANT_GRACE_STEPS and streak[i, e] >= ANT_BACKWARD_STREAK
            if terminated or truncated or stop:
                active[i, e] = False
        if not active.any():
            break
    scores = returns if car else distance
    scores = np.where(diverged[:, None] | ~np.isfinite(scores), np.nan, scores)
    return scores, steps


def _lockstep_fast_ant(
    batch: Any, ant: Any, n: int, env_seeds: list[int], init_seeds: list[int], cfg: FitnessConfig
) -> tuple[np.ndarray, int]:
    """:func:`_lockstep` for MuJoCo quadrupeds through :class:`hebb_gym.ant_batch.AntBatch`: same numbers, vectorised."""
    E = len(env_seeds)
    obs = ant.reset([env_seeds[e] for _ in range(n) for e in range(E)]).reshape(n, E, -1)
    flat_obs = obs.reshape(n * E, -1)
    state = batch.initial_state(E, seed=init_seeds)
    active = np.ones(n * E, dtype=bool)
    distance = np.zeros(n * E)
    streak = np.zeros(n * E, dtype=np.int64)
    diverged = np.zeros(n, dtype=bool)
    steps = 0
    for t in range(cfg.max_steps):
        actions, state = batch.act(obs, state)
        flat_act = np.asarray(actions).reshape(n * E, -1)
        bad = active & ~np.isfinite(flat_act).all(axis=1)
        if bad.any():
            diverged |= bad.reshape(n, E).any(axis=1)
            active &= ~bad
        index = np.flatnonzero(active)
        if index.size == 0:
            break
        o, _, terminated, dist = ant.step(index, flat_act[index])
        steps += index.size
        flat_obs[index] = o
        progress = dist - distance[index]
        distance[index] = dist
        run = np.where(progress < 0, streak[index] + 1, 0)
        streak[index] = run
        stop = terminated | (t + 1 >= cfg.max_steps)  # the pool's TimeLimit truncates at max_steps
        if cfg.early_stop and t >= ANT_GRACE_STEPS:
            stop |= run >= ANT_BACKWARD_STREAK
        active[index[stop]] = False
        if not active.any():
            break
    scores = distance.reshape(n, E)
    scores = np.where(diverged[:, None] | ~np.isfinite(scores), np.nan, scores)
    return scores, steps
