"""Evolution Strategies as ask/tell strategies: OpenAI-ES on a flat vector, a mixture of shared rules."""

from .mixture import DEFAULT_MAX_LOGITS, MIXTURE_SCHEDULE, GaussianMixturePopulation
from .noise import DEFAULT_TABLE_SIZE, NoiseTable, shared_noise_table
from .openai_es import ORIGINAL_CODE, OpenAIES, Strategy
from .optimizers import OPTIMIZERS, SGD, Adam, Optimizer, make_optimizer
from .schedule import Schedule
from .shaping import FITNESS_SHAPINGS, centered_ranks, shape_fitness

__all__ = [
    "Adam", "DEFAULT_MAX_LOGITS", "DEFAULT_TABLE_SIZE", "FITNESS_SHAPINGS", "GaussianMixturePopulation",
    "MIXTURE_SCHEDULE", "NoiseTable", "OPTIMIZERS", "ORIGINAL_CODE", "OpenAIES", "Optimizer", "SGD", "Schedule",
    "Strategy", "centered_ranks", "make_optimizer", "shape_fitness", "shared_noise_table",
]
