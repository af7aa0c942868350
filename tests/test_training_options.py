"""Trainer options of current ES practice: common random numbers for the plastic weights, a growing horizon,
the quadruped's reward without its alive bonus, and short runs of every option (resume, config.json)."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

import agents.evaluation.backends as backends
from agents.es.params import strategy_factory
from agents.evaluation.fitness import EnvPool, FitnessConfig, derive_seed, evaluate_slice, init_seeds
from agents.evaluation.rollout import rollout
from agents.evaluation.scores import task_score
from agents.policies import StaticPolicy
from agents.training import TrainConfig, build_policy, read_metrics, train
from agents.training.rundir import WALL_CLOCK_FIELDS, load_checkpoint

ANT = "HebbAnt-Default-v0"


def tiny(**kw) -> TrainConfig:
    base = dict(env=(ANT,), popsize=6, generations=2, max_steps=20, backend="serial", seed=3, centre_episodes=1,
                lr=0.05, optimizer="adam", lr_decay=1.0, sigma_decay=1.0)
    base.update(kw)
    return TrainConfig(**base)


def _deterministic(rows):
    return [{k: v for k, v in r.items() if k not in WALL_CLOCK_FIELDS} for r in rows]


def _slice_fitnesses(config: TrainConfig, slices, generations: int = 2) -> list[np.ndarray]:
    """Each generation's fitnesses, every slice evaluated by its own worker replica (tells applied in turn)."""
    policy = build_policy(config)
    factory = strategy_factory(policy, config)
    init = backends.WorkerInit(policy, factory, factory().state_dict(), config.fitness_config())
    workers = [backends.Worker(init) for _ in slices]
    out, tell = [], None
    try:
        for g in range(generations):
            parts = [w.run(tell, lo, hi, derive_seed(config.seed, "generation", g)) for w, (lo, hi) in
                     zip(workers, slices)]
            tell = np.concatenate([p.fitness for p in parts])
            out.append(tell)
    finally:
        for w in workers:
            w.close()
    return out


# ------------------------------------------------------------------------------------------ common random numbers


def test_init_seeds_are_per_individual_pair_or_generation_and_independent_of_slicing():
    ids = list(range(6))
    own = init_seeds(7, ANT, ids)
    assert own == [derive_seed(7, "init", ANT, i) for i in ids] and len(set(own)) == 6  # the seeds of before
    pair = init_seeds(7, ANT, ids, "pair")
    assert pair[0::2] == pair[1::2] and len(set(pair)) == 3
    everyone = init_seeds(7, ANT, ids, "generation")
    assert len(set(everyone)) == 1 and everyone != init_seeds(8, ANT, ids, "generation")
    assert init_seeds(7, ANT, ids, "generation") != init_seeds(7, "HebbAnt-LongFrontLegs-v0", ids, "generation")
    for mode in ("individual", "pair", "generation"):
        assert init_seeds(7, ANT, [3, 4, 5], mode) == init_seeds(7, ANT, ids, mode)[3:]
    with pytest.raises(ValueError, match="init_seeds='pairs' is not known; accepted: individual, pair, generation"):
        init_seeds(7, ANT, ids, "pairs")


def test_crn_gives_the_same_initial_weights_within_a_pair_or_generation_and_new_ones_per_episode():
    policy = build_policy(tiny())
    batch = policy.batch(np.repeat(policy.get_flat()[None], 6, axis=0))
    for mode, same in (("pair", [(0, 1), (2, 3), (4, 5)]), ("generation", [(0, k) for k in range(1, 6)])):
        weights = batch.initial_state(2, seed=init_seeds(7, ANT, range(6), mode)).weights
        for w in weights:
            for a, b in same:
                assert np.array_equal(w[a], w[b])
            assert not np.array_equal(w[0, 0], w[0, 1])  # the episodes of one individual differ
        if mode == "pair":
            assert not np.array_equal(weights[0][0], weights[0][2])  # and so do the pairs
        other = batch.initial_state(2, seed=init_seeds(8, ANT, range(6), mode)).weights
        assert not np.array_equal(weights[0][0], other[0][0])  # and the generations


def test_crn_fitnesses_do_not_depend_on_slicing_and_twins_score_alike():
    for mode in ("individual", "pair", "generation"):
        config = tiny(init_seeds=mode)
        whole = _slice_fitnesses(config, [(0, 6)])
        cut = _slice_fitnesses(config, [(0, 3), (3, 6)])  # the cut splits the pair (2, 3)
        for a, b in zip(whole, cut):
            np.testing.assert_array_equal(a, b)
    # two identical individuals of one pair score alike under 'pair', not under 'individual'
    policy = build_policy(tiny())
    params = np.repeat(policy.get_flat()[None], 2, axis=0)
    for mode, equal in (("pair", True), ("individual", False)):
        pool = EnvPool(tiny(init_seeds=mode).fitness_config())
        f = evaluate_slice(policy, params, [0, 1], 11, pool).fitness
        pool.close()
        assert (f[0] == f[1]) == equal


