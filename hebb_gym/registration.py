"""Registers every row of :data:`hebb_gym.variants.VARIANTS` with Gymnasium."""

from __future__ import annotations

import gymnasium as gym

from hebb_gym.variants import VARIANTS


def register_all() -> None:
    """Register the variants; idempotent, so re-importing the package is harmless."""
    for v in VARIANTS:
        if v.id in gym.registry:
            continue
        gym.register(
            id=v.id,
            entry_point=v.entry_point,
            max_episode_steps=v.max_episode_steps,
            kwargs=dict(v.kwargs),
        )
