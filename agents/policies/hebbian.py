"""HebbianPolicy: random dense weights every episode, changed at every step by evolved Hebbian rules.

Flat parameter vector (in this order; see ``policy.layout``):

* ``rules``: the rule table ``(M, k)`` row-major, M = ceil(N / rho) rules of the rule's k coefficients
  (rho = 1: one rule per synapse, rows in synapse order: dense layer 0 ``(out, in)`` row-major, then
  layer 1, then layer 2);
* ``conv.0``, ``conv.1`` (car only): the static convolution weights, torch layout;
* ``init.0``, ``init.1``, ``init.2`` (``init="coevolved"`` only): the initial dense weights ``(out, in)``.

Synapse i uses rule ``assignment[i]``; the default assignment is ``i // rho`` (contiguous blocks), and
``policy.assignment`` (or ``batch(params, assignment)``) may give any other.
"""

from __future__ import annotations

import math
import operator
from typing import Any, ClassVar

import numpy as np
import torch

from agents.policies import fused_update
from agents.policies.base import Policy
from agents.policies.batch import PolicyBatch, PolicyState, check_n_envs
from agents.policies.files import register_policy_class
from agents.policies.plastic_step import Plan, make_plan, plastic_step
from agents.policies.rules import (
    Rule,
    block_assignment,
    get_rule,
    num_rules_for,
    stack_terms,
)
from agents.policies.seeding import StateSeed, state_generators

__all__ = ["INITS", "RENORMS", "HebbianBatch", "HebbianPolicy"]

#: Accepted ``init`` options: how plastic weights start each episode.
INITS = ("uniform", "normal", "xavier", "coevolved")
#: Accepted ``renorm`` options: which networks divide their plastic layers by max |w| after each update.
RENORMS = ("auto", "on", "off")


@register_policy_class
class HebbianPolicy(Policy):
    """Plastic network whose dense weights start random each episode and follow evolved Hebbian rules.

    Options: ``rule`` (one of :data:`agents.policies.rules.RULES`, default ``"ABCD_lr"``), ``rho`` (synapses
    per rule, int in [1, N] or ``"N"``; default 1), ``init`` (``uniform`` in [-init_scale, init_scale],
    ``normal`` with std init_scale, ``xavier`` uniform, or ``coevolved``: initial weights are parameters),
    ``init_scale`` (default 0.1), ``renorm`` (divide every plastic layer by its max |w| after each update:
    ``"auto"`` = the car's networks only, as in the original code; ``"on"`` / ``"off"`` for every network).
    """

    OPTIONS: ClassVar[dict[str, Any]] = {
        "rule": "ABCD_lr", "rho": 1, "init": "uniform", "init_scale": 0.1, "renorm": "auto",
    }

    def _configure(self) -> None:
        o = self.options
        self.rule: Rule = get_rule(o["rule"])
        o["rule"] = self.rule.name
        if o["init"] not in INITS:
            raise ValueError(f"init={o['init']!r} is not accepted; accepted: {', '.join(INITS)}")
        scale = o["init_scale"]
        if (
            isinstance(scale, bool)
            or not isinstance(scale, (int, float))
            or not math.isfinite(scale)
            or scale < 0
        ):
            raise ValueError(f"init_scale={scale!r} is not accepted; use a finite number >= 0")
        o["init_scale"] = float(scale)
        self.num_synapses = self.spec.num_synapses
        self.num_rules = num_rules_for(self.num_synapses, o["rho"])
        self.rho = self.num_synapses if o["rho"] == "N" else int(o["rho"])
        if o["renorm"] not in RENORMS:
            raise ValueError(f"renorm={o['renorm']!r} is not accepted; accepted: {', '.join(RENORMS)}")
        self.normalize = self.spec.kind == "cnn" if o["renorm"] == "auto" else o["renorm"] == "on"
        self._assignment: np.ndarray | None = None
        if self.num_rules != self.num_synapses:
            self._assignment = block_assignment(self.num_synapses, self.rho)
        layout = [("rules", self.num_rules * self.rule.k)]
        layout += [(f"conv.{j}", math.prod(s)) for j, s in enumerate(self.spec.conv_shapes)]
        if o["init"] == "coevolved":
            layout += [(f"init.{j}", oo * ii) for j, (oo, ii) in enumerate(self.spec.dense_shapes)]
        self._layout = layout

    @property
    def assignment(self) -> np.ndarray:
        """Rule index of every synapse, shape (N,), int64 (a copy)."""
        if self._assignment is None:
            return np.arange(self.num_synapses, dtype=np.int64)
        return self._assignment.copy()

    @assignment.setter
    def assignment(self, value: np.ndarray) -> None:
        a = self._check_assignment(value, None)
        self._assignment = a.numpy().astype(np.int64)
        self._batch_cache = None

    def _check_assignment(self, assignment: Any, n_individuals: int | None) -> torch.Tensor:
        a = torch.as_tensor(
            np.asarray(assignment.detach().cpu() if isinstance(assignment, torch.Tensor) else assignment)
        )
        if a.dtype.is_floating_point or a.dtype.is_complex or a.dtype == torch.bool:
            raise TypeError(f"assignment has dtype {a.dtype}; accepted: integer rule indices")
        expected = (self.num_synapses,) if n_individuals is None else (n_individuals, self.num_synapses)
        if tuple(a.shape) != expected:
            raise ValueError(
                f"assignment has shape {tuple(a.shape)}; accepted: {expected} integer rule indices"
            )
        if a.numel() and (int(a.min()) < 0 or int(a.max()) >= self.num_rules):
            raise ValueError(
                f"assignment holds indices in [{int(a.min())}, {int(a.max())}]; "
                f"accepted: [0, {self.num_rules - 1}]"
            )
        return a.long()

    def _make_batch(self, params: torch.Tensor, assignment: torch.Tensor | None) -> HebbianBatch:
        return HebbianBatch(self, params, assignment)

    def _file_dict(self) -> dict[str, Any]:
        d = super()._file_dict()
        d["assignment"] = None if self._assignment is None else torch.from_numpy(self._assignment.copy())
        return d

    def _restore_extra(self, d: dict[str, Any]) -> None:
        if d.get("assignment") is not None:
            self.assignment = d["assignment"].numpy()


