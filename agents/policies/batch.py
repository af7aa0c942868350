"""The batched interface of the policies: P individuals (rows of a ``(P, D)`` parameter array) acting on
E environments each, one forward (and one plastic update) per :meth:`PolicyBatch.act`.

``policy.batch(params)`` makes one; the ES evaluation engine uses it directly, and ``Policy.predict`` runs
on a cached batch with P = 1. A :class:`PolicyState` is the per-(individual, env) memory a batch makes
with ``initial_state`` and updates in place.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from agents.policies.image_features import ImageFeatures, fast_path_enabled
from agents.policies.networks import (
    NetSpec,
    activation_buffer,
    conv_features,
    preprocess_images,
)
from agents.policies.seeding import StateSeed

if TYPE_CHECKING:  # Policy makes batches; a batch only reads its policy's attributes
    from agents.policies.base import Policy

__all__ = ["PolicyBatch", "PolicyState", "check_n_envs"]


@dataclass
class PolicyState:
    """Per-(individual, env) memory of a batch; ``act`` updates it in place and returns it.

    ``weights``: plastic weights, one ``(P, E, out, in)`` tensor per plastic layer (empty for static and
    LSTM policies); callers may edit them in place (probes zero or overwrite weights).
    ``memory``: LSTM ``(h, c)``, each ``(P, E, hidden)`` (None for the others).
    ``frozen``: when True, ``act`` skips the plastic update (weights stay as they are).
    ``generators``: the torch.Generators that draw fresh plastic weights when an env restarts: one shared
    by all individuals, or one per individual (when ``initial_state`` got one seed per individual).
    """

    weights: list[torch.Tensor]
    memory: tuple[torch.Tensor, torch.Tensor] | None
    generators: list[torch.Generator]
    n_individuals: int
    n_envs: int
    owner: tuple[int, int]
    frozen: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class PolicyBatch(ABC):
    """P individuals of one policy, ready to act on ``(P, E, *obs_shape)`` observations."""

    #: True when ``_forward`` copies the (P, E, F) features into a float32 buffer of its own, so ``act``
    #: hands it vector observations in their own dtype (one conversion fewer per step).
    _casts_features: ClassVar[bool] = False

    def __init__(self, policy: Policy, n_individuals: int) -> None:
        self.policy = policy
        self.spec: NetSpec = policy.spec
        self.n_individuals = n_individuals
        self.head = policy.head
        #: What the states this batch makes carry as ``owner`` (the policy's identity, checked by ``act``).
        self.owner: tuple[int, int] = policy.uid
        #: Image policies: the CNN front end batched over all (individual, env) pairs
        #: (:mod:`agents.policies.image_features`), unless ``HEBB_GYM_FAST_CAR=0`` chose the plain path.
        self.fast_images = self.spec.kind == "cnn" and fast_path_enabled()
        self._image_features: ImageFeatures | None = None

    @abstractmethod
    def initial_state(self, n_envs: int, seed: StateSeed) -> PolicyState:
        """A fresh state for ``n_envs`` envs per individual (plastic weights drawn, LSTM memory zero).

        ``seed``: an int, a numpy or torch Generator (shared by the batch), or P int seeds (one each).
        """

    @abstractmethod
    def _reset(self, state: PolicyState, mask: torch.Tensor) -> None:
        """Restart the (individual, env) pairs where ``mask (P, E)`` is True."""

    @abstractmethod
    def _forward(self, x: torch.Tensor, state: PolicyState) -> torch.Tensor:
        """Features ``(P, E, F)`` -> raw outputs ``(P, E, n_out)``; updates ``state`` in place."""

    def _split_conv_weights(self, params: torch.Tensor, slices: dict[str, slice]) -> list[list[torch.Tensor]]:
        """Each individual's static conv weights as tensors of their own (the convs run per individual)."""
        shapes = self.spec.conv_shapes
        return [
            [params[q, slices[f"conv.{j}"]].reshape(s).clone() for j, s in enumerate(shapes)]
            for q in range(params.shape[0])
        ]

    def _conv_one(self, p: int, images: torch.Tensor) -> torch.Tensor:
        """Individual p's static conv stack: ``(E, 3, 84, 84)`` -> ``(E, 648)`` (``self.conv_weights[p]``)."""
        return conv_features(images, self.conv_weights[p], self.spec.conv_strides)

    def _image_features_of(self, x: torch.Tensor) -> torch.Tensor:
        """Conv features ``(P, E, F)`` of frames ``(P, E, H, W, C)``: the batched front end or the plain path."""
        if not self.fast_images:
            return torch.stack([
                self._conv_one(p, preprocess_images(x[p], *self.spec.pixel_range)) for p in range(self.n_individuals)
            ])
        front = self._image_features
        if front is None or front.n_envs != x.shape[1]:
            front = self._image_features = ImageFeatures(self.spec, self.conv_weights, x.shape[1])
        return front(x)

    @staticmethod
    def _buffers(state: PolicyState, key: str, shapes: list[tuple[int, ...]], rows: bool = False) -> list:
        """Scratch tensors kept in ``state.extra[key]`` (allocated once; ``rows``: activation buffers)."""
        bufs = state.extra.get(key)
        if bufs is None or [tuple(b.shape) for b in bufs] != shapes:
            make = activation_buffer if rows else torch.empty
            bufs = state.extra[key] = [make(*s) for s in shapes]
        return bufs

    def plastic_weights(self, state: PolicyState) -> list[torch.Tensor]:
        """The live plastic weight tensors ``(P, E, out, in)`` of ``state`` (edit in place to probe)."""
        self._check_state(state)
        return state.weights

    def act(
        self, obs: np.ndarray | torch.Tensor, state: PolicyState, episode_start: np.ndarray | None = None
    ) -> tuple[np.ndarray, PolicyState]:
        """One step for every (individual, env): ``obs (P, E, *obs_shape)`` -> actions ``(P, E, *act_shape)``.

        ``episode_start (P, E)`` bool restarts those envs' state before acting. The state is updated in
        place (and returned, for SB3-style call sites).

        Bit-for-bit, an individual's actions and weights do not depend on which other individuals share
        its batch (so a fitness does not depend on how a population is sliced over workers): the
        convolutions run per individual, the dense layers with :func:`agents.policies.networks.row_dot`.
        """
        self._check_state(state)
        x = self._obs_tensor(obs, state)
        if episode_start is not None:
            mask = torch.as_tensor(np.asarray(episode_start))
            if mask.dtype != torch.bool:
                if mask.dtype.is_floating_point or mask.dtype.is_complex:
                    raise TypeError(f"episode_start must be boolean; got dtype {mask.dtype}")
                mask = mask != 0
            if tuple(mask.shape) != (state.n_individuals, state.n_envs):
                raise ValueError(
                    f"episode_start has shape {tuple(mask.shape)}; accepted: "
                    f"({state.n_individuals}, {state.n_envs}) booleans (individuals, envs)"
                )
            if bool(mask.any()):
                self._reset(state, mask)
        with torch.no_grad():
            if self.spec.kind == "cnn":
                features = self._image_features_of(x)
            elif self.policy.obs_norm is not None:  # normalised observations, a float32 copy
                features = self.policy.obs_norm.apply(x)
            else:  # a batch that copies features into its own float32 buffer converts them there
                features = x if self._casts_features else x.to(torch.float32)
            out = self._forward(features, state)
            return self.head.to_numpy(self.head(out)), state

    def _obs_tensor(self, obs: np.ndarray | torch.Tensor, state: PolicyState) -> torch.Tensor:
        expected = (state.n_individuals, state.n_envs, *self.spec.obs_shape)
        if isinstance(obs, torch.Tensor):
            x = obs.detach()
        else:
            arr = np.asarray(obs)
            if arr.dtype.kind not in "iufc":  # numbers only (complex is refused below, like torch input)
                raise TypeError(f"obs has dtype {arr.dtype}; accepted: a numeric array (float or uint8)")
            arr = np.ascontiguousarray(arr)
            x = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
        if x.dtype == torch.bool or x.dtype.is_complex:
            raise TypeError(f"obs has dtype {x.dtype}; accepted: a numeric array (float or uint8)")
        if tuple(x.shape) != expected:
            raise ValueError(
                f"obs has shape {tuple(x.shape)}; accepted: {expected} (individuals, envs, *obs_shape)"
            )
        return x

    def _check_state(self, state: Any) -> None:
        if not isinstance(state, PolicyState):
            raise TypeError(
                f"state must be a PolicyState from this policy's batch; got {type(state).__name__}"
            )
        if state.owner != self.owner or state.n_individuals != self.n_individuals:
            raise ValueError(
                "state was made by another policy or for another number of individuals "
                f"(state: owner {state.owner}, P={state.n_individuals}; "
                f"this batch: owner {self.owner}, "
                f"P={self.n_individuals}); make one with initial_state()"
            )


def check_n_envs(n_envs: Any) -> int:
    """``n_envs`` as an int; ValueError unless it is a positive integer."""
    if isinstance(n_envs, bool) or not isinstance(n_envs, (int, np.integer)) or n_envs < 1:
        raise ValueError(f"n_envs={n_envs!r} is not accepted; use a positive integer")
    return int(n_envs)
