"""TrainConfig: every setting of an ES training run, checked on construction and saved as ``config.json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import gymnasium as gym

import hebb_gym
from agents.evaluation.backends import BACKENDS
from agents.evaluation.fitness import FitnessConfig
from agents.policies import AGENTS, Policy, policy_class

OPTIMIZERS = ("sgd", "adam")


@dataclass
class TrainConfig:
    """Every setting of a training run; saved as ``config.json``."""

    env: tuple[str, ...] = ("HebbAnt-Default-v0",)
    agent: str = "hebbian"
    rule: str = "ABCD_lr"
    rho: int = 1
    init: str = "uniform"
    popsize: int = 200
    generations: int = 100
    sigma: float = 0.1
    sigma_decay: float = 0.999
    sigma_floor: float = 0.01
    lr: float = 0.2
    lr_decay: float = 0.995
    lr_floor: float = 0.001
    optimizer: str = "sgd"
    l2: float = 0.01
    episodes: int = 1
    max_steps: int = 1000
    early_stop: bool = True
    env_termination: bool = False
    backend: str = "process"
    workers: int = 0
    address: str | None = None
    seed: int = 0
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    tensorboard: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.env, str):
            self.env = tuple(e for e in self.env.split(",") if e)
        self.env = tuple(self.env)
        for e in self.env:
            hebb_gym.task_of(e)  # raises on an unknown env
            if e not in gym.registry:
                raise ValueError(f"env={e!r} is not a registered Gymnasium id; see `hebb-gym envs`")
        if self.agent not in AGENTS:
            raise ValueError(f"agent={self.agent!r} is not known; accepted: {', '.join(AGENTS)}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend={self.backend!r} is not known; accepted: {', '.join(BACKENDS)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={self.optimizer!r} is not known; accepted: {', '.join(OPTIMIZERS)}")
        if self.popsize < 2 or self.popsize % 2:
            raise ValueError(f"popsize={self.popsize!r} must be an even number >= 2 (antithetic sampling)")
        if self.generations < 1:
            raise ValueError(f"generations={self.generations!r} must be >= 1")
        if self.workers < 0:
            raise ValueError(f"workers={self.workers!r} must be >= 0 (0 = one per core)")
        for name in ("sigma", "lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be > 0")

    def fitness_config(self) -> FitnessConfig:
        return FitnessConfig(self.env, self.episodes, self.max_steps, self.early_stop, self.rollout_env_kwargs())

    def rollout_env_kwargs(self) -> dict[str, Any]:
        """Env kwargs of fitness rollouts: the quadruped's own unhealthy termination is off unless asked for.

        Random plastic networks make the MuJoCo ant hop above Ant-v5's healthy range (z > 1) within
        a few dozen steps; as in the original code, the trainer's early stop judges an episode instead.
        """
        kwargs = dict(self.env_kwargs)
        if hebb_gym.task_of(self.env[0]) == "ant" and not self.env_termination:
            kwargs.setdefault("terminate_when_unhealthy", False)
        return kwargs

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["env"] = list(self.env)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def identity(self) -> dict[str, Any]:
        """The settings that define the run's results (not how or where it is computed, nor its length)."""
        d = self.to_json()
        for k in ("backend", "workers", "address", "generations", "tensorboard"):
            d.pop(k)
        return d



def build_policy(config: TrainConfig) -> Policy:
    """The policy a run trains, built from the first training env (with its env kwargs) and the run seed."""
    options: dict[str, Any] = {}
    if config.agent == "hebbian":
        options = {"rule": config.rule, "rho": config.rho, "init": config.init}
    env = gym.make(config.env[0], **config.env_kwargs)
    try:
        return policy_class(config.agent).from_env(env, seed=config.seed, **options)
    finally:
        env.close()
