"""OpenAI-ES (Salimans et al. 2017): ask/tell over a flat parameter vector, noise from a shared table.

Also home of what both strategies share: the ``Strategy`` protocol, fitness shaping and argument checks.
"""

from __future__ import annotations

import copy
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .noise import DEFAULT_TABLE_SIZE, NoiseTable, shared_noise_table
from .optimizers import OPTIMIZERS, make_optimizer

FITNESS_SHAPINGS = ("centered_rank", "standardized_rank", "zscore", "baseline", "none")

#: Keyword arguments reproducing the ES of the original Hebbian meta-learning code (Najarro & Risi 2020).
ORIGINAL_CODE = dict(popsize=200, sigma=0.1, lr=0.2, optimizer="sgd", momentum=0.0, lr_decay=0.995,
                     lr_floor=0.001, sigma_decay=0.999, sigma_floor=0.01, l2=0.01, antithetic=True,
                     fitness_shaping="standardized_rank")


@runtime_checkable
class Strategy(Protocol):
    """What the trainer relies on: ``ask`` what to evaluate, ``tell`` fitnesses, checkpoints, a counter."""

    popsize: int
    generation: int

    def ask(self) -> np.ndarray: ...

    def tell(self, fitnesses: Any) -> None: ...

    def member(self, i: int) -> Any: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


# ---------------------------------------------------------------------------------------------- helpers


