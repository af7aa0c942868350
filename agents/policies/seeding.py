"""Seeds of the policies' random draws: torch Generators from ints, numpy Generators, per individual.

Initial flat parameters come from ``np.random.default_rng(seed)``; plastic weights are drawn with torch
Generators made here, so a policy never touches global RNG state.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["SeedLike", "StateSeed", "as_torch_generator", "state_generators"]

SeedLike = int | np.random.Generator | torch.Generator | None
#: What ``initial_state`` accepts: one seed for the whole batch, or one int seed per individual.
StateSeed = SeedLike | Sequence[int] | np.ndarray


def as_torch_generator(seed: SeedLike) -> torch.Generator:
    """A torch.Generator from an int seed, a numpy Generator (one draw) or a torch.Generator (used as is)."""
    if isinstance(seed, torch.Generator):
        return seed
    g = torch.Generator()
    if isinstance(seed, np.random.Generator):
        g.manual_seed(int(seed.integers(0, 2**63 - 1)))
    elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        g.manual_seed(int(seed) % (2**64))
    elif seed is None:
        g.manual_seed(0)
    else:
        raise TypeError(f"seed={seed!r} must be an int, a numpy Generator or a torch Generator")
    return g


def state_generators(seed: StateSeed, n_individuals: int) -> list[torch.Generator]:
    """One shared generator for a single seed, or one per individual for a sequence of P int seeds.

    Per-individual seeds make an individual's draws independent of which others share its batch (so a
    fitness does not depend on how a population is sliced over workers).
    """
    if isinstance(seed, (list, tuple, np.ndarray)):
        seeds = np.asarray(seed)
        if seeds.shape != (n_individuals,) or not np.issubdtype(seeds.dtype, np.integer):
            raise ValueError(
                f"seed has shape {seeds.shape} and dtype {seeds.dtype}; accepted: one seed (int, numpy or "
                f"torch "
                f"Generator) or {n_individuals} int seeds, one per individual"
            )
        return [as_torch_generator(int(s)) for s in seeds]
    return [as_torch_generator(seed)]
