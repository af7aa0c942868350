"""benchmarks/learning.py (time to walk): its bookkeeping, the hebb-gym chunk loop and a tiny peer run."""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from agents.training import TrainConfig
from agents.util.csvfile import write_csv

ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("bench_learning", ROOT / "benchmarks" / "learning.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_learning"] = module
    spec.loader.exec_module(module)
    return module


bl = _load()
nan = math.nan


def _rows(means, method="m", steps=100, wall=10.0):
    return [{"method": method, "generation": g, "env_steps": steps * (g + 1), "wall_seconds": wall * (g + 1),
             "centre_mean": m, "centre_std": 1.0 if m == m else nan} for g, m in enumerate(means)]


def _args(**kw):
    base = dict(target=20.0, max_generations=None, workers=1, seed=0, centre_every=1, peer_popsize=4)
    base.update(kw)
    return argparse.Namespace(**base)


def test_parse_methods_and_horizon():
    ms = bl.parse_methods("hebbian:fast, static:paper,evotorch")
    assert [m.label for m in ms] == ["hebbian:fast", "static:paper", "evotorch"]
    assert [m.slug for m in ms] == ["hebbian-fast", "static-paper", "evotorch"]
    for bad in ("hebbian", "evotorch:fast", "ppo:x", "", "evotorch,evotorch", "static:episodes=2",
                "static:fast:nope=1", "static:fast:episodes", "static:fast:seed=3", "static:fast:episodes=two",
                "static:fast:optimizer=nadam", "evotorch:episodes=2"):
        with pytest.raises(ValueError):
            bl.parse_methods(bad)


def test_a_method_puts_training_settings_over_its_preset():
    """``static:fast:optimizer=clipup:episodes=2``: one option's effect is one more method of the benchmark."""
    m, = bl.parse_methods("static:fast:optimizer=clipup:episodes=2")
    assert (m.kind, m.preset, m.options) == ("static", "fast", (("optimizer", "clipup"), ("episodes", 2)))
    assert m.label == "static:fast:optimizer=clipup:episodes=2" and "/" not in m.slug and ":" not in m.slug
    config = bl.hebb_config(m, _args(), budget_s=600.0)
    plain = bl.hebb_config(bl.Method("static", "fast"), _args(), budget_s=600.0)
    assert (config.optimizer, config.episodes) == ("clipup", 2) and plain.optimizer != "clipup"
    assert {k: v for k, v in config.to_json().items() if k not in ("optimizer", "episodes")} == \
        {k: v for k, v in plain.to_json().items() if k not in ("optimizer", "episodes")}
    with pytest.raises(ValueError, match="accepted keys: .*sigma_adapt"):
        bl.parse_methods("static:fast:max_minutes=3")
    assert bl.parse_horizon("1000") == [(0, 1000)]
    schedule = bl.parse_horizon("10:1000,0:200")
    assert [bl.horizon_at(schedule, g) for g in (0, 9, 10, 99)] == [200, 200, 1000, 1000]
    for bad in ("5:100", "0:0", "0:1,0:2"):
        with pytest.raises(ValueError):
            bl.parse_horizon(bad)


def test_truncation_at_the_first_centre_reaching_the_target():
    rows = _rows([nan, 5.0, nan, 19.9, nan, 20.0, nan, 30.0])
    curve, reached = bl.truncate_at_target(rows, 20.0)
    assert reached and len(curve) == 6 and curve[-1]["generation"] == 5
    curve, reached = bl.truncate_at_target(rows, 40.0)
    assert not reached and len(curve) == 8
    assert bl.truncate_at_target([], 20.0) == ([], False)


def test_summary_and_markdown_table():
    reached = bl.summarise("hebbian:fast", _rows([nan, 5.0, nan, 25.0, 40.0]), 20.0)
    assert reached == {"method": "hebbian:fast", "reached": True, "wall_seconds": 40.0, "env_steps": 400,
                       "generations": 4, "best_centre_mean": 25.0, "best_centre_std": 1.0}
    missed = bl.summarise("evotorch", _rows([nan, 3.0, nan, 2.0], steps=250_000, wall=900.0), 20.0)
    assert not missed["reached"] and missed["best_centre_mean"] == 3.0 and missed["wall_seconds"] == 3600.0
    none = bl.summarise("static:fast", _rows([nan]), 20.0)
    assert math.isnan(none["best_centre_mean"])
    table = bl.markdown_summary([reached, missed, none], 20.0).splitlines()
    assert table[0] == "| method | reached 20 m? | wall-clock | env-steps | generations | best centre mean |"
    assert table[2] == "| hebbian:fast | yes | 0.7 min | 400 | 4 | 25.00 ± 1.00 m |"
    assert table[3] == "| evotorch | no | > 60.0 min | > 1.00M | 4 | 3.00 ± 1.00 m |"
    assert table[4] == "| static:fast | no | > 0.2 min | > 100 | 1 | - |"


def test_wall_clock_spread_over_a_chunk():
    walls = bl.spread_wall_clock(100.0, 10.0, [1.0, 3.0, 1.0])
    assert walls == pytest.approx([102.0, 108.0, 110.0])
    assert bl.spread_wall_clock(0.0, 4.0, [0.0, 0.0]) == pytest.approx([2.0, 4.0])
    assert bl.spread_wall_clock(0.0, 4.0, []) == []