def centered_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks mapped linearly onto [-0.5, 0.5]; ties broken by position (stable sort), so deterministic."""
    n = x.size
    ranks = np.empty(n, dtype=np.float64)
    ranks[np.argsort(x, kind="stable")] = np.arange(n, dtype=np.float64)
    return ranks / max(n - 1, 1) - 0.5


def shape_fitness(fitnesses: np.ndarray, method: str) -> np.ndarray:
    """Utilities from raw fitnesses (higher is better); see ``FITNESS_SHAPINGS`` and docs/es.md."""
    f = np.asarray(fitnesses, dtype=np.float64)
    if method == "centered_rank":
        return centered_ranks(f)
    if method == "standardized_rank":
        y = centered_ranks(f)
        std = y.std()
        return (y - y.mean()) / std if std > 0 else np.zeros_like(y)
    if method == "zscore":
        std = f.std()
        return (f - f.mean()) / std if std > 0 else np.zeros_like(f)
    if method == "baseline":
        return f - f.mean()
    if method == "none":
        return f.copy()
    raise ValueError(f"fitness_shaping must be one of {FITNESS_SHAPINGS}, got {method!r}")


def check_positive(name: str, value: Any) -> float:
    """``value`` as a float, or ValueError if it is not a finite number > 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}") from None
    if not (np.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def check_nonneg(name: str, value: Any) -> float:
    """``value`` as a float, or ValueError if it is not a finite number >= 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}") from None
    if not (np.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


def check_decay(name: str, value: Any) -> float:
    """A multiplicative decay factor in (0, 1]."""
    v = check_positive(name, value)
    if v > 1:
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    return v


def check_int(name: str, value: Any, minimum: int) -> int:
    """An int >= ``minimum`` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def check_fitnesses(fitnesses: Any, popsize: int) -> np.ndarray:
    """Fitnesses as a float64 (popsize,) array; ValueError on a wrong length or any NaN/inf."""
    try:
        f = np.asarray(fitnesses, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"fitnesses must be {popsize} real numbers, got {fitnesses!r}") from None
    if f.shape != (popsize,):
        raise ValueError(f"fitnesses must have shape ({popsize},) (one per individual), got shape {f.shape}")
    bad = np.flatnonzero(~np.isfinite(f))
    if bad.size:
        raise ValueError(f"fitnesses must all be finite; got {f[bad[:5]].tolist()} "
                         f"at indices {bad[:5].tolist()} "
                         "(replace non-finite values, e.g. by the generation's worst, before tell)")
    return f


def set_schedule(strategy: Any, sigma: Any, lr: Any, lr_decay: Any, lr_floor: Any, sigma_decay: Any,
                 sigma_floor: Any, l2: Any, fitness_shaping: str, optimizer: str) -> None:
    """Check and set the step-size / noise schedule, penalty, shaping and optimiser name both strategies share."""
    strategy.sigma = check_positive("sigma", sigma)
    strategy.lr = check_positive("lr", lr)
    strategy.lr_decay = check_decay("lr_decay", lr_decay)
    strategy.lr_floor = check_nonneg("lr_floor", lr_floor)
    strategy.sigma_decay = check_decay("sigma_decay", sigma_decay)
    strategy.sigma_floor = check_nonneg("sigma_floor", sigma_floor)
    strategy.l2 = check_nonneg("l2", l2)
    if fitness_shaping not in FITNESS_SHAPINGS:
        raise ValueError(f"fitness_shaping must be one of {FITNESS_SHAPINGS}, got {fitness_shaping!r}")
    strategy.fitness_shaping = fitness_shaping
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    strategy.optimizer_name = optimizer


def decayed(value: float, decay: float, floor: float) -> float:
    """One multiplicative decay step that never goes below ``floor`` (nor raises a value already below it)."""
    return value if value <= floor else max(value * decay, floor)


# ---------------------------------------------------------------------------------------------- OpenAI-ES


class OpenAIES:
    """Isotropic Gaussian ES: ``ask()`` gives noise offsets, ``tell(fitnesses)`` takes an ascent step on E[F].

    Individual ``i`` is ``mean + s_i * sigma * table.get(offsets[i], num_params)`` with ``s_i = +1`` for even
    and ``-1`` for odd ``i`` when antithetic (pairs share an offset), ``+1`` otherwise. ``tell`` is a pure
    function of the state and the fitnesses, so replicas in other processes stay bit-identical.
    """

    def __init__(self, num_params: int, popsize: int = 200, sigma: float = 0.1, lr: float = 0.2,
                 optimizer: str = "sgd", momentum: float = 0.0, lr_decay: float = 0.995,
                 lr_floor: float = 0.001, sigma_decay: float = 0.999, sigma_floor: float = 0.01,
                 l2: float = 0.01, antithetic: bool = True,
                 fitness_shaping: str = "standardized_rank", seed: int = 0, init: np.ndarray | None = None,
                 noise_table: NoiseTable | None = None) -> None:
        """Set up the search distribution N(init, sigma^2 I); defaults are the original code's."""
        self.num_params = check_int("num_params", num_params, 1)
        self.popsize = check_int("popsize", popsize, 2)
        self.antithetic = bool(antithetic)
        if self.antithetic and self.popsize % 2:
            raise ValueError(f"popsize must be even when antithetic=True (pairs +eps/-eps), got {popsize}")
        set_schedule(self, sigma, lr, lr_decay, lr_floor, sigma_decay, sigma_floor, l2, fitness_shaping, optimizer)
        self.optimizer = make_optimizer(optimizer, self.num_params, momentum=momentum)
        self.seed = check_int("seed", seed, 0)
        if noise_table is None:
            noise_table = shared_noise_table(self.seed, DEFAULT_TABLE_SIZE)
        elif not isinstance(noise_table, NoiseTable):
            raise TypeError(f"noise_table must be a NoiseTable or None, got {type(noise_table).__name__}")
        if noise_table.size < self.num_params:
            raise ValueError(f"noise_table has {noise_table.size} values, fewer than "
                             f"num_params={self.num_params}; "
                             "build a larger NoiseTable")
        self.noise = noise_table
        if init is None:
            self._mean = np.zeros(self.num_params, dtype=np.float64)
        else:
            arr = np.array(init, dtype=np.float64).reshape(-1)
            if arr.shape != (self.num_params,) or not np.all(np.isfinite(arr)):
                raise ValueError(f"init must be {self.num_params} finite numbers, got shape {np.shape(init)}")
            self._mean = arr
        self._rng = np.random.Generator(np.random.PCG64(self.seed))
        self._offsets: np.ndarray | None = None
        self.generation = 0

    # ------------------------------------------------------------------ sampling
    @property
    def mean(self) -> np.ndarray:
        """The current centre of the search distribution (a copy)."""
        return self._mean.copy()

    @property
    def signs(self) -> np.ndarray:
        """The sign of each individual's noise: +1, -1, +1, ... when antithetic, all +1 otherwise."""
        s = np.ones(self.popsize, dtype=np.float64)
        if self.antithetic:
            s[1::2] = -1.0
        return s

    def ask(self) -> np.ndarray:
        """This generation's noise offsets, (popsize,) int64; pairs (2j, 2j+1) share one. Idempotent."""
        if self._offsets is None:
            n = self.popsize // 2 if self.antithetic else self.popsize
            offs = self.noise.sample_offsets(self._rng, self.num_params, n)
            self._offsets = np.repeat(offs, 2) if self.antithetic else offs
        return self._offsets.copy()

    def perturbation(self, i: int) -> tuple[int, float]:
        """(noise offset, sign) of individual ``i`` of the pending generation."""
        offsets = self._pending()
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < self.popsize:
            raise ValueError(f"i must be an int in [0, {self.popsize}), got {i!r}")
        return int(offsets[i]), float(self.signs[i])

    def individual(self, i: int) -> np.ndarray:
        """Parameter vector (float64) of individual ``i``, rebuilt from mean, sigma and its offset."""
        offset, sign = self.perturbation(i)
        return self._mean + (sign * self.sigma) * self.noise.get(offset, self.num_params).astype(np.float64)

    member = individual

    def individuals(self) -> np.ndarray:
        """All parameter vectors, (popsize, num_params) float64; for small problems."""
        return np.stack([self.individual(i) for i in range(self.popsize)])

    def _pending(self) -> np.ndarray:
        if self._offsets is None:
            self.ask()
        assert self._offsets is not None
        return self._offsets

    # ------------------------------------------------------------------ update
    def gradient(self, fitnesses: Any) -> np.ndarray:
        """ES estimate of grad E[F] for the pending generation (L2 penalty, shaping included); no update."""
        f = check_fitnesses(fitnesses, self.popsize)
        offsets = self._pending()
        if self.l2 > 0:
            # Original code: fitness_i - l2 * mean(theta_i^2) on the raw fitness, before shaping.
            sq = np.array([np.mean(np.square(self.individual(i))) for i in range(self.popsize)])
            f = f - self.l2 * sq
        w = shape_fitness(f, self.fitness_shaping) * self.signs
        grad = np.zeros(self.num_params, dtype=np.float64)
        if self.antithetic:  # pairs share noise: one axpy per pair, in a fixed order
            for j in range(0, self.popsize, 2):
                c = w[j] + w[j + 1]
                if c != 0.0:
                    grad += c * self.noise.get(int(offsets[j]), self.num_params)
        else:
            for j in range(self.popsize):
                if w[j] != 0.0:
                    grad += w[j] * self.noise.get(int(offsets[j]), self.num_params)
        grad /= self.popsize * self.sigma
        return grad

    def tell(self, fitnesses: Any) -> None:
        """Update mean from this generation's fitnesses (higher is better), then decay lr and sigma."""
        grad = self.gradient(fitnesses)
        self._mean = self._mean + self.optimizer.step(grad, self.lr)
        self.lr = decayed(self.lr, self.lr_decay, self.lr_floor)
        self.sigma = decayed(self.sigma, self.sigma_decay, self.sigma_floor)
        self._offsets = None
        self.generation += 1

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        """All needed to continue bit-identically: mean, schedules, optimizer moments, RNG, pending ask."""
        return {
            "kind": "OpenAIES",
            "num_params": self.num_params, "popsize": self.popsize, "antithetic": self.antithetic,
            "sigma": self.sigma, "lr": self.lr, "lr_decay": self.lr_decay, "lr_floor": self.lr_floor,
            "sigma_decay": self.sigma_decay, "sigma_floor": self.sigma_floor, "l2": self.l2,
            "fitness_shaping": self.fitness_shaping, "optimizer_name": self.optimizer_name, "seed": self.seed,
            "noise_table": {"seed": self.noise.seed, "size": self.noise.size},
            "generation": self.generation, "mean": self._mean.copy(),
            "optimizer": self.optimizer.state_dict(),
            "rng": copy.deepcopy(self._rng.bit_generator.state),
            "offsets": None if self._offsets is None else self._offsets.copy(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from ``state_dict()``; the noise table must match (same seed and size)."""
        if state.get("kind") != "OpenAIES":
            raise ValueError(f"state is for {state.get('kind')!r}, expected 'OpenAIES'")
        if int(state["num_params"]) != self.num_params:
            raise ValueError(f"state has num_params={state['num_params']}, "
                             f"this strategy has {self.num_params}")
        nt = state["noise_table"]
        if (int(nt["seed"]), int(nt["size"])) != (self.noise.seed, self.noise.size):
            raise ValueError(f"state was made with NoiseTable(seed={nt['seed']}, size={nt['size']}), "
                             f"this strategy uses {self.noise!r}")
        if state["optimizer_name"] not in OPTIMIZERS:
            raise ValueError(f"optimizer_name must be one of {OPTIMIZERS}, got {state['optimizer_name']!r}")
        self.popsize = int(state["popsize"])
        self.antithetic = bool(state["antithetic"])
        for key in ("sigma", "lr", "lr_decay", "lr_floor", "sigma_decay", "sigma_floor", "l2"):
            setattr(self, key, float(state[key]))
        self.fitness_shaping = str(state["fitness_shaping"])
        self.seed = int(state["seed"])
        self.optimizer_name = state["optimizer_name"]
        self.optimizer = make_optimizer(self.optimizer_name, self.num_params)
        self.optimizer.load_state_dict(state["optimizer"])
        self.generation = int(state["generation"])
        self._mean = np.array(state["mean"], dtype=np.float64)
        self._rng = np.random.Generator(np.random.PCG64())
        self._rng.bit_generator.state = copy.deepcopy(state["rng"])
        self._offsets = None if state["offsets"] is None else np.array(state["offsets"], dtype=np.int64)
