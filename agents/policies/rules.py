"""The Hebbian rule family of Najarro & Risi (2020) and shared rules (the genomic bottleneck).

Every rule is a weight change computed from a synapse's pre-synaptic activation ``pre`` (input
neuron), post-synaptic activation ``post`` (output neuron) and the rule's coefficients. Weights are
laid out as in torch, ``w[out, in]``. All nine rules reduce to four per-synapse terms

    dw = c_pp * post * pre + c_pre * pre + c_post * post + c_const

(:meth:`Rule.terms`), which is what the batched update and the policies compute; the formulas below
are the user-facing definitions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

__all__ = [
    "RULES",
    "Rule",
    "block_assignment",
    "get_rule",
    "hebbian_update",
    "num_rules_for",
    "shared_coefficients",
    "stack_terms",
]

Array = TypeVar("Array", np.ndarray, torch.Tensor)
# (c_pp, c_pre, c_post, c_const); None means the term is absent from the rule.
Terms = tuple[Any, Any, Any, Any]


@dataclass(frozen=True)
class Rule:
    """One Hebbian rule: its name, coefficient names in storage order and its formula."""

    name: str
    coefficients: tuple[str, ...]
    formula: str
    _terms: Callable[[Mapping[str, Any]], Terms]

    @property
    def k(self) -> int:
        """Number of coefficients per synapse (the width of a rule vector)."""
        return len(self.coefficients)

    def terms(self, coeffs: Array) -> Terms:
        """Split coefficients ``(..., k)`` into the terms (c_pp, c_pre, c_post, c_const); None if absent."""
        if coeffs.shape[-1] != self.k:
            raise ValueError(
                f"coeffs has {coeffs.shape[-1]} coefficients in its last dim (shape {tuple(coeffs.shape)}); "
                f"rule {self.name!r} accepts exactly {self.k}: {self.coefficients}"
            )
        named = {n: coeffs[..., i] for i, n in enumerate(self.coefficients)}
        return self._terms(named)

    def __repr__(self) -> str:
        return f"Rule({self.name!r}, coefficients={self.coefficients}, dw = {self.formula})"


def _t_a(c: Mapping[str, Any]) -> Terms:
    return c["A"], None, None, None


def _t_ad(c: Mapping[str, Any]) -> Terms:
    return c["A"], None, None, c["D"]


def _t_ad_lr(c: Mapping[str, Any]) -> Terms:
    return c["eta"] * c["A"], None, None, c["eta"] * c["D"]


def _t_abc(c: Mapping[str, Any]) -> Terms:
    return c["A"], c["B"], c["C"], None


def _t_abc_lr(c: Mapping[str, Any]) -> Terms:
    e = c["eta"]
    return e * c["A"], e * c["B"], e * c["C"], None


def _t_abcd(c: Mapping[str, Any]) -> Terms:
    return c["A"], c["B"], c["C"], c["D"]


def _t_abcd_lr(c: Mapping[str, Any]) -> Terms:
    e = c["eta"]
    return e * c["A"], e * c["B"], e * c["C"], e * c["D"]


def _t_abcd_lr_d_out(c: Mapping[str, Any]) -> Terms:
    e = c["eta"]
    return e * c["A"], e * c["B"], e * c["C"], c["D_out"]


def _t_abcd_lr_d_in_and_out(c: Mapping[str, Any]) -> Terms:
    e = c["eta"]
    return e * c["A"], e * c["B"], e * c["C"], e * c["D_in"] + c["D_out"]


#: The nine rules of the original code, by name. Coefficients are stored in the listed order.
RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule("A", ("A",), "A*post*pre", _t_a),
        Rule("AD", ("A", "D"), "A*post*pre + D", _t_ad),
        Rule("AD_lr", ("eta", "A", "D"), "eta*(A*post*pre + D)", _t_ad_lr),
        Rule("ABC", ("A", "B", "C"), "A*post*pre + B*pre + C*post", _t_abc),
        Rule("ABC_lr", ("eta", "A", "B", "C"), "eta*(A*post*pre + B*pre + C*post)", _t_abc_lr),
        Rule("ABCD", ("A", "B", "C", "D"), "A*post*pre + B*pre + C*post + D", _t_abcd),
        Rule("ABCD_lr", ("eta", "A", "B", "C", "D"), "eta*(A*post*pre + B*pre + C*post + D)", _t_abcd_lr),
        Rule(
            "ABCD_lr_D_out",
            ("eta", "A", "B", "C", "D_out"),
            "eta*(A*post*pre + B*pre + C*post) + D_out",
            _t_abcd_lr_d_out,
        ),
        Rule(
            "ABCD_lr_D_in_and_out",
            ("eta", "A", "B", "C", "D_in", "D_out"),
            "eta*(A*post*pre + B*pre + C*post + D_in) + D_out",
            _t_abcd_lr_d_in_and_out,
        ),
    )
}


def get_rule(rule: str | Rule) -> Rule:
    """The :class:`Rule` for a name (or the rule itself); unknown names raise ValueError listing the nine."""
    if isinstance(rule, Rule):
        return rule
    if not isinstance(rule, str):
        raise TypeError(
            f"rule={rule!r} must be a rule name (str) or a Rule; accepted names: {', '.join(RULES)}"
        )
    try:
        return RULES[rule]
    except KeyError:
        raise ValueError(f"rule={rule!r} is not a known Hebbian rule; accepted: {', '.join(RULES)}") from None


def hebbian_update(
    weights: Array, pre: Array, post: Array, coeffs: Array, rule: str | Rule = "ABCD_lr"
) -> Array:
    """Return ``weights + dw`` for one Hebbian step; pure, batched over leading dims, numpy or torch.

    Shapes: ``weights (..., out, in)``, ``pre (..., in)``, ``post (..., out)``,
    ``coeffs (..., out, in, k)`` (leading dims broadcast). numpy in gives numpy out, torch gives torch.
    """
    r = get_rule(rule)
    arrays = (weights, pre, post, coeffs)
    if not (
        all(isinstance(x, np.ndarray) for x in arrays) or all(isinstance(x, torch.Tensor) for x in arrays)
    ):
        kinds = {type(x) for x in arrays}
        raise TypeError(
            "weights, pre, post and coeffs must all be numpy arrays or all torch tensors; "
            f"got {sorted(k.__name__ for k in kinds)}"
        )
    if weights.ndim < 2:
        raise ValueError(f"weights must have shape (..., out, in); got shape {tuple(weights.shape)}")
    n_out, n_in = weights.shape[-2], weights.shape[-1]
    if pre.shape[-1:] != (n_in,):
        raise ValueError(
            f"pre must have shape (..., {n_in}) to match weights (..., out, in); got {tuple(pre.shape)}"
        )
    if post.shape[-1:] != (n_out,):
        raise ValueError(
            f"post must have shape (..., {n_out}) to match weights (..., out, in); got {tuple(post.shape)}"
        )
    if coeffs.ndim < 3 or tuple(coeffs.shape[-3:-1]) != (n_out, n_in):
        raise ValueError(
            f"coeffs must have shape (..., {n_out}, {n_in}, {r.k}) for rule {r.name!r}; "
            f"got {tuple(coeffs.shape)}"
        )
    return apply_terms(weights, pre, post, r.terms(coeffs))


def apply_terms(weights: Array, pre: Array, post: Array, terms: Terms) -> Array:
    """Return ``weights + c_pp*post*pre + c_pre*pre + c_post*post + c_const`` (a new array)."""
    c_pp, c_pre, c_post, c_const = terms
    pre_b = pre[..., None, :]
    post_b = post[..., :, None]
    dw = c_pp * (post_b * pre_b)
    if c_pre is not None:
        dw = dw + c_pre * pre_b
    if c_post is not None:
        dw = dw + c_post * post_b
    if c_const is not None:
        dw = dw + c_const
    return weights + dw


def apply_terms_(
    weights: torch.Tensor,
    pre: torch.Tensor,
    post: torch.Tensor,
    terms: Terms,
    work: torch.Tensor | None = None,
) -> None:
    """In-place torch version of :func:`apply_terms` in four fused kernels (the policies' hot path).

    ``weights (..., out, in)`` is updated in place; coefficient terms broadcast against it. ``work``, a
    scratch tensor shaped like ``weights``, avoids allocating temporaries (large ones cost page faults).
    """
    c_pp, c_pre, c_post, c_const = terms
    pre_b = pre.unsqueeze(-2)
    post_b = post.unsqueeze(-1)
    if work is None:
        work = torch.empty_like(weights)
    # post-dependent part: (c_pp*pre + c_post) * post
    if c_post is not None:
        torch.addcmul(c_post, c_pp, pre_b, out=work)
    else:
        torch.mul(c_pp, pre_b, out=work)
    weights.addcmul_(work, post_b)
    # post-independent part: c_pre*pre + c_const
    if c_pre is not None:
        if c_const is not None:
            torch.addcmul(c_const, c_pre, pre_b, out=work)
            weights.add_(work)
        else:
            weights.addcmul_(c_pre, pre_b)
    elif c_const is not None:
        weights.add_(c_const)


def stack_terms(terms: Terms) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The four terms as two stacked tensors ``(..., 2, out, in)``: [c_pp, c_pre] and [c_post, c_const].

    With them a layer's update takes three kernels instead of four (``HebbianBatch``'s step): one fused
    multiply-add gives both pre-dependent parts at once. None when the rule lacks one of the terms.
    """
    c_pp, c_pre, c_post, c_const = terms
    if c_pre is None or c_post is None or c_const is None:
        return None
    c_pp, c_pre, c_post, c_const = torch.broadcast_tensors(c_pp, c_pre, c_post, c_const)
    return torch.stack([c_pp, c_pre], dim=-3), torch.stack([c_post, c_const], dim=-3)


def num_rules_for(num_synapses: int, rho: int | str) -> int:
    """M = ceil(N / rho), the number of rule vectors when every rule is shared by ``rho`` synapses.

    ``rho=1`` gives one rule per synapse, ``rho=N`` (or the string ``"N"``) a single rule; rho must be
    an integer in [1, N].
    """
    rho_n = _check_rho(num_synapses, rho)
    return -(-num_synapses // rho_n)


def _check_rho(num_synapses: int, rho: int | str) -> int:
    if isinstance(rho, str):
        if rho != "N":
            raise ValueError(f"rho={rho!r} is not accepted; use an integer in [1, {num_synapses}] or 'N'")
        return num_synapses
    if isinstance(rho, bool) or not isinstance(rho, (int, np.integer)):
        raise TypeError(f"rho={rho!r} must be an integer in [1, {num_synapses}] or 'N'")
    if not 1 <= int(rho) <= num_synapses:
        raise ValueError(f"rho={rho!r} is out of range; accepted: an integer in [1, {num_synapses}] or 'N'")
    return int(rho)


def block_assignment(num_synapses: int, rho: int | str) -> np.ndarray:
    """The fixed default assignment: synapse i (flat order) uses rule ``i // rho``; shape (N,), int64."""
    rho_n = _check_rho(num_synapses, rho)
    return np.arange(num_synapses, dtype=np.int64) // rho_n


def shared_coefficients(table: Array, assignment: Array | Sequence[int]) -> Array:
    """Per-synapse coefficients ``(..., N, k)`` from a rule table ``(..., M, k)`` and assignment ``(..., N)``.

    Leading dims are matched one-to-one (a batch of individuals, each with its own table and assignment);
    an assignment without leading dims is shared by all tables.
    """
    if isinstance(table, np.ndarray):
        a = np.asarray(assignment)
        if not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"assignment must hold integers; got dtype {a.dtype}")
        _check_assignment_range(a, table.shape[-2])
        if a.ndim == 1:
            return table[..., a, :]
        return np.take_along_axis(table, a[..., None], axis=-2)
    if isinstance(table, torch.Tensor):
        a = torch.as_tensor(assignment, device=table.device)
        if a.dtype.is_floating_point or a.dtype == torch.bool:
            raise TypeError(f"assignment must hold integers; got dtype {a.dtype}")
        a = a.long()
        _check_assignment_range(a, table.shape[-2])
        if a.ndim == 1:
            return table[..., a, :]
        idx = a.unsqueeze(-1).expand(*a.shape, table.shape[-1])
        return torch.gather(table, -2, idx)
    raise TypeError(f"table must be a numpy array or a torch tensor; got {type(table).__name__}")


def _check_assignment_range(a: Any, num_rules: int) -> None:
    if a.numel() if isinstance(a, torch.Tensor) else a.size:
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi >= num_rules:
            raise ValueError(
                f"assignment holds rule indices in [{lo}, {hi}]; accepted: integers in [0, {num_rules - 1}] "
                f"(the rule table has M={num_rules} rows)"
            )
