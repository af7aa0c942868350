"""ES strategies via ask/tell alone: convergence, determinism, checkpoints, mixture gradient, bad input."""

from __future__ import annotations

import itertools
import pickle
from dataclasses import fields, replace

import numpy as np
import pytest
import torch

from agents.es import (MIXTURE_SCHEDULE, ORIGINAL_CODE, Adam, GaussianMixturePopulation, NoiseTable, OpenAIES,
                       SGD, Schedule, Strategy, centered_ranks, shape_fitness, shared_noise_table)

D = 100
TABLE = NoiseTable(seed=7, size=2**18)
TARGET = np.random.default_rng(1).uniform(-2.0, 2.0, D)


def sphere(x: np.ndarray) -> np.ndarray:
    """Negative squared distance to a shifted optimum (maximised at TARGET)."""
    return -np.sum((np.atleast_2d(x) - TARGET) ** 2, axis=1)


def run(es: OpenAIES, generations: int) -> float:
    """Fraction of the initial distance to the optimum left after ``generations``."""
    d0 = np.linalg.norm(es.mean - TARGET)
    for _ in range(generations):
        es.ask()
        es.tell(sphere(es.individuals()))
    return float(np.linalg.norm(es.mean - TARGET) / d0)


SCHEDULE_FIELDS = {f.name for f in fields(Schedule)}


def make_es(**kw) -> OpenAIES:
    """An OpenAIES on the sphere; keyword arguments that are Schedule fields go into its schedule."""
    schedule = dict(sigma=0.1, lr=1.0, optimizer="sgd", lr_decay=0.99, lr_floor=0.01, sigma_decay=1.0, l2=0.0)
    args = dict(popsize=50, seed=3, noise_table=TABLE)
    for k, v in kw.items():
        (schedule if k in SCHEDULE_FIELDS else args)[k] = v
    return OpenAIES(D, schedule=Schedule(**schedule), **args)


def mixture_schedule(**kw) -> Schedule:
    return replace(MIXTURE_SCHEDULE, **kw)


# ------------------------------------------------------------------------------------------ noise table


def test_noise_table_is_deterministic_standard_normal():
    a, b = NoiseTable(5, 2**16), NoiseTable(5, 2**16)
    assert np.array_equal(a.get(0, 2**16), b.get(0, 2**16))
    assert not np.array_equal(a.get(0, 100), NoiseTable(6, 2**16).get(0, 100))
    x = a.get(0, 2**16)
    assert x.dtype == np.float32 and abs(x.mean()) < 0.02 and abs(x.std() - 1) < 0.02
    assert not x.flags.writeable
    rng = np.random.default_rng(0)
    offs = [a.sample_offset(rng, 1000) for _ in range(200)]
    assert min(offs) >= 0 and max(offs) <= 2**16 - 1000
    assert shared_noise_table(1, 1024) is shared_noise_table(1, 1024)


def test_noise_table_bad_input():
    t = NoiseTable(0, 1000)
    with pytest.raises(ValueError, match="offset"):
        t.get(990, 20)
    with pytest.raises(ValueError, match="dim"):
        t.get(0, 2000)
    with pytest.raises(ValueError, match="size"):
        NoiseTable(0, 0)


# ------------------------------------------------------------------------------------------ OpenAI-ES


def test_sgd_solves_shifted_sphere():
    es = make_es()
    assert isinstance(es, Strategy)
    assert run(es, 350) < 0.1
    assert es.generation == 350


def test_adam_solves_shifted_sphere():
    assert run(make_es(optimizer="adam", lr=0.1, lr_decay=0.995), 120) < 0.1


def test_sgd_momentum_improves():
    assert run(make_es(momentum=0.9), 350) < 0.1


