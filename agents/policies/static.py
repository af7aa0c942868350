"""StaticPolicy: the same network as the Hebbian one with evolved, fixed weights (the non-plastic baseline).

Flat parameter vector (see ``policy.layout``): ``conv.0``, ``conv.1`` (car only, torch layout), then
``dense.0``, ``dense.1``, ``dense.2``, each ``(out, in)`` row-major.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch

from agents.policies.base import Policy
from agents.policies.batch import PolicyBatch, PolicyState, check_n_envs
from agents.policies.files import register_policy_class
from agents.policies.networks import row_dot
from agents.policies.seeding import StateSeed, state_generators

__all__ = ["StaticBatch", "StaticPolicy"]


@register_policy_class
class StaticPolicy(Policy):
    """Feed-forward network with evolved weights that do not change during an episode; no options."""

    OPTIONS: ClassVar[dict[str, Any]] = {}

    def _configure(self) -> None:
        layout = [(f"conv.{j}", math.prod(s)) for j, s in enumerate(self.spec.conv_shapes)]
        layout += [(f"dense.{j}", o * i) for j, (o, i) in enumerate(self.spec.dense_shapes)]
        self._layout = layout

    def _make_batch(self, params: torch.Tensor, assignment: torch.Tensor | None) -> StaticBatch:
        return StaticBatch(self, params)


class StaticBatch(PolicyBatch):
    """P static individuals: weights ``(P, 1, out, in)`` shared by their envs; the state holds no memory."""

    def __init__(self, policy: StaticPolicy, params: torch.Tensor) -> None:
        super().__init__(policy, params.shape[0])
        p = params.shape[0]
        sl = dict(policy.layout)
        shapes = self.spec.dense_shapes
        self.conv_weights = self._split_conv_weights(params, sl)
        self.weights = [  # (P, 1, out, in): broadcast over the envs
            params[:, sl[f"dense.{j}"]].reshape(p, 1, o, i).clone() for j, (o, i) in enumerate(shapes)
        ]

    def initial_state(self, n_envs: int, seed: StateSeed) -> PolicyState:
        """An empty state (no plastic weights, no memory) for ``n_envs`` envs per individual."""
        e = check_n_envs(n_envs)
        return PolicyState(
            [], None, state_generators(seed, self.n_individuals), self.n_individuals, e, self.owner
        )

    def _reset(self, state: PolicyState, mask: torch.Tensor) -> None:
        return None

    def _forward(self, x: torch.Tensor, state: PolicyState) -> torch.Tensor:
        p, e = state.n_individuals, state.n_envs
        shapes = self.spec.dense_shapes
        acts = self._buffers(state, "acts", [(p, e, o) for o, _ in shapes], rows=True)
        work = self._buffers(state, "work", [(p, e, o, i) for o, i in shapes])
        last = len(self.weights) - 1
        for j, w in enumerate(self.weights):
            x = row_dot(w, x, work[j], acts[j])
            if j < last or self.spec.output_tanh:
                torch.tanh_(x)
        return x
