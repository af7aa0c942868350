"""Evolution Strategies as ask/tell strategies: OpenAI-ES on a flat vector, a mixture of shared rules."""

from .mixture import DEFAULT_MAX_LOGITS, GaussianMixturePopulation
from .noise import DEFAULT_TABLE_SIZE, NoiseTable, shared_noise_table
from .openai_es import FITNESS_SHAPINGS, ORIGINAL_CODE, OpenAIES, Strategy, centered_ranks, shape_fitness
from .optimizers import OPTIMIZERS, SGD, Adam, Optimizer, make_optimizer

__all__ = [
    "Adam", "DEFAULT_MAX_LOGITS", "DEFAULT_TABLE_SIZE", "FITNESS_SHAPINGS", "GaussianMixturePopulation",
    "NoiseTable", "OPTIMIZERS", "ORIGINAL_CODE", "OpenAIES", "Optimizer", "SGD", "Strategy", "centered_ranks",
    "make_optimizer",
    "shape_fitness", "shared_noise_table",
]
