"""OpenAI-ES (Salimans et al. 2017): ask/tell over a flat parameter vector, noise from a shared table.

Also home of the ``Strategy`` protocol both strategies implement.
"""

from __future__ import annotations

import copy
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .noise import DEFAULT_TABLE_SIZE, NoiseTable, shared_noise_table
from .optimizers import make_optimizer
from .schedule import Schedule, as_schedule
from .shaping import check_fitnesses, shape_fitness

#: Keyword arguments reproducing the ES of the original Hebbian meta-learning code (Najarro & Risi 2020).
ORIGINAL_CODE = dict(popsize=200, schedule=Schedule(), antithetic=True)


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


def check_int(name: str, value: Any, minimum: int) -> int:
    """An int >= ``minimum`` (bools refused); the strategies' check of sizes and seeds."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


# ---------------------------------------------------------------------------------------------- OpenAI-ES


class OpenAIES:
    """Isotropic Gaussian ES: ``ask()`` gives noise offsets, ``tell(fitnesses)`` takes an ascent step on E[F].

    Individual ``i`` is ``mean + s_i * sigma * table.get(offsets[i], num_params)`` with ``s_i = +1`` for even
    and ``-1`` for odd ``i`` when antithetic (pairs share an offset), ``+1`` otherwise. ``tell`` is a pure
    function of the state and the fitnesses, so replicas in other processes stay bit-identical.
    """

    def __init__(self, num_params: int, popsize: int = 200, schedule: Schedule | None = None,
                 antithetic: bool = True, seed: int = 0, init: np.ndarray | None = None,
                 noise_table: NoiseTable | None = None) -> None:
        """Set up the search distribution N(init, sigma^2 I); ``schedule`` defaults to the original code's."""
        self.num_params = check_int("num_params", num_params, 1)
        self.popsize = check_int("popsize", popsize, 2)
        self.antithetic = bool(antithetic)
        if self.antithetic and self.popsize % 2:
            raise ValueError(f"popsize must be even when antithetic=True (pairs +eps/-eps), got {popsize}")
        self.schedule = as_schedule(schedule)
        self.lr, self.sigma = self.schedule.lr, self.schedule.sigma  # current values; they decay in tell
        self.optimizer = make_optimizer(self.schedule.optimizer, self.num_params, momentum=self.schedule.momentum)
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
        return int(offsets[i]), -1.0 if self.antithetic and i % 2 else 1.0

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
        l2 = self.schedule.l2
        if l2 > 0:
            # Original code: fitness_i - l2 * mean(theta_i^2) on the raw fitness, before shaping.
            sq = np.array([np.mean(np.square(self.individual(i))) for i in range(self.popsize)])
            f = f - l2 * sq
        w = shape_fitness(f, self.schedule.fitness_shaping) * self.signs
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
        self.lr, self.sigma = self.schedule.decay(self.lr, self.sigma)
        self._offsets = None
        self.generation += 1

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        """All needed to continue bit-identically: mean, schedules, optimizer moments, RNG, pending ask."""
        return {
            "kind": "OpenAIES",
            "num_params": self.num_params, "popsize": self.popsize, "antithetic": self.antithetic,
            **self.schedule.state(self.lr, self.sigma), "seed": self.seed,
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
        schedule = self.schedule.with_state(state)
        self.popsize = int(state["popsize"])
        self.antithetic = bool(state["antithetic"])
        self.schedule = schedule
        self.lr, self.sigma = float(state["lr"]), float(state["sigma"])
        self.seed = int(state["seed"])
        self.optimizer = make_optimizer(schedule.optimizer, self.num_params, momentum=schedule.momentum)
        self.optimizer.load_state_dict(state["optimizer"])
        self.generation = int(state["generation"])
        self._mean = np.array(state["mean"], dtype=np.float64)
        self._rng = np.random.Generator(np.random.PCG64())
        self._rng.bit_generator.state = copy.deepcopy(state["rng"])
        self._offsets = None if state["offsets"] is None else np.array(state["offsets"], dtype=np.int64)

