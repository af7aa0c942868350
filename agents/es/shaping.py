"""Fitness shaping shared by the strategies: raw fitnesses (higher is better) to the utilities an update uses."""

from __future__ import annotations

from typing import Any

import numpy as np

FITNESS_SHAPINGS = ("centered_rank", "standardized_rank", "zscore", "baseline", "none")


def centered_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks mapped linearly onto [-0.5, 0.5]; ties broken by position (stable sort), so deterministic."""
    n = x.size
    ranks = np.empty(n, dtype=np.float64)
    ranks[np.argsort(x, kind="stable")] = np.arange(n, dtype=np.float64)
    return ranks / max(n - 1, 1) - 0.5


def shape_fitness(fitnesses: np.ndarray, method: str) -> np.ndarray:
    """Utilities from raw fitnesses (higher is better); see ``FITNESS_SHAPINGS`` and docs/es.md."""
    f = np.asarray(fitnesses, dtype=np.float64)
    if method == "centered_rank":
        return centered_ranks(f)
    if method == "standardized_rank":
        y = centered_ranks(f)
        std = y.std()
        return (y - y.mean()) / std if std > 0 else np.zeros_like(y)
    if method == "zscore":
        std = f.std()
        return (f - f.mean()) / std if std > 0 else np.zeros_like(f)
    if method == "baseline":
        return f - f.mean()
    if method == "none":
        return f.copy()
    raise ValueError(f"fitness_shaping must be one of {FITNESS_SHAPINGS}, got {method!r}")


def check_fitnesses(fitnesses: Any, popsize: int) -> np.ndarray:
    """Fitnesses as a float64 (popsize,) array; ValueError on a wrong length or any NaN/inf."""
    try:
        f = np.asarray(fitnesses, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"fitnesses must be {popsize} real numbers, got {fitnesses!r}") from None
    if f.shape != (popsize,):
        raise ValueError(f"fitnesses must have shape ({popsize},) (one per individual), got shape {f.shape}")
    bad = np.flatnonzero(~np.isfinite(f))
    if bad.size:
        raise ValueError(f"fitnesses must all be finite; got {f[bad[:5]].tolist()} "
                         f"at indices {bad[:5].tolist()} "
                         "(replace non-finite values, e.g. by the generation's worst, before tell)")
    return f
