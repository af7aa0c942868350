"""PPO baselines (Stable-Baselines3) on the hebb-gym ids, with one table of published hyper-parameters.

A PPO run is a folder: ``model.zip`` (a normal SB3 model, ``PPO.load`` reads it), ``settings.json``
(task, env ids, hyper-parameters, wrappers, seed, timesteps, versions), ``vecnormalize.pkl`` where the
observations are normalised (the quadruped), and ``episodes.csv`` (the training episodes' returns).
Several env ids make one ``DummyVecEnv`` whose envs cycle through the ids (env k runs id k mod n), so
every update mixes the variants evenly. Training runs on the CPU.
"""

from __future__ import annotations

import copy
import io
import json
import os
import pickle
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np
import torch
from PIL import Image
from torch import nn

from agents.evaluation.envs import ENV_KWARGS_METADATA, parse_env_ids, task_of
from agents.util.atomic import atomic_write, atomic_write_json
from agents.util.csvfile import write_csv
from agents.util.settings import Setting
from agents.util.trust import is_signed_here, sign

MODEL_FILE = "model.zip"
SETTINGS_FILE = "settings.json"
VECNORMALIZE_FILE = "vecnormalize.pkl"
EPISODES_FILE = "episodes.csv"
SETTINGS_FORMAT = 1

# The one place where PPO's hyper-parameters live, per task. Numbers (not code) from the RL Baselines3 Zoo,
# hyperparams/ppo.yml (https://github.com/DLR-RM/rl-baselines3-zoo):
# - "car": the zoo's tuned ``CarRacing-v0`` entry: frame skip 2, 64x64 grey-scale frames, 2 stacked frames,
#   reward (not observation) normalisation, 8 envs, CnnPolicy, gSDE, linear learning-rate schedule.
# - "ant": the zoo's tuned ``AntBulletEnv-v0`` entry (the PyBullet quadruped of the Hebbian papers; the
#   zoo's MuJoCo ``Ant-v3`` entry is only "defaults + normalize"): 16 envs, observation and reward
#   normalisation, gSDE, ReLU 256-256 actor and critic.
TASK_HYPERPARAMS: dict[str, dict[str, Any]] = {
    "car": {
        "policy": "CnnPolicy",
        "n_timesteps": 4_000_000,
        "n_envs": 8,
        "frame_skip": 2,
        "frame_size": 64,
        "grayscale": True,
        "frame_stack": 2,
        "normalize": {"norm_obs": False, "norm_reward": True},
        "ppo": {
            "batch_size": 128, "n_steps": 512, "gamma": 0.99, "gae_lambda": 0.95, "n_epochs": 10,
            "ent_coef": 0.0, "sde_sample_freq": 4, "max_grad_norm": 0.5, "vf_coef": 0.5,
            "learning_rate": "lin_1e-4", "use_sde": True, "clip_range": 0.2,
        },
        "policy_kwargs": {"log_std_init": -2.0, "ortho_init": False, "activation_fn": "GELU",
                          "net_arch": {"pi": [256], "vf": [256]}},
    },
    "ant": {
        "policy": "MlpPolicy",
        "n_timesteps": 2_000_000,
        "n_envs": 16,
        "frame_skip": 1,
        "frame_size": None,
        "grayscale": False,
        "frame_stack": 1,
        "normalize": {"norm_obs": True, "norm_reward": True},
        "ppo": {
            "batch_size": 128, "n_steps": 512, "gamma": 0.99, "gae_lambda": 0.9, "n_epochs": 20,
            "ent_coef": 0.0, "sde_sample_freq": 4, "max_grad_norm": 0.5, "vf_coef": 0.5,
            "learning_rate": 3e-5, "use_sde": True, "clip_range": 0.4,
        },
        "policy_kwargs": {"log_std_init": -1.0, "ortho_init": False, "activation_fn": "ReLU",
                          "net_arch": {"pi": [256, 256], "vf": [256, 256]}},
    },
    # any other Gymnasium env: Stable-Baselines3's own PPO defaults, MlpPolicy (CnnPolicy for image observations)
    "gym": {
        "policy": "auto",
        "n_timesteps": 1_000_000,
        "n_envs": 8,
        "frame_skip": 1,
        "frame_size": None,
        "grayscale": False,
        "frame_stack": 1,
        "normalize": {},
        "ppo": {},
        "policy_kwargs": {},
    },
}
#: The hyper-parameter entry of an env of no known task (``agents.evaluation.envs.task_of`` is None).
GENERIC_TASK = "gym"

