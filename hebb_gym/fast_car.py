"""The switch of the car's fast paths: ``HEBB_GYM_FAST_CAR=0`` in the environment turns them all off.

Each fast path keeps the code it replaced as its reference and reads this switch: the batched front end
(:class:`agents.policies.image_features.ImageFeatures`, with its compiled conv stack) and the fused plastic
update when a policy batch is made, the compiled drawing of :class:`hebb_gym.car_render.StatePixelsRenderer`
at every frame and world update. So ``HEBB_GYM_FAST_CAR=0`` runs the code before the speed-ups, and
a benchmark can set it around one side (made and run inside the setting) to compare both in one run.
"""

from __future__ import annotations

import os

__all__ = ["ENV_VAR", "fast_path_enabled"]

#: Environment variable that turns the car's fast paths off (``"0"``).
ENV_VAR = "HEBB_GYM_FAST_CAR"


def fast_path_enabled() -> bool:
    """Whether objects made now use the car's fast paths (unless ``HEBB_GYM_FAST_CAR=0``)."""
    return os.environ.get(ENV_VAR, "1") != "0"