def test_crn_pair_is_refused_for_the_mixture():
    with pytest.raises(ValueError, match="init_seeds='pair' pairs the antithetic individuals"):
        tiny(rho=16, init_seeds="pair")
    tiny(rho=16, init_seeds="generation")


# ------------------------------------------------------------------------------------------ growing horizon


def test_horizon_schedule():
    cfg = FitnessConfig((ANT,), max_steps=100, horizon_start=30, horizon_growth=25)
    assert [cfg.horizon(g) for g in range(5)] == [30, 55, 80, 100, 100]
    assert [FitnessConfig((ANT,), max_steps=100).horizon(g) for g in (0, 7)] == [100, 100]
    for start, growth in ((0, 5), (30, 0), (101, 5), (-1, 5)):
        with pytest.raises(ValueError, match="horizon_start=.*accepted: both 0 \\(off\\)"):
            FitnessConfig((ANT,), max_steps=100, horizon_start=start, horizon_growth=growth)


# ------------------------------------------------------------------------------------------ reward without alive bonus


def test_reward_no_alive_is_the_sum_of_the_other_reward_terms_on_a_real_episode():
    policy = StaticPolicy.from_env(ANT, seed=4)
    params = policy.get_flat()[None] * 20  # strong actions: large control costs, the torso tips over
    rule = task_score("ant", "reward-no-alive", "off")
    pool = EnvPool(FitnessConfig((ANT,), max_steps=60, env_kwargs={"terminate_when_unhealthy": False}))
    batch = policy.batch(params)
    fast = rollout(batch, batch.initial_state(1, seed=0), pool.stepper(ANT, 1), [5], max_steps=60, score=rule)
    pool.close()
    env = gym.make(ANT, terminate_when_unhealthy=False)
    obs, _ = env.reset(seed=5)
    state = batch.initial_state(1, seed=0)
    terms, survive = 0.0, 0.0
    for _ in range(60):
        action, state = batch.act(obs[None, None], state)
        obs, reward, _, _, info = env.step(action[0, 0])
        terms += info["reward_forward"] + info["reward_ctrl"] + info["reward_contact"]
        survive += info["reward_survive"]
    env.close()
    assert fast.scores[0, 0] == pytest.approx(terms, rel=1e-9, abs=1e-9)
    assert fast.returns[0, 0] - fast.scores[0, 0] == pytest.approx(survive, rel=1e-9)


def test_reward_no_alive_on_the_bullet_quadruped_and_refused_elsewhere():
    env = gym.make(ANT, backend="bullet")
    env.reset(seed=0)
    for _ in range(5):
        _, reward, _, _, info = env.step(env.action_space.sample())
        assert info["reward_survive"] in (1.0, -1.0)
        assert reward - info["reward_survive"] == pytest.approx(sum(env.unwrapped.rewards[1:]), abs=1e-6)
    env.close()
    with pytest.raises(ValueError, match="fitness='reward-no-alive' is the quadruped's"):
        tiny(env=("CartPole-v1",), fitness="reward-no-alive")


# ------------------------------------------------------------------------------------------ short runs of each option


OPTIONS = [
    {"sigma_adapt": "pgpe", "sigma_lr": 0.2},
    {"top_directions": 2},
    {"init_seeds": "pair"},
    {"init_seeds": "generation"},
    {"horizon_start": 10, "horizon_growth": 5},
    {"fitness": "reward-no-alive"},
]


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_each_option_runs_resumes_and_is_recorded(tmp_path, option):
    full = train(tiny(**option), tmp_path / "full", progress=False)
    saved = json.loads((tmp_path / "full" / "config.json").read_text())["train"]
    assert all(saved[k] == v for k, v in option.items())
    train(tiny(**option, generations=1), tmp_path / "cut", progress=False)
    train(tiny(**option), tmp_path / "cut", resume=True, progress=False)
    rows = read_metrics(full.run_dir)
    assert len(rows) == 2 and _deterministic(read_metrics(tmp_path / "cut")) == _deterministic(rows)
    if "horizon_start" in option:  # no early stop within 20 steps: every episode lasts the generation's horizon
        assert [r["env_steps"] for r in rows] == [6 * 10, 6 * 15]
    assert [r["horizon"] for r in rows] == ([10, 15] if "horizon_start" in option else [20, 20])  # metrics.csv's
    if "sigma_adapt" in option:  # the checkpoint holds one sigma per parameter, the metrics their mean
        sigma = load_checkpoint(full.run_dir / "checkpoint.pt")["strategy"]["sigma"]
        assert sigma.shape == (build_policy(tiny()).num_params,) and np.ptp(sigma) > 0
        assert rows[0]["sigma"] == pytest.approx(0.1)


