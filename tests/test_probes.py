"""Probes: the probes do what they say, files hold the run's numbers, bad input fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import hebb_gym  # noqa: F401
from agents.util.csvfile import read_csv
from agents.policies import HebbianPolicy, LSTMPolicy, StaticPolicy
from agents.experiments.probes import (
    Probe,
    ProbeResult,
    Rollout,
    parse_probe,
    probe_experiment,
    run_condition,
    run_probe,
)

ENV = "HebbAnt-Default-v0"


def _direct_returns(
    policy: HebbianPolicy, episodes: int, max_steps: int, seed: int, **env_kwargs: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Returns and final distances of a plain ``predict`` rollout from the same seeds (no probe code)."""
    envs = [gym.make(ENV, max_episode_steps=max_steps, **env_kwargs) for _ in range(episodes)]
    obs = np.stack([e.reset(seed=seed + i)[0] for i, e in enumerate(envs)])
    state = policy.initial_state(episodes, seed)
    returns, dist, done = np.zeros(episodes), np.zeros(episodes), np.zeros(episodes, bool)
    while not done.all():
        actions, state = policy.predict(obs, state=state)
        for i in np.nonzero(~done)[0]:
            obs[i], r, term, trunc, info = envs[i].step(actions[i])
            returns[i] += r
            dist[i] = info["distance"]
            done[i] = term or trunc
    for e in envs:
        e.close()
    return returns, dist


# --- parsing and bad input -------------------------------------------------------------------------


def test_parse_probe_forms() -> None:
    assert parse_probe("freeze-weights@50,10,100") == Probe("freeze-weights", (10, 50, 100))
    assert [c.label for c in parse_probe("freeze-weights@10,50").conditions()] == [
        "freeze-weights@10",
        "freeze-weights@50",
    ]
    assert parse_probe("freeze-actuators@300:400") == Probe("freeze-actuators", window=(300, 400))
    z = parse_probe(" zero-weights@100:0.33 ")
    assert (z.kind, z.times, z.fraction, z.label) == ("zero-weights", (100,), 0.33, "zero-weights@100:0.33")
    assert parse_probe("zero-weights@0:1").fraction == 1.0


