"""Any Gymnasium environment: spaces, actions, options, and training runs that prove the trainer learns.

The learning tests train on real environments with budgets measured on a 2-core machine (docs/environments.md,
"Training on any Gymnasium environment") and judge the search centre on fresh episodes, not the best individual.
"""

from __future__ import annotations


import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from agents.cli import main as cli
from agents.evaluation.envs import parse_env_kwargs, task_of
from agents.evaluation.fitness import EnvPool, FitnessConfig, evaluate_slice
from agents.policies import HebbianPolicy, LSTMPolicy, StaticPolicy, load_policy
from agents.training import TrainConfig, read_metrics, train

CARTPOLE = dict(env=("CartPole-v1",), popsize=32, sigma=0.1, lr=0.05, optimizer="adam", lr_decay=1.0,
                sigma_decay=1.0, l2=0.0, max_steps=500, backend="process", workers=2, centre_every=1,
                centre_episodes=10, stop_centre=475.0)


class TinyImageEnv(gym.Env):
    """A 24x32 RGB frame with a bright column; reward +1 for moving towards it (Discrete(3): left, stay, right)."""

    observation_space = gym.spaces.Box(0, 255, (24, 32, 3), np.uint8)
    action_space = gym.spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos, self.goal, self.t = 16, int(self.np_random.integers(0, 32)), 0
        return self._frame(), {}

    def _frame(self):
        img = np.zeros((24, 32, 3), np.uint8)
        img[:, self.goal, 1] = 255
        img[:, self.pos, 0] = 255
        return img

    def step(self, action):
        before = abs(self.pos - self.goal)
        self.pos = int(np.clip(self.pos + int(action) - 1, 0, 31))
        self.t += 1
        return self._frame(), float(before - abs(self.pos - self.goal)), False, self.t >= 20, {}


gym.register("TinyImage-v0", entry_point=f"{__name__}:TinyImageEnv", max_episode_steps=20)


@pytest.mark.parametrize("cls", [HebbianPolicy, StaticPolicy, LSTMPolicy])
@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1", "MountainCarContinuous-v0", "TinyImage-v0"])
def test_policies_act_in_the_envs_own_space(cls, env_id):
    env = gym.make(env_id)
    policy = cls.from_env(env, seed=0)
    obs, _ = env.reset(seed=0)
    action, state = policy.predict(obs)
    assert env.action_space.contains(action), (env_id, action)
    if isinstance(env.action_space, gym.spaces.Discrete):
        assert np.issubdtype(np.asarray(action).dtype, np.integer)
    for _ in range(5):
        obs, *_ = env.step(action)
        action, state = policy.predict(obs, state)
        assert env.action_space.contains(action)
    env.close()


def test_box_actions_are_tanh_scaled_to_the_bounds_not_clipped():
    policy = StaticPolicy.from_env("Pendulum-v1", seed=0)  # torque in [-2, 2]
    policy.set_flat(policy.get_flat() * 40)  # saturating weights: tanh near +-1 -> actions near +-2
    obs = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    actions, _ = policy.predict(obs)
    assert np.abs(actions).max() > 1.5 and np.abs(actions).max() <= 2.0
    flat = StaticPolicy.from_env("Pendulum-v1", seed=0)
    flat.set_flat(np.zeros(flat.num_params, dtype=np.float32))
    assert np.all(flat.predict(obs)[0] == 0.0)  # the middle of the bounds


def test_sb3_evaluate_policy_runs_a_policy_on_any_env():
    venv = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    mean, std = evaluate_policy(HebbianPolicy.from_env(venv, seed=1), venv, n_eval_episodes=4)
    assert np.isfinite(mean) and mean >= 8  # CartPole gives +1 per step; an episode lasts at least 8 steps


@pytest.mark.parametrize("space, what", [
    (gym.spaces.Dict({"a": gym.spaces.Box(-1, 1, (2,))}), "observation_space"),
    (gym.spaces.Box(-1, 1, (4, 5)), "shape"),
])
def test_unsupported_observation_spaces_are_named(space, what):
    with pytest.raises(TypeError, match=what):
        StaticPolicy(space, gym.spaces.Discrete(2))


def test_unsupported_action_spaces_are_named():
    with pytest.raises(TypeError, match="action_space=.*MultiDiscrete.*accepted: a 1-D Box or Discrete"):
        StaticPolicy(gym.spaces.Box(-1, 1, (3,)), gym.spaces.MultiDiscrete([2, 2]))


def test_env_kwargs_text_is_typed():
    assert parse_env_kwargs("g=9.5,render_mode=none,continuous=true,n=3,name=x") == {
        "g": 9.5, "render_mode": None, "continuous": True, "n": 3, "name": "x"}
    assert parse_env_kwargs('{"friction": 2}') == {"friction": 2}
    assert parse_env_kwargs("goal=[1,2],k=1") == {"goal": [1, 2], "k": 1}
    with pytest.raises(ValueError, match="key=value"):
        parse_env_kwargs("9.5")


