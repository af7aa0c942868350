"""Training fitness: a slice of the population runs the lockstep loop on every training variant.

The fitness of an individual is the mean over the training variants (the meta-task; see
:func:`combine_variants` for the other ways the trainer can weigh them) of its per-episode task
score with the task's early stop (:mod:`agents.evaluation.scores`: the return for the car,
``info["distance"]`` for the quadruped), from :func:`agents.evaluation.rollout.rollout`.

:meth:`EnvPool.stepper` chooses how the envs are stepped: MuJoCo quadrupeds through
:class:`hebb_gym.ant_batch.AntBatch` (Ant-v5's step vectorised over envs, bit-for-bit equal to
``env.step``) wherever it is exact; everything else, or every env when the environment variable
``HEBB_GYM_FAST_ANT=0`` is set, through Gymnasium's ``env.step``.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field
from typing import Any, Sequence

import gymnasium as gym
import numpy as np

from hebb_gym import ant_batch
from agents.evaluation.envs import import_env_modules, parse_env_ids, task_of
from agents.evaluation.rollout import AntStepper, GymStepper, Hook, Step, Stepper, rollout
from agents.evaluation.scores import TaskScore, discard_diverged, task_score
from agents.policies.normalizer import ObsStats

#: How the trainer combines an individual's mean scores on the training variants into the fitness its update
#: uses (``variant_fitness``); see :func:`combine_variants`.
VARIANT_FITNESSES = ("mean", "min", "rank")


def _centred_tied_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks on [-0.5, 0.5], equal values sharing their average rank (so a constant column is all zeros)."""
    n = x.size
    ranks = np.empty(n, dtype=np.float64)
    ranks[np.argsort(x, kind="stable")] = np.arange(n, dtype=np.float64)
    _, inverse = np.unique(x, return_inverse=True)
    ranks = (np.bincount(inverse, ranks) / np.bincount(inverse))[inverse]
    return ranks / max(n - 1, 1) - 0.5


def combine_variants(per_env: np.ndarray, how: str) -> np.ndarray:
    """(individuals, variants) mean scores -> (individuals,) fitness for the ES update.

    ``mean``: the mean over the variants (the original code's meta-task fitness). A variant on which the
    population's scores spread widely then dominates the update, and one with a narrow spread (a body nobody
    walks on yet) barely moves it. ``min``: the worst variant's score, which trains for the weakest body.
    ``rank``: the mean over the variants of the individual's centred rank within the population on that
    variant, so every variant weighs the same in the update whatever the scale of its scores.
    Non-finite scores count as the worst finite score of their variant (0 where a variant has none).
    """
    if how not in VARIANT_FITNESSES:
        raise ValueError(f"variant_fitness must be one of {VARIANT_FITNESSES}, got {how!r}")
    scores = np.array(per_env, dtype=np.float64, ndmin=2)
    if scores.ndim != 2:
        raise ValueError(f"per_env must be (individuals, variants), got shape {scores.shape}")
    for v in range(scores.shape[1]):
        column = scores[:, v]
        finite = np.isfinite(column)
        column[~finite] = column[finite].min() if finite.any() else 0.0
    if how == "mean":
        return scores.mean(axis=1)
    if how == "min":
        return scores.min(axis=1)
    return np.mean([_centred_tied_ranks(scores[:, v]) for v in range(scores.shape[1])], axis=0)


#: How the plastic weights' initial draws are seeded (common random numbers): each individual its own,
#: both members of an antithetic pair the same, or every individual of a generation the same.
INIT_SEEDS = ("individual", "pair", "generation")


