"""The three policies behind one interface, and ``load_policy`` that reads any of their files.

See :mod:`agents.policy_base` for the shared interface (``predict``, ``batch``, flat vectors, files).
"""

from __future__ import annotations

from agents.hebbian_policy import HebbianBatch, HebbianPolicy
from agents.lstm_policy import LSTMBatch, LSTMPolicy
from agents.policy_base import FORMAT_VERSION, Policy, PolicyBatch, PolicyState, load_policy
from agents.static_policy import StaticBatch, StaticPolicy

__all__ = [
    "FORMAT_VERSION",
    "HebbianBatch",
    "HebbianPolicy",
    "LSTMBatch",
    "LSTMPolicy",
    "Policy",
    "PolicyBatch",
    "PolicyState",
    "StaticBatch",
    "StaticPolicy",
    "load_policy",
    "policy_class",
]

_BY_AGENT = {"hebbian": HebbianPolicy, "static": StaticPolicy, "lstm": LSTMPolicy}


def policy_class(agent: str) -> type[Policy]:
    """The policy class for an agent name used on the command line: ``hebbian``, ``static`` or ``lstm``."""
    try:
        return _BY_AGENT[agent]
    except KeyError:
        raise ValueError(f"agent={agent!r} is not known; accepted: {', '.join(_BY_AGENT)}") from None
