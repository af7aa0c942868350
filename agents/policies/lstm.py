"""LSTMPolicy: the static network with its first dense layer replaced by an LSTM (memory zero each episode).

Flat parameter vector (see ``policy.layout``): ``conv.0``, ``conv.1`` (car only), ``lstm.w_ih``
``(4H, F)``, ``lstm.w_hh`` ``(4H, H)``, ``lstm.bias`` ``(4H,)`` (gate order i, f, g, o as in torch),
then ``dense.1`` ``(64, H)`` and ``dense.2`` ``(n_out, 64)``, all row-major; H = 128.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch

from agents.policies.base import Policy
from agents.policies.batch import PolicyBatch, PolicyState, check_n_envs
from agents.policies.files import register_policy_class
from agents.policies.networks import activation_buffer, row_dot
from agents.policies.seeding import StateSeed, state_generators

__all__ = ["LSTMBatch", "LSTMPolicy"]


@register_policy_class
class LSTMPolicy(Policy):
    """Recurrent baseline: LSTM(F -> 128) then dense 128 -> 64 -> out; (h, c) start at zero every episode."""

    OPTIONS: ClassVar[dict[str, Any]] = {}

    def _configure(self) -> None:
        (h, f), *rest = self.spec.dense_shapes
        self.hidden = h
        layout = [(f"conv.{j}", math.prod(s)) for j, s in enumerate(self.spec.conv_shapes)]
        layout += [("lstm.w_ih", 4 * h * f), ("lstm.w_hh", 4 * h * h), ("lstm.bias", 4 * h)]
        layout += [(f"dense.{j + 1}", o * i) for j, (o, i) in enumerate(rest)]
        self._layout = layout

    def _make_batch(self, params: torch.Tensor, assignment: torch.Tensor | None) -> LSTMBatch:
        return LSTMBatch(self, params)


class LSTMBatch(PolicyBatch):
    """P LSTM individuals; the state's ``memory`` is ``(h, c)``, each ``(P, E, 128)``."""

    def __init__(self, policy: LSTMPolicy, params: torch.Tensor) -> None:
        super().__init__(policy, params.shape[0])
        p = params.shape[0]
        sl = dict(policy.layout)
        h, f = self.spec.dense_shapes[0]
        self.hidden = h
        self.conv_weights = self._split_conv_weights(params, sl)
        # (P, 1, ...): broadcast over the envs
        self.w_ih = params[:, sl["lstm.w_ih"]].reshape(p, 1, 4 * h, f).clone()
        self.w_hh = params[:, sl["lstm.w_hh"]].reshape(p, 1, 4 * h, h).clone()
        self.bias = params[:, sl["lstm.bias"]].reshape(p, 1, 4 * h).clone()
        self.weights = [
            params[:, sl[f"dense.{j}"]].reshape(p, 1, o, i).clone()
            for j, (o, i) in enumerate(self.spec.dense_shapes)
            if j > 0
        ]

    def initial_state(self, n_envs: int, seed: StateSeed) -> PolicyState:
        """Zero LSTM memory for ``n_envs`` envs per individual."""
        e = check_n_envs(n_envs)
        p = self.n_individuals
        mem = (activation_buffer(p, e, self.hidden).zero_(), activation_buffer(p, e, self.hidden).zero_())
        return PolicyState([], mem, state_generators(seed, self.n_individuals), p, e, self.owner)

    def _reset(self, state: PolicyState, mask: torch.Tensor) -> None:
        assert state.memory is not None
        for m in state.memory:
            m[mask] = 0.0

    def _forward(self, x: torch.Tensor, state: PolicyState) -> torch.Tensor:
        assert state.memory is not None
        h, c = state.memory
        p, e, hid = state.n_individuals, state.n_envs, self.hidden
        g_in, g_rec = self._buffers(state, "gates", [(p, e, 4 * hid)] * 2, rows=True)
        w_in, w_rec = self._buffers(state, "lstm_work", [(p, e, 4 * hid, x.shape[-1]), (p, e, 4 * hid, hid)])
        gates = row_dot(self.w_ih, x, w_in, g_in)
        gates.add_(row_dot(self.w_hh, h, w_rec, g_rec)).add_(self.bias)
        i, f, g, o = gates.chunk(4, dim=-1)
        c.mul_(torch.sigmoid(f)).add_(torch.sigmoid(i) * torch.tanh(g))
        h.copy_(torch.sigmoid(o) * torch.tanh(c))
        shapes = self.spec.dense_shapes[1:]
        acts = self._buffers(state, "acts", [(p, e, o_) for o_, _ in shapes], rows=True)
        work = self._buffers(state, "work", [(p, e, o_, i_) for o_, i_ in shapes])
        x = h
        last = len(self.weights) - 1
        for j, w in enumerate(self.weights):
            x = row_dot(w, x, work[j], acts[j])
            if j < last or self.spec.output_tanh:
                torch.tanh_(x)
        return x