def test_antithetic_pairs_are_exact_negatives():
    es = make_es()  # mean 0: individuals are the signed noise itself, so pairs must be exact negatives
    offsets = es.ask()
    assert offsets.shape == (50,) and offsets.dtype == np.int64
    assert np.array_equal(offsets[0::2], offsets[1::2])
    assert [es.perturbation(i)[1] for i in range(4)] == [1.0, -1.0, 1.0, -1.0]
    X = es.individuals()
    assert np.array_equal(X[0::2], -X[1::2])
    assert np.array_equal(X[0], 0.1 * TABLE.get(int(offsets[0]), D).astype(np.float64))
    shifted = make_es(init=np.linspace(-1, 1, D))
    Y = shifted.individuals() - shifted.mean
    assert np.allclose(Y[0::2], -Y[1::2], rtol=0, atol=1e-15)
    assert np.array_equal(es.ask(), offsets)  # idempotent until tell


def test_defaults_are_the_original_code():
    es = OpenAIES(10, noise_table=TABLE)
    s = es.schedule
    assert (es.popsize, es.sigma, es.lr, s.lr_decay, s.lr_floor) == (200, 0.1, 0.2, 0.995, 0.001)
    assert (s.sigma_decay, s.sigma_floor, s.l2, es.antithetic) == (0.999, 0.01, 0.01, True)
    assert (s.optimizer, s.momentum, s.fitness_shaping) == ("sgd", 0.0, "standardized_rank")
    assert ORIGINAL_CODE == {"popsize": 200, "schedule": Schedule(), "antithetic": True}
    assert MIXTURE_SCHEDULE == replace(Schedule(), l2=0.0)
    es.ask()
    es.tell(np.arange(200.0))
    assert es.lr == pytest.approx(0.2 * 0.995) and es.sigma == pytest.approx(0.1 * 0.999)


def test_lr_and_sigma_decay_stop_at_floor():
    es = make_es(lr=0.02, lr_decay=0.5, lr_floor=0.01, sigma=0.1, sigma_decay=0.5, sigma_floor=0.03)
    for _ in range(5):
        es.ask()
        es.tell(sphere(es.individuals()))
    assert es.lr == 0.01 and es.sigma == 0.03


def test_l2_penalty_is_on_raw_fitness_before_shaping():
    es = make_es(l2=0.5, fitness_shaping="none", init=np.full(D, 2.0))
    es.ask()
    g = es.gradient(np.zeros(50))  # constant fitness: only the penalty drives the step, towards 0
    assert np.dot(g, es.mean) < 0
    X = es.individuals()
    expected = -0.5 * np.mean(X**2, axis=1)
    eps = (X - es.mean) / es.sigma
    assert np.allclose(g, expected @ eps / (50 * es.sigma))


def test_gradient_matches_plain_formula_without_antithetic():
    es = make_es(antithetic=False, fitness_shaping="centered_rank")
    es.ask()
    X = es.individuals()
    f = sphere(X)
    eps = (X - es.mean) / es.sigma
    assert np.allclose(es.gradient(f), centered_ranks(f) @ eps / (50 * 0.1))


def test_replicas_stay_bit_identical():
    a, b = make_es(optimizer="adam", lr=0.1), make_es(optimizer="adam", lr=0.1)
    for _ in range(20):
        offs = a.ask()
        assert np.array_equal(offs, b.ask())
        f = sphere(a.individuals())
        a.tell(f)
        b.tell(f.copy())
    assert np.array_equal(a.mean, b.mean) and a.lr == b.lr and a.sigma == b.sigma


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_state_dict_round_trip_continues_identically(optimizer):
    a = make_es(optimizer=optimizer, momentum=0.5 if optimizer == "sgd" else 0.0, lr=0.1)
    for _ in range(5):
        a.ask()
        a.tell(sphere(a.individuals()))
    a.ask()  # a pending ask is part of the state too
    state = pickle.loads(pickle.dumps(a.state_dict()))
    b = make_es(optimizer=optimizer, momentum=0.5 if optimizer == "sgd" else 0.0, lr=0.1, seed=99)
    b.load_state_dict(state)
    for _ in range(5):
        assert np.array_equal(a.ask(), b.ask())
        f = sphere(a.individuals())
        a.tell(f)
        b.tell(f)
    assert np.array_equal(a.mean, b.mean) and a.generation == b.generation == 10


