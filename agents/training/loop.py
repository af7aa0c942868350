"""The ES training loop: a run directory, a strategy, a backend, metrics and checkpoints every generation.

A run is a folder: ``config.json``, ``metrics.csv``, ``checkpoint.pt`` (replaced atomically each
generation), ``best.pt`` / ``last.pt`` (policy files ``load_policy`` reads), ``learning_curve.png``
and ``train.log``. ``resume=True`` continues from the checkpoint so that the metrics are those of
a run that never stopped (unless ``resume_lr`` sets a new step size there).
"""

from __future__ import annotations

import contextlib
import json
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

from agents.es.params import candidate_params, mean_params, strategy_factory, uses_mixture
from agents.evaluation.backends import CHUNK, make_backend
from agents.evaluation.fitness import EnvPool, combine_variants, derive_seed, evaluate_slice
from agents.policies import policy_with
from agents.policies.normalizer import ObsNormalizer, ObsStats
from agents.pretrained import started_from
from agents.training.config import TrainConfig, build_policy
from agents.training.curves import plot_learning_curves
from agents.training.rundir import (RUN_FILES, RunDirError, RunLock, centre_file, check_run_dir, metrics_csv,
                                    save_checkpoint)
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
    if config.resume_lr is not None and not resume:
        raise ValueError(f"resume_lr={config.resume_lr!r} changes the step size of a run continued with --resume; "
                         "a new run starts from lr (--lr)")
    policy = build_policy(config, start=not resume)  # the checks that need an env (spaces, mixed tasks) come before any write
    check_memory(policy, config)
    factory = strategy_factory(policy, config)
    check_run_dir(out, config, resume)
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = RunLock(out).acquire()
    except OSError as exc:
        _remove_if_empty(out, created)
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
                for name in (set(RUN_FILES) | {p.name for p in out.glob(centre_file("*"))}) - before:
                    with contextlib.suppress(FileNotFoundError):
                        (out / name).unlink()
            raise
        finally:
            logging.getLogger("agents").removeHandler(handler)
            handler.close()
    finally:
        lock.release()
        _remove_if_empty(out, created)


#: Rough memory of one env of a vector task (MuJoCo, Box2D without pixels) and of an image task, in bytes.
_ENV_BYTES = {"mlp": 4 * 2**20, "cnn": 24 * 2**20}