def test_curves_merge_and_round_trip(tmp_path):
    old = _rows([nan, 1.0], method="a") + _rows([2.0], method="b")
    new = _rows([nan, 3.0, 4.0], method="b")
    merged = bl.merge_curves(old, new)
    assert [r["method"] for r in merged] == ["a", "a", "b", "b", "b"]
    write_csv(tmp_path / "curves.csv", merged, bl.CURVE_FIELDS, nonfinite="")
    back = bl.read_curves(tmp_path / "curves.csv")
    assert back[0]["method"] == "a" and math.isnan(back[0]["centre_mean"]) and back[1]["centre_mean"] == 1.0
    assert bl.read_curves(tmp_path / "missing.csv") == []
    assert bl.plot_curves(back, 20.0, tmp_path / "fig.png").stat().st_size > 0


def test_hebb_methods_skipped_when_their_preset_does_not_exist():
    assert "preset" in bl.hebb_unavailable(bl.Method("hebbian", "no-such-preset"))
    assert bl.hebb_unavailable(bl.Method("hebbian", "fast")) is None


def test_hebb_config_asks_the_trainer_to_stop_at_the_target_and_the_budget():
    config = bl.hebb_config(bl.Method("static", "fast"), _args(target=20.0), budget_s=1800.0)
    assert (config.agent, config.preset, config.stop_centre, config.max_minutes) == ("static", "fast", 20.0, 30.0)
    assert (config.centre_episodes, config.centre_max_steps) == (bl.CENTRE_EPISODES, bl.CENTRE_STEPS)
    # the target is metres whatever the method trains on
    other = bl.hebb_config(bl.parse_methods("static:fast:fitness=reward-no-alive")[0], _args(target=20.0), 60.0)
    assert (other.fitness, other.resolved_centre_fitness(), other.centre_score) == ("reward-no-alive", "distance", "mean")
    with pytest.raises(ValueError, match="centre_fitness"):
        bl.parse_methods("static:fast:centre_fitness=return")


def test_the_paper_preset_runs_on_mujoco_with_its_es_settings():
    """The benchmark's env is MuJoCo: paper's PyBullet body and progress fitness give way, its ES stays."""
    from agents.training import TrainConfig

    own = TrainConfig.from_preset("paper", env=(bl.ENV,))
    assert own.env_kwargs.get("backend") == "bullet" and own.fitness == "progress"  # what the preset itself says
    config = bl.hebb_config(bl.Method("hebbian", "paper"), _args(), budget_s=600.0)
    assert config.env_kwargs == {} and config.fitness == "distance"
    assert (config.popsize, config.lr, config.sigma, config.max_steps, config.early_stop) == (
        own.popsize, own.lr, own.sigma, own.max_steps, own.early_stop)
    with pytest.raises(ValueError, match="env_kwargs"):
        bl.parse_methods("static:paper:env_kwargs={}")


def test_a_real_tiny_run_stops_at_its_target(tmp_path, monkeypatch):
    """One trainer call (serial, 4 individuals, 15-step episodes) that stops once its centre reaches the target."""

    def config(method, args, budget_s):
        return TrainConfig(env=(bl.ENV,), agent=method.kind, popsize=4, generations=50, max_steps=15,
                           backend="serial", seed=1, centre_every=1, centre_episodes=2, stop_centre=args.target,
                           max_minutes=budget_s / 60)

    monkeypatch.setattr(bl, "hebb_config", config)
    rows = bl.run_hebb(bl.Method("static", "fast"), tmp_path / "run", _args(target=-1e9), 1e9)
    assert [r["generation"] for r in rows] == [0]  # any centre reaches -1e9 m: the first evaluation stops the run
    assert rows[-1]["env_steps"] == 4 * 15 and math.isfinite(rows[-1]["centre_mean"]) and rows[-1]["wall_seconds"] > 0
    rows = bl.run_hebb(bl.Method("static", "fast"), tmp_path / "run2", _args(target=1e9), 1e9)
    assert [r["generation"] for r in rows] == list(range(50))


def test_peer_fitness_is_the_distance_after_the_episode():
    env = bl.make_peer_env(40)
    env.reset(seed=3)
    total, rng = 0.0, np.random.default_rng(0)
    for _ in range(40):
        _, r, terminated, truncated, info = env.step(rng.uniform(-1, 1, env.action_space.shape))
        total += r
    env.close()
    assert truncated and not terminated
    assert total == pytest.approx(info["distance"], abs=1e-9)


def test_tiny_peer_run(tmp_path):
    pytest.importorskip("evotorch", reason="EvoTorch is not installed (pip install 'hebb-gym[bench]')")
    args = _args(target=1e9, max_generations=2, centre_every=2, peer_popsize=4)
    rows = bl.run_evotorch(tmp_path / "evotorch", args, 1e9, bl.parse_horizon("0:10,1:20"),
                           centre_episodes=2, centre_steps=30)
    assert [r["generation"] for r in rows] == [0, 1]
    assert [r["env_steps"] for r in rows] == [4 * 10, 4 * 10 + 4 * 20]
    assert math.isnan(rows[0]["centre_mean"]) and math.isfinite(rows[1]["centre_mean"])
    assert (tmp_path / "evotorch" / "metrics.csv").exists() and (tmp_path / "evotorch" / "centre.pt").exists()
