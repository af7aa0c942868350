"""hebb-gym agents: Hebbian, static and LSTM policies with the SB3 ``predict`` interface, and the ES trainer."""

from agents.policies import HebbianPolicy, LSTMPolicy, StaticPolicy, load_policy
from agents.rules import RULES, hebbian_update

__all__: list[str] = ["RULES", "HebbianPolicy", "LSTMPolicy", "StaticPolicy", "hebbian_update", "load_policy"]
