"""OpenAI-ES (Salimans et al. 2017): ask/tell over a flat parameter vector, noise from a shared table.

Also home of the ``Strategy`` protocol both strategies implement.
"""

from __future__ import annotations

import copy
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .noise import DEFAULT_TABLE_SIZE, NoiseTable, shared_noise_table
from .optimizers import make_optimizer
from .schedule import Schedule, as_schedule, decayed
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


def top_pairs(fitnesses: np.ndarray, top: int) -> np.ndarray:
    """Indices of the individuals of the ``top`` antithetic pairs ``(2j, 2j+1)`` with the highest
    ``max(f_2j, f_2j+1)`` (ARS, Mania et al. 2018), both members of each, in population order; ties go to
    the lower pair index. ``top = 0`` (or every pair) keeps everyone."""
    n = fitnesses.size
    if top == 0 or 2 * top >= n:
        return np.arange(n)
    best = np.maximum(fitnesses[0::2], fitnesses[1::2])
    pairs = np.sort(np.argsort(-best, kind="stable")[:top])
    return np.stack([2 * pairs, 2 * pairs + 1], axis=1).reshape(-1)


def check_top_directions(top: int, popsize: int, antithetic: bool) -> None:
    """ValueError unless ``top`` antithetic pairs exist in a population of ``popsize`` (0: all, always fine)."""
    if top and not antithetic:
        raise ValueError(f"top_directions={top} ranks antithetic pairs; it needs antithetic=True")
    if top > popsize // 2:
        raise ValueError(f"top_directions={top} is more than the {popsize // 2} antithetic pairs of "
                         f"popsize={popsize}; accepted: 0 (all) to {popsize // 2}")


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

    ``schedule.sigma_adapt="pgpe"`` makes ``sigma`` a (num_params,) array adapted every generation (PGPE);
    ``schedule.top_directions=b`` updates from the best ``b`` antithetic pairs only (ARS). See docs/es.md.
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
        check_top_directions(self.schedule.top_directions, self.popsize, self.antithetic)
        self.lr = self.schedule.lr  # current values; they decay in tell
        #: the current noise scale: a float, or with sigma_adapt="pgpe" one per parameter (float64 array)
        self.sigma: float | np.ndarray = self._initial_sigma()
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

    def _initial_sigma(self) -> float | np.ndarray:
        if self.schedule.sigma_adapt == "pgpe":
            return np.full(self.num_params, self.schedule.sigma, dtype=np.float64)
        return self.schedule.sigma

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
    def utilities(self, fitnesses: Any) -> tuple[np.ndarray, np.ndarray]:
        """(shaped utility of each individual, the individuals that enter the update) for the pending generation.

        The L2 penalty is applied to the raw fitnesses, then (``top_directions = b``) only the ``b`` antithetic
        pairs with the highest ``max(f+, f-)`` are kept (ties: the lower pair index), and the fitnesses of
        the kept individuals are shaped; the others get utility 0.
        """
        f = check_fitnesses(fitnesses, self.popsize)
        l2 = self.schedule.l2
        if l2 > 0:
            # Original code: fitness_i - l2 * mean(theta_i^2) on the raw fitness, before shaping.
            sq = np.array([np.mean(np.square(self.individual(i))) for i in range(self.popsize)])
            f = f - l2 * sq
        kept = top_pairs(f, self.schedule.top_directions)
        if kept.size == self.popsize:
            return shape_fitness(f, self.schedule.fitness_shaping), kept
        w = np.zeros(self.popsize, dtype=np.float64)
        w[kept] = shape_fitness(f[kept], self.schedule.fitness_shaping)
        return w, kept

    def gradient(self, fitnesses: Any) -> np.ndarray:
        """ES estimate of grad E[F] for the pending generation (L2 penalty, shaping, top directions); no update."""
        return self._gradient(*self.utilities(fitnesses))

    def _gradient(self, utilities: np.ndarray, kept: np.ndarray) -> np.ndarray:
        offsets = self._pending()
        w = utilities * self.signs
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
        grad /= kept.size * self.sigma
        return grad

    def sigma_gradient(self, utilities: np.ndarray, kept: np.ndarray) -> np.ndarray:
        """PGPE's gradient of E[F] w.r.t. each log sigma_k: ``mean_j a_j (z_jk^2 - 1)`` over the kept samples.

        ``z_j`` is sample j's unit noise; with antithetic pairs a sample is a pair and ``a_j`` the mean utility
        of its two members minus the mean utility of all kept individuals (without pairs: each individual's
        utility minus that mean). A positive entry: the samples that went wider along k scored better.
        """
        offsets = self._pending()
        a = utilities[kept] - utilities[kept].mean()
        members = kept
        if self.antithetic:  # one symmetric sample per pair: kept holds both members of each kept pair
            a = 0.5 * (a[0::2] + a[1::2])
            members = kept[0::2]
        out = np.zeros(self.num_params, dtype=np.float64)
        for aj, i in zip(a.tolist(), members.tolist()):  # one vector operation per sample, in a fixed order
            if aj != 0.0:
                z = self.noise.get(int(offsets[i]), self.num_params).astype(np.float64)
                out += aj * (z * z - 1.0)
        return out / len(members)

    def tell(self, fitnesses: Any) -> None:
        """Update mean from this generation's fitnesses (higher is better), then lr and sigma."""
        utilities, kept = self.utilities(fitnesses)
        grad = self._gradient(utilities, kept)
        self._mean = self._mean + self.optimizer.step(grad, self.lr)
        if self.schedule.sigma_adapt == "pgpe":
            self.sigma = self.schedule.adapted_sigma(self.sigma, self.sigma_gradient(utilities, kept))
            self.lr = decayed(self.lr, self.schedule.lr_decay, self.schedule.lr_floor)
        else:
            self.lr, self.sigma = self.schedule.decay(self.lr, self.sigma)
        self._offsets = None
        self.generation += 1

    # ------------------------------------------------------------------ checkpoint
    def _loaded_sigma(self, value: Any) -> float | np.ndarray:
        """A state's sigma: a float, or with sigma_adapt="pgpe" one per parameter."""
        if self.schedule.sigma_adapt != "pgpe":
            return float(value)
        arr = np.array(value, dtype=np.float64).reshape(-1)
        if arr.shape != (self.num_params,) or not np.all(np.isfinite(arr) & (arr > 0)):
            raise ValueError(f"state has sigma of shape {arr.shape}; accepted: {self.num_params} positive numbers "
                             "(sigma_adapt='pgpe')")
        return arr

    def state_dict(self) -> dict[str, Any]:
        """All needed to continue bit-identically: mean, schedules, optimizer moments, RNG, pending ask."""
        return {
            "kind": "OpenAIES",
            "num_params": self.num_params, "popsize": self.popsize, "antithetic": self.antithetic,
            **self.schedule.state(self.lr, np.copy(self.sigma) if self.schedule.sigma_adapt == "pgpe" else self.sigma),
            "seed": self.seed,
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
        self.lr = float(state["lr"])
        self.sigma = self._loaded_sigma(state["sigma"])
        self.seed = int(state["seed"])
        self.optimizer = make_optimizer(schedule.optimizer, self.num_params, momentum=schedule.momentum)
        self.optimizer.load_state_dict(state["optimizer"])
        self.generation = int(state["generation"])
        self._mean = np.array(state["mean"], dtype=np.float64)
        self._rng = np.random.Generator(np.random.PCG64())
        self._rng.bit_generator.state = copy.deepcopy(state["rng"])
        self._offsets = None if state["offsets"] is None else np.array(state["offsets"], dtype=np.int64)

