"""What the Hebbian, static and LSTM policies share: flat vectors, the batched interface, ``predict``.

Two levels:

* :class:`PolicyBatch` (``policy.batch(params)``) runs P individuals (rows of a ``(P, D)`` parameter
  array) on E environments each, one forward (and one plastic update) per call of :meth:`PolicyBatch.act`.
  The ES evaluation engine uses it directly.
* :class:`Policy` holds one parameter vector and offers SB3's ``predict`` (built on a cached batch with
  P = 1), ``get_flat`` / ``set_flat``, ``save`` / ``load`` and ``from_env``.

The file format is :mod:`agents.policies.files`, spaces :mod:`agents.policies.spaces`, seeds
:mod:`agents.policies.seeding`; a policy class is one subclass of each level (``_configure`` and
``_make_batch``; ``initial_state``, ``_reset`` and ``_forward``) registered with ``register_policy_class``.
"""

from __future__ import annotations

import itertools
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from agents import pretrained
from agents.policies.files import (
    FILE_MAGIC,
    FORMAT_VERSION,
    policy_class_named,
    read_policy_file,
    write_policy_file,
)
from agents.policies.networks import (
    ActionHead,
    NetSpec,
    activation_buffer,
    conv_features,
    preprocess_images,
    spec_from_spaces,
)
from agents.policies.normalizer import ObsNormalizer
from agents.policies.seeding import StateSeed, as_torch_generator
from agents.policies.spaces import describe_space, same_space, space_from_description, spaces_of

__all__ = ["Policy", "PolicyBatch", "PolicyState", "check_n_envs", "load_policy"]

_uids = itertools.count(1)


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
        self.head = policy._head
        #: What the states this batch makes carry as ``owner`` (the policy's identity, checked by ``act``).
        self.owner: tuple[int, int] = policy._uid

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
                features = torch.stack(
                    [self._conv_one(p, preprocess_images(x[p])) for p in range(self.n_individuals)]
                )
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


