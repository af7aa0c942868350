"""hebb-gym agents: Hebbian, static and LSTM policies with the SB3 ``predict`` interface, and the ES trainer."""

from agents.es import GaussianMixturePopulation, OpenAIES
from agents.policies import HebbianPolicy, LSTMPolicy, StaticPolicy, load_policy
from agents.policies.rules import RULES, hebbian_update
from agents.training import TrainConfig, train

__all__: list[str] = [
    "RULES", "GaussianMixturePopulation", "HebbianPolicy", "LSTMPolicy", "OpenAIES", "StaticPolicy", "TrainConfig",
    "hebbian_update", "load_policy", "train",
]