@pytest.mark.parametrize(
    "spec, match",
    [
        ("bogus@10", "kind 'bogus' is not known"),
        ("freeze-weights", "no parameters"),
        ("freeze-weights@", "no parameters"),
        ("freeze-weights@-1", "T='-1' is not a step"),
        ("freeze-weights@1.5", "T='1.5' is not a step"),
        ("freeze-weights@3,3", "repeat"),
        ("freeze-actuators@5", "is not T0:T1"),
        ("freeze-actuators@10:5", "window 10:5 is empty"),
        ("freeze-actuators@5:5", "window 5:5 is empty"),
        ("freeze-actuators@a:5", "T0='a' is not a step"),
        ("zero-weights@10", "is not T:FRACTION"),
        ("zero-weights@10:0", r"outside \(0, 1\]"),
        ("zero-weights@10:1.5", r"outside \(0, 1\]"),
        ("zero-weights@10:-0.2", r"outside \(0, 1\]"),
        ("zero-weights@10:nan", r"outside \(0, 1\]"),
        ("zero-weights@10:abc", "FRACTION='abc' is not a number"),
        ("zero-weights@x:0.3", "T='x' is not a step"),
    ],
)
def test_parse_probe_rejects(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_probe(spec)


@pytest.mark.parametrize(
    "spec, match",
    [
        ("freeze-actuators@10:31", "window 10:31 ends after the episode of 30 steps"),
        ("freeze-weights@5,30", r"step\(s\) \[30\] lie outside the episode of 30 steps"),
        ("zero-weights@40:0.3", r"step\(s\) \[40\] lie outside"),
    ],
)
def test_window_outside_episode(policy: HebbianPolicy, spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        probe_experiment(policy, ENV, spec, episodes=1, max_steps=30)


@pytest.mark.parametrize("cls", [StaticPolicy, LSTMPolicy])
@pytest.mark.parametrize("spec", ["freeze-weights@5", "zero-weights@5:0.5"])
def test_weight_probes_need_plastic_policy(cls: type, spec: str) -> None:
    pol = cls.from_env(ENV, seed=0)
    with pytest.raises(ValueError, match=f"edits plastic weights, but the policy is a {cls.__name__}"):
        probe_experiment(pol, ENV, spec, episodes=1, max_steps=10)


def test_freeze_actuators_on_static_policy() -> None:
    res = probe_experiment(
        StaticPolicy.from_env(ENV, seed=0),
        ENV,
        "freeze-actuators@2:4",
        episodes=1,
        max_steps=6,
        record_actions=True,
    )
    assert np.all(res.probed[0].actions_sent[0, 2:4] == 1.0)
    assert not np.array_equal(res.probed[0].rewards, res.baseline.rewards)


# --- the probes do what they say ---------------------------------------------------------------------


def test_freeze_weights_stops_plasticity(policy: HebbianPolicy) -> None:
    t_freeze, steps = 8, 20
    base = run_condition(policy, ENV, 2, steps, seed=3, trajectory_every=1, record_actions=True)
    probed = run_condition(
        policy,
        ENV,
        2,
        steps,
        seed=3,
        probe=parse_probe(f"freeze-weights@{t_freeze}"),
        trajectory_every=1,
        record_actions=True,
    )
    for wb, wp in zip(base.trajectory, probed.trajectory):  # per layer (steps, episodes, out, in)
        assert np.array_equal(wb[: t_freeze + 1], wp[: t_freeze + 1])  # identical until the freeze
        assert not np.array_equal(wp[t_freeze - 1], wp[t_freeze])  # it was still learning at T-1
        for t in range(t_freeze + 1, steps):
            assert np.array_equal(wp[t], wp[t_freeze])  # no change from step T on
        assert not np.array_equal(wb[-1], wb[t_freeze])  # the baseline keeps learning
    assert np.array_equal(base.actions_sent[:, : t_freeze + 1], probed.actions_sent[:, : t_freeze + 1])


def test_zero_weights_zeroes_a_third(policy: HebbianPolicy) -> None:
    t_zero, steps = 6, 12
    probe = parse_probe(f"zero-weights@{t_zero}:0.33")
    base = run_condition(policy, ENV, 2, steps, seed=1, trajectory_every=1)
    probed = run_condition(policy, ENV, 2, steps, seed=1, probe=probe, trajectory_every=1)
    for j, (wb, wp) in enumerate(zip(base.trajectory, probed.trajectory)):
        n = wp.shape[-1] * wp.shape[-2]
        assert np.array_equal(wb[:t_zero], wp[:t_zero])
        assert not (wp[:t_zero] == 0).any()
        for e in range(2):
            zeros = int((wp[t_zero, e] == 0).sum())
            assert zeros == round(0.33 * n)  # exactly round(F * n) per layer and episode
            assert abs(zeros / n - 0.33) <= 0.5 / n + 1e-12
            assert np.array_equal(wp[t_zero, e] == 0, probed.zeroed[j][e])
            assert np.array_equal(wp[t_zero, e][~probed.zeroed[j][e]], wb[t_zero, e][~probed.zeroed[j][e]])
        assert not np.array_equal(wp[t_zero + 1], wp[t_zero])  # plasticity continues afterwards
        assert not (wp[t_zero + 1] == 0).all()
    # a different fraction per run seed? the mask is seeded: the same seed gives the same mask
    again = run_condition(policy, ENV, 2, steps, seed=1, probe=probe)
    assert all(np.array_equal(a, b) for a, b in zip(again.zeroed, probed.zeroed))


def test_freeze_actuators_saturates_exactly_in_window(policy: HebbianPolicy) -> None:
    t0, t1, steps = 4, 9, 14
    probe = parse_probe(f"freeze-actuators@{t0}:{t1}")
    base = run_condition(policy, ENV, 2, steps, seed=0, record_actions=True)
    r = run_condition(policy, ENV, 2, steps, seed=0, probe=probe, record_actions=True)
    high = gym.make(ENV).action_space.high
    sent, own = r.actions_sent, r.actions_policy
    inside = np.zeros(steps, bool)
    inside[t0:t1] = True
    assert np.all(sent[:, inside] == high)
    assert np.array_equal(sent[:, ~inside], own[:, ~inside])  # outside the window: the policy's actions
    assert not np.any(np.all(sent[:, ~inside] == high, axis=-1))
    assert not np.array_equal(own[:, inside], sent[:, inside])  # the policy kept acting meanwhile
    assert np.array_equal(own[:, :t0], base.actions_policy[:, :t0])
    # the env really got these actions: replaying them reproduces the rewards exactly
    for e, s in enumerate(r.seeds):
        env = gym.make(ENV, max_episode_steps=steps)
        env.reset(seed=s)
        replay = [env.step(sent[e, t])[1] for t in range(steps)]
        env.close()
        assert np.array_equal(np.array(replay), r.rewards[e])


# --- files ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, slug",
    [
        ("freeze-weights@3,10", "freeze-weights_3-10"),
        ("zero-weights@5:0.33", "zero-weights_5_0.33"),
        ("freeze-actuators@4:12", "freeze-actuators_4_12"),
    ],
)
def test_probe_cli_writes_consistent_files(
    run_dir: Path, policy: HebbianPolicy, tmp_path: Path, spec: str, slug: str, probe_cli
) -> None:
    episodes, steps = 2, 25
    rc = probe_cli(
        [
            "probe",
            str(run_dir),
            "--env",
            ENV,
            "--probe",
            spec,
            "--episodes",
            str(episodes),
            "--max-steps",
            str(steps),
            "--seed",
            "7",
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 0
    assert (tmp_path / f"{slug}.png").stat().st_size > 0
    rows = read_csv(tmp_path / f"{slug}.csv")
    labels = parse_probe(spec).conditions()
    assert {r["condition"] for r in rows} == {"baseline", *(c.label for c in labels)}
    base = [r for r in rows if r["condition"] == "baseline"]
    assert [int(r["t"]) for r in base] == list(range(steps))
    # A run directory is probed with the env settings it was trained with (no unhealthy termination).
    returns, dist = _direct_returns(policy, episodes, steps, seed=7, terminate_when_unhealthy=False)
    assert float(base[-1]["cumulative_reward"]) == pytest.approx(returns.mean(), rel=1e-9, abs=1e-9)
    assert float(base[-1]["distance"]) == pytest.approx(dist.mean(), rel=1e-9, abs=1e-9)
    ep_rows = read_csv(tmp_path / f"{slug}_episodes.csv")
    for c in ["baseline", *(c.label for c in labels)]:
        mine = [r for r in rows if r["condition"] == c]
        cum = np.cumsum([float(r["reward"]) for r in mine])
        assert np.allclose(cum, [float(r["cumulative_reward"]) for r in mine])
        eps = [float(r["return"]) for r in ep_rows if r["condition"] == c]
        assert len(eps) == episodes and float(mine[-1]["cumulative_reward"]) == pytest.approx(np.mean(eps))
    assert [float(r["return"]) for r in ep_rows if r["condition"] == "baseline"] == pytest.approx(returns)
    summary = json.loads((tmp_path / f"{slug}.json").read_text())
    assert summary["env_seeds"] == [7, 8] and summary["max_steps"] == steps
    if parse_probe(spec).plastic_only:
        for c in labels:
            assert (tmp_path / f"{c.slug}_weights.png").stat().st_size > 0
            arrays = np.load(tmp_path / f"{c.slug}_weights.npz")
            t = c.start
            assert {f"t{t - 1}_dense.0", f"t{t}_dense.0", f"t{t + 10}_dense.0"} <= set(arrays.files)
            if c.kind == "freeze-weights":
                assert np.array_equal(arrays[f"t{t}_dense.1"], arrays[f"t{t + 10}_dense.1"])
            else:
                z = arrays[f"t{t}_dense.1"]
                assert (z == 0).sum() == round(0.33 * z.size)
                assert summary["conditions"][1]["zeroed_fraction"][1] == pytest.approx((z == 0).mean())
    else:
        assert not list(tmp_path.glob("*_weights.png"))


def test_probe_cli_accepts_policy_file_and_default_env(tmp_path: Path) -> None:
    path = tmp_path / "pol.pt"
    HebbianPolicy.from_env(ENV, seed=5).save(path)
    result, files = run_probe(path, "freeze-weights@0", tmp_path / "out", episodes=1, max_steps=5)
    assert result.env_id == ENV and files["curves_png"].exists()
    w = result.probed[0].snapshots
    assert set(w) == {0} and -1 not in w  # no "before" map for T = 0; t + 10 lies outside the episode


def test_warns_when_episodes_end_before_the_probe() -> None:
    def roll(label: str, lengths: list[int]) -> Rollout:
        running = np.array([[t < n for t in range(10)] for n in lengths])
        return Rollout(label, [0, 1], np.where(running, 1.0, 0.0), np.zeros((2, 10)), running)

    probe = parse_probe("freeze-weights@3,8")
    result = ProbeResult(
        probe,
        ENV,
        10,
        0,
        roll("baseline", [10, 5]),
        [roll("freeze-weights@3", [10, 5]), roll("freeze-weights@8", [10, 5])],
        probe.conditions(),
    )
    assert result.episodes_at_probe() == [2, 1]
    (msg,) = result.warnings()
    assert msg.startswith("freeze-weights@8: only 1 of 2 episodes were still running at step 8")


def test_bad_counts_and_seeds(policy: HebbianPolicy) -> None:
    with pytest.raises(ValueError, match="episodes=0 is not accepted"):
        probe_experiment(policy, ENV, "freeze-weights@1", episodes=0, max_steps=5)
    with pytest.raises(ValueError, match="seed=-1 is not accepted"):
        probe_experiment(policy, ENV, "freeze-weights@1", episodes=1, max_steps=5, seed=-1)
    with pytest.raises(ValueError, match="max_steps=0 is not accepted"):
        probe_experiment(policy, ENV, "freeze-weights@1", episodes=1, max_steps=0)
