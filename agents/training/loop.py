"""The ES training loop: a run directory, a strategy, a backend, metrics and checkpoints every generation.

A run is a folder: ``config.json``, ``metrics.csv``, ``checkpoint.pt`` (replaced atomically each
generation), ``best.pt`` / ``last.pt`` (policy files ``load_policy`` reads), ``learning_curve.png``
and ``train.log``. ``resume=True`` continues from the checkpoint so that the metrics are those of
a run that never stopped.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import platform
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from agents.es.params import candidate_params, mean_params, strategy_factory
from agents.evaluation.backends import make_backend
from agents.evaluation.fitness import derive_seed
from agents.policies import policy_with
from agents.training.config import TrainConfig, build_policy
from agents.training.curves import plot_learning_curves
from agents.training.rundir import RUN_FILES, RunDirError, RunLock, check_run_dir, metrics_csv, save_checkpoint
from agents.util.atomic import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """Where a finished run left its files, and its headline numbers."""

    run_dir: Path
    best_fitness: float
    generations: int
    best_path: Path
    last_path: Path
    curve_path: Path | None


class TrainingError(RuntimeError):
    """A run that cannot go on as configured (e.g. every fitness of a generation is non-finite)."""


class _Signals:
    """SIGTERM handled like Ctrl-C, and both held back while a generation's files are written.

    A signal during evaluation stops at once (the unfinished generation is re-run on ``--resume``); one
    during :meth:`writing` waits until the files are complete.
    """

    def __init__(self) -> None:
        self.writing_now = False
        self.pending: int | None = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> "_Signals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.writing_now:
            self.pending = signum
            return
        raise KeyboardInterrupt(signal.Signals(signum).name)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        self.writing_now = True
        try:
            yield
        finally:
            self.writing_now = False
        if self.pending is not None:
            raise KeyboardInterrupt(signal.Signals(self.pending).name)


def train(config: TrainConfig, out: str | os.PathLike, resume: bool = False, progress: bool = True) -> TrainResult:
    """Run ES on ``config`` in directory ``out``; resumable, writes every file each generation.

    Everything that can be checked is checked before anything is written; the directory is locked while
    the run goes on; a run that fails before its first generation is saved leaves ``out`` as it was.
    Ctrl-C or SIGTERM stop it after the current write (``KeyboardInterrupt``; ``resume=True`` continues).
    """
    out = Path(out)
    policy = build_policy(config)  # the checks that need an env (spaces, mixed tasks) come before any write
    factory = strategy_factory(policy, config)
    check_run_dir(out, config, resume)
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = RunLock(out).acquire()
    except OSError as exc:
        raise RunDirError(f"cannot write into --out {out}: {exc.strerror or exc}") from exc
    except BaseException:
        _remove_if_empty(out, created)
        raise
    try:
        ckpt = check_run_dir(out, config, resume)  # again, now that the directory is ours
        before = {p.name for p in out.iterdir()}
        handler = logging.FileHandler(out / "train.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger("agents").addHandler(handler)
        logging.getLogger("agents").setLevel(logging.INFO)
        try:
            return _train(config, out, policy, factory, ckpt, progress)
        except BaseException:
            if not (out / "checkpoint.pt").exists():  # nothing saved: leave the directory as it was
                for name in set(RUN_FILES) - before:
                    with contextlib.suppress(FileNotFoundError):
                        (out / name).unlink()
            raise
        finally:
            logging.getLogger("agents").removeHandler(handler)
            handler.close()
    finally:
        lock.release()
        _remove_if_empty(out, created)


def _remove_if_empty(out: Path, created: bool) -> None:
    if created and out.is_dir() and not any(out.iterdir()):
        out.rmdir()


def _train(config: TrainConfig, out: Path, policy: Any, factory: Any, ckpt: dict[str, Any] | None,
           progress: bool) -> TrainResult:
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
        atomic_write_text(out / "metrics.csv", metrics_csv([]))
    state_at_start = {"state": strategy.state_dict()}
    signals = _Signals().__enter__()
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
                raise TrainingError(f"generation {g}: every individual's fitness is non-finite; lower --lr/--sigma")
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
            with signals.writing():
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
        signals.__exit__()
        backend.close()
        if board is not None:
            board.close()
        if hasattr(bar, "close"):
            bar.close()
    curve = plot_learning_curves([out], out / "learning_curve.png")
    return TrainResult(out, best["fitness"], len(rows), out / "best.pt", out / "last.pt", curve)


def _save_generation(out: Path, config: TrainConfig, policy: Any, strategy: Any,
                     rows: list[dict[str, Any]], best: dict[str, Any], generation: int) -> None:
    """Everything of one generation, each file atomically: policies first, the checkpoint last."""
    policy_with(policy, *mean_params(strategy)).save(out / "last.pt")
    policy_with(policy, best["params"], best["assignment"]).save(out / "best.pt")
    atomic_write_text(out / "metrics.csv", metrics_csv(rows))
    ckpt = {"format": 1, "generation": generation, "strategy": strategy.state_dict(), "metrics": rows, "best": best,
            "config": config.to_json()}
    save_checkpoint(out / "checkpoint.pt", ckpt)


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
