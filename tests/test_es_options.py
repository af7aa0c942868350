"""ES options of current practice on constructed data: PGPE's adaptive sigma, ARS's top directions."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from agents.es import GaussianMixturePopulation, NoiseTable, OpenAIES, Schedule, shape_fitness
from agents.es.openai_es import top_pairs

D = 40
TABLE = NoiseTable(seed=11, size=2**16)


def make(popsize: int = 40, **schedule) -> OpenAIES:
    base = dict(sigma=0.1, lr=0.05, sigma_decay=1.0, lr_decay=1.0, l2=0.0)
    base.update(schedule)
    return OpenAIES(D, popsize=popsize, schedule=Schedule(**base), seed=5, noise_table=TABLE,
                    init=np.linspace(-1, 1, D))


def unit_noise(es: OpenAIES) -> np.ndarray:
    """Each individual's unit noise z_i = (x_i - mean) / sigma, rebuilt from the individuals themselves."""
    return (es.individuals() - es.mean) / es.sigma


# ------------------------------------------------------------------------------------------ PGPE sigma


def test_pgpe_sigma_grows_where_wider_samples_score_better_and_shrinks_otherwise():
    es = make(popsize=200, sigma_adapt="pgpe")
    assert es.sigma.shape == (D,) and np.all(es.sigma == 0.1)
    es.ask()
    es.tell(np.sum(unit_noise(es)[:, :2] ** 2, axis=1))  # the further out along parameters 0 and 1, the better
    assert np.all(es.sigma[:2] > 0.1)
    assert np.all(es.sigma >= 0.1 * 0.8) and np.all(es.sigma <= 0.1 * 1.2)  # within the max change
    # the parameters the fitness ignores move less than those it rewards
    assert np.abs(es.sigma[2:] - 0.1).max() < (es.sigma[:2] - 0.1).min()
    down = make(popsize=200, sigma_adapt="pgpe")
    down.ask()
    down.tell(-np.sum(unit_noise(down)[:, :2] ** 2, axis=1))  # the closer, the better
    assert np.all(down.sigma[:2] < 0.1)


def test_pgpe_sigma_gradient_is_the_formula_on_the_pairs():
    es = make(popsize=10, sigma_adapt="pgpe")
    es.ask()
    f = np.random.default_rng(0).normal(size=10)
    u, kept = es.utilities(f)
    z = unit_noise(es)[0::2]  # one symmetric sample per pair
    a = 0.5 * (u[0::2] + u[1::2]) - u.mean()
    expected = (a[:, None] * (z**2 - 1)).mean(axis=0)
    assert np.allclose(es.sigma_gradient(u, kept), expected, rtol=1e-5, atol=1e-9)  # z from float32 noise
    sigma = es.sigma.copy()
    es.tell(f)  # the step: sigma times 1 + clip(sigma_lr * gradient, +-max change), decay 1
    assert np.allclose(es.sigma, sigma * (1 + np.clip(0.1 * expected, -0.2, 0.2)), rtol=1e-5)


def test_pgpe_max_change_decay_and_floor():
    s = Schedule(sigma=0.1, sigma_adapt="pgpe", sigma_lr=100.0, sigma_max_change=0.2, sigma_decay=0.5,
                 sigma_floor=0.03)
    sigma = np.array([0.1, 0.1, 0.1, 0.05])
    out = s.adapted_sigma(sigma, np.array([1.0, -1.0, 0.0, -1.0]))
    assert np.allclose(out, [0.1 * 1.2 * 0.5, 0.1 * 0.8 * 0.5, 0.1 * 0.5, 0.03])  # clipped, decayed, floored
    # no adaptation signal: exactly the scalar decay of the schedule
    same = Schedule(sigma=0.1, sigma_decay=0.9, sigma_floor=0.01, sigma_adapt="pgpe")
    v = np.full(3, 0.1)
    for _ in range(30):
        v = same.adapted_sigma(v, np.zeros(3))
        assert np.all(v == v[0])
    w = 0.1
    for _ in range(30):
        w = same.decay(0.2, w)[1]
    assert v[0] == pytest.approx(w, rel=1e-12)
    # a starting sigma below the floor is not raised to it
    low = Schedule(sigma=0.005, sigma_floor=0.01, sigma_adapt="pgpe")
    assert np.all(low.adapted_sigma(np.full(2, 0.005), np.array([-1.0, -1.0])) >= 0.005)