class HebbianBatch(PolicyBatch):
    """P Hebbian individuals: per-layer update terms ``(P, 1, out, in)`` precomputed from their rules."""

    _casts_features = True  # _forward copies the features into its float32 activation buffer

    def __init__(self, policy: HebbianPolicy, params: torch.Tensor, assignment: torch.Tensor | None) -> None:
        super().__init__(policy, params.shape[0])
        p = params.shape[0]
        pol = policy
        slices = dict(pol.layout)
        table = params[:, slices["rules"]].reshape(p, pol.num_rules, pol.rule.k)
        if assignment is not None:
            idx = assignment.unsqueeze(-1).expand(p, pol.num_synapses, pol.rule.k)
            coeffs = torch.gather(table, 1, idx)
        elif pol._assignment is not None:
            coeffs = table[:, torch.from_numpy(pol._assignment)]
        else:
            coeffs = table
        self.terms: list[tuple[torch.Tensor | None, ...]] = []
        # per layer: [c_pp, c_pre] and [c_post, c_const] stacked (P, 1, 2, out, in), or None when the rule
        # lacks a term; self.terms then holds views of them (no second copy of the coefficients)
        self._stacked: list[tuple[torch.Tensor, torch.Tensor] | None] = []
        off = 0
        for o, i in self.spec.dense_shapes:
            c = coeffs[:, off : off + o * i].reshape(p, o, i, pol.rule.k)
            off += o * i
            terms = tuple(None if t is None else t.unsqueeze(1) for t in pol.rule.terms(c))
            stacked = stack_terms(terms)
            self._stacked.append(stacked)
            if stacked is None:
                self.terms.append(tuple(None if t is None else t.contiguous() for t in terms))
            else:
                mul, add = stacked
                self.terms.append((mul[:, :, 0], mul[:, :, 1], add[:, :, 0], add[:, :, 1]))
        self._plan_cache: Plan | None = None  # for update() calls from outside act()
        self.conv_weights = self._split_conv_weights(params, slices)
        self.init = pol.options["init"]
        self.init_scale = pol.options["init_scale"]
        self.init_weights = None
        if self.init == "coevolved":
            self.init_weights = [
                params[:, slices[f"init.{j}"]].reshape(p, o, i)
                for j, (o, i) in enumerate(self.spec.dense_shapes)
            ]
        self.normalize = pol.normalize
        #: The car's plastic update through the compiled one-pass kernel (:mod:`agents.policies.fused_update`):
        #: image policies with numba installed, unless ``HEBB_GYM_FAST_CAR=0`` chose the plain path.
        self.fused_update = self.fast_images and fused_update.AVAILABLE

    def _fresh(self, layer: int, individuals: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Initial weights ``(n, out, in)`` for the (individual, env) pairs of ``individuals (n,)``."""
        o, i = self.spec.dense_shapes[layer]
        n = individuals.shape[0]
        if self.init_weights is not None:
            return self.init_weights[layer][individuals].clone()
        if self.init == "uniform":
            s = self.init_scale
            return torch.rand((n, o, i), generator=gen).mul_(2 * s).sub_(s)
        if self.init == "normal":
            return torch.randn((n, o, i), generator=gen).mul_(self.init_scale)
        bound = math.sqrt(6.0 / (o + i))  # xavier (Glorot) uniform
        return torch.rand((n, o, i), generator=gen).mul_(2 * bound).sub_(bound)

    def initial_state(self, n_envs: int, seed: StateSeed) -> PolicyState:
        """Fresh plastic weights ``(P, E, out, in)`` per layer, drawn from ``seed`` (or the co-evolved ones).

        ``seed``: one int / numpy / torch Generator for the batch, or P int seeds, one per individual.
        """
        e = check_n_envs(n_envs)
        p = self.n_individuals
        gens = state_generators(seed, p)
        shapes = self.spec.dense_shapes
        if len(gens) == 1:
            ind = torch.arange(p).repeat_interleave(e)
            weights = [self._fresh(j, ind, gens[0]).reshape(p, e, o, i) for j, (o, i) in enumerate(shapes)]
        else:
            per = [
                [self._fresh(j, torch.full((e,), q), gens[q]) for j in range(len(shapes))] for q in range(p)
            ]
            weights = [torch.stack([per[q][j] for q in range(p)]) for j in range(len(shapes))]
        return PolicyState(weights, None, gens, p, e, self.owner)

    def _reset(self, state: PolicyState, mask: torch.Tensor) -> None:
        if len(state.generators) == 1:
            ind = mask.nonzero()[:, 0]
            for j, w in enumerate(state.weights):
                w[mask] = self._fresh(j, ind, state.generators[0])
            return
        for q in mask.any(dim=1).nonzero()[:, 0].tolist():
            envs = mask[q]
            ind = torch.full((int(envs.sum()),), q)
            for j, w in enumerate(state.weights):
                w[q, envs] = self._fresh(j, ind, state.generators[q])

    def _forward(self, x: torch.Tensor, state: PolicyState) -> torch.Tensor:
        plan = state.extra.get("plan")
        if plan is None or not plan.fits(state.weights):
            p, e = state.n_individuals, state.n_envs
            widths = [x.shape[-1]] + [o for o, _ in self.spec.dense_shapes]
            acts = self._buffers(state, "acts", [(p, e, n) for n in widths], rows=True)
            plan = make_plan(
                state.weights, acts, self._stacked, self.terms, self.normalize, fused=self.fused_update
            )
            state.extra["plan"] = plan
        plan.acts[0].copy_(x)
        last = len(plan.layers) - 1
        for j, layer in enumerate(plan.layers):
            # row_dot (agents.policies.networks) with the views precomputed: w * x exactly, then row sums
            torch.mul(layer.w, layer.pre_row, out=layer.prod)
            y = torch.sum(layer.prod, dim=-1, out=layer.post)
            if j < last or self.spec.output_tanh:
                torch.tanh_(y)
        if not state.frozen:
            plastic_step(plan)
        return plan.acts[-1]

    def update(
        self,
        weights: list[torch.Tensor],
        activations: list[torch.Tensor],
        work: list[torch.Tensor] | None = None,
    ) -> None:
        """One plastic step in place: layer j gets ``pre = activations[j]``, ``post = activations[j + 1]``.

        ``weights[j]`` is ``(P, E, out, in)``, activations ``(P, E, width)``; car layers are then divided
        by their max |w| (so it stays 1). ``work``: optional scratch tensors shaped like ``weights`` (used
        only by rules without all four terms; the others keep their own scratch, cached between calls).
        """
        plan = self._plan_cache
        if plan is None or not plan.fits(weights, activations, work):
            plan = self._plan_cache = make_plan(
                weights, activations, self._stacked, self.terms, self.normalize, work, fused=self.fused_update
            )
        if torch.is_grad_enabled() and (
            any(map(_requires_grad, weights)) or any(map(_requires_grad, activations))
        ):
            with torch.no_grad():
                plastic_step(plan)
        else:  # nothing to keep out of autograd: skip the context manager's cost
            plastic_step(plan)


_requires_grad = operator.attrgetter("requires_grad")