@dataclass(frozen=True)
class FitnessConfig:
    """What one fitness evaluation runs: the variants, episodes per variant, horizon, env options.

    ``fitness`` / ``early_stop``: what an episode scores and when a hopeless one ends
    (:func:`agents.evaluation.scores.task_score`); ``env_modules``: modules imported (in every worker)
    before the envs are made, so that they register their ids. ``init_seeds``: one of :data:`INIT_SEEDS`
    (:func:`init_seeds`). ``horizon_start`` / ``horizon_growth``: a horizon growing with the generation
    (:meth:`horizon`; 0: always ``max_steps``).
    """

    env_ids: tuple[str, ...]
    episodes: int = 1
    max_steps: int = 1000
    early_stop: str | bool = "auto"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    fitness: str = "auto"
    env_modules: tuple[str, ...] = ()
    init_seeds: str = "individual"
    horizon_start: int = 0
    horizon_growth: int = 0

    def __post_init__(self) -> None:
        import_env_modules(self.env_modules)
        object.__setattr__(self, "env_ids", parse_env_ids(self.env_ids, name="env_ids"))
        if self.episodes < 1:
            raise ValueError(f"episodes={self.episodes!r} must be >= 1")
        if self.max_steps < 1:
            raise ValueError(f"max_steps={self.max_steps!r} must be >= 1")
        if self.init_seeds not in INIT_SEEDS:
            raise ValueError(f"init_seeds={self.init_seeds!r} is not known; accepted: {', '.join(INIT_SEEDS)}")
        if self.horizon_start or self.horizon_growth:
            if not 1 <= self.horizon_start <= self.max_steps or self.horizon_growth < 1:
                raise ValueError(f"horizon_start={self.horizon_start!r}, horizon_growth={self.horizon_growth!r}; "
                                 f"accepted: both 0 (off), or 1 <= horizon_start <= max_steps={self.max_steps} "
                                 "and horizon_growth >= 1 steps per generation")
        self.score  # checks fitness and early_stop

    @property
    def task(self) -> str | None:
        """``"car"``, ``"ant"``, or None for any other env."""
        return task_of(self.env_ids[0])

    @property
    def score(self) -> TaskScore:
        """What an episode scores and its early stop."""
        return task_score(self.task, self.fitness, self.early_stop, self.env_kwargs.get("backend"))

    def horizon(self, generation: int) -> int:
        """The episode horizon of generation ``generation`` (0-based): ``max_steps``, or with a growing horizon
        ``min(max_steps, horizon_start + generation * horizon_growth)``."""
        if not self.horizon_start:
            return self.max_steps
        return min(self.max_steps, self.horizon_start + int(generation) * self.horizon_growth)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a worker process: register the env modules' ids before any env is made
        object.__setattr__(self, "__dict__", state)
        import_env_modules(self.env_modules)


@dataclass
class SliceResult:
    """Fitness of each individual of a slice, plus counters for the log."""

    fitness: np.ndarray
    env_steps: int
    per_env: np.ndarray  # (n, len(env_ids)) mean score per variant
    episodes: np.ndarray | None = None  # (n, len(env_ids), episodes) every episode's score
    obs_stats: list[ObsStats] | None = None  # per individual: the observations it saw (``collect_obs``)

    @staticmethod
    def concat(parts: Sequence["SliceResult"]) -> "SliceResult":
        """The results of consecutive chunks of individuals as one."""
        if len(parts) == 1:
            return parts[0]
        stats = None if parts[0].obs_stats is None else [s for p in parts for s in p.obs_stats]
        return SliceResult(np.concatenate([p.fitness for p in parts]), sum(p.env_steps for p in parts),
                           np.concatenate([p.per_env for p in parts]),
                           np.concatenate([p.episodes for p in parts]), stats)


