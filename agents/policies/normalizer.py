"""Observation normalisation: running mean / variance of the observations a population saw, applied by policies.

ES practice since Salimans et al. (2017): every observation is shifted and scaled by statistics of the
states the population visited, ``clip((obs - mean) / (std + eps), -clip, clip)``. Statistics are gathered
per individual during a generation and merged in individual order (Chan et al.'s pairwise formula), so
a run gives the same statistics whatever the number of workers; the policies of generation g use those
merged up to generation g - 1. A policy file stores the statistics, ``predict`` applies them, and they
stay frozen at evaluation.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import torch

__all__ = ["ObsNormalizer", "ObsStats"]

#: Added to the standard deviation so that constant observation entries do not blow up.
DEFAULT_EPS = 1e-3
#: Normalised observations are clipped to [-clip, clip].
DEFAULT_CLIP = 5.0


class ObsStats:
    """Count, mean and sum of squared deviations (M2) of a stream of ``(n, d)`` observation rows, in float64."""

    def __init__(self, dim: int) -> None:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"dim={dim!r} is not accepted; use a positive integer (the observation length)")
        self.dim = int(dim)
        self.count = 0
        self.mean = np.zeros(self.dim)
        self.m2 = np.zeros(self.dim)

    def add(self, rows: np.ndarray) -> None:
        """Fold the rows of ``rows (n, dim)`` in (one batch, then Chan's merge)."""
        x = np.asarray(rows, dtype=np.float64).reshape(-1, self.dim)
        if x.shape[0] == 0:
            return
        mean = x.mean(axis=0)
        m2 = ((x - mean) ** 2).sum(axis=0)
        self._merge(x.shape[0], mean, m2)

    def merge(self, other: "ObsStats") -> None:
        """Fold another :class:`ObsStats` of the same length in."""
        if other.dim != self.dim:
            raise ValueError(f"cannot merge statistics of length {other.dim} into length {self.dim}")
        self._merge(other.count, other.mean, other.m2)

    def _merge(self, n: int, mean: np.ndarray, m2: np.ndarray) -> None:
        if n == 0:
            return
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * n / total)
        self.count = total

    @property
    def var(self) -> np.ndarray:
        """Population variance per entry (0 before any observation)."""
        return self.m2 / self.count if self.count else np.zeros(self.dim)

    def state_dict(self) -> dict[str, Any]:
        return {"dim": self.dim, "count": int(self.count), "mean": self.mean.copy(), "m2": self.m2.copy()}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "ObsStats":
        s = cls(int(state["dim"]))
        s.count = int(state["count"])
        s.mean = np.asarray(state["mean"], dtype=np.float64).reshape(s.dim).copy()
        s.m2 = np.asarray(state["m2"], dtype=np.float64).reshape(s.dim).copy()
        if s.count < 0 or not (np.isfinite(s.mean).all() and np.isfinite(s.m2).all()) or (s.m2 < 0).any():
            raise ValueError("observation statistics hold a negative count, non-finite or negative values")
        return s

    @classmethod
    def merged(cls, dim: int, parts: Iterable["ObsStats | None"]) -> "ObsStats":
        """One :class:`ObsStats` from ``parts`` merged in the order given (None entries skipped)."""
        out = cls(dim)
        for p in parts:
            if p is not None:
                out.merge(p)
        return out


class ObsNormalizer:
    """The frozen map ``clip((obs - mean) / (std + eps), -clip, clip)`` a policy applies to its observations."""

    def __init__(self, mean: Any, std: Any, clip: float = DEFAULT_CLIP, eps: float = DEFAULT_EPS) -> None:
        mean = np.asarray(mean, dtype=np.float64).ravel()
        std = np.asarray(std, dtype=np.float64).ravel()
        if mean.shape != std.shape or mean.size == 0:
            raise ValueError(f"mean {mean.shape} and std {std.shape} must be non-empty vectors of one length")
        if not (np.isfinite(mean).all() and np.isfinite(std).all()) or (std < 0).any():
            raise ValueError("mean and std must be finite, std >= 0")
        if not (np.isfinite(clip) and clip > 0) or not (np.isfinite(eps) and eps > 0):
            raise ValueError(f"clip={clip!r} and eps={eps!r} must be finite and > 0")
        self.mean, self.std, self.clip, self.eps = mean, std, float(clip), float(eps)
        # float32 tensors used on the hot path: x * scale + shift, then clamp
        scale = 1.0 / (std + self.eps)
        self._scale = torch.from_numpy(scale.astype(np.float32))
        self._shift = torch.from_numpy((-mean * scale).astype(np.float32))

    @classmethod
    def from_stats(cls, stats: ObsStats, clip: float = DEFAULT_CLIP, eps: float = DEFAULT_EPS) -> "ObsNormalizer":
        """The normaliser of statistics ``stats`` (identity-like ``mean 0, std 1`` before any observation)."""
        if stats.count == 0:
            return cls(np.zeros(stats.dim), np.ones(stats.dim), clip, eps)
        return cls(stats.mean, np.sqrt(stats.var), clip, eps)

    @property
    def dim(self) -> int:
        return int(self.mean.size)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised float32 copy of ``x (..., dim)``."""
        out = torch.addcmul(self._shift, x.to(torch.float32), self._scale)
        return out.clamp_(-self.clip, self.clip)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Normalise a numpy observation (or batch), float32."""
        return self.apply(torch.as_tensor(np.asarray(obs))).numpy()

    def state_dict(self) -> dict[str, Any]:
        """Plain types and tensors only (what policy files and checkpoints store)."""
        return {"mean": torch.from_numpy(self.mean.copy()), "std": torch.from_numpy(self.std.copy()),
                "clip": self.clip, "eps": self.eps}

    @classmethod
    def from_state_dict(cls, d: dict[str, Any]) -> "ObsNormalizer":
        mean, std = (np.asarray(v.numpy() if isinstance(v, torch.Tensor) else v) for v in (d["mean"], d["std"]))
        return cls(mean, std, float(d["clip"]), float(d["eps"]))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ObsNormalizer) and np.array_equal(self.mean, other.mean)
                and np.array_equal(self.std, other.std) and (self.clip, self.eps) == (other.clip, other.eps))

    def __repr__(self) -> str:
        return f"ObsNormalizer(dim={self.dim}, clip={self.clip}, eps={self.eps})"