#: PPO constructor arguments that ``PPOConfig.overrides`` may change, with their types: the ``ppo`` command's
#: override flags (``--learning-rate``) and the ``ppo:key=value`` options of leave-one-out specs.
PPO_OVERRIDABLE: dict[str, type] = {
    "learning_rate": float, "n_steps": int, "batch_size": int, "n_epochs": int, "gamma": float, "gae_lambda": float,
    "clip_range": float, "ent_coef": float, "vf_coef": float, "max_grad_norm": float, "use_sde": bool,
    "sde_sample_freq": int,
}


def override_settings() -> dict[str, Setting]:
    """One optional :class:`~agents.util.settings.Setting` per key of :data:`PPO_OVERRIDABLE` (None: published)."""
    return {k: Setting(k, t | None, None, f"override PPO's {k} (default: the published value)")
            for k, t in PPO_OVERRIDABLE.items()}


def hyperparameters(task: str) -> dict[str, Any]:
    """A deep copy of the published PPO settings of ``task`` (``"car"`` or ``"ant"``)."""
    if task not in TASK_HYPERPARAMS:
        raise ValueError(f"task={task!r} has no PPO settings; accepted: {', '.join(TASK_HYPERPARAMS)}")
    return copy.deepcopy(TASK_HYPERPARAMS[task])


