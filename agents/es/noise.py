"""Shared noise table: one big seeded block of N(0, 1) floats, so only offsets travel between processes."""

from __future__ import annotations

import numpy as np

DEFAULT_TABLE_SIZE = 2**24  # 16M float32 = 64 MiB, builds in about 0.3 s


class NoiseTable:
    """A read-only float32 array of standard normals generated deterministically from ``seed``.

    Every process that builds ``NoiseTable(seed, size)`` gets bit-identical contents, so a
    perturbation is named by an integer offset: ``table.get(offset, dim)`` is the noise vector.
    """

    def __init__(self, seed: int = 0, size: int = DEFAULT_TABLE_SIZE) -> None:
        """Generate ``size`` N(0, 1) float32 values from ``seed`` (PCG64)."""
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"size must be a positive int, got {size!r}")
        self.seed = int(seed)
        self.size = int(size)
        rng = np.random.Generator(np.random.PCG64(self.seed))
        self._noise = rng.standard_normal(self.size, dtype=np.float32)
        self._noise.flags.writeable = False

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"NoiseTable(seed={self.seed}, size={self.size})"

    @property
    def nbytes(self) -> int:
        """Memory held by the table."""
        return self._noise.nbytes

    def _check_dim(self, dim: int) -> int:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1 or dim > self.size:
            raise ValueError(f"dim must be an int in [1, {self.size}] (the table size), got {dim!r}")
        return int(dim)

    def get(self, offset: int, dim: int) -> np.ndarray:
        """The noise vector of length ``dim`` starting at ``offset`` (a read-only view, no copy)."""
        dim = self._check_dim(dim)
        if (isinstance(offset, bool) or not isinstance(offset, (int, np.integer))
                or not 0 <= offset <= self.size - dim):
            raise ValueError(f"offset must be an int in [0, {self.size - dim}] for dim={dim}, got {offset!r}")
        return self._noise[int(offset): int(offset) + dim]

    def sample_offset(self, rng: np.random.Generator, dim: int) -> int:
        """A uniformly drawn valid offset for a vector of length ``dim``, using the caller's generator."""
        dim = self._check_dim(dim)
        return int(rng.integers(0, self.size - dim + 1))

    def sample_offsets(self, rng: np.random.Generator, dim: int, n: int) -> np.ndarray:
        """``n`` valid offsets (int64) drawn at once from the caller's generator."""
        dim = self._check_dim(dim)
        return rng.integers(0, self.size - dim + 1, size=int(n), dtype=np.int64)


_CACHE: dict[tuple[int, int], NoiseTable] = {}


def shared_noise_table(seed: int = 0, size: int = DEFAULT_TABLE_SIZE) -> NoiseTable:
    """The process-wide table for ``(seed, size)``, built once, so several strategies in a worker share it."""
    key = (int(seed), int(size))
    table = _CACHE.get(key)
    if table is None:
        table = _CACHE[key] = NoiseTable(seed, size)
    return table
