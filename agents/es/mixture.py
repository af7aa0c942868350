"""Gaussian-mixture population over shared Hebbian rules (genomic-bottleneck paper, sec. 3.4), ask/tell.

Meta-parameters: component means ``mu (M, k)``, per-synapse logits ``lam (N, M)`` and an optional isotropic
block ``nu (O,)`` for parameters that are not rules (e.g. static conv weights). One sample (individual) is
``z = (k, h, o)``: an assignment ``k_i ~ Categorical(softmax(lam_i))`` per synapse, one rule per component
``h_m = mu_m + sigma * eps_m`` (every synapse assigned to ``m`` uses ``h_m``) and ``o = nu + sigma * eps_o``.
The update is the score-function (REINFORCE) estimate of grad E[F], computed with torch autograd.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Iterator

import numpy as np
import torch

from agents.util.threads import one_torch_thread

from .openai_es import check_int
from .optimizers import make_optimizer
from .schedule import Schedule, as_schedule
from .shaping import check_fitnesses, shape_fitness

#: Default cap on N * M (the logits table); peak memory is roughly 40 bytes per logit (float32, Adam).
DEFAULT_MAX_LOGITS = 2**25
#: The mixture's default schedule: the original code's without the L2 penalty.
MIXTURE_SCHEDULE = Schedule(l2=0.0)


def check_mixture_schedule(schedule: Schedule) -> Schedule:
    """``schedule`` if the mixture can follow it; ValueError for the options of OpenAI-ES only."""
    if schedule.sigma_adapt != "off" or schedule.top_directions != 0:
        raise ValueError(f"sigma_adapt={schedule.sigma_adapt!r} and top_directions={schedule.top_directions} "
                         "apply to OpenAI-ES (antithetic pairs, one sigma per parameter); the Gaussian mixture "
                         "of shared rules (rho > 1) accepts sigma_adapt='off' and top_directions=0 only")
    return schedule


class GaussianMixturePopulation:
    """Shared-rule population: ``ask()`` gives a seed per individual; ``individual(seed)`` rebuilds it.

    Meant for M << N (rho = N/M >= 2); for one rule per synapse (rho = 1) use ``OpenAIES`` on the flat vector,
    which is the same distribution without the N x N logits table.
    """

    def __init__(self, num_synapses: int, num_rules: int, num_coefficients: int, other_params: int = 0,
                 popsize: int = 200, schedule: Schedule | None = None, seed: int = 0,
                 init_means: np.ndarray | None = None, init_logits: np.ndarray | None = None,
                 init_other: np.ndarray | None = None, max_logits: int = DEFAULT_MAX_LOGITS,
                 dtype: Any = np.float32) -> None:
        """Set up the mixture; means default to N(0, 1) draws from ``seed``, logits to 0, other block to 0.

        ``schedule`` defaults to :data:`MIXTURE_SCHEDULE`.
        """
        self.num_synapses = check_int("num_synapses", num_synapses, 1)
        self.num_rules = check_int("num_rules", num_rules, 1)
        self.num_coefficients = check_int("num_coefficients", num_coefficients, 1)
        self.other_params = check_int("other_params", other_params, 0)
        self.max_logits = check_int("max_logits", max_logits, 1)
        n_logits = self.num_synapses * self.num_rules
        if n_logits > self.max_logits:
            raise ValueError(
                f"num_synapses * num_rules = {self.num_synapses} * {self.num_rules} = {n_logits} logits "
                f"exceeds max_logits={self.max_logits} (roughly {40 * n_logits / 2**30:.1f} GiB at peak); "
                "the mixture is meant for num_rules << num_synapses: use OpenAIES for one rule per synapse "
                "(rho=1), a larger rho, "
                "or pass a larger max_logits if the memory is there")
        if self.num_rules > self.num_synapses:
            raise ValueError(f"num_rules must be <= num_synapses={self.num_synapses}, got {num_rules}")
        self.popsize = check_int("popsize", popsize, 2)
        self.schedule = check_mixture_schedule(as_schedule(MIXTURE_SCHEDULE if schedule is None else schedule))
        self.lr, self.sigma = self.schedule.lr, self.schedule.sigma  # current values; they decay in tell
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
        M, k, N, O = self.num_rules, self.num_coefficients, self.num_synapses, self.other_params
        self._sizes = (M * k, N * M, O)
        self.num_meta_params = sum(self._sizes)
        self.optimizer = make_optimizer(self.schedule.optimizer, self.num_meta_params,
                                        momentum=self.schedule.momentum, dtype=self.dtype)
        self.seed = check_int("seed", seed, 0)

        theta = np.zeros(self.num_meta_params, dtype=self.dtype)
        mu, lam, nu = self._views(theta)
        if init_means is None:
            init_rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, 1])))
            mu[...] = init_rng.standard_normal((M, k))
        else:
            mu[...] = self._check_init("init_means", init_means, (M, k))
        if init_logits is not None:
            lam[...] = self._check_init("init_logits", init_logits, (N, M))
        if init_other is not None:
            nu[...] = self._check_init("init_other", init_other, (O,))
        self._theta = theta
        self._rng = np.random.Generator(np.random.PCG64(self.seed))
        self._seeds: np.ndarray | None = None
        self._cdf: torch.Tensor | None = None
        self.generation = 0

    # ------------------------------------------------------------------ parameters
    @staticmethod
    def _check_init(name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
        arr = np.asarray(value, dtype=np.float64)
        if arr.shape != shape or not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite with shape {shape}, got shape {arr.shape}")
        return arr

    def _views(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a, b, _ = self._sizes
        M, k, N = self.num_rules, self.num_coefficients, self.num_synapses
        return theta[:a].reshape(M, k), theta[a:a + b].reshape(N, M), theta[a + b:]

    @property
    def means(self) -> np.ndarray:
        """Component means mu, (M, k) (a copy)."""
        return self._views(self._theta)[0].copy()

    @property
    def logits(self) -> np.ndarray:
        """Per-synapse assignment logits lam, (N, M) (a copy)."""
        return self._views(self._theta)[1].copy()

    @property
    def other_mean(self) -> np.ndarray:
        """Mean of the isotropic non-rule block, (O,) (a copy)."""
        return self._views(self._theta)[2].copy()

    @property
    def mean(self) -> np.ndarray:
        """All meta-parameters as one flat vector [mu, lam, nu] (a copy)."""
        return self._theta.copy()

    def mode(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The distribution's most likely individual: (mu, argmax assignment, nu) — the 'centre' policy."""
        mu, lam, nu = self._views(self._theta)
        return mu.copy(), np.argmax(lam, axis=1).astype(np.int64), nu.copy()

    # ------------------------------------------------------------------ sampling
    def _cumulative(self) -> torch.Tensor:
        if self._cdf is None:
            lam = torch.from_numpy(self._views(self._theta)[1]).double()
            with one_torch_thread():
                self._cdf = torch.softmax(lam, dim=1).cumsum_(dim=1).contiguous()
        return self._cdf

    def ask(self) -> np.ndarray:
        """This generation's individual seeds, (popsize,) int64. Idempotent until ``tell``."""
        if self._seeds is None:
            self._seeds = self._rng.integers(0, 2**63 - 1, size=self.popsize, dtype=np.int64)
        return self._seeds.copy()

    def _noise(self, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(u (N,), eps_rules (M, k), eps_other (O,)) of one seed, drawn in this fixed order."""
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int (from ask()), got {seed!r}")
        rng = np.random.Generator(np.random.PCG64(int(seed)))
        u = rng.random(self.num_synapses)
        eps_rules = rng.standard_normal((self.num_rules, self.num_coefficients))
        eps_other = rng.standard_normal(self.other_params)
        return u, eps_rules, eps_other

    def _assign(self, u: np.ndarray) -> np.ndarray:
        """Inverse-CDF categorical draws: u (N, B) uniforms -> (B, N) int64 assignments, one pass per row."""
        cdf = self._cumulative()
        k = torch.searchsorted(cdf, torch.from_numpy(np.ascontiguousarray(u)), right=True)
        k.clamp_(max=self.num_rules - 1)  # guards cdf[-1] rounding below 1
        return np.ascontiguousarray(k.numpy().T, dtype=np.int64)

    def _samples(self, seeds: Any, chunk: int = 32) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(assignment, eps_rules, eps_other) per seed; assignments drawn ``chunk`` individuals at a time."""
        seeds = [int(s) for s in seeds]
        for start in range(0, len(seeds), chunk):
            noise = [self._noise(s) for s in seeds[start:start + chunk]]
            ks = self._assign(np.stack([n[0] for n in noise], axis=1))
            for kk, n in zip(ks, noise):
                yield kk, n[1], n[2]

    def individual(self, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rule_table (M, k), assignment (N,) int64, other (O,)) of the individual with this seed."""
        return self.individuals([seed])[0]

    def individuals(self, seeds: Any) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``individual(s)`` for several seeds at once (faster: assignments are drawn in batches)."""
        mu, _, nu = self._views(self._theta)
        return [((mu + self.sigma * er).astype(self.dtype), k, (nu + self.sigma * eo).astype(self.dtype))
                for k, er, eo in self._samples(seeds)]

    def member(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Individual ``i`` of the pending generation (``individual(ask()[i])``)."""
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < self.popsize:
            raise ValueError(f"i must be an int in [0, {self.popsize}), got {i!r}")
        return self.individual(int(self.ask()[i]))

    # ------------------------------------------------------------------ update
    def gradient(self, fitnesses: Any) -> np.ndarray:
        """Score-function estimate of grad E[F] w.r.t. the flat [mu, lam, nu] for the pending generation.

        Differentiates L = (1/P) sum_j w_j log p(z_j | theta) with
        log p(z | theta) = sum_i log softmax(lam_i)[k_i] + sum_m log N(h_m | mu_m, sigma^2 I)
                           + log N(o | nu, sigma^2 I)
        and w_j the shaped fitnesses (baseline-subtracted by every shaping except 'none'). No update.
        """
        f = check_fitnesses(fitnesses, self.popsize)
        seeds = self.ask()
        P, M, N = self.popsize, self.num_rules, self.num_synapses
        k, O = self.num_coefficients, self.other_params
        mu, lam, nu = self._views(self._theta)
        samples = list(self._samples(seeds))
        h = np.stack([mu + self.sigma * s[1] for s in samples]).astype(self.dtype)        # (P, M, k)
        o = np.stack([nu + self.sigma * s[2] for s in samples]).astype(self.dtype)        # (P, O)
        l2 = self.schedule.l2
        if l2 > 0:
            # As OpenAIES: l2 * mean of the individual's sampled parameters squared, on the raw fitness.
            sq = np.array([(np.sum(np.square(h[j], dtype=np.float64))
                            + np.sum(np.square(o[j], dtype=np.float64))) / (M * k + O) for j in range(P)])
            f = f - l2 * sq
        w = shape_fitness(f, self.schedule.fitness_shaping)
        counts = np.zeros(N * M, dtype=self.dtype)  # W = sum_j w_j onehot(k_j)
        rows = np.arange(N, dtype=np.int64) * M
        for j, s in enumerate(samples):
            if w[j] != 0.0:
                counts[rows + s[0]] += self.dtype.type(w[j])  # indices unique within one individual
        with one_torch_thread():
            t_mu = torch.tensor(mu, requires_grad=True)
            t_lam = torch.tensor(lam, requires_grad=True)
            t_nu = torch.tensor(nu, requires_grad=True)
            t_w = torch.tensor(w, dtype=t_mu.dtype)
            var = self.sigma ** 2
            log_assign = (torch.from_numpy(counts).view(N, M) * torch.log_softmax(t_lam, dim=1)).sum()
            ll_rules = (-((torch.from_numpy(h) - t_mu) ** 2).sum(dim=(1, 2)) / (2 * var)
                        - 0.5 * M * k * math.log(2 * math.pi * var))                        # (P,)
            ll_other = (-((torch.from_numpy(o) - t_nu) ** 2).sum(dim=1) / (2 * var)
                        - 0.5 * O * math.log(2 * math.pi * var))                            # (P,)
            objective = (log_assign + (t_w * (ll_rules + ll_other)).sum()) / P
            g_mu, g_lam, g_nu = torch.autograd.grad(objective, (t_mu, t_lam, t_nu), allow_unused=True)
        grad = np.empty(self.num_meta_params, dtype=self.dtype)
        gm, gl, gn = self._views(grad)
        gm[...] = g_mu.numpy()
        gl[...] = g_lam.numpy()
        gn[...] = 0.0 if g_nu is None else g_nu.numpy()
        return grad

    def tell(self, fitnesses: Any) -> None:
        """Ascend E[F] with this generation's fitnesses (higher is better), then decay lr and sigma."""
        grad = self.gradient(fitnesses)
        self._theta = (self._theta + self.optimizer.step(grad, self.lr)).astype(self.dtype, copy=False)
        self.lr, self.sigma = self.schedule.decay(self.lr, self.sigma)
        self._seeds = None
        self._cdf = None
        self.generation += 1

    # ------------------------------------------------------------------ checkpoint
    _CONFIG = ("num_synapses", "num_rules", "num_coefficients", "other_params")

    def state_dict(self) -> dict[str, Any]:
        """All needed to continue bit-identically: meta-parameters, schedules, optimizer, RNG, pending ask."""
        return {
            "kind": "GaussianMixturePopulation",
            **{key: getattr(self, key) for key in self._CONFIG},
            "popsize": self.popsize, **self.schedule.state(self.lr, self.sigma), "seed": self.seed, "dtype": self.dtype.name, "generation": self.generation,
            "theta": self._theta.copy(),
            "optimizer": self.optimizer.state_dict(), "rng": copy.deepcopy(self._rng.bit_generator.state),
            "seeds": None if self._seeds is None else self._seeds.copy(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from ``state_dict()``; the shapes (N, M, k, O) and dtype must match."""
        if state.get("kind") != "GaussianMixturePopulation":
            raise ValueError(f"state is for {state.get('kind')!r}, expected 'GaussianMixturePopulation'")
        for key in self._CONFIG:
            if int(state[key]) != getattr(self, key):
                raise ValueError(f"state has {key}={state[key]}, this population has {getattr(self, key)}")
        if np.dtype(state["dtype"]) != self.dtype:
            raise ValueError(f"state has dtype={state['dtype']}, this population has {self.dtype.name}")
        schedule = self.schedule.with_state(state)
        self.popsize = int(state["popsize"])
        self.schedule = schedule
        self.lr, self.sigma = float(state["lr"]), float(state["sigma"])
        self.seed = int(state["seed"])
        self.optimizer = make_optimizer(schedule.optimizer, self.num_meta_params, momentum=schedule.momentum,
                                        dtype=self.dtype)
        self.optimizer.load_state_dict(state["optimizer"])
        self.generation = int(state["generation"])
        theta = np.array(state["theta"], dtype=self.dtype)
        if theta.shape != (self.num_meta_params,):
            raise ValueError(f"state theta has shape {theta.shape}, expected ({self.num_meta_params},)")
        self._theta = theta
        self._rng = np.random.Generator(np.random.PCG64())
        self._rng.bit_generator.state = copy.deepcopy(state["rng"])
        self._seeds = None if state["seeds"] is None else np.array(state["seeds"], dtype=np.int64)
        self._cdf = None