def test_a_generic_env_scores_its_return_and_stops_only_when_asked():
    assert task_of("CartPole-v1") is None and task_of("HebbAnt-Default-v0") == "ant"
    policy = StaticPolicy.from_env("Pendulum-v1", seed=0)  # every Pendulum reward is negative
    params = policy.get_flat()[None]
    whole = evaluate_slice(policy, params, [0], 1, EnvPool(FitnessConfig(("Pendulum-v1",), max_steps=60)))
    assert whole.env_steps == 60 and whole.fitness[0] < 0  # no early stop by default: the whole horizon
    cut = evaluate_slice(policy, params, [0], 1,
                         EnvPool(FitnessConfig(("Pendulum-v1",), max_steps=60, early_stop="negative-streak:5")))
    assert cut.env_steps == 5  # ended at the fifth negative reward in a row
    with pytest.raises(ValueError, match="early_stop='sometimes'"):
        FitnessConfig(("Pendulum-v1",), early_stop="sometimes")
    with pytest.raises(ValueError, match="mixes tasks"):
        FitnessConfig(("Pendulum-v1", "CartPole-v1"))


def test_episodes_end_where_gymnasium_says():
    # CartPole-v1 is registered with a 500-step limit: a longer training horizon does not lengthen it
    pool = EnvPool(FitnessConfig(("CartPole-v1",), max_steps=2000))
    assert pool.get("CartPole-v1", 1)[0].spec.max_episode_steps == 500


def test_env_module_registers_ids_in_every_worker(tmp_path, monkeypatch):
    (tmp_path / "my_test_envs.py").write_text(
        "import gymnasium as gym\n"
        "gym.register('MyCartPole-v0', entry_point='gymnasium.envs.classic_control.cartpole:CartPoleEnv', "
        "max_episode_steps=50)\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # spawned workers get this sys.path too
    with pytest.raises(ValueError, match="could not be imported"):
        TrainConfig(env=("CartPole-v1",), env_module=("no_such_module_here",))
    out = tmp_path / "run"
    assert cli(["train", "--env", "MyCartPole-v0", "--env-module", "my_test_envs", "--agent", "static",
                "--popsize", "4", "--generations", "2", "--backend", "process", "--workers", "2", "--quiet",
                "--out", str(out)]) == 0
    rows = read_metrics(out)
    assert len(rows) == 2 and all(r["best"] <= 50 for r in rows)  # the registered 50-step limit holds
    assert cli(["evaluate", str(out), "--env", "MyCartPole-v0", "--env-module", "my_test_envs",
                "--episodes", "2"]) == 0


@pytest.mark.parametrize("agent, options", [("static", {}), ("hebbian", {"rule": "ABCD_lr", "renorm": "on"})])
def test_cartpole_centre_balances_the_pole(tmp_path, agent, options):
    """Two of three seeds: the centre's mean return over 10 fresh episodes reaches 475 within 40 generations."""
    reached = []
    for seed in range(3):
        result = train(TrainConfig(agent=agent, generations=40, seed=seed, **CARTPOLE, **options),
                       tmp_path / f"seed{seed}", progress=False)
        reached.append(result.best_fitness >= 475.0)
        assert load_policy(result.best_path).predict(np.zeros(4, np.float32))[0] in (0, 1)
        if sum(reached) >= 2:
            break
    assert sum(reached) >= 2, reached


def test_pendulum_static_lifts_its_return(tmp_path):
    config = TrainConfig(env=("Pendulum-v1",), agent="static", popsize=32, episodes=3, generations=30, obs_norm=True,
                         sigma=0.1, lr=0.1, optimizer="adam", lr_decay=1.0, sigma_decay=1.0, l2=0.0,
                         backend="process", workers=2, centre_every=0, seed=0)
    rows = read_metrics(train(config, tmp_path / "run", progress=False).run_dir)
    first, last = rows[0]["mean"], np.mean([r["mean"] for r in rows[-5:]])
    assert last > first + 300, (first, last)


def test_a_pixel_env_trains_through_the_cnn_path(tmp_path):
    result = train(TrainConfig(env=("TinyImage-v0",), agent="hebbian", popsize=4, generations=2, max_steps=20,
                               backend="serial", centre_episodes=2), tmp_path / "run", progress=False)
    policy = load_policy(result.best_path)
    assert policy.spec.kind == "cnn" and policy.spec.conv_shapes[0][1] == 3
    rows = read_metrics(result.run_dir)
    assert len(rows) == 2 and all(np.isfinite(r["centre_mean"]) for r in rows)
