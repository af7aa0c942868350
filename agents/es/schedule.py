"""The ES schedule: step size and noise with their decays and floors, L2 penalty, optimiser, fitness shaping,
and the update options of current ES practice (PGPE's adaptive sigma, ARS's top directions).

One frozen :class:`Schedule` is what both strategies take (``schedule=``) and what ``TrainConfig.schedule()``
gives; its checks are the only place these values are validated. The defaults are the original code's
(Najarro & Risi 2020).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from .optimizers import OPTIMIZERS
from .shaping import FITNESS_SHAPINGS


_STATE_NUMBERS = ("lr_decay", "lr_floor", "sigma_decay", "sigma_floor", "l2")
#: How sigma adapts besides its decay: ``"off"`` (decay only, the original code) or ``"pgpe"`` (one sigma per
#: parameter, stepped by the symmetric samples' fitnesses, Sehnke et al. 2010; see docs/es.md).
SIGMA_ADAPTS = ("off", "pgpe")
#: The schedule's entries added to a strategy's ``state_dict`` after its first format; a state written before
#: them means their defaults (off), so it loads and continues as it was.
_LATER_STATE = ("sigma_adapt", "sigma_lr", "sigma_max_change", "top_directions")


def _number(name: str, value: Any, accepted: str, ok) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {accepted}, got {value!r}") from None
    if not (math.isfinite(v) and ok(v)):
        raise ValueError(f"{name} must be {accepted}, got {value!r}")
    return v


@dataclass(frozen=True)
class Schedule:
    """How an ES strategy steps: ``lr`` and ``sigma`` decay multiplicatively each generation down to their floors."""

    lr: float = field(default=0.2, metadata={"help": "ES step size at the first generation"})
    lr_decay: float = field(default=0.995, metadata={"help": "learning-rate factor per generation, in (0, 1]"})
    lr_floor: float = field(default=0.001, metadata={"help": "the learning rate never decays below this"})
    sigma: float = field(default=0.1, metadata={"help": "noise scale of the search distribution at the start"})
    sigma_decay: float = field(default=0.999, metadata={"help": "sigma factor per generation, in (0, 1]"})
    sigma_floor: float = field(default=0.01, metadata={"help": "sigma never decays below this"})
    l2: float = field(default=0.01, metadata={"help": "L2 penalty: fitness minus l2 * mean(theta^2), before shaping"})
    optimizer: str = field(default="sgd", metadata={"help": "ascent step on the ES gradient", "choices": OPTIMIZERS})
    momentum: float = field(default=0.0, metadata={"help": "SGD momentum in [0, 1) (sgd only)"})
    fitness_shaping: str = field(default="standardized_rank",
                                 metadata={"help": "utilities from fitnesses", "choices": FITNESS_SHAPINGS})
    sigma_adapt: str = field(default="off", metadata={
        "help": "off: sigma only decays; pgpe: one sigma per parameter, adapted from the antithetic pairs' "
                "fitnesses (PGPE), then decayed (OpenAI-ES only)", "choices": SIGMA_ADAPTS})
    sigma_lr: float = field(default=0.1, metadata={
        "help": "PGPE: step size of sigma's update, relative to sigma (sigma_adapt=pgpe)"})
    sigma_max_change: float = field(default=0.2, metadata={
        "help": "PGPE: largest relative change of any sigma in one generation, in (0, 1) (sigma_adapt=pgpe)"})
    top_directions: int = field(default=0, metadata={
        "help": "ARS: update from the best b antithetic pairs only, ranked by max(f+, f-); 0 = all pairs "
                "(OpenAI-ES only)"})

    def __post_init__(self) -> None:
        positive, nonneg, decay = "a finite number > 0", "a finite number >= 0", "in (0, 1]"
        checks = {
            "lr": (positive, lambda v: v > 0), "sigma": (positive, lambda v: v > 0),
            "lr_decay": (decay, lambda v: 0 < v <= 1), "sigma_decay": (decay, lambda v: 0 < v <= 1),
            "lr_floor": (nonneg, lambda v: v >= 0), "sigma_floor": (nonneg, lambda v: v >= 0),
            "l2": (nonneg, lambda v: v >= 0), "momentum": ("in [0, 1)", lambda v: 0 <= v < 1),
            "sigma_lr": (positive, lambda v: v > 0), "sigma_max_change": ("in (0, 1)", lambda v: 0 < v < 1),
        }
        for name, (accepted, ok) in checks.items():
            object.__setattr__(self, name, _number(name, getattr(self, name), accepted, ok))
        for f in fields(self):
            choices = f.metadata.get("choices")
            if choices is not None and getattr(self, f.name) not in choices:
                raise ValueError(f"{f.name} must be one of {choices}, got {getattr(self, f.name)!r}")
        top = self.top_directions
        if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 0:
            raise ValueError(f"top_directions must be an int >= 0 (0: all pairs), got {top!r}")
        object.__setattr__(self, "top_directions", int(top))
        if self.momentum != 0.0 and self.optimizer != "sgd":
            raise ValueError(f"momentum applies to optimizer='sgd' only, "
                             f"got momentum={self.momentum!r} with {self.optimizer!r}")

    def state(self, lr: float, sigma: float) -> dict[str, Any]:
        """The schedule's entries of a strategy's ``state_dict`` (with the current ``lr`` and ``sigma``)."""
        return {"sigma": sigma, "lr": lr, "lr_decay": self.lr_decay, "lr_floor": self.lr_floor,
                "sigma_decay": self.sigma_decay, "sigma_floor": self.sigma_floor, "l2": self.l2,
                "fitness_shaping": self.fitness_shaping, "optimizer_name": self.optimizer,
                **{k: getattr(self, k) for k in _LATER_STATE}}

    def with_state(self, state: dict[str, Any]) -> "Schedule":
        """This schedule with the decays, floors, penalty, shaping and optimiser of a ``state_dict`` (any
        version); ``lr`` and ``sigma`` stay the starting values (the strategy holds the current ones)."""
        return replace(self, **{k: float(state[k]) for k in _STATE_NUMBERS},
                       **{f.name: type(f.default)(state.get(f.name, f.default)) for f in fields(self)
                          if f.name in _LATER_STATE},
                       fitness_shaping=str(state["fitness_shaping"]), optimizer=state["optimizer_name"],
                       momentum=float(state["optimizer"].get("momentum", 0.0))
                       if state["optimizer_name"] == "sgd" else 0.0)  # ClipUp keeps its own momentum

    def decay(self, lr: float, sigma: float) -> tuple[float, float]:
        """The learning rate and sigma of the next generation, from this generation's."""
        return decayed(lr, self.lr_decay, self.lr_floor), decayed(sigma, self.sigma_decay, self.sigma_floor)

    def adapted_sigma(self, sigma: np.ndarray, relative_grad: np.ndarray) -> np.ndarray:
        """PGPE's per-parameter sigmas of the next generation (``sigma_adapt="pgpe"``).

        Each ``sigma_k`` is multiplied by ``1 + clip(sigma_lr * relative_grad_k, -sigma_max_change,
        sigma_max_change)``, then by ``sigma_decay``, and never goes below ``min(sigma_floor, sigma)`` (the
        starting sigma, when that is below the floor). With ``relative_grad = 0`` this is :meth:`decay`.
        """
        m = self.sigma_max_change
        factor = 1.0 + np.clip(self.sigma_lr * relative_grad, -m, m)
        return np.maximum(sigma * factor * self.sigma_decay, min(self.sigma_floor, self.sigma))


def as_schedule(schedule: Schedule | None) -> Schedule:
    """``schedule`` itself, or the original code's when None; TypeError for anything else."""
    if schedule is None:
        return Schedule()
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be an agents.es.Schedule or None, got {type(schedule).__name__}")
    return schedule


def decayed(value: float, decay: float, floor: float) -> float:
    """One multiplicative decay step that never goes below ``floor`` (nor raises a value already below it)."""
    return value if value <= floor else max(value * decay, floor)
