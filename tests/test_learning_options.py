"""The honest curve and the learning options: centre evaluations, best.pt, observation normalisation, presets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agents.cli import main as cli
from agents.evaluation.fitness import EnvPool, derive_seed, evaluate_slice
from agents.policies import load_policy
from agents.training import TrainConfig, build_policy, read_metrics, train, train_config
from agents.training import presets as presets_module
from agents.training.presets import list_presets, load_preset
from agents.training.rundir import WALL_CLOCK_FIELDS

ANT = "HebbAnt-Default-v0"


def tiny(**kw) -> TrainConfig:
    base = dict(env=(ANT,), popsize=6, generations=3, max_steps=20, backend="serial", seed=2, centre_episodes=2)
    base.update(kw)
    return TrainConfig(**base)


def _deterministic(rows):
    return [{k: v for k, v in r.items() if k not in WALL_CLOCK_FIELDS} for r in rows]


def test_best_pt_is_the_centre_with_the_best_fresh_evaluation(tmp_path):
    config = tiny(generations=4, agent="static")
    result = train(config, tmp_path / "run", progress=False)
    rows = read_metrics(result.run_dir)
    centres = [r["centre_mean"] for r in rows]
    assert all(np.isfinite(centres))
    g = int(np.argmax(centres))
    assert result.best_fitness == pytest.approx(centres[g]) == rows[-1]["best_centre"]
    # re-evaluating best.pt on generation g's centre episodes gives that number again
    policy = load_policy(result.best_path)
    scores = evaluate_slice(policy, policy.get_flat()[None], [0], derive_seed(config.seed, "centre", g),
                            EnvPool(config.centre_fitness_config())).episodes[0]
    assert scores.mean() == pytest.approx(centres[g], abs=1e-9)
    # last.pt is the final centre
    last = load_policy(result.last_path)
    scores = evaluate_slice(last, last.get_flat()[None], [0], derive_seed(config.seed, "centre", 3),
                            EnvPool(config.centre_fitness_config())).episodes[0]
    assert scores.mean() == pytest.approx(centres[3], abs=1e-9)


def test_centre_every_k_and_the_stops(tmp_path):
    rows = read_metrics(train(tiny(generations=5, centre_every=2), tmp_path / "a", progress=False).run_dir)
    evaluated = [int(r["generation"]) for r in rows if np.isfinite(r["centre_mean"])]
    assert evaluated == [1, 3, 4]  # every second generation, and the last
    stopped = read_metrics(train(tiny(generations=50, stop_centre=-1e9), tmp_path / "b", progress=False).run_dir)
    assert len(stopped) == 1  # the first centre evaluation already reaches -1e9 m
    timed = read_metrics(train(tiny(generations=10_000, max_minutes=1e-9), tmp_path / "c", progress=False).run_dir)
    assert len(timed) == 1


def test_the_worst_variants_centre_can_rank_best_pt_and_stop_the_run(tmp_path):
    two = (ANT, "HebbAnt-LeftFrontLegDamage-v0")
    config = tiny(env=two, generations=4, agent="static", centre_score="min")
    result = train(config, tmp_path / "run", progress=False)
    rows = read_metrics(result.run_dir)
    mins = [r["centre_min"] for r in rows]
    assert all(m <= r["centre_mean"] + 1e-12 for m, r in zip(mins, rows))
    g = int(np.argmax(mins))
    assert result.best_fitness == pytest.approx(mins[g]) == rows[-1]["best_centre"]
    policy = load_policy(result.best_path)  # best.pt is the centre whose worst variant did best
    scores = evaluate_slice(policy, policy.get_flat()[None], [0], derive_seed(config.seed, "centre", g),
                            EnvPool(config.centre_fitness_config())).episodes[0]
    assert scores.mean(axis=1).min() == pytest.approx(mins[g], abs=1e-9)
    # the stop compares the chosen score: a threshold between generation 0's worst variant and its mean
    # stops the run by the mean there, not the run by the min (same seed: the same centres)
    first = rows[0]
    assert first["centre_min"] < first["centre_mean"]  # the two variants score differently
    threshold = (first["centre_min"] + first["centre_mean"]) / 2
    for score, length in (("mean", 1), ("min", 2)):
        stopped = train(tiny(env=two, agent="static", generations=2, centre_score=score, stop_centre=threshold),
                        tmp_path / score, progress=False)
        assert len(read_metrics(stopped.run_dir)) == length
    # resuming under another score: best.pt is chosen by the new one from then on
    train(TrainConfig.from_json({**config.to_json(), "generations": 6, "centre_score": "mean"}), tmp_path / "run",
          progress=False, resume=True)
    rows = read_metrics(tmp_path / "run")
    assert rows[-1]["best_centre"] == pytest.approx(max(r["centre_mean"] for r in rows[4:]))


def test_a_resume_with_other_centre_episodes_or_horizon_rechooses_best_pt(tmp_path):
    config = tiny(agent="static", generations=3, centre_episodes=1)
    train(config, tmp_path / "run", progress=False)
    before = read_metrics(tmp_path / "run")
    # unchanged settings: the record carries over (the best of all centres so far)
    same = TrainConfig.from_json({**config.to_json(), "generations": 4})
    train(same, tmp_path / "run", progress=False, resume=True)
    rows = read_metrics(tmp_path / "run")
    assert rows[-1]["best_centre"] == pytest.approx(max(r["centre_mean"] for r in rows))
    for change in ({"centre_episodes": 2}, {"centre_max_steps": 30}):
        run = tmp_path / next(iter(change))
        train(config, run, progress=False)
        train(TrainConfig.from_json({**config.to_json(), "generations": 5, **change}), run, progress=False, resume=True)
        rows = read_metrics(run)
        assert _deterministic(rows[:3]) == _deterministic(before)
        # best.pt is chosen among the centres measured the new way only, whatever the old record was
        assert rows[-1]["best_centre"] == pytest.approx(max(r["centre_mean"] for r in rows[3:]))
        best = load_policy(run / "best.pt")
        g = 3 + int(np.argmax([r["centre_mean"] for r in rows[3:]]))
        resumed = TrainConfig.from_json({**config.to_json(), **change})
        scores = evaluate_slice(best, best.get_flat()[None], [0], derive_seed(config.seed, "centre", g),
                                EnvPool(resumed.centre_fitness_config())).episodes[0]
        assert scores.mean() == pytest.approx(rows[g]["centre_mean"], abs=1e-9)


def test_the_centre_may_be_scored_by_another_fitness_than_training(tmp_path):
    config = tiny(agent="static", fitness="reward-no-alive", centre_fitness="distance")
    judged = train(config, tmp_path / "distance", progress=False)
    same = train(tiny(agent="static", fitness="reward-no-alive"), tmp_path / "same", progress=False)
    a, b = read_metrics(judged.run_dir), read_metrics(same.run_dir)
    training = ("best", "mean", "std", "min", "env_steps")
    assert [[r[k] for k in training] for r in a] == [[r[k] for k in training] for r in b]  # training untouched
    # the logged centre is the distance: the final centre re-scored by a run that trains on distance
    by_distance = EnvPool(tiny(agent="static", fitness="distance").centre_fitness_config())
    last = load_policy(judged.last_path)
    scores = evaluate_slice(last, last.get_flat()[None], [0], derive_seed(config.seed, "centre", 2), by_distance)
    assert scores.episodes[0].mean() == pytest.approx(a[2]["centre_mean"], abs=1e-9)
    assert a[2]["centre_mean"] != pytest.approx(b[2]["centre_mean"])  # and not the training fitness
    # resuming under another centre fitness: best.pt is chosen by the new one from then on
    train(TrainConfig.from_json({**config.to_json(), "generations": 5, "centre_fitness": "same"}),
          tmp_path / "distance", progress=False, resume=True)
    rows = read_metrics(tmp_path / "distance")
    assert rows[-1]["best_centre"] == pytest.approx(max(r["centre_mean"] for r in rows[3:]))
    with pytest.raises(ValueError, match="centre_fitness"):
        tiny(centre_fitness="metres")
    with pytest.raises(ValueError, match="distance"):  # the car has no distance
        tiny(env=("HebbCarRacing-Default-v0",), agent="static", centre_fitness="distance")


def test_observation_statistics_are_the_same_for_any_worker_count_and_resume(tmp_path):
    serial = train(tiny(obs_norm=True, generations=4), tmp_path / "serial", progress=False)
    procs = train(tiny(obs_norm=True, generations=4, backend="process", workers=2), tmp_path / "procs",
                  progress=False)
    assert _deterministic(read_metrics(serial.run_dir)) == _deterministic(read_metrics(procs.run_dir))
    a, b = load_policy(serial.last_path), load_policy(procs.last_path)
    assert a.obs_norm is not None and a.obs_norm == b.obs_norm
    train(tiny(obs_norm=True, generations=2), tmp_path / "cut", progress=False)
    train(tiny(obs_norm=True, generations=4), tmp_path / "cut", resume=True, progress=False)
    assert _deterministic(read_metrics(tmp_path / "cut")) == _deterministic(read_metrics(serial.run_dir))
    assert load_policy(tmp_path / "cut" / "last.pt").obs_norm == a.obs_norm


def test_the_normaliser_is_in_the_file_and_frozen_at_evaluation(tmp_path):
    result = train(tiny(obs_norm=True), tmp_path / "run", progress=False)
    policy = load_policy(result.last_path)
    norm = policy.obs_norm
    assert norm.dim == 27 and np.all(norm.std > 0) and np.any(norm.mean != 0)
    before = (norm.mean.copy(), norm.std.copy())
    obs = np.random.default_rng(0).normal(size=(3, 27)).astype(np.float32)
    a1, _ = policy.predict(obs)
    a2, _ = policy.predict(obs * 100)
    assert np.array_equal(norm.mean, before[0]) and np.array_equal(norm.std, before[1])  # predict never updates it
    raw = load_policy(result.last_path)
    raw.obs_norm = None
    assert not np.allclose(raw.predict(obs)[0], a1)  # and it is applied
    with pytest.raises(ValueError, match="vector observation"):
        train(tiny(env=("HebbCarRacing-Default-v0",), obs_norm=True), tmp_path / "car", progress=False)


def test_presets_load_override_and_are_recorded(tmp_path):
    assert {"fast", "paper"} <= set(list_presets())
    fast = TrainConfig.from_preset("fast", agent="static", popsize=8)
    assert (fast.popsize, fast.sigma, fast.obs_norm, fast.optimizer, fast.preset) == (8, 0.02, True, "adam", "fast")
    assert TrainConfig.from_preset("fast").renorm == "on"  # the Hebbian table
    assert cli(["train", "--preset", "fast", "--agent", "static", "--popsize", "4", "--generations", "1",
                "--max-steps", "10", "--backend", "serial", "--centre-episodes", "1", "--quiet",
                "--out", str(tmp_path / "run")]) == 0
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["train"]
    assert (saved["preset"], saved["popsize"], saved["sigma"], saved["obs_norm"]) == ("fast", 4, 0.02, True)
    # a bool the preset turns on can be turned off by its flag (and one it leaves off turned on)
    assert cli(["train", "--preset", "fast", "--agent", "static", "--popsize", "4", "--generations", "1",
                "--max-steps", "10", "--backend", "serial", "--centre-episodes", "1", "--quiet", "--no-obs-norm",
                "--env-termination", "--out", str(tmp_path / "off")]) == 0
    saved = json.loads((tmp_path / "off" / "config.json").read_text())["train"]
    assert (saved["obs_norm"], saved["env_termination"]) == (False, True)
    with pytest.raises(ValueError, match="preset='nope' is not known; accepted: .*fast"):
        TrainConfig.from_preset("nope")
    # the car's table: no observation normaliser on images, the car runs' population and centre evaluation
    car = TrainConfig.from_preset("fast", env=("HebbCarRacing-Default-v0",))
    assert (car.obs_norm, car.popsize, car.centre_every, car.centre_episodes, car.centre_max_steps) == \
        (False, 64, 5, 3, 1000)
    assert (car.sigma, car.lr, car.renorm) == (0.05, 0.02, "on")  # the agent's table still applies
    build_policy(car)  # obs_norm on images would be refused here


def test_a_preset_with_unknown_keys_is_refused(tmp_path, monkeypatch):
    (tmp_path / "broken.toml").write_text('[train]\npopsize = 10\nlearning_rate = 0.1\n[agent.static]\nsigmaa = 1\n')
    files = dict(presets_module._files())
    files["broken"] = tmp_path / "broken.toml"
    monkeypatch.setattr(presets_module, "_files", lambda: files)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['learning_rate', 'agent.static.sigmaa'\]"):
        load_preset("broken", {"popsize", "sigma"})


def test_the_paper_preset_starts_the_coefficients_from_n01():
    paper = TrainConfig.from_preset("paper", env=ANT, env_kwargs={}, fitness="distance")  # on MuJoCo
    assert (paper.popsize, paper.lr, paper.sigma, paper.optimizer, paper.early_stop) == (200, 0.2, 0.1, "sgd",
                                                                                         "original")
    flat = build_policy(paper).get_flat()
    assert abs(flat.std() - 1.0) < 0.02 and abs(flat.mean()) < 0.02  # torch.randn in the original code
    default = build_policy(TrainConfig(env=(ANT,))).get_flat()
    assert abs(default.std() - 0.1) < 0.002
    assert TrainConfig.from_preset("paper", env=ANT).max_steps == 960


def test_the_paper_preset_scores_and_stops_the_quadruped_as_the_original_code():
    from agents.evaluation.scores import ORIGINAL_STOPS, TaskScore, task_score

    paper = TrainConfig.from_preset("paper", env=ANT)
    assert paper.env_kwargs == {"backend": "bullet", "obs_before_burn_in": True}
    assert (paper.fitness, paper.early_stop) == ("progress", "original")
    assert paper.fitness_config().score == TaskScore("progress", ORIGINAL_STOPS["ant"])
    assert paper.centre_fitness_config().score == TaskScore("progress")  # the centre: same units, no stop
    # PyBullet's progress term exists on the bullet backend only: MuJoCo is refused, naming the way out
    with pytest.raises(ValueError, match="backend 'bullet' only.*use fitness 'distance'"):
        TrainConfig.from_preset("paper", env=ANT, env_kwargs={})
    # the car's table is untouched, and the defaults keep the torso's distance and the task's own stop
    car = TrainConfig.from_preset("paper", env=("HebbCarRacing-Default-v0",))
    assert (car.fitness, car.env_kwargs) == ("auto", {"renderer": "exact"})
    for config in (TrainConfig(), TrainConfig.from_preset("fast")):
        assert config.fitness_config().score == task_score("ant")
        assert "obs_before_burn_in" not in config.env_kwargs


def test_clipup_trains_on_workers_and_resumes(tmp_path):
    full = train(tiny(optimizer="clipup", lr=0.05, generations=3, backend="process", workers=2), tmp_path / "full",
                 progress=False)
    train(tiny(optimizer="clipup", lr=0.05, generations=2), tmp_path / "cut", progress=False)
    train(tiny(optimizer="clipup", lr=0.05, generations=3), tmp_path / "cut", resume=True, progress=False)
    assert _deterministic(read_metrics(tmp_path / "cut")) == _deterministic(read_metrics(full.run_dir))


def test_resume_lr_goes_on_with_a_new_step_size_on_the_workers_too(tmp_path):
    """--resume --resume-lr: the step size changes at the generation resumed from, in the trainer and in every
    worker's replica of the strategy (the process run's metrics equal the serial one's); a new run refuses it."""
    for backend in ("serial", "process"):
        train(tiny(lr=0.05, generations=2), tmp_path / backend, progress=False)
        train(tiny(lr=0.05, generations=4, resume_lr=0.01, backend=backend, workers=2), tmp_path / backend,
              resume=True, progress=False)
    rows = read_metrics(tmp_path / "serial")
    assert [r["lr"] for r in rows] == pytest.approx([0.05, 0.05 * 0.995, 0.01, 0.01 * 0.995])
    assert _deterministic(read_metrics(tmp_path / "process")) == _deterministic(rows)
    assert json.loads((tmp_path / "serial" / "config.json").read_text())["train"]["resume_lr"] == 0.01
    assert train_config({}, tmp_path / "serial", resume=True).resume_lr is None  # a later --resume keeps the lr
    plain = tmp_path / "plain"  # the same two generations, then on at the checkpoint's step size
    train(tiny(lr=0.05, generations=2), plain, progress=False)
    train(tiny(lr=0.05, generations=4), plain, resume=True, progress=False)
    assert read_metrics(plain)[2]["lr"] == pytest.approx(0.05 * 0.995**2)
    assert read_metrics(plain)[3]["mean"] != rows[3]["mean"]  # the smaller step moved the centre elsewhere
    with pytest.raises(ValueError, match="resume_lr"):
        train(tiny(resume_lr=0.01), tmp_path / "new", progress=False)
    for bad in (0.0, -1.0, float("inf"), True):
        with pytest.raises(ValueError, match="resume_lr"):
            tiny(resume_lr=bad)


