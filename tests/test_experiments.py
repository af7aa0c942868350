"""Experiments end to end at tiny budgets: the PPO baseline, compare, leave-one-out, and their bad input."""

from __future__ import annotations

import argparse
import csv
import json
import warnings
from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest

import hebb_gym
from agents.experiments.compare import Contender, compare, evaluate_contender, resolve_agent
from agents.experiments.evaluate import evaluate_policy_on
from agents.cli.experiments import add_experiment_commands
from agents.experiments.loo import LOOConfig, parse_agent_spec, parse_agents, resolve_variants, run_loo
from agents.policies import load_policy
from agents.experiments.ppo import PPOConfig, hyperparameters, load_ppo, train_ppo
from agents.training import TrainConfig, train

ANT = "HebbAnt-Default-v0"
ANT2 = "HebbAnt-LongRearLegs-v0"
CAR = "HebbCarRacing-Default-v0"
TINY_PPO = ["--n-envs", "2", "--n-steps", "32", "--batch-size", "32", "--n-epochs", "1"]

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def cli(*argv: str) -> int:
    """Run one of this module's sub-commands through argparse, as ``hebb-gym`` will."""
    parser = argparse.ArgumentParser(prog="hebb-gym")
    add_experiment_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.handler(args)


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def es_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("es") / "hebb"
    train(TrainConfig(env=(ANT,), popsize=4, generations=2, max_steps=20, backend="serial", seed=3), out,
          progress=False)
    return out


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ppo") / "ppo"
    assert cli("ppo", "--env", f"{ANT},{ANT2}", "--timesteps", "256", "--max-steps", "50", "--seed", "1",
               *TINY_PPO, "--out", str(out), "--quiet") == 0
    return out


def test_ppo_writes_a_model_sb3_loads(ppo_run):
    from stable_baselines3 import PPO

    model = PPO.load(ppo_run / "model.zip", device="cpu")
    assert model.num_timesteps >= 256
    settings = json.loads((ppo_run / "settings.json").read_text())
    assert settings["env"] == [ANT, ANT2] and settings["hyperparams"]["n_envs"] == 2
    assert settings["hyperparams"]["ppo"]["n_steps"] == 32
    assert settings["hyperparams"]["ppo"]["clip_range"] == hyperparameters("ant")["ppo"]["clip_range"]
    assert (ppo_run / "vecnormalize.pkl").is_file()  # the quadruped's observations are normalised
    episodes = read_csv(ppo_run / "episodes.csv")
    assert {r["env"] for r in episodes} == {ANT, ANT2}  # the VecEnv mixes the variants
    # The model acts in the quadruped's action space.
    obs = np.zeros((3, 27), dtype=np.float32)
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (3, 8)


def test_ppo_refuses_to_overwrite(ppo_run):
    with pytest.raises(FileExistsError, match="model.zip"):
        train_ppo(PPOConfig(env=(ANT,), timesteps=8), ppo_run)


def test_ppo_stops_at_its_wall_clock_budget(tmp_path):
    # A budget far below what the timesteps need: the run stops at its first step past it and still saves.
    result = train_ppo(PPOConfig(env=(ANT,), timesteps=10**7, max_minutes=1e-4, n_envs=1, max_steps=20,
                                 overrides={"n_steps": 16, "batch_size": 16, "n_epochs": 1}), tmp_path / "p")
    assert 1 <= result.timesteps < 10**7
    settings = json.loads((tmp_path / "p" / "settings.json").read_text())
    assert settings["max_minutes"] == 1e-4 and settings["timesteps_done"] == result.timesteps
    with pytest.raises(ValueError, match="max_minutes"):
        PPOConfig(max_minutes=0)


def test_ppo_car_uses_a_cnn(tmp_path):
    out = tmp_path / "car"
    train_ppo(PPOConfig(env=(CAR,), timesteps=16, n_envs=1, max_steps=12,
                        overrides={"n_steps": 16, "batch_size": 16, "n_epochs": 1}), out)
    ppo = load_ppo(out)
    assert type(ppo.model.policy.features_extractor).__name__ == "NatureCNN"
    assert ppo.model.observation_space.shape in ((2, 64, 64), (64, 64, 2))  # 2 stacked 64x64 grey frames
    score = evaluate_contender(Contender("ppo", "ppo", ppo.path), CAR, episodes=1, seed=0, max_steps=10)
    assert score.lengths.tolist() == [10] and np.isfinite(score.returns).all()


