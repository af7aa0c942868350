"""Gradient-ascent optimisers for ES: SGD with optional momentum, Adam and ClipUp. Deterministic, numpy only."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np


class Optimizer(ABC):
    """Turns a gradient estimate into an ascent step; ``lr`` comes per call, the strategy owns its decay."""

    name = "base"

    def __init__(self, dim: int, dtype: Any = np.float64) -> None:
        self.dim = int(dim)
        self.dtype = np.dtype(dtype)
        self.t = 0

    @abstractmethod
    def step(self, grad: np.ndarray, lr: float) -> np.ndarray:
        """The step to *add* to the parameters (ascent)."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue identically."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from ``state_dict()``."""

    def _check(self, grad: np.ndarray) -> np.ndarray:
        grad = np.asarray(grad)
        if grad.shape != (self.dim,):
            raise ValueError(f"grad must have shape ({self.dim},), got {grad.shape}")
        return grad.astype(self.dtype, copy=False)

    def _load_array(self, state: dict[str, Any], key: str) -> np.ndarray:
        arr = np.array(state[key], dtype=self.dtype)
        if arr.shape != (self.dim,):
            raise ValueError(f"optimizer state {key!r} must have shape ({self.dim},), got {arr.shape}")
        return arr


class SGD(Optimizer):
    """Plain gradient ascent, or with momentum ``v = m*v + (1-m)*g; step = lr*v`` (Salimans et al.'s form)."""

    name = "sgd"

    def __init__(self, dim: int, momentum: float = 0.0, dtype: Any = np.float64) -> None:
        super().__init__(dim, dtype)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)
        self.v = np.zeros(self.dim, dtype=self.dtype)

    def step(self, grad: np.ndarray, lr: float) -> np.ndarray:
        grad = self._check(grad)
        self.t += 1
        if self.momentum == 0.0:
            return lr * grad
        self.v = self.momentum * self.v + (1.0 - self.momentum) * grad
        return lr * self.v

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "t": self.t, "momentum": self.momentum, "v": self.v.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ValueError(f"optimizer state is for {state.get('name')!r}, this optimizer is {self.name!r}")
        self.t = int(state["t"])
        self.momentum = float(state["momentum"])
        self.v = self._load_array(state, "v")


class Adam(Optimizer):
    """Adam (Kingma & Ba) used for ascent: ``step = lr * m_hat / (sqrt(v_hat) + eps)``."""

    name = "adam"

    def __init__(self, dim: int, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 dtype: Any = np.float64) -> None:
        super().__init__(dim, dtype)
        for arg, val in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= val < 1.0:
                raise ValueError(f"{arg} must be in [0, 1), got {val!r}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.m = np.zeros(self.dim, dtype=self.dtype)
        self.v = np.zeros(self.dim, dtype=self.dtype)

    def step(self, grad: np.ndarray, lr: float) -> np.ndarray:
        grad = self._check(grad)
        self.t += 1
        self.m = self.beta1 * self.m + (1.0 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1.0 - self.beta2) * (grad * grad)
        a = lr * np.sqrt(1.0 - self.beta2**self.t) / (1.0 - self.beta1**self.t)
        return (a * self.m / (np.sqrt(self.v) + self.eps)).astype(self.dtype, copy=False)

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "t": self.t, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps,
                "m": self.m.copy(), "v": self.v.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ValueError(f"optimizer state is for {state.get('name')!r}, this optimizer is {self.name!r}")
        self.t = int(state["t"])
        self.beta1, self.beta2, self.eps = float(state["beta1"]), float(state["beta2"]), float(state["eps"])
        self.m = self._load_array(state, "m")
        self.v = self._load_array(state, "v")


class ClipUp(Optimizer):
    """ClipUp (Toklu et al. 2020): momentum on the normalised gradient, the velocity's norm clipped.

    ``v = momentum * v + lr * g / |g|``, then ``v`` scaled down to ``max_speed = max_speed_ratio * lr``
    when longer; the step is ``v``. Step sizes are thus in parameter units, whatever the fitness scale.
    """

    name = "clipup"

    def __init__(self, dim: int, momentum: float = 0.9, max_speed_ratio: float = 2.0, dtype: Any = np.float64) -> None:
        super().__init__(dim, dtype)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if not max_speed_ratio > 0:
            raise ValueError(f"max_speed_ratio must be > 0, got {max_speed_ratio!r}")
        self.momentum, self.max_speed_ratio = float(momentum), float(max_speed_ratio)
        self.v = np.zeros(self.dim, dtype=self.dtype)

    def step(self, grad: np.ndarray, lr: float) -> np.ndarray:
        grad = self._check(grad)
        self.t += 1
        norm = float(np.linalg.norm(grad))
        self.v = self.momentum * self.v + (lr / norm) * grad if norm > 0 else self.momentum * self.v
        speed, limit = float(np.linalg.norm(self.v)), self.max_speed_ratio * lr
        if speed > limit:
            self.v = self.v * (limit / speed)
        return self.v.copy()

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "t": self.t, "momentum": self.momentum, "max_speed_ratio": self.max_speed_ratio,
                "v": self.v.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ValueError(f"optimizer state is for {state.get('name')!r}, this optimizer is {self.name!r}")
        self.t = int(state["t"])
        self.momentum, self.max_speed_ratio = float(state["momentum"]), float(state["max_speed_ratio"])
        self.v = self._load_array(state, "v")


OPTIMIZERS = ("sgd", "adam", "clipup")


def make_optimizer(name: str, dim: int, momentum: float = 0.0, dtype: Any = np.float64) -> Optimizer:
    """Build an optimiser by name: ``"sgd"`` (with ``momentum``), ``"adam"`` or ``"clipup"`` (momentum 0.9)."""
    if name == "sgd":
        return SGD(dim, momentum=momentum, dtype=dtype)
    if name == "adam":
        if momentum != 0.0:
            raise ValueError(f"momentum applies to optimizer='sgd' only, "
                             f"got momentum={momentum!r} with 'adam'")
        return Adam(dim, dtype=dtype)
    if name == "clipup":  # momentum 0 (the SGD default) means ClipUp's own 0.9
        return ClipUp(dim, momentum=momentum or 0.9, dtype=dtype)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