def memory_estimate(policy: Any, config: TrainConfig) -> dict[str, int]:
    """Bytes a run needs at once, roughly: each worker's chunk of individuals (parameters, plastic or LSTM
    states and envs) and the trainer's strategy (the mixture keeps every individual's sample during ``tell``)."""
    workers = min(config.workers or os.cpu_count() or 1, config.popsize) if config.backend != "serial" else 1
    chunk = min(CHUNK, -(-config.popsize // workers))
    d = policy.num_params
    synapses = policy.spec.num_synapses
    per_env = 4 * synapses * 3 if config.agent == "hebbian" else 4 * 4 * sum(o for o, _ in policy.spec.dense_shapes)
    per_individual = 8 * d + (16 * synapses if config.agent == "hebbian" else 0)
    worker = chunk * (per_individual + config.episodes * (per_env + _ENV_BYTES[policy.spec.kind]))
    trainer = 32 * d + 16 * config.popsize
    if uses_mixture(policy):
        trainer += config.popsize * 8 * (synapses + 2 * policy.num_params)  # assignments, samples and their noise
    return {"workers": workers, "per_worker": worker, "trainer": trainer, "total": workers * worker + trainer}


def check_memory(policy: Any, config: TrainConfig) -> None:
    """Refuse, before anything is written, a run whose :func:`memory_estimate` exceeds this machine's memory."""
    try:
        machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not available on this platform: nothing to check against
        return
    need = memory_estimate(policy, config)
    if need["total"] > 0.9 * machine:
        gib = 2.0**30
        raise ValueError(
            f"this run needs about {need['total'] / gib:.1f} GiB at once ({need['workers']} worker(s) x "
            f"{need['per_worker'] / gib:.2f} GiB + the trainer's {need['trainer'] / gib:.1f} GiB for popsize="
            f"{config.popsize} and {policy.num_params} parameters); this machine has {machine / gib:.1f} GiB. "
            "Lower --popsize (or --episodes, --workers)")


def _remove_if_empty(out: Path, created: bool) -> None:
    if created and out.is_dir() and not any(out.iterdir()):
        out.rmdir()


def _train(config: TrainConfig, out: Path, policy: Any, factory: Any, ckpt: dict[str, Any] | None,
           progress: bool) -> TrainResult:
    strategy = factory()
    rows: list[dict[str, Any]] = []
    best: dict[str, Any] = {"fitness": -math.inf, "params": None, "assignment": None, "obs_norm": None}
    best_individual = -math.inf
    obs_dim = int(np.prod(policy.observation_space.shape))
    stats = ObsStats(obs_dim) if config.obs_norm else None
    start = 0
    # what ranks best.pt in this call: a record of best.pt measured otherwise (another score, fitness, number
    # of centre episodes or horizon; an older checkpoint without the record) is not compared with it
    judged_by = {"score": config.centre_score, "centre_fitness": config.resolved_centre_fitness(),
                 "centre_episodes": config.centre_episodes, "centre_horizon": config.centre_fitness_config().max_steps}
    if ckpt is not None:
        state = ckpt["strategy"]
        if config.resume_lr is not None:  # the workers' replicas start from this state too
            log.info("resume_lr: the step size goes on from %g (the checkpoint's was %g)", config.resume_lr,
                     float(state["lr"]))
            state = {**state, "lr": float(config.resume_lr)}
        strategy.load_state_dict(state)
        rows = ckpt["metrics"]
        best = ckpt["best"]
        best.setdefault("obs_norm", None)
        best_individual = ckpt.get("best_individual", best["fitness"])
        # records from before a key was kept: the score was the mean, the fitness this call's
        scored_as = {"score": "mean", "centre_fitness": judged_by["centre_fitness"], "centre_episodes": None,
                     "centre_horizon": None, **{k: best[k] for k in judged_by if k in best}}
        if config.centre_every and math.isfinite(best["fitness"]) and scored_as != judged_by:
            # best.pt stays on disk until a centre evaluation under the new measure replaces it
            log.info("the centre is now scored as %s (best.pt's record %g was scored as %s): best.pt is chosen "
                     "by the new measure from here on", judged_by, best["fitness"], scored_as)
            best["fitness"] = -math.inf
        if stats is not None:
            stats = ObsStats.from_state_dict(ckpt["obs_stats"])
        start = ckpt["generation"]
        log.info("resumed %s at generation %d", out, start)
    # the settings of this call: a resumed run records what it was continued with (--centre-score, --variant-fitness),
    # and keeps where it started (recorded once: by now pretrained:NAME may name what this run produced)
    record = {
        "train": config.to_json(),
        "num_params": policy.num_params,
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
    }
    start_record = (started_from(config.init_policy) if ckpt is None
                    else json.loads((out / "config.json").read_text()).get("started_from"))
    if start_record is not None:
        record["started_from"] = start_record
    atomic_write_json(out / "config.json", record)
    if ckpt is None:
        atomic_write_text(out / "metrics.csv", metrics_csv([]))
    state_at_start = {"state": strategy.state_dict()}
    tell: np.ndarray | None = None
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:  # whatever was set up is released, also when setting up fails
        signals = stack.enter_context(_Signals())
        fitness_config = config.fitness_config()
        backend = make_backend(config.backend, policy, strategy, factory, fitness_config,
                               workers=config.workers or None, address=config.address,
                               snapshot=lambda: state_at_start["state"], collect_obs=stats is not None)
        stack.callback(backend.close)
        centre_pool = EnvPool(config.centre_fitness_config()) if config.centre_every else None
        if centre_pool is not None:
            stack.callback(centre_pool.close)
        board = _tensorboard_writer(out) if config.tensorboard else None
        if board is not None:
            stack.callback(board.close)
        bar = _progress_bar(start, config.generations, progress)
        if bar is not None:
            stack.callback(bar.close)
        for g in range(start, config.generations):
            state_at_start["state"] = strategy.state_dict()
            candidates = strategy.ask()
            norm = None if stats is None else ObsNormalizer.from_stats(stats)  # statistics up to generation g - 1
            t0 = time.perf_counter()
            result = backend.generation(tell, derive_seed(config.seed, "generation", g), norm)
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
            if clean[i_best] > best_individual:
                best_individual = float(clean[i_best])
                if not config.centre_every:  # no centre evaluations: best.pt is the best single evaluation
                    params, assignment = candidate_params(strategy, candidates, i_best, i_best + 1)
                    best = {"fitness": best_individual, "params": params[0],
                            "assignment": None if assignment is None else assignment[0],
                            "obs_norm": None if norm is None else norm.state_dict()}
            lr, sigma = strategy.lr, strategy.sigma
            # the update's fitness; the logged columns stay the mean scores ("mean" is result.fitness itself)
            tell = clean if config.variant_fitness == "mean" else combine_variants(result.per_env, config.variant_fitness)
            strategy.tell(tell)
            if stats is not None:
                stats.merge(ObsStats.merged(obs_dim, result.obs_stats or []))  # in individual order
                norm = ObsNormalizer.from_stats(stats)  # what generation g + 1 will use
            centre: dict[str, Any] = {"centre_mean": "", "centre_std": "", "centre_min": "", "centre_seconds": ""}
            if config.centre_every and ((g + 1) % config.centre_every == 0 or g + 1 == config.generations):
                t1 = time.perf_counter()
                params, assignment = mean_params(strategy)
                policy.obs_norm = norm
                scores = evaluate_slice(policy, params[None], [0], derive_seed(config.seed, "centre", g), centre_pool,
                                        None if assignment is None else assignment[None]).episodes[0]  # (variants, episodes)
                all_finite = bool(np.isfinite(scores).all())
                c_mean = float(scores.mean()) if all_finite else -math.inf
                c_min = float(scores.mean(axis=1).min()) if all_finite else -math.inf  # the worst variant's mean
                centre = {"centre_mean": c_mean, "centre_std": float(scores.std()) if all_finite else "",
                          "centre_min": c_min, "centre_seconds": round(time.perf_counter() - t1, 3)}
                c_score = {"mean": c_mean, "min": c_min}[config.centre_score]
                if c_score > best["fitness"]:
                    best = {"fitness": c_score, "params": params, "assignment": assignment, **judged_by,
                            "obs_norm": None if norm is None else norm.state_dict()}
                if config.keep_centres:
                    with signals.writing():
                        _policy_file(policy, params, assignment, norm).save(out / centre_file(g))
            rows.append({
                "generation": g, "best": float(clean.max()), "mean": float(clean.mean()), "std": float(clean.std()),
                "min": float(clean.min()), "best_so_far": best_individual, "nonfinite": int((~finite).sum()),
                "env_steps": int(result.env_steps), "lr": float(lr), "sigma": float(np.mean(sigma)), **centre,
                "best_centre": best["fitness"] if config.centre_every and math.isfinite(best["fitness"]) else "",
                "eval_seconds": round(seconds, 3), "env_steps_per_second": round(result.env_steps / max(seconds, 1e-9), 1),
                "replaced_workers": result.replaced_workers,
                "horizon": fitness_config.horizon(g),  # the training episodes' horizon (it may grow)
            })
            with signals.writing():
                _save_generation(out, config, policy, strategy, rows, best, best_individual, stats, norm, g + 1)
            if board is not None:
                for key in ("best", "mean", "std", "min", "best_so_far", "nonfinite", "lr", "sigma",
                            "env_steps_per_second", "centre_mean", "centre_std", "centre_min"):
                    if rows[-1][key] != "":
                        board.add_scalar(f"es/{key}", rows[-1][key], g)
                board.flush()
            if hasattr(bar, "set_postfix_str"):
                shown = "" if centre["centre_mean"] == "" else f"centre {centre['centre_mean']:.2f} "
                bar.set_postfix_str(f"{shown}mean {clean.mean():.2f} best {clean.max():.2f} "
                                    f"{result.env_steps / max(seconds, 1e-9):.0f} steps/s")
                bar.update(1)
            if _should_stop(config, centre[f"centre_{config.centre_score}"], time.perf_counter() - started):
                break
    curve = plot_learning_curves([out], out / "learning_curve.png")
    return TrainResult(out, best["fitness"], len(rows), out / "best.pt", out / "last.pt", curve)


def _should_stop(config: TrainConfig, centre_score: Any, elapsed: float) -> bool:
    """The run's own stops: the centre's score reached ``stop_centre``, or ``max_minutes`` of this call passed."""
    if config.stop_centre is not None and centre_score != "" and centre_score >= config.stop_centre:
        log.info("centre %s %.3f reached stop_centre=%g", config.centre_score, centre_score, config.stop_centre)
        return True
    if config.max_minutes is not None and elapsed >= 60.0 * config.max_minutes:
        log.info("max_minutes=%g reached", config.max_minutes)
        return True
    return False


def _policy_file(policy: Any, params: np.ndarray, assignment: np.ndarray | None, norm: Any) -> Any:
    out = policy_with(policy, params, assignment)
    out.obs_norm = norm if norm is None or isinstance(norm, ObsNormalizer) else ObsNormalizer.from_state_dict(norm)
    return out


def _save_generation(out: Path, config: TrainConfig, policy: Any, strategy: Any, rows: list[dict[str, Any]],
                     best: dict[str, Any], best_individual: float, stats: ObsStats | None,
                     norm: ObsNormalizer | None, generation: int) -> None:
    """Everything of one generation, each file atomically: policies first, the checkpoint last.

    ``last.pt`` is the search centre (with the observation statistics so far); ``best.pt`` the centre with
    the best centre evaluation (or, with ``centre_every=0``, the best single evaluation).
    """
    _policy_file(policy, *mean_params(strategy), norm).save(out / "last.pt")
    if best["params"] is not None:
        _policy_file(policy, best["params"], best["assignment"], best["obs_norm"]).save(out / "best.pt")
    atomic_write_text(out / "metrics.csv", metrics_csv(rows))
    ckpt = {"generation": generation, "strategy": strategy.state_dict(), "metrics": rows, "best": best,
            "best_individual": best_individual, "obs_stats": None if stats is None else stats.state_dict(),
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