def _direct_ppo(path, env_id, episodes, seed, max_steps):
    """PPO without SB3's VecEnvs: raw envs, the saved observation statistics applied by hand, lockstep."""
    ppo = load_ppo(path)
    import pickle

    with open(ppo.vecnormalize_path, "rb") as f:
        stats = pickle.load(f)
    envs = [gym.make(env_id, max_episode_steps=max_steps) for _ in range(episodes)]
    obs = np.stack([e.reset(seed=seed + i)[0] for i, e in enumerate(envs)])
    active = np.ones(episodes, bool)
    ret, dist = np.zeros(episodes), np.zeros(episodes)
    while active.any():
        norm = np.clip((obs - stats.obs_rms.mean) / np.sqrt(stats.obs_rms.var + stats.epsilon),
                       -stats.clip_obs, stats.clip_obs)
        actions, _ = ppo.model.predict(norm.astype(np.float32), deterministic=True)
        for i in np.nonzero(active)[0]:
            o, r, term, trunc, info = envs[i].step(actions[i])
            obs[i], ret[i], dist[i] = o, ret[i] + r, info["distance"]
            active[i] = not (term or trunc)
    for e in envs:
        e.close()
    return ret, dist


def test_compare_matches_a_direct_evaluation(es_run, ppo_run, tmp_path):
    out = tmp_path / "cmp"
    assert cli("compare", f"hebb={es_run}", str(ppo_run / "model.zip"), "--env", f"{ANT},{ANT2}",
               "--episodes", "3", "--max-steps", "30", "--seed", "5", "--out", str(out)) == 0
    for name in ("results.csv", "episodes.csv", "results.md", "results.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    rows = read_csv(out / "results.csv")
    assert [(r["agent"], r["variant"]) for r in rows] == [
        ("hebb", "Default"), ("hebb", "LongRearLegs"), ("ppo", "Default"), ("ppo", "LongRearLegs")]
    table = (out / "results.md").read_text()
    assert "## Distance" in table and "| hebb |" in table
    cell = {(r["agent"], r["env"]): r for r in rows}

    # ES cell: the package's own lockstep loop (no SB3) gives the same episodes.
    direct = evaluate_policy_on(load_policy(es_run / "best.pt"), ANT2, episodes=3, seed=5, max_steps=30)
    r = cell[("hebb", ANT2)]
    assert float(r["return_mean"]) == pytest.approx(direct.returns.mean(), abs=1e-5)
    assert float(r["return_std"]) == pytest.approx(direct.returns.std(), abs=1e-5)
    assert float(r["distance_mean"]) == pytest.approx(direct.distances.mean(), abs=1e-9)
    assert float(r["length_mean"]) == direct.lengths.mean()
    per_episode = [e for e in read_csv(out / "episodes.csv") if e["agent"] == "hebb" and e["env"] == ANT2]
    assert [int(e["reset_seed"]) for e in per_episode] == [5, 6, 7]
    np.testing.assert_allclose([float(e["return"]) for e in per_episode], direct.returns, atol=1e-5)

    # PPO cell: raw envs, saved normalisation applied by hand.
    ret, dist = _direct_ppo(ppo_run, ANT, 3, 5, 30)
    r = cell[("ppo", ANT)]
    assert float(r["return_mean"]) == pytest.approx(ret.mean(), abs=1e-4)
    assert float(r["distance_mean"]) == pytest.approx(dist.mean(), abs=1e-4)


def test_compare_is_reproducible_and_seeded(es_run):
    c = resolve_agent(es_run)
    a = evaluate_contender(c, ANT, episodes=2, seed=0, max_steps=25)
    b = evaluate_contender(c, ANT, episodes=2, seed=0, max_steps=25)
    np.testing.assert_array_equal(a.returns, b.returns)
    other = evaluate_contender(c, ANT, episodes=2, seed=100, max_steps=25)
    assert not np.array_equal(a.returns, other.returns)


@pytest.fixture(scope="module")
def loo_config():
    return LOOConfig(train=TrainConfig(generations=2, popsize=4, max_steps=20, backend="serial"),
                     ppo=PPOConfig(timesteps=64, n_envs=4), eval_episodes=2, eval_seed=7)


def test_loo_writes_its_files_and_resumes(tmp_path, loo_config):
    out = tmp_path / "loo"
    agents = "hebbian,static,ppo:n_steps=16:batch_size=32:n_epochs=1"
    first = run_loo("ant", agents, 1, out, loo_config, variants="Default,LongRearLegs")
    assert len(first.trained) == 6 and first.skipped == []
    for name in ("results.csv", "summary.csv", "results.md", "results.png", "loo.json"):
        assert (out / name).is_file(), name
    rows = read_csv(out / "results.csv")
    assert len(rows) == 3 * 2 * 5  # agents x held-out x evaluated variants
    for r in rows:
        assert (r["role"] == "test") == (r["variant"] == r["held_out"])
    # Each cell trained on the four other variants.
    cell = out / "cells" / "hebbian" / "LongRearLegs" / "seed0"
    config = json.loads((cell / "run" / "config.json").read_text())["train"]
    assert sorted(config["env"]) == sorted(set(hebb_gym.variants("ant")) - {ANT2})
    ppo_settings = json.loads((out / "cells" / "ppo-batch_size32-n_epochs1-n_steps16" / "Default" / "seed0" / "ppo"
                               / "settings.json").read_text())
    assert ANT not in ppo_settings["env"] and len(ppo_settings["env"]) == 4
    # Summary: test = held-out distance, train = mean over the four seen variants.
    summary = {(s["agent"], s["held_out"]): s for s in read_csv(out / "summary.csv")}
    mine = [r for r in rows if r["agent"] == "static" and r["held_out"] == "Default"]
    test = next(float(r["distance_mean"]) for r in mine if r["role"] == "test")
    train_score = np.mean([float(r["distance_mean"]) for r in mine if r["role"] == "train"])
    assert float(summary[("static", "Default")]["test_mean"]) == pytest.approx(test)
    assert float(summary[("static", "Default")]["train_mean"]) == pytest.approx(train_score)
    table = (out / "results.md").read_text()
    assert "held-out Default" in table and "held-out LongRearLegs" in table and "| static |" in table
    # The numbers are those of a direct evaluation of the cell's policy, on the envs it trained on (the
    # quadruped's unhealthy termination off, as in training).
    direct = evaluate_policy_on(load_policy(cell / "run" / "best.pt"), ANT, episodes=2, seed=7, max_steps=20,
                                env_kwargs={"terminate_when_unhealthy": False})
    r = next(r for r in rows if r["agent"] == "hebbian" and r["held_out"] == "LongRearLegs" and r["env"] == ANT)
    assert float(r["distance_mean"]) == pytest.approx(direct.distances.mean(), abs=1e-9)

    # Re-running trains nothing and rewrites no cell.
    stamps = {p: p.stat().st_mtime_ns for p in (out / "cells").rglob("*") if p.is_file()}
    again = run_loo("ant", agents, 1, out, loo_config, variants="Default,LongRearLegs")
    assert again.trained == [] and len(again.skipped) == 6
    assert {p: p.stat().st_mtime_ns for p in (out / "cells").rglob("*") if p.is_file()} == stamps
    assert read_csv(out / "results.csv") == rows

    # A cell whose result is missing (interrupted after training) is finished, and only that one.
    (cell / "result.json").unlink()
    third = run_loo("ant", agents, 1, out, loo_config, variants="Default,LongRearLegs")
    assert third.trained == [("hebbian", ANT2, 0)]

    def scores(rs):
        return [{k: v for k, v in r.items() if k != "train_seconds"} for r in rs]

    assert scores(read_csv(out / "results.csv")) == scores(rows)

    # Other settings in the same folder are refused.
    with pytest.raises(ValueError, match="generations"):
        run_loo("ant", agents, 1, out, replace(loo_config, train=replace(loo_config.train, generations=3)),
                variants="Default")


def test_loo_cli(tmp_path, capsys):
    out = tmp_path / "loo"
    args = ["loo", "--task", "ant", "--agents", "static", "--seeds", "1", "--variants", "LongFrontLegs",
            "--generations", "1", "--popsize", "2", "--max-steps", "10", "--eval-episodes", "1",
            "--backend", "serial", "--out", str(out), "--quiet"]
    assert cli(*args) == 0
    assert "cells trained now: 1" in capsys.readouterr().out
    assert cli(*args) == 0
    assert "cells trained now: 0, already finished: 1" in capsys.readouterr().out


def test_agent_specs():
    assert parse_agent_spec("hebbian:rho=16").label == "hebbian:rho=16"
    assert parse_agent_spec("hebbian:rho=16").options == (("rho", 16),)
    assert parse_agent_spec("hebbian:rule=ABCD:rho=4").dirname == "hebbian-rho4-ruleABCD"
    assert [s.label for s in parse_agents("hebbian,hebbian:rho=16,static,lstm,ppo")] == [
        "hebbian", "hebbian:rho=16", "static", "lstm", "ppo"]
    assert resolve_variants("car", "WindWest,HebbCarRacing-Default-v0") == [
        "HebbCarRacing-WindWest-v0", "HebbCarRacing-Default-v0"]


@pytest.mark.parametrize("spec, words", [
    ("hebbian:rho=x", ["rho='x'", "int"]),
    ("transformer", ["'transformer'", "hebbian, static, lstm, ppo"]),
    ("static:rho=4", ["'rho'", "lr"]),
    ("ppo:learning_rate=fast", ["learning_rate='fast'", "float"]),
    ("hebbian:rho", ["'rho'", "key=value"]),
    ("hebbian:rho=0", ["rho='0'", ">= 1"]),
])
def test_bad_agent_spec_is_named(spec, words):
    with pytest.raises(ValueError) as info:
        parse_agent_spec(spec)
    for w in words:
        assert w in str(info.value)


def test_bad_input(tmp_path, es_run):
    with pytest.raises(ValueError, match="'bike'.*'ant'"):
        run_loo("bike", "hebbian", 1, tmp_path / "x")
    with pytest.raises(ValueError, match="'Wobbly'.*LongRearLegs"):
        resolve_variants("ant", "Wobbly")
    with pytest.raises(ValueError, match="listed twice"):
        parse_agents("static,static")
    with pytest.raises(ValueError, match="seeds=0"):
        run_loo("ant", "static", 0, tmp_path / "y")
    with pytest.raises(ValueError, match="'bike'"):
        hyperparameters("bike")
    with pytest.raises(ValueError, match="'Nope-v0'"):
        PPOConfig(env="Nope-v0")
    with pytest.raises(ValueError, match="mixes tasks"):
        PPOConfig(env=f"{ANT},{CAR}")
    with pytest.raises(ValueError, match="'warp'.*learning_rate"):
        PPOConfig(env=ANT, overrides={"warp": 9})
    with pytest.raises(ValueError, match="mixes tasks"):
        compare([es_run], env=f"{ANT},{CAR}", episodes=1)
    with pytest.raises(ValueError, match="observations of shape"):
        evaluate_contender(resolve_agent(es_run), CAR, episodes=1, max_steps=2)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_agent(tmp_path / "missing")
    with pytest.raises(ValueError, match="episodes=0"):
        evaluate_contender(resolve_agent(es_run), ANT, episodes=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="either --env or --task"):
            cli("compare", str(es_run), "--env", ANT, "--task", "ant")


def test_evaluate_video_writes_a_gif_of_the_first_episode(tmp_path):
    """``evaluate --video DIR --video-width W``: one GIF per env, W pixels wide, one frame per step."""
    from PIL import Image

    from agents.cli import main as cli

    assert cli(["evaluate", "pretrained:static-ant", "--env", "HebbAnt-Default-v0", "--episodes", "2",
                "--max-steps", "30", "--video", str(tmp_path), "--video-width", "120"]) == 0
    with Image.open(tmp_path / "HebbAnt-Default-v0-seed0.gif") as gif:
        assert gif.size[0] == 120 and gif.n_frames == 30


def test_save_gif_keeps_at_most_max_frames_and_refuses_a_bad_width(tmp_path):
    from PIL import Image

    from agents.experiments.evaluate import save_gif

    frames = [np.full((40, 60, 3), 4 * i, dtype=np.uint8) for i in range(50)]
    with Image.open(save_gif(frames, tmp_path / "a.gif", max_frames=20)) as gif:
        assert gif.size == (60, 40) and gif.n_frames == 17  # every 3rd frame
    with pytest.raises(ValueError, match="width=8: a GIF width is an int >= 16"):
        save_gif(frames, tmp_path / "b.gif", width=8)
