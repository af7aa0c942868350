"""The ES training loop: a run directory, a strategy, a backend, metrics and checkpoints every generation.

A run is a folder: ``config.json``, ``metrics.csv``, ``checkpoint.pt`` (replaced atomically each
generation), ``best.pt`` / ``last.pt`` (policy files ``load_policy`` reads), ``learning_curve.png``
and ``train.log``. ``resume=True`` continues from the checkpoint so that the metrics are those of
a run that never stopped.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

import hebb_gym
from agents.atomic import atomic_write, atomic_write_json, atomic_write_text
from agents.engine import BACKENDS, make_backend
from agents.fitness import FitnessConfig, derive_seed
from agents.population import AGENTS, build_policy, candidate_params, mean_params, policy_with, strategy_factory

log = logging.getLogger(__name__)

METRIC_FIELDS = (
    "generation", "best", "mean", "std", "min", "best_so_far", "nonfinite", "env_steps",
    "lr", "sigma", "eval_seconds", "env_steps_per_second", "replaced_workers",
)
#: Columns that measure wall-clock time or incidents, so they differ between otherwise identical runs.
WALL_CLOCK_FIELDS = ("eval_seconds", "env_steps_per_second", "replaced_workers")
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
            import gymnasium as gym

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


@dataclass
class TrainResult:
    """Where a finished run left its files, and its headline numbers."""

    run_dir: Path
    best_fitness: float
    generations: int
    best_path: Path
    last_path: Path
    curve_path: Path | None


class RunDirError(ValueError):
    """A run directory that cannot be used as asked (exists, other config, corrupt checkpoint)."""


def _metrics_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (repr(float(v)) if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of a run's ``metrics.csv`` as floats."""
    with open(Path(run_dir) / "metrics.csv", newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint, turning any failure into a RunDirError that names the file."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # corrupt, truncated, not a torch file
        raise RunDirError(f"checkpoint {path} is corrupt or unreadable ({type(exc).__name__}: {exc}); "
                          "start a new run in another --out directory") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != 1:
        raise RunDirError(f"checkpoint {path} is not a hebb-gym checkpoint (format 1)")
    return ckpt


def prepare_run_dir(out: Path, config: TrainConfig, resume: bool) -> dict[str, Any] | None:
    """Check the run directory against the config; returns the checkpoint to resume from, if any."""
    cfg_path = out / "config.json"
    if not cfg_path.exists():
        if resume and out.exists() and any(out.iterdir()):
            raise RunDirError(f"--resume: {out} has no config.json; it is not a hebb-gym run directory")
        out.mkdir(parents=True, exist_ok=True)
        return None
    try:
        saved = TrainConfig.from_json(json.loads(cfg_path.read_text())["train"])
    except (ValueError, KeyError, TypeError) as exc:
        raise RunDirError(f"{cfg_path} is unreadable ({exc}); choose another --out directory") from exc
    if not resume:
        raise RunDirError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if saved.identity() != config.identity():
        diff = {k: (v, config.identity()[k]) for k, v in saved.identity().items() if config.identity()[k] != v}
        raise RunDirError(f"--resume: {out} was made with other settings (saved, given): {diff}")
    ckpt_path = out / "checkpoint.pt"
    return load_checkpoint(ckpt_path) if ckpt_path.exists() else None


def train(config: TrainConfig, out: str | os.PathLike, resume: bool = False, progress: bool = True) -> TrainResult:
    """Run ES on ``config`` in directory ``out``; resumable, writes every file each generation."""
    out = Path(out)
    ckpt = prepare_run_dir(out, config, resume)
    handler = logging.FileHandler(out / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("agents").addHandler(handler)
    logging.getLogger("agents").setLevel(logging.INFO)
    try:
        return _train(config, out, ckpt, progress)
    finally:
        logging.getLogger("agents").removeHandler(handler)
        handler.close()


def _train(config: TrainConfig, out: Path, ckpt: dict[str, Any] | None, progress: bool) -> TrainResult:
    policy = build_policy(config)
    factory = strategy_factory(policy, config)
    strategy = factory()
    rows: list[dict[str, Any]] = []
    best: dict[str, Any] = {"fitness": -math.inf, "params": None, "assignment": None}
    start = 0
    if ckpt is not None:
        strategy.load_state_dict(ckpt["strategy"])
        rows = ckpt["metrics"]
        best = ckpt["best"]
        start = ckpt["generation"]
        log.info("resumed %s at generation %d", out, start)
    if ckpt is None:
        atomic_write_json(out / "config.json", {
            "train": config.to_json(),
            "num_params": policy.num_params,
            "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
        })
        atomic_write_text(out / "metrics.csv", _metrics_csv([]))
    state_at_start = {"state": strategy.state_dict()}
    backend = make_backend(config.backend, policy, strategy, factory, config.fitness_config(),
                           workers=config.workers or None, address=config.address,
                           snapshot=lambda: state_at_start["state"])
    board = _tensorboard_writer(out) if config.tensorboard else None
    bar = _progress_bar(start, config.generations, progress)
    tell: np.ndarray | None = None
    try:
        for g in range(start, config.generations):
            state_at_start["state"] = strategy.state_dict()
            candidates = strategy.ask()
            t0 = time.perf_counter()
            result = backend.generation(tell, derive_seed(config.seed, "generation", g))
            seconds = time.perf_counter() - t0
            fitness = result.fitness
            finite = np.isfinite(fitness)
            if not finite.any():
                raise RuntimeError(f"generation {g}: every individual's fitness is non-finite; lower --lr/--sigma")
            worst = fitness[finite].min()
            clean = np.where(finite, fitness, worst)
            if (~finite).any():
                log.warning("generation %d: %d non-finite fitnesses set to the worst (%g)", g, (~finite).sum(), worst)
            i_best = int(np.argmax(clean))
            if clean[i_best] > best["fitness"]:
                params, assignment = candidate_params(strategy, candidates, i_best, i_best + 1)
                best = {"fitness": float(clean[i_best]), "params": params[0],
                        "assignment": None if assignment is None else assignment[0]}
            lr, sigma = strategy.lr, strategy.sigma
            strategy.tell(clean)
            tell = clean
            rows.append({
                "generation": g, "best": float(clean.max()), "mean": float(clean.mean()), "std": float(clean.std()),
                "min": float(clean.min()), "best_so_far": best["fitness"], "nonfinite": int((~finite).sum()),
                "env_steps": int(result.env_steps), "lr": float(lr), "sigma": float(sigma),
                "eval_seconds": round(seconds, 3), "env_steps_per_second": round(result.env_steps / max(seconds, 1e-9), 1),
                "replaced_workers": result.replaced_workers,
            })
            _save_generation(out, config, policy, strategy, rows, best, g + 1)
            if board is not None:
                for key in ("best", "mean", "std", "min", "best_so_far", "nonfinite", "lr", "sigma",
                            "env_steps_per_second"):
                    board.add_scalar(f"es/{key}", rows[-1][key], g)
                board.flush()
            if hasattr(bar, "set_postfix_str"):
                bar.set_postfix_str(f"best {clean.max():.2f} mean {clean.mean():.2f} "
                                    f"{result.env_steps / max(seconds, 1e-9):.0f} steps/s")
                bar.update(1)
    finally:
        backend.close()
        if board is not None:
            board.close()
        if hasattr(bar, "close"):
            bar.close()
    from agents.plotting import plot_learning_curves

    curve = plot_learning_curves([out], out / "learning_curve.png")
    return TrainResult(out, best["fitness"], len(rows), out / "best.pt", out / "last.pt", curve)


def _save_generation(out: Path, config: TrainConfig, policy: Any, strategy: Any,
                     rows: list[dict[str, Any]], best: dict[str, Any], generation: int) -> None:
    """Everything of one generation, each file atomically: policies first, the checkpoint last."""
    policy_with(policy, *mean_params(strategy)).save(out / "last.pt")
    policy_with(policy, best["params"], best["assignment"]).save(out / "best.pt")
    atomic_write_text(out / "metrics.csv", _metrics_csv(rows))
    ckpt = {"format": 1, "generation": generation, "strategy": strategy.state_dict(), "metrics": rows, "best": best,
            "config": config.to_json()}
    atomic_write(out / "checkpoint.pt", lambda f: torch.save(ckpt, f))


def _tensorboard_writer(out: Path) -> Any:
    """A TensorBoard writer logging into ``out/tensorboard`` (needs the ``tensorboard`` extra)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ValueError("tensorboard=True needs the tensorboard extra: pip install 'hebb-gym[tensorboard]'") from exc
    return SummaryWriter(log_dir=str(out / "tensorboard"))


def _progress_bar(start: int, total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=start, desc="generations", unit="gen", dynamic_ncols=True)
