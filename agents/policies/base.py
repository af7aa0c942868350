"""Policy: what the Hebbian, static and LSTM policies share on the SB3 side, and ``load_policy``.

:class:`Policy` holds one flat float32 parameter vector and offers SB3's ``predict`` (built on a cached
:class:`~agents.policies.batch.PolicyBatch` with P = 1), ``get_flat`` / ``set_flat``, ``batch``,
``save`` / ``load``, ``from_env`` and the optional observation normaliser (``obs_norm``).

The batched interface is :mod:`agents.policies.batch`, the file format :mod:`agents.policies.files`,
spaces :mod:`agents.policies.spaces`, seeds :mod:`agents.policies.seeding`. A policy class is one
subclass of :class:`Policy` (``_configure``, ``_make_batch``) and one of ``PolicyBatch``
(``initial_state``, ``_reset``, ``_forward``), registered with ``register_policy_class``.
"""

from __future__ import annotations

import itertools
import os
from abc import ABC, abstractmethod
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
from agents.policies.batch import PolicyBatch, PolicyState
from agents.policies.networks import ActionHead, spec_from_spaces
from agents.policies.normalizer import ObsNormalizer
from agents.policies.seeding import StateSeed, as_torch_generator
from agents.policies.spaces import describe_space, same_space, space_from_description, spaces_of

# PolicyBatch and PolicyState live in agents.policies.batch; importable from here too, where they used to be
__all__ = ["Policy", "PolicyBatch", "PolicyState", "load_policy"]

_uids = itertools.count(1)


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
        init_std: float | None = None,
        **options: Any,
    ) -> None:
        """``init_std``: std of the normal draw of the initial flat parameters (default :attr:`INIT_STD`)."""
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
        std = self.INIT_STD if init_std is None else init_std
        if isinstance(std, bool) or not isinstance(std, (int, float)) or not 0 <= std < float("inf"):
            raise ValueError(f"init_std={init_std!r} is not accepted; use a finite number >= 0")
        rng = np.random.default_rng(self.seed)
        self._flat = (rng.standard_normal(self.num_params) * std).astype(np.float32)
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

    @property
    def head(self) -> ActionHead:
        """The action head: the network's raw outputs -> actions in the action space."""
        return self._head

    @property
    def uid(self) -> tuple[int, int]:
        """This policy's identity (process id, counter); the states of its batches carry it as ``owner``."""
        return self._uid

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
        if not np.isfinite(v).all():
            raise ValueError(f"vector holds {int((~np.isfinite(v)).sum())} non-finite value(s); accepted: finite "
                             "parameters only")
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
        *,
        allow_nonfinite: bool = False,
    ) -> tuple[np.ndarray, PolicyState]:
        """SB3's ``predict``: single ``obs_shape`` or batched ``(n_envs, *obs_shape)`` observation -> actions.

        ``state`` carries each env's plastic weights / LSTM memory (None starts fresh);
        ``episode_start[i]`` restarts env i. The policies are deterministic; ``deterministic`` is ignored.
        A NaN or infinite observation is a ValueError (it would poison the plastic / LSTM state until the
        episode restarts) unless ``allow_nonfinite``.
        """
        obs = np.asarray(observation)
        if obs.dtype == object or not np.issubdtype(obs.dtype, np.number):
            raise TypeError(f"observation has dtype {obs.dtype}; accepted: a numeric array")
        if not allow_nonfinite and obs.dtype.kind in "fc" and not np.isfinite(obs).all():
            raise ValueError(f"observation holds {int((~np.isfinite(obs)).sum())} non-finite value(s); "
                             "pass allow_nonfinite=True to act on them anyway")
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
