"""Shipped agents: each loads by name, matches its index entry, acts in its env, and walks where it says."""

from __future__ import annotations

import hashlib
import importlib.util
import json

import gymnasium as gym
import numpy as np
import pytest

import hebb_gym  # noqa: F401
from agents import load_policy, pretrained
from agents.cli import main as cli
from agents.evaluation.envs import task_of
from agents.experiments.evaluate import evaluate_policy_on

SHIPPED = pretrained.entries()


def strict_json(path):
    """``path`` parsed as JSON, refusing NaN and Infinity (other JSON readers refuse them)."""
    def refuse(constant):
        raise ValueError(f"{path} holds {constant}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_the_index_is_strict_json():
    strict_json(pretrained.path_of(SHIPPED[0]["name"]).parent / "index.json")


def test_unknown_names_are_refused_with_the_shipped_ones():
    with pytest.raises(ValueError, match="pretrained:no-such-agent is not a shipped agent; accepted"):
        load_policy("pretrained:no-such-agent")


def test_the_listing_shows_a_fine_tunes_total_compute_and_its_own(capsys):
    assert cli(["pretrained"]) == 0
    out = capsys.readouterr().out
    for e in SHIPPED:
        row = next(line for line in out.splitlines() if line.startswith(pretrained.PREFIX + e["name"] + " "))
        total = pretrained.total_compute(e)
        assert f"{total['env_steps'] / 1e6:.1f}M" in row
        assert (f"({e['env_steps'] / 1e6:.1f}M its own)" in row) == ("started_from" in e)


@pytest.mark.parametrize("entry", SHIPPED, ids=[e["name"] for e in SHIPPED])
def test_a_shipped_agent_matches_its_index_and_acts(entry):
    path = pretrained.path_of(entry["name"])
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    policy = load_policy(pretrained.PREFIX + entry["name"])
    assert type(policy).__name__.lower().startswith(entry["agent"]) and policy.num_params == entry["num_params"]
    assert path.stat().st_size < 4 * 2**20
    for env_id in entry["env"]:
        env = gym.make(env_id, **entry.get("rollout_env_kwargs", {}))
        obs, _ = env.reset(seed=0)
        action, _ = policy.predict(obs)
        assert env.action_space.contains(action)
        env.close()


@pytest.mark.parametrize("entry", SHIPPED, ids=[e["name"] for e in SHIPPED])
def test_a_shipped_agent_does_its_task(entry):
    """A few hundred steps: a walker covers a clearly positive distance (an untrained policy stays within about
    1 m); a car gains a clearly positive return (untrained Hebbian and static cars score -14 to +3 in 300 steps)."""
    env_id = entry["env"][0]
    score = evaluate_policy_on(load_policy(pretrained.PREFIX + entry["name"]), env_id, episodes=2, seed=12345,
                               max_steps=300, env_kwargs=entry.get("rollout_env_kwargs", {}))
    if task_of(env_id) == "car":
        assert np.mean(score.returns) > 50.0, score.returns
    else:
        assert np.mean(score.distances) > 3.0, score.distances


def test_evaluate_chooses_the_physics_backend_over_the_training_settings():
    from agents.experiments.evaluate import run_env_kwargs

    name = pretrained.PREFIX + SHIPPED[0]["name"]
    trained = run_env_kwargs(name)
    assert run_env_kwargs(name, "bullet") == {**trained, "backend": "bullet"}
    assert run_env_kwargs(name, None) == trained


@pytest.mark.parametrize("entry", SHIPPED, ids=[e["name"] for e in SHIPPED])
def test_a_shipped_agent_works_wherever_a_policy_file_does(entry, tmp_path):
    """compare, probe, rules (plastic agents) and SB3's evaluate_policy take ``pretrained:NAME``."""
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import DummyVecEnv

    name, env_id = pretrained.PREFIX + entry["name"], entry["env"][0]
    short = ["--env", env_id, "--max-steps", "30", "--episodes", "1"]
    assert cli(["compare", name, *short, "--out", str(tmp_path / "compare")]) == 0
    assert (tmp_path / "compare" / "results.csv").is_file()
    assert cli(["probe", name, *short, "--probe", "freeze-actuators@5:10", "--out", str(tmp_path / "probe")]) == 0
    if entry["agent"] == "hebbian" and importlib.util.find_spec("sklearn") is not None:  # rules: analysis extra
        assert cli(["rules", name, "--env", env_id, "--max-steps", "30", "--out", str(tmp_path / "rules")]) == 0
    venv = DummyVecEnv([lambda: gym.make(env_id, max_episode_steps=30, **entry.get("rollout_env_kwargs", {}))])
    mean, _ = evaluate_policy(load_policy(name), venv, n_eval_episodes=1)
    venv.close()
    assert np.isfinite(mean)


def tiny_run_to_ship(tmp_path, monkeypatch, env_id, **train_options):
    """A tiny static run in ``tmp_path / "run"`` and the ``add`` module, shipping into ``tmp_path / "pkg"``."""
    from agents.pretrained import add as add_module
    from agents.training import TrainConfig, train

    run = tmp_path / "run"
    train(TrainConfig(env=(env_id,), agent="static", backend="serial", centre_episodes=1, **train_options), run,
          progress=False)
    monkeypatch.setattr(add_module, "FOLDER", tmp_path / "pkg")
    monkeypatch.setattr(add_module, "entries", lambda: [])
    (tmp_path / "pkg").mkdir()
    return run, add_module


def test_shipping_a_run_scores_it_on_its_variants_and_more(tmp_path, monkeypatch):
    run, add_module = tiny_run_to_ship(tmp_path, monkeypatch, "HebbAnt-Default-v0", popsize=4, generations=2,
                                       max_steps=20)
    entry = add_module.add(run, "tiny", episodes=2, max_steps=30,
                           env_ids=["HebbAnt-LongRearLegs-v0", "HebbAnt-Default-v0"], csv=tmp_path / "eval.csv")
    assert list(entry["scores"]) == ["HebbAnt-Default-v0", "HebbAnt-LongRearLegs-v0"]  # trained on first, once
    assert entry["env"] == ["HebbAnt-Default-v0"] and entry["generations"] == 2
    data = (tmp_path / "pkg" / "tiny.pt").read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"] and entry["bytes"] == len(data)
    index = json.loads((tmp_path / "pkg" / "index.json").read_text())
    assert index == {"agents": [entry]} and np.isfinite(entry["centre_score"])
    policy = load_policy(tmp_path / "pkg" / "tiny.pt")
    again = evaluate_policy_on(policy, "HebbAnt-LongRearLegs-v0", 2, 100_000, max_steps=30,
                               env_kwargs=entry["rollout_env_kwargs"])
    assert entry["scores"]["HebbAnt-LongRearLegs-v0"]["distance_mean"] == pytest.approx(again.distances.mean())
    rows = (tmp_path / "eval.csv").read_text().splitlines()  # the same scores, as hebb-gym evaluate writes them
    assert rows[0].startswith("env,episodes,") and [r.split(",")[0] for r in rows[1:]] == list(entry["scores"])
    assert float(rows[2].split(",")[rows[0].split(",").index("distance_mean")]) == pytest.approx(again.distances.mean())


def test_a_car_ships_with_its_return_and_no_distance(tmp_path, monkeypatch):
    """The car reports no distance: the index holds None there (strict JSON), and the listing shows the return."""
    run, add_module = tiny_run_to_ship(tmp_path, monkeypatch, "HebbCarRacing-Default-v0", popsize=2, generations=1,
                                       max_steps=10)
    with pytest.raises(ValueError, match="policy_file='nope.pt': the name of a policy file in .*accepted: best.pt, last.pt"):
        add_module.add(run, "tiny-car", episodes=2, seed=0, max_steps=20, policy_file="nope.pt")
    entry = add_module.add(run, "tiny-car", episodes=2, seed=0, max_steps=20, policy_file="last.pt")
    assert entry["run_file"] == "last.pt"
    assert (tmp_path / "pkg" / "tiny-car.pt").read_bytes() == (run / "last.pt").read_bytes()
    score = entry["scores"]["HebbCarRacing-Default-v0"]
    assert score["distance_mean"] is None and score["distance_std"] is None and np.isfinite(score["return_mean"])
    strict_json(tmp_path / "pkg" / "index.json")
    again = evaluate_policy_on(load_policy(tmp_path / "pkg" / "tiny-car.pt"), "HebbCarRacing-Default-v0", 2, 0,
                               max_steps=20)
    assert score["return_mean"] == pytest.approx(again.returns.mean())
    assert pretrained.score_text(score, brief=True) == f"return {again.returns.mean():.1f} +- {again.returns.std():.1f}"


def test_shipping_the_better_of_several_files_on_other_episodes(tmp_path, monkeypatch):
    run, add_module = tiny_run_to_ship(tmp_path, monkeypatch, "HebbAnt-Default-v0", popsize=4, generations=3,
                                       max_steps=20)
    entry = add_module.add(run, "tiny", episodes=2, seed=0, max_steps=30, policy_file=["best.pt", "last.pt"],
                           choose_episodes=3, choose_seed=50, choose_by="distance")
    means = entry["chosen_by"]["means"]
    for f in ("best.pt", "last.pt"):  # each file's mean is its distance on the choosing episodes
        again = evaluate_policy_on(load_policy(run / f), "HebbAnt-Default-v0", 3, 50, max_steps=30,
                                   env_kwargs=entry["rollout_env_kwargs"])
        assert means[f] == pytest.approx(again.distances.mean())
    assert entry["run_file"] == max(means, key=means.get)
    assert (tmp_path / "pkg" / "tiny.pt").read_bytes() == (run / entry["run_file"]).read_bytes()
    assert entry["chosen_by"] == {"episodes": 3, "seed": 50, "by": "distance", "means": means}
    with pytest.raises(ValueError, match="overlap the scoring seeds 0-1"):
        add_module.add(run, "tiny", episodes=2, seed=0, policy_file=["best.pt", "last.pt"], choose_seed=1)
    with pytest.raises(ValueError, match="several different ones"):
        add_module.add(run, "tiny", episodes=2, policy_file=["best.pt", "best.pt"])
    with pytest.raises(ValueError, match="choose_by='speed' is not known; accepted: return, distance"):
        add_module.add(run, "tiny", episodes=2, seed=0, policy_file=["best.pt", "last.pt"], choose_by="speed")
    # the car has no distance to choose by
    car, car_module = tiny_run_to_ship(tmp_path / "car", monkeypatch, "HebbCarRacing-Default-v0", popsize=2,
                                       generations=1, max_steps=10)
    with pytest.raises(ValueError, match="report no distance; choose by return"):
        car_module.add(car, "tiny-car", episodes=1, seed=0, max_steps=10, policy_file=["best.pt", "last.pt"],
                       choose_episodes=1, choose_by="distance")


def test_a_staged_choice_among_kept_centres(tmp_path, monkeypatch):
    """All files on the first stage's episodes, the best ``keep`` on the next ones, the choice by the mean over
    all a file played; two worker processes give the same numbers as one."""
    run, add_module = tiny_run_to_ship(tmp_path, monkeypatch, "HebbAnt-Default-v0", popsize=4, generations=3,
                                       max_steps=20, centre_every=1, keep_centres=True)
    assert add_module.policy_names(run, "best.pt,centre-*.pt") == ["best.pt", "centre-000000.pt",
                                                                    "centre-000001.pt", "centre-000002.pt"]
    files = add_module.policy_names(run, "centre-*.pt")  # three different policies (best.pt is one of them)
    with pytest.raises(ValueError, match="--policy 'kept-\\*.pt': no file of .* matches it"):
        add_module.policy_names(run, "kept-*.pt")
    entry = add_module.add(run, "tiny", episodes=1, seed=0, max_steps=30, policy_file=files, choose_episodes=[2, 3],
                           choose_seed=50, choose_keep=2, choose_by="distance")
    chosen = entry["chosen_by"]
    first, second = chosen["stages"]
    assert set(first) == set(files) and set(second) == set(sorted(first, key=first.get)[-2:])

    def distances(f, n, seed):
        return evaluate_policy_on(load_policy(run / f), "HebbAnt-Default-v0", n, seed, max_steps=30,
                                  env_kwargs=entry["rollout_env_kwargs"]).distances

    for f in files:  # the second stage plays the 3 seeds after the first stage's 2
        played = [distances(f, 2, 50)] + ([distances(f, 3, 52)] if f in second else [])
        assert chosen["means"][f] == pytest.approx(np.concatenate(played).mean())
        assert first[f] == pytest.approx(played[0].mean())
    assert entry["run_file"] == max(second, key=chosen["means"].get)
    assert {k: chosen[k] for k in ("episodes", "seed", "by", "keep")} == {"episodes": [2, 3], "seed": 50,
                                                                        "by": "distance", "keep": 2}
    together = add_module.choose(run, files, ["HebbAnt-Default-v0"], [2, 3], 50, 30, entry["rollout_env_kwargs"],
                                 "distance", keep=2, workers=2)
    assert together == (entry["run_file"], chosen["means"], chosen["stages"])
    assert add_module.main([str(run), "--name", "tiny", "--episodes", "1", "--seed", "0", "--policy",
                            "centre-*.pt", "--choose-episodes", "2,3", "--choose-keep", "2",
                            "--choose-seed", "50", "--choose-by", "distance"]) == 0  # the command line
    cli_chosen = json.loads((tmp_path / "pkg" / "index.json").read_text())["agents"][0]["chosen_by"]  # 1000 steps
    assert {k: cli_chosen[k] for k in ("episodes", "seed", "by", "keep")} == {"episodes": [2, 3], "seed": 50,
                                                                            "by": "distance", "keep": 2}
    first = cli_chosen["stages"][0]
    assert set(first) == set(files) and set(cli_chosen["stages"][1]) == set(sorted(first, key=first.get)[-2:])
    with pytest.raises(SystemExit):
        add_module.main([str(run), "--name", "tiny", "--policy", "best.pt,last.pt", "--choose-episodes", "2;3"])
    with pytest.raises(ValueError, match="its seeds 1-5 overlap the scoring seeds 0-1"):
        add_module.add(run, "tiny", episodes=2, seed=0, policy_file=files, choose_episodes=[2, 3], choose_seed=1)
    for bad in ([2, 0], [], [2.5]):
        with pytest.raises(ValueError, match="choose_episodes=.*: a count >= 1, or one per stage"):
            add_module.add(run, "tiny", episodes=1, seed=0, policy_file=files, choose_episodes=bad)
    with pytest.raises(ValueError, match="choose_keep=0: how many files go on after a stage"):
        add_module.choose(run, files, ["HebbAnt-Default-v0"], [1, 1], 50, 30, {}, keep=0)
    with pytest.raises(ValueError, match="workers=0 must be an int >= 1"):
        add_module.choose(run, files, ["HebbAnt-Default-v0"], 1, 50, 30, {}, workers=0)


def test_a_kept_centre_ships_with_the_compute_up_to_its_generation(tmp_path, monkeypatch):
    """A centre kept at generation 1 of a 3-generation run: the entry counts generations 0-1 only, and its own
    centre evaluation; best.pt and last.pt count up to theirs."""
    import shutil

    from agents.training import read_metrics

    run, add_module = tiny_run_to_ship(tmp_path, monkeypatch, "HebbAnt-Default-v0", popsize=4, generations=3,
                                       max_steps=20, centre_every=1, keep_centres=True)
    rows = read_metrics(run)
    entry = add_module.add(run, "tiny", episodes=1, max_steps=20, policy_file="centre-000001.pt")
    assert entry["run_file"] == "centre-000001.pt" and entry["generations"] == 2
    assert entry["env_steps"] == int(rows[0]["env_steps"] + rows[1]["env_steps"]) < sum(r["env_steps"] for r in rows)
    assert entry["centre_score"] == pytest.approx(rows[1]["centre_mean"])
    assert entry["wall_clock_minutes"] == round(sum(r["eval_seconds"] + r["centre_seconds"] for r in rows[:2]) / 60, 1)
    last = add_module.compute_behind("last.pt", rows)
    assert last["generations"] == 3 and last["centre_score"] == pytest.approx(rows[2]["centre_mean"])
    best = add_module.compute_behind("best.pt", rows)  # the generation whose centre set best.pt's record
    at = best["generations"] - 1
    assert rows[at]["centre_mean"] == rows[-1]["best_centre"] == best["centre_score"]
    assert all(r["centre_mean"] < best["centre_score"] for r in rows[:at])
    shutil.copy(run / "last.pt", run / "centre-000009.pt")
    with pytest.raises(ValueError, match=r"'centre-000009.pt': no generation of the run's metrics.csv kept it \(generations 0-2\)"):
        add_module.add(run, "tiny", episodes=1, policy_file=["last.pt", "centre-000009.pt"])


def test_a_run_begun_from_a_policy_records_where_it_started_and_that_agents_compute(tmp_path, monkeypatch):
    from agents.training import TrainConfig, build_policy

    build_policy(TrainConfig(env=("HebbAnt-Default-v0",), agent="static")).save(tmp_path / "start.pt")
    run, add_module = tiny_run_to_ship(tmp_path, monkeypatch, "HebbAnt-Default-v0", popsize=4, generations=1,
                                       max_steps=20, init_policy=str(tmp_path / "start.pt"))
    entry = add_module.add(run, "tiny", episodes=1, max_steps=20)
    assert entry["started_from"] == {"policy": str(tmp_path / "start.pt"),
                                     "sha256": hashlib.sha256((tmp_path / "start.pt").read_bytes()).hexdigest()}
    # from a shipped agent: its compute comes along, with where it started in turn
    earlier = {"name": "tiny", "generations": 300, "env_steps": 5_000_000, "wall_clock_minutes": 113.0,
               "run_file": "best.pt", "sha256": "ab", "started_from": {"policy": "x.pt"}, "scores": {}}
    assert pretrained.started_from("pretrained:tiny", [earlier]) == {"policy": "pretrained:tiny", **{
        k: earlier[k] for k in ("generations", "env_steps", "wall_clock_minutes", "run_file", "sha256",
                                "started_from")}}
    assert pretrained.started_from(None, [earlier]) is None
    # a file with the bytes of a shipped agent's is that agent: its compute comes along too
    same = {**earlier, "sha256": entry["started_from"]["sha256"]}
    begun = pretrained.started_from(str(tmp_path / "start.pt"), [same])
    assert begun == {"policy": str(tmp_path / "start.pt"), "shipped_as": "pretrained:tiny", **{
        k: same[k] for k in ("generations", "env_steps", "wall_clock_minutes", "run_file", "sha256", "started_from")}}
    fine_tune = {"generations": 2, "env_steps": 10, "wall_clock_minutes": 1.04, "started_from": begun}
    assert pretrained.total_compute(fine_tune) == {"generations": 302, "env_steps": 5_000_010,
                                                   "wall_clock_minutes": 114.0}


def test_a_fine_tune_keeps_the_compute_it_started_from_when_its_own_agent_replaces_the_source(tmp_path, monkeypatch):
    """Ship a run begun at pretrained:tiny as tiny, resume it, ship it again: the second entry's started_from is
    still the first agent's compute (recorded when the run started), not the fine-tune's own first entry."""
    from agents.pretrained import add as add_module
    from agents.training import TrainConfig, build_policy, train

    pkg = tmp_path / "pkg"
    pkg.mkdir()
    build_policy(TrainConfig(env=("HebbAnt-Default-v0",), agent="static")).save(pkg / "tiny.pt")
    source = {"name": "tiny", "file": "tiny.pt", "generations": 300, "env_steps": 5_000_000,
              "wall_clock_minutes": 113.0, "run_file": "best.pt", "sha256": "ab", "scores": {}}
    (pkg / "index.json").write_text(json.dumps({"agents": [source]}))
    monkeypatch.setattr(pretrained, "_folder", lambda: pkg)
    monkeypatch.setattr(add_module, "FOLDER", pkg)
    monkeypatch.setattr(add_module, "entries", pretrained.entries)
    options = dict(env=("HebbAnt-Default-v0",), agent="static", backend="serial", centre_episodes=1, popsize=4,
                   max_steps=20, init_policy="pretrained:tiny")
    run = tmp_path / "run"
    train(TrainConfig(generations=1, **options), run, progress=False)
    first = add_module.add(run, "tiny", episodes=1, max_steps=20)
    assert first["started_from"]["generations"] == 300 and first["generations"] == 1
    train(TrainConfig(generations=2, **options), run, resume=True, progress=False)
    second = add_module.add(run, "tiny", episodes=1, max_steps=20)
    assert second["generations"] == 2
    assert second["started_from"] == first["started_from"] == {
        "policy": "pretrained:tiny", **{k: source[k] for k in pretrained.COMPUTE_KEYS if k in source}}
