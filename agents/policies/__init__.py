"""The three policies behind one interface, and ``load_policy`` that reads any of their files.

Modules: :mod:`~agents.policies.base` (``Policy``: ``predict``, flat vectors, files) and
:mod:`~agents.policies.batch` (``PolicyBatch``, ``PolicyState``: the batched interface),
:mod:`~agents.policies.files` (the policy file format), :mod:`~agents.policies.spaces`,
:mod:`~agents.policies.seeding`, :mod:`~agents.policies.networks`, :mod:`~agents.policies.rules`, one
module per policy (``hebbian``, ``static``, ``lstm``) and :mod:`~agents.policies.plastic_step` (the
Hebbian update's kernels).
"""

from __future__ import annotations

import copy

import numpy as np

from agents.policies.base import Policy, load_policy
from agents.policies.batch import PolicyBatch, PolicyState
from agents.policies.files import FORMAT_VERSION, register_policy_class
from agents.policies.hebbian import HebbianBatch, HebbianPolicy
from agents.policies.lstm import LSTMBatch, LSTMPolicy
from agents.policies.seeding import StateSeed, as_torch_generator, state_generators
from agents.policies.spaces import describe_space, space_from_description
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
    "StateSeed",
    "StaticBatch",
    "StaticPolicy",
    "as_torch_generator",
    "describe_space",
    "load_policy",
    "policy_class",
    "policy_with",
    "register_policy_class",
    "space_from_description",
    "state_generators",
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