class ObsStatsHook(Hook):
    """Per env of a rollout: how many observations it returned, their sum and sum of squares (float64)."""

    def __init__(self, size: int, dim: int) -> None:
        self.count = np.zeros(size)
        self.sum = np.zeros((size, dim))
        self.sq = np.zeros((size, dim))

    def after_step(self, step: Step) -> None:
        obs = step.transition.obs.reshape(len(step.index), -1).astype(np.float64)
        ok = np.isfinite(obs).all(axis=1)  # a diverged env's observation says nothing about the states visited
        index, obs = (step.index, obs) if ok.all() else (step.index[ok], obs[ok])
        self.count[index] += 1
        self.sum[index] += obs
        self.sq[index] += obs * obs

    def add_to(self, stats: list[ObsStats], episodes: int) -> None:
        """Merge env ``i * episodes + e`` into ``stats[i]``, episodes in order (independent of slicing)."""
        for k in np.flatnonzero(self.count):
            n = self.count[k]
            mean = self.sum[k] / n
            stats[k // episodes].add_moments(int(n), mean, np.maximum(self.sq[k] - n * mean * mean, 0.0))


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed from a tuple of ints/strings, stable across processes and Python versions."""
    return int(np.random.SeedSequence([zlib.crc32(str(p).encode()) for p in parts]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def init_seeds(generation_seed: int, env_id: str, individual_ids: Sequence[int], mode: str = "individual") -> list[int]:
    """The seeds of the plastic weights' initial draws of ``individual_ids`` on ``env_id`` (one per individual).

    ``mode`` (:data:`INIT_SEEDS`): ``individual`` seeds each by its own id; ``pair`` both members of the
    antithetic pair ``(2j, 2j+1)`` by ``j``; ``generation`` everyone alike. An individual's episodes draw in
    turn from its seed, so they differ; the seeds depend on ids only, never on how a population is sliced.
    """
    if mode == "individual":
        return [derive_seed(generation_seed, "init", env_id, i) for i in individual_ids]
    if mode == "pair":
        return [derive_seed(generation_seed, "init", env_id, "pair", i // 2) for i in individual_ids]
    if mode == "generation":
        return [derive_seed(generation_seed, "init", env_id, "generation")] * len(individual_ids)
    raise ValueError(f"init_seeds={mode!r} is not known; accepted: {', '.join(INIT_SEEDS)}")


class EnvPool:
    """Envs kept open between generations, one list per variant, grown on demand."""

    def __init__(self, config: FitnessConfig) -> None:
        self.config = config
        self._envs: dict[str, list[gym.Env]] = {e: [] for e in config.env_ids}
        self._fast: dict[tuple[str, int], Any] = {}

    def get(self, env_id: str, count: int) -> list[gym.Env]:
        """``count`` envs of ``env_id``, truncated at ``max_steps`` or the env's registered limit if sooner."""
        envs = self._envs[env_id]
        limit = gym.spec(env_id).max_episode_steps
        horizon = self.config.max_steps if limit is None else min(self.config.max_steps, limit)
        while len(envs) < count:
            envs.append(gym.make(env_id, max_episode_steps=horizon, **self.config.env_kwargs))
        return envs[:count]

    def fast_ant(self, env_id: str, count: int) -> Any:
        """An :class:`hebb_gym.ant_batch.AntBatch` over ``get(env_id, count)``, or None where it is not exact."""
        key = (env_id, count)
        if key not in self._fast:
            envs = self.get(env_id, count)
            self._fast[key] = None
            if os.environ.get("HEBB_GYM_FAST_ANT", "1") == "0":
                return None
            if all(ant_batch.supports(env) for env in envs):
                self._fast[key] = ant_batch.AntBatch(envs)
        return self._fast[key]

    def stepper(self, env_id: str, count: int) -> Stepper:
        """How ``count`` envs of ``env_id`` are stepped: the lean quadruped path where it is exact, else ``env.step``."""
        fast = self.fast_ant(env_id, count) if self.config.task != "car" else None
        return AntStepper(fast) if fast is not None else GymStepper(self.get(env_id, count))

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
    collect_obs: bool = False,
    max_steps: int | None = None,
) -> SliceResult:
    """Fitness of ``params`` (n, D), individuals ``individual_ids`` of the generation seeded ``generation_seed``.

    Every individual meets the same env seeds (common random numbers); its plastic-weight
    initialisation is seeded by its own id, so a fitness does not depend on how the population
    is sliced over workers. An individual that sends a non-finite action scores NaN.
    ``collect_obs``: also return the statistics of the (vector) observations each individual saw;
    ``max_steps``: this generation's horizon (None: the config's ``max_steps``).
    """
    cfg = pool.config
    n = len(individual_ids)
    params = np.asarray(params, dtype=np.float32)
    if params.ndim != 2 or params.shape[0] != n:
        raise ValueError(f"params shape {params.shape} does not match {n} individual ids")
    batch = policy.batch(params, assignment=assignment)
    score = cfg.score
    per_env = np.zeros((n, len(cfg.env_ids)))
    episodes = np.zeros((n, len(cfg.env_ids), cfg.episodes))
    stats = None
    steps = 0
    horizon = cfg.max_steps if max_steps is None else int(max_steps)
    for v, env_id in enumerate(cfg.env_ids):
        env_seeds = [derive_seed(generation_seed, "env", env_id, e) for e in range(cfg.episodes)]
        seeds = init_seeds(generation_seed, env_id, individual_ids, cfg.init_seeds)
        stepper = pool.stepper(env_id, n * cfg.episodes)
        state = batch.initial_state(cfg.episodes, seed=seeds)
        hooks = []
        if collect_obs:
            dim = int(np.prod(policy.observation_space.shape))
            stats = stats if stats is not None else [ObsStats(dim) for _ in range(n)]
            hooks = [ObsStatsHook(n * cfg.episodes, dim)]
        result = rollout(batch, state, stepper, env_seeds * n, max_steps=horizon, score=score,
                         early_stop=True, stop_nonfinite=True, hooks=hooks)
        episodes[:, v] = discard_diverged(result.scores, result.nonfinite)
        per_env[:, v] = episodes[:, v].mean(axis=1)
        steps += result.steps
        if hooks:
            hooks[0].add_to(stats, cfg.episodes)
    return SliceResult(per_env.mean(axis=1), steps, per_env, episodes, stats)
