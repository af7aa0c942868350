"""Short random rollouts in every variant: a smoke test of the installation that also measures speed."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterable

import gymnasium as gym
import numpy as np

import hebb_gym
from agents.evaluation.envs import task_of


@dataclass(frozen=True)
class RolloutResult:
    """Outcome of one random-action episode (cut at ``max_steps``)."""

    env_id: str
    episode_return: float
    length: int
    steps_per_second: float
    distance: float | None


def random_rollout(env_id: str, max_steps: int, seed: int = 0, **make_kwargs: Any) -> RolloutResult:
    """Run uniformly random actions for at most ``max_steps`` steps and time the ``step`` calls."""
    if max_steps <= 0:
        raise ValueError(f"max_steps={max_steps!r} must be a positive integer")
    env = gym.make(env_id, **make_kwargs)
    try:
        env.action_space.seed(seed)
        env.reset(seed=seed)
        total, length, distance = 0.0, 0, None
        start = time.perf_counter()
        for _ in range(max_steps):
            _, reward, terminated, truncated, info = env.step(env.action_space.sample())
            total += float(reward)
            length += 1
            distance = info.get("distance", distance)
            if terminated or truncated:
                break
        elapsed = time.perf_counter() - start
    finally:
        env.close()
    return RolloutResult(
        env_id, total, length, length / max(elapsed, 1e-9), None if distance is None else float(distance)
    )


def rollout_all(
    env_ids: Iterable[str] | None = None, max_steps: int = 200, seed: int = 0, progress: bool = True, **kw: Any
) -> list[RolloutResult]:
    """Random rollouts in the given (default: all registered) variants, with a progress bar."""
    ids = list(env_ids) if env_ids is not None else [v.id for v in hebb_gym.VARIANTS]
    results = []
    bar = _progress(ids, progress)
    for env_id in bar:
        make_kwargs = kw if task_of(env_id) == "ant" else {}
        results.append(random_rollout(env_id, max_steps, seed, **make_kwargs))
        if hasattr(bar, "set_postfix_str"):
            bar.set_postfix_str(f"{env_id}: {results[-1].steps_per_second:.0f} steps/s")
    return results


def _progress(items: list[str], enabled: bool):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc="rollouts", unit="env")


def summary_rows(results: list[RolloutResult]) -> list[list[Any]]:
    """Rows for the rollout table: id, return, length, steps/s, distance."""
    return [
        [r.env_id, r.episode_return, r.length, r.steps_per_second, np.nan if r.distance is None else r.distance]
        for r in results
    ]