def test_openai_es_bad_input():
    with pytest.raises(ValueError, match="popsize must be even"):
        OpenAIES(10, popsize=7, noise_table=TABLE)
    with pytest.raises(TypeError, match="schedule"):
        OpenAIES(10, schedule={"lr": 0.1}, noise_table=TABLE)
    with pytest.raises(ValueError, match="init"):
        OpenAIES(10, init=np.zeros(9), noise_table=TABLE)
    with pytest.raises(ValueError, match="num_params"):
        OpenAIES(10**6, noise_table=NoiseTable(0, 1000))
    es = OpenAIES(10, popsize=4, noise_table=TABLE)
    es.ask()
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        es.tell([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="finite"):
        es.tell([1.0, float("nan"), 3.0, 4.0])
    with pytest.raises(ValueError, match="finite"):
        es.tell([1.0, float("inf"), 3.0, 4.0])
    assert es.generation == 0
    with pytest.raises(ValueError, match="num_params"):
        OpenAIES(11, popsize=4, noise_table=TABLE).load_state_dict(es.state_dict())


@pytest.mark.parametrize("arg, val, accepted", [
    ("sigma", 0.0, "> 0"), ("sigma", -1.0, "> 0"), ("lr", 0, "> 0"), ("lr", float("nan"), "> 0"),
    ("lr", "fast", "> 0"), ("lr_decay", 1.5, "(0, 1]"), ("sigma_decay", 0.0, "(0, 1]"), ("lr_floor", -1, ">= 0"),
    ("l2", float("inf"), ">= 0"), ("momentum", 1.0, "[0, 1)"), ("optimizer", "rmsprop", "sgd"),
    ("fitness_shaping", "rank", "centered_rank"),
])
def test_schedule_bad_values_are_named(arg, val, accepted):
    with pytest.raises(ValueError) as info:
        Schedule(**{arg: val})
    assert arg in str(info.value) and accepted in str(info.value) and repr(val) in str(info.value)


def test_schedule_values_and_decay():
    s = Schedule(lr=1, sigma=np.float32(0.5), lr_decay=0.5, lr_floor=0.3, sigma_decay=0.5, sigma_floor=0.1)
    assert type(s.lr) is float and type(s.sigma) is float  # stored as Python floats, as state_dicts hold them
    assert s.decay(1.0, 0.5) == (0.5, 0.25) and s.decay(0.5, 0.25) == (0.3, 0.125) and s.decay(0.3, 0.1) == (0.3, 0.1)
    with pytest.raises(ValueError, match="momentum applies to optimizer='sgd'"):
        Schedule(optimizer="adam", momentum=0.5)
    with pytest.raises(AttributeError):
        s.lr = 2.0  # frozen: a schedule is a value, the strategies hold the decaying lr and sigma


#: Schedule entries a strategy state gained later (PGPE, ARS); states without them mean "off".
LATER_KEYS = {"sigma_adapt", "sigma_lr", "sigma_max_change", "top_directions"}


def test_state_dict_format_is_unchanged():
    """Checkpoints written before the Schedule existed hold exactly these keys (plus the later options'); they
    must keep loading, also without the later keys."""
    es = make_es(optimizer="sgd", momentum=0.5, lr_decay=0.9, l2=0.2, fitness_shaping="zscore")
    assert set(es.state_dict()) == LATER_KEYS | {
        "kind", "num_params", "popsize", "antithetic", "sigma", "lr", "lr_decay", "lr_floor", "sigma_decay",
        "sigma_floor", "l2", "fitness_shaping", "optimizer_name", "seed", "noise_table", "generation", "mean",
        "optimizer", "rng", "offsets"}
    for _ in range(3):
        es.ask()
        es.tell(sphere(es.individuals()))
    other = OpenAIES(D, popsize=50, noise_table=TABLE)  # default schedule: the state's wins
    other.load_state_dict(es.state_dict())
    assert replace(other.schedule, lr=es.schedule.lr, sigma=es.schedule.sigma) == es.schedule
    assert (other.lr, other.sigma) == (es.lr, es.sigma) and other.optimizer.momentum == 0.5
    old = {k: v for k, v in es.state_dict().items() if k not in LATER_KEYS}  # as written before them
    older = OpenAIES(D, popsize=50, noise_table=TABLE, schedule=Schedule(sigma_adapt="pgpe", top_directions=3))
    older.load_state_dict(old)
    assert (older.schedule.sigma_adapt, older.schedule.top_directions) == ("off", 0) and older.sigma == es.sigma
    assert np.array_equal(es.ask(), older.ask())
    f = sphere(es.individuals())
    es.tell(f)
    older.tell(f)
    assert np.array_equal(es.mean, older.mean) and es.sigma == older.sigma
    pop = GaussianMixturePopulation(30, 4, 3, popsize=10, schedule=mixture_schedule(optimizer="adam"))
    assert set(pop.state_dict()) == LATER_KEYS | {
        "kind", "num_synapses", "num_rules", "num_coefficients", "other_params", "popsize", "sigma", "lr",
        "lr_decay", "lr_floor", "sigma_decay", "sigma_floor", "l2", "fitness_shaping", "optimizer_name", "seed",
        "dtype", "generation", "theta", "optimizer", "rng", "seeds"}


def test_fitness_shaping():
    f = np.array([3.0, -1.0, 10.0, 3.0])
    assert np.allclose(centered_ranks(f), [-1 / 6, -0.5, 0.5, 1 / 6])  # ties broken by position
    s = shape_fitness(f, "standardized_rank")
    assert abs(s.mean()) < 1e-12 and abs(s.std() - 1) < 1e-12


def test_optimizers_ascend():
    for opt in (SGD(3), SGD(3, momentum=0.9), Adam(3)):
        x = np.zeros(3)
        for _ in range(200):
            x = x + opt.step(-(x - 1.0), 0.05)
        assert np.allclose(x, 1.0, atol=0.05)


# ------------------------------------------------------------------------------------------ mixture


def exact_gradient(mu: np.ndarray, lam: np.ndarray, a: np.ndarray,
                   b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact grad of E[F] for F = sum_i a_i h_{k_i} + b[k_1, k_2] (N=2, M=2, k=1), enumerating assignments."""
    t_mu = torch.tensor(mu, dtype=torch.float64, requires_grad=True)
    t_lam = torch.tensor(lam, dtype=torch.float64, requires_grad=True)
    p = torch.softmax(t_lam, dim=1)
    expectation = 0.0
    for k1, k2 in itertools.product(range(2), repeat=2):
        # E_h[F | k] = sum_i a_i mu_{k_i} + b[k1, k2] since E[h_m] = mu_m
        ef = a[0] * t_mu[k1, 0] + a[1] * t_mu[k2, 0] + b[k1, k2]
        expectation = expectation + p[0, k1] * p[1, k2] * ef
    g_mu, g_lam = torch.autograd.grad(expectation, (t_mu, t_lam))
    return g_mu.numpy(), g_lam.numpy()


def toy_fitness(pop: GaussianMixturePopulation, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = []
    for rules, k, _ in pop.individuals(pop.ask()):
        out.append(a[0] * rules[k[0], 0] + a[1] * rules[k[1], 0] + b[k[0], k[1]])
    return np.array(out)


def test_mixture_gradient_matches_exact_gradient():
    mu = np.array([[0.5], [-1.0]])
    lam = np.array([[0.3, -0.2], [-0.5, 0.4]])
    a, b = np.array([1.0, -2.0]), np.array([[1.0, -1.0], [0.5, 2.0]])
    # 'baseline' (F - mean F) keeps the estimator's variance low; its bias is O(1/P), far below the tolerance.
    pop = GaussianMixturePopulation(2, 2, 1, popsize=20000, seed=1,
                                    schedule=mixture_schedule(sigma=1.0, fitness_shaping="baseline"),
                                    init_means=mu, init_logits=lam, dtype=np.float64)
    est = pop.gradient(toy_fitness(pop, a, b))
    g_mu, g_lam = exact_gradient(mu, lam, a, b)
    est_mu, est_lam = est[:2].reshape(2, 1), est[2:6].reshape(2, 2)
    assert np.allclose(est_lam, g_lam, atol=0.03), (est_lam, g_lam)
    assert np.allclose(est_mu, g_mu, atol=0.03), (est_mu, g_mu)
    assert np.allclose(est_lam.sum(axis=1), 0.0, atol=1e-9)  # score of a softmax sums to zero per synapse


def test_mixture_samples_follow_the_logits():
    lam = np.log(np.array([[0.7, 0.2, 0.1]] * 500))
    pop = GaussianMixturePopulation(500, 3, 2, popsize=40, seed=0, init_logits=lam, dtype=np.float64)
    ks = np.concatenate([k for _, k, _ in pop.individuals(pop.ask())])
    assert np.allclose(np.bincount(ks, minlength=3) / ks.size, [0.7, 0.2, 0.1], atol=0.01)
    rules, k, other = pop.member(3)
    assert rules.shape == (3, 2) and k.shape == (500,) and k.dtype == np.int64 and other.shape == (0,)
    r2, k2, _ = pop.individual(int(pop.ask()[3]))
    assert np.array_equal(rules, r2) and np.array_equal(k, k2)


def test_mixture_improves_toy_objective():
    # Each synapse has a target; the population must learn rules near the targets and assign synapses to them.
    targets = np.repeat([-1.0, 1.0], 20)
    N = targets.size

    def fitness(pop):
        return np.array([-np.mean((rules[k, 0] - targets) ** 2) - 0.1 * np.mean(o**2)
                         for rules, k, o in pop.individuals(pop.ask())])

    schedule = mixture_schedule(sigma=0.2, lr=0.1, optimizer="adam", lr_decay=1.0, sigma_decay=1.0)
    pop = GaussianMixturePopulation(N, 2, 1, other_params=3, popsize=40, schedule=schedule, seed=2,
                                    init_means=np.zeros((2, 1)), init_other=np.ones(3))
    first = fitness(pop).mean()
    for _ in range(80):
        pop.tell(fitness(pop))
    rules, k, other = pop.mode()
    assert fitness(pop).mean() > first + 0.5
    assert np.mean((rules[k, 0] - targets) ** 2) < 0.1
    assert np.all(np.abs(other) < 0.5)


def test_mixture_replicas_and_state_dict():
    def make(seed=4):
        return GaussianMixturePopulation(30, 4, 3, other_params=5, popsize=10,
                                         schedule=mixture_schedule(optimizer="adam", lr=0.05), seed=seed)

    def f(pop):
        return np.array([rules.sum() - o.sum() + k.mean() for rules, k, o in pop.individuals(pop.ask())])

    a, b = make(), make()
    for _ in range(3):
        fa = f(a)
        assert np.array_equal(a.ask(), b.ask())
        a.tell(fa)
        b.tell(fa)
    assert np.array_equal(a.mean, b.mean)
    a.ask()
    c = make(seed=123)
    c.load_state_dict(pickle.loads(pickle.dumps(a.state_dict())))
    for _ in range(3):
        assert np.array_equal(a.ask(), c.ask())
        fa = f(a)
        a.tell(fa)
        c.tell(fa)
    assert np.array_equal(a.mean, c.mean) and a.generation == c.generation == 6 and isinstance(c, Strategy)


def test_mixture_bad_input():
    with pytest.raises(ValueError, match="max_logits"):
        GaussianMixturePopulation(100_000, 100_000, 5)
    with pytest.raises(ValueError, match="num_rules"):
        GaussianMixturePopulation(10, 20, 5)
    with pytest.raises(ValueError, match="popsize"):
        GaussianMixturePopulation(10, 2, 5, popsize=1)
    with pytest.raises(TypeError, match="schedule"):
        GaussianMixturePopulation(10, 2, 5, schedule=0.1)
    with pytest.raises(ValueError, match="init_logits"):
        GaussianMixturePopulation(10, 2, 5, init_logits=np.zeros((2, 10)))
    pop = GaussianMixturePopulation(10, 2, 5, popsize=4)
    with pytest.raises(ValueError, match="finite"):
        pop.tell([0.0, 1.0, float("nan"), 2.0])
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        pop.tell([0.0, 1.0])
    with pytest.raises(ValueError, match="seed"):
        pop.individual(-3)
    with pytest.raises(ValueError, match="num_synapses"):
        GaussianMixturePopulation(11, 2, 5, popsize=4).load_state_dict(pop.state_dict())