def test_options_together_are_the_same_on_sliced_workers_and_the_defaults_are_unchanged():
    config = tiny(sigma_adapt="pgpe", top_directions=2, init_seeds="pair", horizon_start=10, horizon_growth=5)
    whole = _slice_fitnesses(config, [(0, 6)], generations=3)
    cut = _slice_fitnesses(config, [(0, 1), (1, 4), (4, 6)], generations=3)
    for a, b in zip(whole, cut):
        np.testing.assert_array_equal(a, b)
    # the defaults of the new settings are the settings of before
    plain = tiny()
    assert (plain.sigma_adapt, plain.top_directions, plain.init_seeds, plain.horizon_start) == ("off", 0,
                                                                                                 "individual", 0)
    assert TrainConfig.from_json({k: v for k, v in plain.to_json().items()
                                  if k not in ("sigma_adapt", "sigma_lr", "sigma_max_change", "top_directions",
                                               "init_seeds", "horizon_start", "horizon_growth")}) == plain


def test_init_policy_starts_the_centre_from_a_saved_policy_and_resume_does_not_reread_it(tmp_path):
    source = build_policy(tiny(seed=11))
    source.save(tmp_path / "source.pt")
    started = build_policy(tiny(init_policy=str(tmp_path / "source.pt")))
    np.testing.assert_array_equal(started.get_flat(), source.get_flat())
    assert not np.array_equal(build_policy(tiny()).get_flat(), source.get_flat())  # seed 3 alone: other weights
    # a run started from it: its first centre is the file's (a learning rate of 1e-9 keeps it there)
    run = train(tiny(init_policy=str(tmp_path / "source.pt"), generations=1, lr=1e-9), tmp_path / "run",
                progress=False)
    centre = load_checkpoint(run.run_dir / "checkpoint.pt")["strategy"]["mean"]
    np.testing.assert_allclose(np.asarray(centre, dtype=np.float64), source.get_flat(), rtol=0, atol=1e-6)
    (tmp_path / "source.pt").unlink()  # a resumed run reads its checkpoint, never the start file again
    train(tiny(init_policy=str(tmp_path / "source.pt"), generations=2, lr=1e-9), tmp_path / "run", resume=True,
          progress=False)
    assert len(read_metrics(tmp_path / "run")) == 2


def test_init_policy_refuses_a_policy_of_another_agent_env_or_options(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        build_policy(tiny(init_policy=str(tmp_path / "missing.pt")))
    build_policy(tiny(agent="static")).save(tmp_path / "static.pt")
    with pytest.raises(ValueError, match="class"):
        build_policy(tiny(agent="hebbian", init_policy=str(tmp_path / "static.pt")))
    build_policy(tiny(env=("HebbCarRacing-Default-v0",), agent="static")).save(tmp_path / "car.pt")
    with pytest.raises(ValueError, match="space|parameter count|options"):
        build_policy(tiny(agent="static", init_policy=str(tmp_path / "car.pt")))
    with pytest.raises(ValueError, match="rho"):
        build_policy(tiny(agent="hebbian", rho=0.5, init_policy=str(tmp_path / "static.pt")))


def test_keep_centres_keeps_each_evaluated_centre_under_its_generation(tmp_path):
    from agents.policies import load_policy

    run = train(tiny(generations=3, centre_every=2, keep_centres=True), tmp_path / "run", progress=False)
    rows = read_metrics(run.run_dir)
    evaluated = [int(r["generation"]) for r in rows if np.isfinite(r["centre_mean"])]
    assert evaluated == [1, 2]  # every 2nd generation and the last
    assert sorted(p.name for p in run.run_dir.glob("centre-*.pt")) == ["centre-000001.pt", "centre-000002.pt"]
    # the last kept centre is last.pt; best.pt is the kept centre with the best centre_mean
    np.testing.assert_array_equal(load_policy(run.run_dir / "centre-000002.pt").get_flat(),
                                  load_policy(run.run_dir / "last.pt").get_flat())
    best_gen = max(evaluated, key=lambda g: rows[g]["centre_mean"])
    np.testing.assert_array_equal(load_policy(run.run_dir / f"centre-{best_gen:06d}.pt").get_flat(),
                                  load_policy(run.run_dir / "best.pt").get_flat())
    assert not np.array_equal(load_policy(run.run_dir / "centre-000001.pt").get_flat(),
                              load_policy(run.run_dir / "centre-000002.pt").get_flat())
    # off by default, and may be switched on when a run is resumed
    plain = train(tiny(generations=2, centre_every=1), tmp_path / "plain", progress=False)
    assert not list(plain.run_dir.glob("centre-*.pt"))
    train(tiny(generations=3, centre_every=1, keep_centres=True), tmp_path / "plain", resume=True, progress=False)
    assert [p.name for p in plain.run_dir.glob("centre-*.pt")] == ["centre-000002.pt"]
