"""The three policies behind one interface, and ``load_policy`` that reads any of their files.

See :mod:`agents.policies.base` for the shared interface (``predict``, ``batch``, flat vectors, files).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from agents.policies.hebbian import HebbianBatch, HebbianPolicy
from agents.policies.lstm import LSTMBatch, LSTMPolicy
from agents.policies.base import FORMAT_VERSION, Policy, PolicyBatch, PolicyState, load_policy
from agents.policies.static import StaticBatch, StaticPolicy

__all__ = [
    "AGENTS",
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
    "policy_with",
]

_BY_AGENT = {"hebbian": HebbianPolicy, "static": StaticPolicy, "lstm": LSTMPolicy}
#: The agent kinds the ES trainer searches, as named on the command line.
AGENTS: tuple[str, ...] = tuple(_BY_AGENT)


def policy_class(agent: str) -> type[Policy]:
    """The policy class for an agent name used on the command line: ``hebbian``, ``static`` or ``lstm``."""
    try:
        return _BY_AGENT[agent]
    except KeyError:
        raise ValueError(f"agent={agent!r} is not known; accepted: {', '.join(_BY_AGENT)}") from None


def policy_with(policy: Policy, params: np.ndarray, assignment: np.ndarray | None = None) -> Policy:
    """A copy of ``policy`` holding ``params`` (and, for shared rules, ``assignment``)."""
    new = copy.deepcopy(policy)
    new.set_flat(params)
    if assignment is not None:
        new.assignment = assignment
    return new
