"""Glue between policies and ES strategies: which strategy searches which policy, and how a candidate becomes parameters.

Per-synapse Hebbian rules, static and LSTM networks are searched by :class:`~agents.es.OpenAIES` over the
policy's flat vector. Shared Hebbian rules (``rho > 1``) are searched by
:class:`~agents.es.GaussianMixturePopulation`: M rule means, per-synapse assignment logits, and an
isotropic block for the remaining parameters (the car's static convolutions, co-evolved initial weights).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from agents.es.mixture import GaussianMixturePopulation
from agents.es.openai_es import OpenAIES


def uses_mixture(policy: Any) -> bool:
    """True for shared Hebbian rules (fewer rules than synapses): those are searched by the mixture."""
    return getattr(policy, "num_rules", None) is not None and policy.num_rules < policy.num_synapses


def strategy_factory(policy: Any, config: Any) -> Callable[[], Any]:
    """A picklable zero-argument constructor of the run's strategy (workers build replicas with it).

    ``config`` is a ``TrainConfig`` (anything with ``popsize``, ``seed`` and ``schedule()``).
    """
    common = dict(popsize=config.popsize, schedule=config.schedule(), seed=config.seed)
    flat = policy.get_flat().astype(np.float64)
    if not uses_mixture(policy):
        return functools.partial(OpenAIES, policy.num_params, init=flat, **common)
    k = policy.rule.k
    n_rule_params = policy.num_rules * k
    return functools.partial(
        GaussianMixturePopulation, policy.num_synapses, policy.num_rules, k,
        other_params=policy.num_params - n_rule_params,
        init_means=flat[:n_rule_params].reshape(policy.num_rules, k),
        init_other=flat[n_rule_params:], **common,
    )


def candidate_params(strategy: Any, candidates: Any, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Flat parameters ``(hi - lo, D)`` and assignments ``(hi - lo, N)`` (or None) of pending candidates ``lo:hi``."""
    del candidates  # the strategy keeps its pending ask; the argument documents the protocol
    members = [strategy.member(i) for i in range(lo, hi)]
    if isinstance(strategy, GaussianMixturePopulation):
        params = np.stack([np.concatenate([rules.ravel(), other]) for rules, _, other in members])
        return params.astype(np.float32), np.stack([a for _, a, _ in members])
    return np.stack(members).astype(np.float32), None


def mean_params(strategy: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """The centre of the search distribution as a policy: the mean vector, or the mixture's mode."""
    if isinstance(strategy, GaussianMixturePopulation):
        means, assignment, other = strategy.mode()
        return np.concatenate([means.ravel(), other]).astype(np.float32), assignment
    return strategy.mean.astype(np.float32), None