def test_actions_stay_in_asymmetric_and_half_bounded_spaces():
    import gymnasium as gym

    from agents.policies import StaticPolicy

    rng = np.random.default_rng(0)
    for low, high in (([-0.3, 0.1], [0.7, 2.5]), ([0.0, -1.0], [np.inf, 1.0])):
        space = gym.spaces.Box(np.array(low, np.float32), np.array(high, np.float32))
        policy = StaticPolicy(gym.spaces.Box(-1, 1, (4,)), space, seed=1)
        policy.set_flat(policy.get_flat() * 50)  # saturated outputs: tanh at +-1
        actions, _ = policy.predict(rng.normal(size=(256, 4)).astype(np.float32))
        assert all(space.contains(a) for a in actions)


def test_combining_the_variants_scores():
    from agents.evaluation.fitness import combine_variants
    per_env = np.array([[40.0, 0.1], [10.0, 0.3], [20.0, 0.2], [30.0, -0.1]])
    assert combine_variants(per_env, "mean") == pytest.approx(per_env.mean(axis=1))
    assert combine_variants(per_env, "min") == pytest.approx(per_env.min(axis=1))
    rank = combine_variants(per_env, "rank")
    # every variant weighs the same: the narrow second column moves the order as much as the wide first
    assert rank == pytest.approx([(0.5 - 1 / 6) / 2, (-0.5 + 0.5) / 2, (-1 / 6 + 1 / 6) / 2, (1 / 6 - 0.5) / 2])
    assert np.argmax(combine_variants(per_env, "mean")) == 0 and rank[0] == rank.max()
    scaled = per_env * [1.0, 1000.0]
    assert combine_variants(scaled, "rank") == pytest.approx(rank)  # invariant to each variant's scale
    # a non-finite score counts as its variant's worst; a variant with no finite score (or all equal) is neutral
    bad = per_env.copy()
    bad[0, 0] = np.nan
    assert combine_variants(bad, "mean")[0] == pytest.approx((10.0 + 0.1) / 2)
    assert combine_variants(bad, "rank")[0] == pytest.approx((-1 / 3 - 1 / 6) / 2)  # tied with row 1: rank 0.5 of 3
    assert np.isfinite(combine_variants(np.full((3, 2), np.inf), "rank")).all()
    assert combine_variants(np.full((3, 2), np.nan), "rank") == pytest.approx([0, 0, 0])
    with pytest.raises(ValueError, match="variant_fitness must be one of"):
        combine_variants(per_env, "median")


