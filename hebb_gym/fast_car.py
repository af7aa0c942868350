"""The switch of the car's fast paths: ``HEBB_GYM_FAST_CAR=0`` in the environment turns them all off.

Each fast path keeps the code it replaced as its reference and reads this switch when the object that
uses it is made: :class:`agents.policies.image_features.ImageFeatures` and the fused plastic update
(when a policy batch is made) and the compiled drawing of :class:`hebb_gym.car_render.StatePixelsRenderer`
(when a renderer, i.e. an env, is made). So ``HEBB_GYM_FAST_CAR=0`` runs the code before the speed-ups, and
a benchmark can set it around the making of one side to compare both in one run.
"""

from __future__ import annotations

import os

__all__ = ["ENV_VAR", "fast_path_enabled"]

#: Environment variable that turns the car's fast paths off (``"0"``).
ENV_VAR = "HEBB_GYM_FAST_CAR"


def fast_path_enabled() -> bool:
    """Whether objects made now use the car's fast paths (unless ``HEBB_GYM_FAST_CAR=0``)."""
    return os.environ.get(ENV_VAR, "1") != "0"