def test_pgpe_state_round_trip_and_replicas_continue_identically():
    a = make(sigma_adapt="pgpe", optimizer="adam", top_directions=5)
    rng = np.random.default_rng(1)
    for _ in range(3):
        a.ask()
        a.tell(rng.normal(size=40) - np.sum(a.individuals() ** 2, axis=1))
    a.ask()
    state = pickle.loads(pickle.dumps(a.state_dict()))
    assert state["sigma"].shape == (D,) and state["sigma_adapt"] == "pgpe"
    b = make()  # built with sigma_adapt off: the state's schedule wins
    b.load_state_dict(state)
    assert b.schedule.sigma_adapt == "pgpe" and np.array_equal(b.sigma, a.sigma)
    for _ in range(3):
        assert np.array_equal(a.ask(), b.ask())
        f = -np.sum(a.individuals() ** 2, axis=1)
        a.tell(f)
        b.tell(f)
    assert np.array_equal(a.mean, b.mean) and np.array_equal(a.sigma, b.sigma)
    bad = dict(state, sigma=np.ones(3))
    with pytest.raises(ValueError, match="sigma of shape"):
        make().load_state_dict(bad)


def test_pgpe_individuals_use_the_per_parameter_sigma():
    es = make(sigma_adapt="pgpe")
    es.sigma = np.linspace(0.01, 0.5, D)
    offset, sign = es.perturbation(3)
    assert np.array_equal(es.individual(3), es.mean + sign * es.sigma * TABLE.get(offset, D).astype(np.float64))


# ------------------------------------------------------------------------------------------ ARS top directions


def test_top_pairs_picks_exactly_the_best_pairs_by_their_better_member():
    f = np.array([0.0, 5.0,   # pair 0: max 5
                  3.0, 1.0,   # pair 1: max 3
                  -1.0, 9.0,  # pair 2: max 9
                  4.0, 4.0,   # pair 3: max 4
                  5.0, 2.0])  # pair 4: max 5 (ties with pair 0: the lower index wins)
    assert top_pairs(f, 1).tolist() == [4, 5]
    assert top_pairs(f, 2).tolist() == [0, 1, 4, 5]
    assert top_pairs(f, 3).tolist() == [0, 1, 4, 5, 8, 9]
    assert top_pairs(f, 0).tolist() == list(range(10)) == top_pairs(f, 5).tolist()


def test_top_directions_update_uses_only_the_kept_pairs():
    es = make(popsize=12, top_directions=2, fitness_shaping="centered_rank")
    es.ask()
    f = np.random.default_rng(3).normal(size=12)
    kept = top_pairs(f, 2)
    u = shape_fitness(f[kept], "centered_rank")
    z = unit_noise(es)[kept]
    expected = (u * es.signs[kept]) @ (z * es.signs[kept][:, None]) / (len(kept) * es.sigma)
    assert np.allclose(es.gradient(f), expected, rtol=1e-5, atol=1e-8)
    # the pairs left out do not matter
    g = f.copy()
    left_out = np.setdiff1d(np.arange(12), kept)
    g[left_out] = np.minimum(g[left_out], f.min()) - np.arange(left_out.size)
    assert np.array_equal(es.gradient(g), es.gradient(f))
    # every pair kept is the plain update, bit for bit
    full, plain = make(popsize=12, top_directions=6), make(popsize=12)
    assert np.array_equal(full.ask(), plain.ask())
    assert np.array_equal(full.gradient(f), plain.gradient(f))


def test_options_bad_input():
    with pytest.raises(ValueError, match="top_directions=7 is more than the 6 antithetic pairs"):
        make(popsize=12, top_directions=7)
    with pytest.raises(ValueError, match="needs antithetic=True"):
        OpenAIES(D, popsize=12, antithetic=False, schedule=Schedule(top_directions=2), noise_table=TABLE)
    for bad, match in (({"top_directions": -1}, "top_directions must be an int >= 0"),
                       ({"top_directions": 1.5}, "top_directions must be an int >= 0"),
                       ({"sigma_adapt": "cma"}, "sigma_adapt must be one of"),
                       ({"sigma_lr": 0.0}, "sigma_lr must be a finite number > 0"),
                       ({"sigma_max_change": 1.0}, r"sigma_max_change must be in \(0, 1\)")):
        with pytest.raises(ValueError, match=match):
            Schedule(**bad)
    for option in ({"sigma_adapt": "pgpe"}, {"top_directions": 2}):
        with pytest.raises(ValueError, match="apply to OpenAI-ES"):
            GaussianMixturePopulation(10, 2, 3, popsize=4, schedule=Schedule(l2=0.0, **option))
