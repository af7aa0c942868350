"""Every registered variant: the Gymnasium and SB3 env checkers, vector envs, seeding, registration."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import hebb_gym
from agents.cli import main
from hebb_gym.variants import VARIANTS

CAR_IDS = [v.id for v in VARIANTS if v.task == "car"]
ANT_IDS = [v.id for v in VARIANTS if v.task == "ant"]
CASES = [(i, {}) for i in CAR_IDS] + [(i, {"backend": b}) for i in ANT_IDS for b in ("mujoco", "bullet")]


def _case_id(case):
    env_id, kw = case
    return env_id + ("" if not kw else f"[{kw['backend']}]")


def test_table_has_the_eleven_ids_and_the_task_sets():
    assert len(VARIANTS) == 11
    assert hebb_gym.variants("car")[0] == "HebbCarRacing-Default-v0"
    assert hebb_gym.variants("ant") == (
        "HebbAnt-Default-v0",
        "HebbAnt-LeftFrontLegDamage-v0",
        "HebbAnt-RightFrontLegDamage-v0",
        "HebbAnt-LongFrontLegs-v0",
        "HebbAnt-LongRearLegs-v0",
    )
    assert len(hebb_gym.variants("car")) == 5
    for v in VARIANTS:
        spec = gym.spec(v.id)
        assert spec.max_episode_steps == 1000
        assert dict(spec.kwargs) == dict(v.kwargs)
    with pytest.raises(ValueError, match="task='boat'.*'car', 'ant'"):
        hebb_gym.variants("boat")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_gymnasium_and_sb3_checkers_pass(case):
    env_id, kw = case
    env = gym.make(env_id, **kw)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gym_check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env, warn=False)
        # Stock Ant-v5 and AntBulletEnv declare unbounded observation boxes; anything else is a finding.
        findings = [str(w.message) for w in caught if "infinity" not in str(w.message)]
        assert findings == []
    finally:
        env.close()


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_same_seed_same_actions_same_observations(case):
    env_id, kw = case
    runs = []
    for _ in range(2):
        env = gym.make(env_id, **kw)
        env.action_space.seed(3)
        obs, _ = env.reset(seed=11)
        trace = [obs]
        for _ in range(25):
            obs, reward, *_ = env.step(env.action_space.sample())
            trace.append(obs)
        env.close()
        runs.append(np.stack(trace))
    np.testing.assert_array_equal(runs[0], runs[1])


@pytest.mark.parametrize("env_id", ["HebbAnt-LongRearLegs-v0", "HebbCarRacing-WindEast-v0"])
def test_make_vec_steps(env_id):
    envs = gym.make_vec(env_id, num_envs=2)
    try:
        obs, _ = envs.reset(seed=0)
        assert obs.shape[0] == 2
        for _ in range(5):
            obs, rewards, terminated, truncated, _ = envs.step(envs.action_space.sample())
        assert rewards.shape == (2,) and np.all(np.isfinite(rewards))
    finally:
        envs.close()


def test_prefixed_id_works_in_a_fresh_interpreter():
    code = (
        "import gymnasium as gym, sys\n"
        "assert 'hebb_gym' not in sys.modules\n"
        "env = gym.make('hebb_gym:HebbAnt-FrontLegDamage-v0')\n"
        "obs, info = env.reset(seed=0)\n"
        "print(type(env.unwrapped).__name__, obs.shape)\n"
        "env.close()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "(27,)" in out.stdout


def test_reimport_registers_nothing_twice():
    before = sorted(k for k in gym.registry if k.startswith("Hebb"))
    hebb_gym.registration.register_all()
    assert sorted(k for k in gym.registry if k.startswith("Hebb")) == before
    assert len(before) == 11


def test_docs_table_is_generated_from_variants():
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["envs", "--markdown"]) == 0
    doc = (Path(__file__).resolve().parents[1] / "docs" / "environments.md").read_text()
    section = doc.split("<!-- variants-table:start -->")[1].split("<!-- variants-table:end -->")[0]
    assert section.strip() == buf.getvalue().strip()
