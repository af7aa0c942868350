"""The Hebbian step's machinery: views and scratch buffers made once per state (a :class:`Plan`), and the
update kernels that step every plastic layer in place (:func:`plastic_step`): torch's, or for the car's
batches the compiled one-pass kernel of :mod:`agents.policies.fused_update` where numba is installed.

:class:`agents.policies.hebbian.HebbianBatch` makes a plan for a state's weight and activation tensors
with :func:`make_plan` and steps it after every forward pass. The numbers are bit for bit those of
:func:`agents.policies.rules.apply_terms_` (and, on the car, of dividing by max |w|); only the kernel count,
the buffers and the order in which chunks of individuals pass through the cache differ.
"""

from __future__ import annotations

import operator
from typing import NamedTuple

import numpy as np
import torch

from agents.policies import fused_update
from agents.policies.rules import apply_terms_

__all__ = ["Plan", "make_plan", "plastic_step"]


def make_plan(
    weights: list[torch.Tensor],
    acts: list[torch.Tensor],
    stacked_terms: list[tuple[torch.Tensor, torch.Tensor] | None],
    terms: list[tuple[torch.Tensor | None, ...]],
    normalize: bool,
    work: list[torch.Tensor] | None = None,
    fused: bool = False,
) -> Plan:
    """Scratch buffers and tensor views for stepping ``weights`` with ``acts``, made once and reused.

    Layer j is updated with ``pre = acts[j]``, ``post = acts[j + 1]`` and its rule's terms:
    ``stacked_terms[j]`` (``[c_pp, c_pre]`` and ``[c_post, c_const]``, each ``(P, 1, 2, out, in)``, from
    :func:`agents.policies.rules.stack_terms`) or, for a rule without all four, ``terms[j]`` and the
    kernels of :func:`agents.policies.rules.apply_terms_` (``work[j]``: optional scratch for those).
    ``normalize``: divide every layer by its max |w| after its update (the car networks).

    A layer too big for the cache in one piece is stepped in chunks of individuals (each chunk's
    update, renormalisation included, runs while its weights are still cached); every kernel is
    element-wise or reduces within one individual, so chunking leaves the numbers unchanged.

    ``fused``: step the layers that allow it (rule with all four terms, float32 tensors that numpy can
    view) with the compiled kernel of :mod:`agents.policies.fused_update`, renormalisation included;
    ignored without numba.
    """
    layers = []
    for j, w in enumerate(weights):
        pre, post = acts[j], acts[j + 1]
        stacked = stacked_terms[j]
        kernel = _fused_args(w, stacked, pre, post, normalize) if fused and fused_update.AVAILABLE else None
        n_ind = w.shape[0] if w.ndim == 4 else 1
        # bytes per individual: weights and the two-part scratch (per env), the four terms (shared)
        per_ind = (3 * w[0].numel() + 4 * w.shape[-2] * w.shape[-1]) * w.element_size()
        size = n_ind if w.ndim != 4 else max(1, min(n_ind, _CHUNK_BYTES // max(per_ind, 1)))
        if kernel is not None:  # the kernel goes matrix by matrix: no chunks
            size = n_ind
        if stacked is not None and size < n_ind:
            # one chunk-sized scratch, reused by every chunk; the forward gets its own product buffer
            scratch = torch.empty(size, *w.shape[1:-2], 2, *w.shape[-2:], dtype=w.dtype)
            prod = torch.empty_like(w)
            chunks = []
            for lo in range(0, n_ind, size):
                hi = min(lo + size, n_ind)
                mul, add = stacked[0][lo:hi], stacked[1][lo:hi]
                sub = scratch[: hi - lo]
                chunks.append(_chunk(w[lo:hi], mul, add, pre[lo:hi], post[lo:hi], sub, normalize))
        else:
            scratch = torch.empty(*w.shape[:-2], 2, *w.shape[-2:], dtype=w.dtype)
            prod = scratch[..., 0, :, :]
            chunks = [_chunk(w, *(stacked or (None, None)), pre, post, scratch, False)]
        fallback = None
        if stacked is None:
            fallback = work[j] if work is not None and work[j].shape == w.shape else prod
        layers.append(
            _Layer(
                w=w,
                stacked=stacked,
                terms=terms[j],
                pre=pre,
                post=post,
                pre_row=pre.unsqueeze(-2),
                prod=prod,
                fallback_work=fallback,
                chunks=chunks,
                fused=kernel,
            )
        )
    # renormalisation of the unchunked layers: the small ops on the maxima run once for all of them
    norm = None
    whole = [layer for layer in layers if not layer.chunks[0].normalize and layer.fused is None]
    if normalize and whole:
        lead = whole[0].w.shape[:-2]
        if all(layer.w.shape[:-2] == lead for layer in whole):
            hi = torch.empty(len(whole), *lead, 1, 1)
            lo = torch.empty(len(whole), *lead, 1, 1)
            norm = _Norm(hi, lo, list(zip([layer.w for layer in whole], hi.unbind(0), lo.unbind(0))))
        else:
            norm = _Norm(None, None, [(layer.w, None, None) for layer in whole])
    norm_np = []
    if norm is not None and norm.hi is not None:
        for w, h, _ in norm.items:
            pair = (_numpy_view(w), h.numpy())
            norm_np.append(pair if pair[0] is not None and pair[1] is not None else None)
    return Plan(list(weights), list(acts), None if work is None else list(work), layers, norm, norm_np)


def plastic_step(plan: Plan) -> None:
    """The plastic update of every layer of ``plan`` (and the car's renormalisation), in place."""
    for layer in plan.layers:
        if layer.fused is not None:  # the compiled kernel, renormalisation included (when the plan has it)
            fused_update.fused_step(*layer.fused)
            continue
        if layer.stacked is None:
            apply_terms_(layer.w, layer.pre, layer.post, layer.terms, layer.fallback_work)
            continue
        for c in layer.chunks:  # bit for bit apply_terms_, with one kernel fewer
            # [a, b] = [c_pp, c_pre] * pre + [c_post, c_const], one fused multiply-add for both
            torch.addcmul(c.add, c.mul, c.pre_stacked, out=c.scratch)
            c.w.addcmul_(c.a, c.post_col)  # w += a * post
            if c.np_w is not None:  # w += b; numpy's ufunc call costs half of torch's, same IEEE sums
                np.add(c.np_w, c.np_b, out=c.np_w)
            else:
                c.w.add_(c.b)
            if c.normalize:
                torch.amax(c.w, dim=(-2, -1), keepdim=True, out=c.hi)
                torch.amin(c.w, dim=(-2, -1), keepdim=True, out=c.lo)
                _scale_by_max(c.w, c.hi, c.lo, c.np_w)
    if plan.norm is not None:  # made only for renormalised layers
        hi, lo, items = plan.norm
        if hi is None:  # layers with different leading shapes: one layer at a time
            for w, _, _ in items:
                _scale_by_max(w, w.amax(dim=(-2, -1), keepdim=True), w.amin(dim=(-2, -1), keepdim=True))
            return
        for w, h, lo_j in items:
            torch.amax(w, dim=(-2, -1), keepdim=True, out=h)
            torch.amin(w, dim=(-2, -1), keepdim=True, out=lo_j)
        torch.maximum(hi, lo.neg_(), out=hi)
        hi.clamp_min_(1e-30).reciprocal_()
        for (w, h, _), np_pair in zip(items, plan.norm_np):
            if np_pair is not None:
                np.multiply(np_pair[0], np_pair[1], out=np_pair[0])
            else:
                w.mul_(h)


#: Bytes of a layer's tensors (weights, scratch, terms) above which it is stepped in chunks of individuals.
_CHUNK_BYTES = 12 * 2**20


def _scale_by_max(
    w: torch.Tensor, hi: torch.Tensor, lo: torch.Tensor, np_w: np.ndarray | None = None
) -> None:
    """``w /= max|w|`` per (individual, env), from ``hi = amax`` and ``lo = amin`` (both overwritten).

    max |w| = max(amax, -amin): two reads, far faster than vector_norm(ord=inf) on CPU; multiplying by
    the reciprocal is twice as fast as dividing. ``np_w``: a numpy view of ``w`` to multiply with.
    """
    torch.maximum(hi, lo.neg_(), out=hi)
    hi.clamp_min_(1e-30).reciprocal_()
    if np_w is not None:
        np.multiply(np_w, hi.numpy(), out=np_w)
    else:
        w.mul_(hi)


#: Largest tensor (elements) updated through numpy: below it numpy's lower call overhead wins, above
#: it torch's kernels are as fast or faster.
_NUMPY_MAX = 2**16


def _fused_args(
    w: torch.Tensor,
    stacked: tuple[torch.Tensor, torch.Tensor] | None,
    pre: torch.Tensor,
    post: torch.Tensor,
    normalize: bool,
) -> tuple | None:
    """The arguments of :func:`agents.policies.fused_update.fused_step` for a layer; None where it cannot run."""
    if stacked is None or w.ndim != 4:
        return None
    tensors = (w, *stacked, pre, post)
    if any(t.dtype != torch.float32 or t.requires_grad or t.device.type != "cpu" for t in tensors):
        return None
    arrays = tuple(t.numpy() for t in tensors)
    try:
        fused_update.check_args(*arrays)
    except (TypeError, ValueError):
        return None
    n_i = w.shape[-1]
    return (*arrays, normalize, np.empty(n_i, np.float32), np.zeros(1, np.int32))


def _numpy_view(t: torch.Tensor) -> np.ndarray | None:
    """A numpy array sharing small ``t``'s memory; None for large ones or where torch gives none (grad...)."""
    if t.numel() > _NUMPY_MAX:
        return None
    try:
        return t.numpy()
    except (RuntimeError, TypeError):
        return None


def _chunk(
    w: torch.Tensor,
    mul: torch.Tensor | None,
    add: torch.Tensor | None,
    pre: torch.Tensor,
    post: torch.Tensor,
    scratch: torch.Tensor,
    normalize: bool,
) -> _Chunk:
    lead = w.shape[:-2]
    np_w, np_b = _numpy_view(w), _numpy_view(scratch[..., 1, :, :])
    if np_w is None or np_b is None:
        np_w = np_b = None
    return _Chunk(
        w=w,
        np_w=np_w,
        np_b=np_b,
        mul=mul,
        add=add,
        pre_stacked=pre[..., None, None, :],
        post_col=post.unsqueeze(-1),
        scratch=scratch,
        a=scratch[..., 0, :, :],
        b=scratch[..., 1, :, :],
        normalize=normalize,
        hi=torch.empty(*lead, 1, 1) if normalize else None,
        lo=torch.empty(*lead, 1, 1) if normalize else None,
    )


class _Chunk(NamedTuple):
    """The views one update kernel sequence works on: all individuals of a layer, or a slice of them."""

    w: torch.Tensor
    np_w: np.ndarray | None  # numpy views of w and b (small arrays: numpy's call overhead is lower)
    np_b: np.ndarray | None
    mul: torch.Tensor | None  # [c_pp, c_pre] (P, 1, 2, out, in)
    add: torch.Tensor | None  # [c_post, c_const]
    pre_stacked: torch.Tensor  # (P, E, 1, 1, in)
    post_col: torch.Tensor  # (P, E, out, 1)
    scratch: torch.Tensor  # (P, E, 2, out, in)
    a: torch.Tensor  # scratch[..., 0, :, :]
    b: torch.Tensor  # scratch[..., 1, :, :]
    normalize: bool  # renormalised here, right after its update (chunked layers only)
    hi: torch.Tensor | None
    lo: torch.Tensor | None


class _Layer(NamedTuple):
    """One dense layer's tensors and the views its step uses (made once per state, not per step)."""

    w: torch.Tensor
    stacked: tuple[torch.Tensor, torch.Tensor] | None
    terms: tuple[torch.Tensor | None, ...]
    pre: torch.Tensor
    post: torch.Tensor
    pre_row: torch.Tensor  # (P, E, 1, in)
    prod: torch.Tensor  # the forward's w * x (the scratch's first half, unless the layer is chunked)
    fallback_work: torch.Tensor | None
    chunks: list[_Chunk]
    fused: tuple | None  # the compiled kernel's arguments (numpy views, scratch), when it steps this layer


class _Norm(NamedTuple):
    """Buffers for renormalising the unchunked layers together: maxima, minima, and per layer views."""

    hi: torch.Tensor | None
    lo: torch.Tensor | None
    items: list[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]]


class Plan(NamedTuple):
    """Everything one step needs, valid while the same weight (and activation) tensors are used."""

    weights: list[torch.Tensor]
    acts: list[torch.Tensor]
    work: list[torch.Tensor] | None
    layers: list[_Layer]
    norm: _Norm | None
    norm_np: list[tuple[np.ndarray, np.ndarray] | None]  # numpy views of (w, 1/max) per item of norm

    def __reduce__(self) -> tuple[type[None], tuple[()]]:
        # a copied or unpickled state rebuilds its plan: copies of the numpy views would not share memory
        return type(None), ()

    def __deepcopy__(self, memo: dict) -> None:
        return None

    def fits(
        self,
        weights: list[torch.Tensor],
        acts: list[torch.Tensor] | None = None,
        work: list[torch.Tensor] | None = None,
    ) -> bool:
        """Whether this plan was made for these very tensors (identity, not value)."""
        if not _same_tensors(self.weights, weights):
            return False
        if acts is not None and not _same_tensors(self.acts, acts):
            return False
        return work is None or (self.work is not None and _same_tensors(self.work, work))


def _same_tensors(xs: list[torch.Tensor], ys: list[torch.Tensor]) -> bool:
    return len(xs) == len(ys) and all(map(operator.is_, xs, ys))