class Policy(ABC):
    """Base of the three policies: one flat float32 parameter vector plus the SB3 ``predict`` contract."""

    #: Option names and defaults a subclass accepts in ``from_env`` / the constructor.
    OPTIONS: ClassVar[dict[str, Any]] = {}
    #: Std of the normal draw of initial flat parameters.
    INIT_STD: ClassVar[float] = 0.1

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        env_id: str | None = None,
        seed: int | None = None,
        **options: Any,
    ) -> None:
        unknown = set(options) - set(self.OPTIONS)
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unknown option(s) {sorted(unknown)}; "
                f"accepted: {sorted(self.OPTIONS)}"
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed={seed!r} must be an int or None")
        self.observation_space = observation_space
        self.action_space = action_space
        self.env_id = env_id
        self.seed = None if seed is None else int(seed)
        self.options: dict[str, Any] = {**self.OPTIONS, **options}
        self.spec = spec_from_spaces(observation_space, action_space)
        self._head = ActionHead(self.spec, action_space)
        self._uid = (os.getpid(), next(_uids))  # identity for state checks, unique across workers
        self._configure()
        rng = np.random.default_rng(self.seed)
        self._flat = (rng.standard_normal(self.num_params) * self.INIT_STD).astype(np.float32)
        self._generator = as_torch_generator(rng)  # plastic weights of fresh predict() states
        self._batch_cache: PolicyBatch | None = None
        self._obs_norm: ObsNormalizer | None = None

    @property
    def obs_norm(self) -> ObsNormalizer | None:
        """The observation normaliser applied before the network (vector observations only), or None."""
        return self._obs_norm

    @obs_norm.setter
    def obs_norm(self, value: ObsNormalizer | None) -> None:
        if value is not None:
            if not isinstance(value, ObsNormalizer):
                raise TypeError(f"obs_norm must be an ObsNormalizer or None; got {type(value).__name__}")
            if self.spec.kind != "mlp" or value.dim != self.spec.n_features:
                raise ValueError(f"obs_norm of length {value.dim} does not fit this policy's observations "
                                 f"{self.spec.obs_shape}; accepted: a normaliser of a 1-D observation's length")
        self._obs_norm = value

    # --- subclass hooks -------------------------------------------------------------------------
    @abstractmethod
    def _configure(self) -> None:
        """Validate options and compute the parameter layout (sets ``self._layout``)."""

    @abstractmethod
    def _make_batch(self, params: torch.Tensor, assignment: torch.Tensor | None) -> PolicyBatch:
        """The batch for validated ``params (P, D)`` float32."""

    # --- construction ---------------------------------------------------------------------------
    @classmethod
    def from_env(cls, env_or_id: Any, seed: int | None = None, **options: Any) -> Policy:
        """A policy sized for a gym.Env, an SB3 VecEnv or an env id; initial parameters from ``seed``."""
        obs_space, act_space, env_id = spaces_of(env_or_id)
        return cls(obs_space, act_space, env_id=env_id, seed=seed, **options)

    # --- flat parameters ------------------------------------------------------------------------
    @property
    def num_params(self) -> int:
        """Length D of the flat parameter vector."""
        return sum(n for _, n in self._layout)

    @property
    def layout(self) -> list[tuple[str, slice]]:
        """Named slices of the flat vector, in order (e.g. ``rules``, ``conv.0``, ``dense.1``)."""
        out, off = [], 0
        for name, n in self._layout:
            out.append((name, slice(off, off + n)))
            off += n
        return out

    def get_flat(self) -> np.ndarray:
        """A copy of the flat parameter vector, shape (D,), float32."""
        return self._flat.copy()

    def set_flat(self, vector: np.ndarray | torch.Tensor) -> None:
        """Replace the flat parameter vector (copied, cast to float32); invalidates the cached batch."""
        v = _as_float_array(vector, "vector")
        if v.shape != (self.num_params,):
            raise ValueError(f"vector has shape {v.shape}; accepted: ({self.num_params},) for this policy")
        self._flat = v.astype(np.float32, copy=True)
        self._batch_cache = None

    # --- batched interface ----------------------------------------------------------------------
    def batch(
        self, params: np.ndarray | torch.Tensor, assignment: np.ndarray | torch.Tensor | None = None
    ) -> PolicyBatch:
        """P individuals from ``params (P, D)``; everything derivable once per individual is precomputed."""
        p = _as_float_array(params, "params")
        if p.ndim != 2 or p.shape[1] != self.num_params:
            raise ValueError(f"params has shape {p.shape}; accepted: (P, {self.num_params}) flat vectors")
        if p.shape[0] < 1:
            raise ValueError("params holds no individual; accepted: (P, D) with P >= 1")
        t = torch.as_tensor(np.ascontiguousarray(p, dtype=np.float32))
        a = None
        if assignment is not None:
            a = self._check_assignment(assignment, p.shape[0])
        return self._make_batch(t, a)

    def _check_assignment(self, assignment: Any, n_individuals: int) -> torch.Tensor:
        raise ValueError(
            f"assignment is only accepted by a HebbianPolicy with rho > 1; got {type(self).__name__}"
        )

    def initial_state(self, n_envs: int, seed: StateSeed = None) -> PolicyState:
        """A fresh ``predict`` state for ``n_envs`` envs; ``seed=None`` uses the policy's own generator."""
        return self._cached_batch().initial_state(n_envs, self._generator if seed is None else seed)

    def _cached_batch(self) -> PolicyBatch:
        if self._batch_cache is None:
            self._batch_cache = self.batch(self._flat[None])
        return self._batch_cache

    # --- SB3 interface --------------------------------------------------------------------------
    def predict(
        self,
        observation: np.ndarray,
        state: PolicyState | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, PolicyState]:
        """SB3's ``predict``: single ``obs_shape`` or batched ``(n_envs, *obs_shape)`` observation -> actions.

        ``state`` carries each env's plastic weights / LSTM memory (None starts fresh);
        ``episode_start[i]`` restarts env i. The policies are deterministic; ``deterministic`` is ignored.
        """
        obs = np.asarray(observation)
        if obs.dtype == object or not np.issubdtype(obs.dtype, np.number):
            raise TypeError(f"observation has dtype {obs.dtype}; accepted: a numeric array")
        shape = self.spec.obs_shape
        if obs.shape == shape:
            single = True
            obs = obs[None]
        elif obs.ndim == len(shape) + 1 and obs.shape[1:] == shape:
            single = False
        else:
            raise ValueError(
                f"observation has shape {obs.shape}; accepted: {shape} or (n_envs, *{shape}) for this policy"
            )
        n_envs = obs.shape[0]
        batch = self._cached_batch()
        if state is None:
            state = batch.initial_state(n_envs, self._generator)
            episode_start = None
        elif not isinstance(state, PolicyState):
            raise TypeError(
                f"state must be None or a PolicyState returned by predict; got {type(state).__name__}"
            )
        elif state.n_envs != n_envs:
            raise ValueError(f"state is for {state.n_envs} envs but observation holds {n_envs}")
        start = None
        if episode_start is not None:
            es = np.asarray(episode_start)
            if es.shape != (n_envs,) and not (single and es.shape == ()):
                raise ValueError(f"episode_start has shape {es.shape}; accepted: ({n_envs},) booleans")
            start = es.reshape(1, n_envs)
        actions, state = batch.act(obs[None], state, start)
        actions = actions[0]
        return (actions[0] if single else actions), state

    # --- files ----------------------------------------------------------------------------------
    def _file_dict(self) -> dict[str, Any]:
        return {
            "format": FILE_MAGIC,
            "format_version": FORMAT_VERSION,
            "class": type(self).__name__,
            "env_id": self.env_id,
            "observation_space": describe_space(self.observation_space),
            "action_space": describe_space(self.action_space),
            "options": dict(self.options),
            "seed": self.seed,
            "flat": torch.from_numpy(self._flat.copy()),
            "assignment": None,
            "obs_norm": None if self._obs_norm is None else self._obs_norm.state_dict(),
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the policy to one file, atomically (temp file in the same folder, then rename)."""
        write_policy_file(path, self._file_dict())

    @classmethod
    def load(cls, path: str | os.PathLike, env: Any = None) -> Policy:
        """Read a :meth:`save` file; refuses another class, a newer format, or spaces other than ``env``'s."""
        d = read_policy_file(path)
        if d["class"] != cls.__name__ and cls is not Policy:
            raise ValueError(
                f"{path} holds a {d['class']}, not a {cls.__name__}; use agents.policies.load_policy"
            )
        target = policy_class_named(d["class"], path) if cls is Policy else cls
        obs_space = space_from_description(d["observation_space"])
        act_space = space_from_description(d["action_space"])
        if env is not None:
            e_obs, e_act, _ = spaces_of(env)
            if not (same_space(e_obs, obs_space) and same_space(e_act, act_space)):
                raise ValueError(
                    f"{path} was made for observation {obs_space} / action {act_space}, but env has "
                    f"observation {e_obs} / action {e_act}"
                )
        policy = target(obs_space, act_space, env_id=d["env_id"], seed=d.get("seed"), **d["options"])
        policy.set_flat(d["flat"].numpy())
        if d.get("obs_norm") is not None:
            policy.obs_norm = ObsNormalizer.from_state_dict(d["obs_norm"])
        policy._restore_extra(d)
        return policy

    def _restore_extra(self, d: dict[str, Any]) -> None:
        """Subclass hook for extra file fields (the Hebbian assignment)."""

    def __getstate__(self) -> dict[str, Any]:
        """Pickle support (process / Ray workers): the cached batch is rebuilt on demand, not shipped."""
        d = dict(self.__dict__)
        d["_batch_cache"] = None
        return d

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        extra = ", " + opts if opts else ""
        return f"{type(self).__name__}(env_id={self.env_id!r}, num_params={self.num_params}{extra})"


def load_policy(path: str | os.PathLike, env: Any = None) -> Policy:
    """Load any policy file, returning the class it was saved from (Hebbian, static or LSTM).

    ``path`` may name a shipped agent, ``"pretrained:NAME"`` (see ``hebb-gym pretrained``).
    """
    if pretrained.is_pretrained(path):
        path = pretrained.path_of(str(path))
    return Policy.load(path, env=env)


def _as_float_array(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise TypeError(f"{name} has dtype {arr.dtype}; accepted: a real-valued (float) array")
    return arr