def test_the_variants_can_weigh_the_same_in_the_update_on_any_backend_and_after_resume(tmp_path):
    two = (ANT, "HebbAnt-LeftFrontLegDamage-v0")
    base = dict(env=two, agent="static", generations=3, centre_every=0)
    mean = read_metrics(train(tiny(**base), tmp_path / "mean", progress=False).run_dir)
    rank = read_metrics(train(tiny(**base, variant_fitness="rank"), tmp_path / "rank", progress=False).run_dir)
    # generation 0 samples the same individuals; the logged fitness stays the mean score, not the ranks
    assert _deterministic(rank[:1]) == _deterministic(mean[:1])
    assert rank[1]["mean"] != mean[1]["mean"]  # another update
    procs = train(tiny(**base, variant_fitness="rank", backend="process", workers=2), tmp_path / "procs",
                  progress=False)
    assert _deterministic(read_metrics(procs.run_dir)) == _deterministic(rank)  # workers apply the same update
    # a run may switch how it weighs its variants when resumed
    train(tiny(**{**base, "generations": 2}), tmp_path / "switch", progress=False)
    train(tiny(**base, variant_fitness="rank"), tmp_path / "switch", resume=True, progress=False)
    switched = read_metrics(tmp_path / "switch")
    assert _deterministic(switched[:2]) == _deterministic(mean[:2]) and len(switched) == 3
    assert json.loads((tmp_path / "switch" / "config.json").read_text())["train"]["variant_fitness"] == "rank"
