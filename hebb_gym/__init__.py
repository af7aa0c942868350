"""hebb-gym environments: the ten task variants of the Hebbian meta-learning papers as Gymnasium IDs.

``import hebb_gym`` registers them; ``gym.make("hebb_gym:HebbAnt-FrontLegDamage-v0")`` works without it.
"""

from hebb_gym.registration import register_all
from hebb_gym.variants import VARIANTS, Variant, get_variant, task_of, variants

__version__ = "0.1.0"
__all__ = ["VARIANTS", "Variant", "variants", "get_variant", "task_of", "__version__"]

register_all()