@dataclass
class PPOConfig:
    """What one PPO run trains: env ids (mixed), budget, seed and overrides of the published settings."""

    env: tuple[str, ...] = field(default=("HebbAnt-Default-v0",), metadata={
        "help": "env id, or comma-separated ids of one task (one VecEnv mixing them)"})
    timesteps: int | None = field(default=None, metadata={
        "help": "total timesteps (default: the published budget, ant 2e6 / car 4e6)"})
    max_minutes: float | None = field(default=None, metadata={
        "help": "stop after this many minutes of training even if the timesteps are not done (a wall-clock budget)"})
    seed: int = field(default=0, metadata={"help": "seeds the envs and SB3"})
    n_envs: int | None = field(default=None, metadata={
        "help": "envs in the VecEnv (default: the published number), rounded up to a multiple of the ids"})
    max_steps: int | None = field(default=None, metadata={"help": "episode horizon (default: the env's, 1000)"})
    overrides: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "PPO constructor arguments replacing the published ones (keys: PPO_OVERRIDABLE)"})
    env_kwargs: dict[str, Any] = field(default_factory=dict, metadata=ENV_KWARGS_METADATA)

    def __post_init__(self) -> None:
        self.env = parse_env_ids(self.env)
        if self.timesteps is not None and self.timesteps < 1:
            raise ValueError(f"timesteps={self.timesteps!r} must be >= 1")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"max_minutes={self.max_minutes!r} must be > 0 (or None for no wall-clock budget)")
        if self.n_envs is not None and self.n_envs < 1:
            raise ValueError(f"n_envs={self.n_envs!r} must be >= 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps={self.max_steps!r} must be >= 1 (or None for the env's horizon)")
        for k in self.overrides:
            if k not in PPO_OVERRIDABLE:
                raise ValueError(f"overrides key {k!r} is not a PPO setting this package exposes; "
                                 f"accepted: {', '.join(PPO_OVERRIDABLE)}")

    @property
    def task(self) -> str:
        """``"car"``, ``"ant"``, or ``"gym"`` for any other env (SB3's PPO defaults)."""
        return task_of(self.env[0]) or GENERIC_TASK

    def settings(self) -> dict[str, Any]:
        """The full settings of the run (published values with this config's overrides applied)."""
        hp = hyperparameters(self.task)
        hp["ppo"].update(self.overrides)
        n_envs = self.n_envs or hp["n_envs"]
        n_envs = -(-max(n_envs, len(self.env)) // len(self.env)) * len(self.env)
        hp["n_envs"] = n_envs
        hp["n_timesteps"] = int(self.timesteps or hp["n_timesteps"])
        return {"format": SETTINGS_FORMAT, "task": self.task, "env": list(self.env), "seed": self.seed,
                "max_minutes": self.max_minutes,
                "max_steps": self.max_steps, "env_kwargs": dict(self.env_kwargs), "hyperparams": hp}


class FrameSkip(gym.Wrapper):
    """Repeat each action ``skip`` times, summing the rewards; stops early at the end of an episode."""

    def __init__(self, env: gym.Env, skip: int) -> None:
        super().__init__(env)
        if skip < 1:
            raise ValueError(f"skip={skip!r} must be >= 1")
        self.skip = skip

    def step(self, action: Any):
        total = 0.0
        for _ in range(self.skip):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info


class SmallFrames(gym.ObservationWrapper):
    """Resize RGB frames to ``size`` x ``size`` (bilinear, PIL) and optionally make them grey ``(size, size, 1)``."""

    def __init__(self, env: gym.Env, size: int, grayscale: bool) -> None:
        super().__init__(env)
        self.size, self.grayscale = int(size), bool(grayscale)
        channels = 1 if grayscale else 3
        self.observation_space = gym.spaces.Box(0, 255, (self.size, self.size, channels), np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        img = Image.fromarray(np.asarray(observation, dtype=np.uint8))
        if self.grayscale:
            img = img.convert("L")
        img = img.resize((self.size, self.size), Image.BILINEAR)
        arr = np.asarray(img, dtype=np.uint8)
        return arr[..., None] if self.grayscale else arr


def make_env_fn(env_id: str, settings: dict[str, Any]) -> Callable[[], gym.Env]:
    """A thunk making one env as PPO sees it: horizon, ``Monitor`` (raw returns), then the task's wrappers."""
    from stable_baselines3.common.monitor import Monitor

    hp = settings["hyperparams"]

    def thunk() -> gym.Env:
        kw = dict(settings.get("env_kwargs") or {})
        if settings.get("max_steps"):
            kw["max_episode_steps"] = settings["max_steps"]
        env: gym.Env = Monitor(gym.make(env_id, **kw))
        if hp.get("frame_skip", 1) > 1:
            env = FrameSkip(env, hp["frame_skip"])
        if hp.get("frame_size"):
            env = SmallFrames(env, hp["frame_size"], hp.get("grayscale", False))
        return env

    return thunk


def make_vec_env(env_ids: Sequence[str], n_envs: int, settings: dict[str, Any], seed: int | None,
                 vecnormalize: str | os.PathLike | None = None, training: bool = True):
    """A ``DummyVecEnv`` of ``n_envs`` envs cycling through ``env_ids``, frame-stacked and normalised as PPO needs.

    For evaluation pass ``training=False`` and the run's ``vecnormalize.pkl``: the saved observation
    statistics are applied, frozen, and rewards are left raw.
    """
    from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecNormalize

    venv = DummyVecEnv([make_env_fn(env_ids[k % len(env_ids)], settings) for k in range(n_envs)])
    if seed is not None:
        venv.seed(seed)
    hp = settings["hyperparams"]
    if hp.get("frame_stack", 1) > 1:
        venv = VecFrameStack(venv, hp["frame_stack"])
    norm = hp.get("normalize") or {}
    if training and (norm.get("norm_obs") or norm.get("norm_reward")):
        venv = VecNormalize(venv, gamma=hp["ppo"]["gamma"], **norm)
    elif not training and vecnormalize is not None and Path(vecnormalize).exists():
        venv = VecNormalize.load(str(vecnormalize), venv)
        venv.training = False
        venv.norm_reward = False
    return venv


def _schedule(value: Any) -> Any:
    """The zoo's ``lin_X`` strings as a linear schedule from X to 0; numbers pass through."""
    if isinstance(value, str) and value.startswith("lin_"):
        start = float(value[4:])
        return lambda progress_remaining: progress_remaining * start
    return value


def _policy_kwargs(pk: dict[str, Any]) -> dict[str, Any]:
    out = dict(pk)
    if "activation_fn" in out:
        out["activation_fn"] = getattr(nn, out["activation_fn"])
    return out


@dataclass
class PPOResult:
    """Where a PPO run left its files."""

    run_dir: Path
    model_path: Path
    settings_path: Path
    vecnormalize_path: Path | None
    timesteps: int
    seconds: float


def _episode_recorder(env_ids: Sequence[str], max_minutes: float | None):
    from stable_baselines3.common.callbacks import BaseCallback

    class EpisodeRecorder(BaseCallback):
        """Collect the Monitor summaries (raw return, length) of the training episodes; stop at ``max_minutes``."""

        def __init__(self) -> None:
            super().__init__()
            self.rows: list[dict[str, Any]] = []
            self.training_env_ids = list(env_ids)
            self.deadline = None if max_minutes is None else time.perf_counter() + 60.0 * max_minutes

        def _on_step(self) -> bool:
            for k, info in enumerate(self.locals.get("infos", [])):
                if "episode" in info:
                    self.rows.append({"timestep": self.num_timesteps, "env_index": k,
                                      "env": self.training_env_ids[k % len(self.training_env_ids)],
                                      "return": float(info["episode"]["r"]), "length": int(info["episode"]["l"])})
            return self.deadline is None or time.perf_counter() < self.deadline

    return EpisodeRecorder()


def train_ppo(config: PPOConfig, out: str | os.PathLike, progress: bool = False) -> PPOResult:
    """Train PPO on ``config`` (CPU) and write ``model.zip``, ``settings.json``, ``vecnormalize.pkl``, ``episodes.csv``."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    out = Path(out)
    if (out / MODEL_FILE).exists():
        raise FileExistsError(f"{out / MODEL_FILE} exists; choose another --out or delete it")
    out.mkdir(parents=True, exist_ok=True)
    settings = config.settings()
    hp = settings["hyperparams"]
    venv = make_vec_env(config.env, hp["n_envs"], settings, config.seed)
    kwargs = {k: _schedule(v) for k, v in hp["ppo"].items()}
    # SB3 needs the rollout (n_steps * n_envs) to hold at least one mini-batch.
    kwargs["batch_size"] = min(int(kwargs["batch_size"]), int(kwargs["n_steps"]) * hp["n_envs"])
    policy = hp["policy"]
    if policy == "auto":
        policy = "CnnPolicy" if len(venv.observation_space.shape) == 3 else "MlpPolicy"
    model = PPO(policy, venv, seed=config.seed, device="cpu", verbose=0,
                policy_kwargs=_policy_kwargs(hp["policy_kwargs"]), **kwargs)
    recorder = _episode_recorder(config.env, config.max_minutes)
    t0 = time.perf_counter()
    model.learn(total_timesteps=hp["n_timesteps"], callback=recorder, progress_bar=progress)
    seconds = time.perf_counter() - t0
    vn_path, vn_bytes = None, b""
    if isinstance(model.get_env(), VecNormalize):
        vn_path = out / VECNORMALIZE_FILE
        # VecNormalize.save is pickle.dump(self) (its __getstate__ drops the envs); done here atomically.
        vn_bytes = pickle.dumps(model.get_env())
        atomic_write(vn_path, lambda f: f.write(vn_bytes))
    buf = io.BytesIO()
    model.save(buf)
    model_bytes = buf.getvalue()
    settings.update({
        "timesteps_done": int(model.num_timesteps), "train_seconds": round(seconds, 2),
        "files": {"model": MODEL_FILE, "vecnormalize": vn_path.name if vn_path else None},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "stable_baselines3": _sb3_version(), "gymnasium": gym.__version__},
    })
    write_csv(out / EPISODES_FILE, recorder.rows, ["timestep", "env_index", "env", "return", "length"])
    settings["signature"] = sign([model_bytes, vn_bytes])  # this machine wrote these pickles (agents.util.trust)
    atomic_write_json(out / SETTINGS_FILE, settings)
    atomic_write(out / MODEL_FILE, lambda f: f.write(model_bytes))  # last: its presence marks a finished run
    venv.close()
    return PPOResult(out, out / MODEL_FILE, out / SETTINGS_FILE, vn_path, int(model.num_timesteps), seconds)


def _sb3_version() -> str:
    import stable_baselines3

    return stable_baselines3.__version__


@dataclass
class PPOModel:
    """A trained PPO model with the settings needed to rebuild the envs it was trained on."""

    model: Any
    settings: dict[str, Any]
    vecnormalize_path: Path | None
    path: Path

    def make_eval_env(self, env_id: str, n_envs: int, seed: int, max_steps: int | None = None,
                      env_kwargs: dict[str, Any] | None = None):
        """``n_envs`` copies of ``env_id`` wrapped as in training, env i reset with ``seed + i``; rewards raw."""
        settings = dict(self.settings)
        settings["max_steps"] = max_steps
        if env_kwargs is not None:
            settings["env_kwargs"] = dict(env_kwargs)
        return make_vec_env([env_id], n_envs, settings, seed, self.vecnormalize_path, training=False)


def is_ppo_path(path: str | os.PathLike) -> bool:
    """True for a PPO run directory (holding ``model.zip``) or an SB3 model zip."""
    p = Path(path)
    return (p.is_dir() and (p / MODEL_FILE).exists()) or (p.is_file() and p.suffix == ".zip")


def load_ppo(path: str | os.PathLike, trust_pickles: bool = False) -> PPOModel:
    """Load a PPO run directory or ``model.zip`` (with ``settings.json`` beside it) on the CPU.

    SB3 models and ``vecnormalize.pkl`` are pickles, which run code when loaded: only files this machine's
    ``hebb-gym ppo`` wrote (their signature checks out, :mod:`agents.util.trust`) load unless
    ``trust_pickles``.
    """
    from stable_baselines3 import PPO

    p = Path(path)
    model_path = p / MODEL_FILE if p.is_dir() else p
    if not model_path.exists():
        raise FileNotFoundError(f"{path}: no PPO model here (expected a .zip or a directory holding {MODEL_FILE})")
    settings_path = model_path.parent / SETTINGS_FILE
    if not settings_path.exists():
        raise FileNotFoundError(f"{settings_path} is missing; it records the wrappers the model was trained with "
                                "(models from `hebb-gym ppo` have it)")
    settings = json.loads(settings_path.read_text())
    if settings.get("format") != SETTINGS_FORMAT:
        raise ValueError(f"{settings_path} has format {settings.get('format')!r}; accepted: {SETTINGS_FORMAT}")
    vn = model_path.parent / VECNORMALIZE_FILE
    blobs = [model_path.read_bytes(), vn.read_bytes() if vn.exists() else b""]
    if not trust_pickles and not is_signed_here(blobs, settings.get("signature")):
        raise ValueError(f"{model_path} is a Stable-Baselines3 model that this machine's hebb-gym did not write: its "
                         "zip (and vecnormalize.pkl) are pickles, which can run any code when loaded. Load it only "
                         "if you trust where it came from: pass --trust-pickles (trust_pickles=True)")
    model = PPO.load(io.BytesIO(blobs[0]), device="cpu")
    return PPOModel(model, settings, vn if vn.exists() else None, model_path)


__all__ = ["PPO_OVERRIDABLE", "TASK_HYPERPARAMS", "FrameSkip", "PPOConfig", "PPOModel", "PPOResult", "SmallFrames",
           "hyperparameters", "is_ppo_path", "load_ppo", "make_env_fn", "make_vec_env", "override_settings", "train_ppo"]
