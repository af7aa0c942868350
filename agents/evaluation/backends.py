"""The evaluation engine: backends that turn one generation of a strategy into fitnesses.

Every backend runs the same :class:`Worker`. A worker keeps a replica of the strategy: each
generation it applies the previous generation's fitnesses (``tell``) and draws the same
candidates (``ask``) as the trainer, so only slice bounds, a generation seed and the fitness
vector travel — O(population) bytes, whatever the parameter count. A new or replacement worker
receives the full strategy state once. Backends: ``serial`` (in process), ``process`` (persistent
local processes, the default) and ``ray`` (actors on a Ray cluster).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import signal
from dataclasses import dataclass
from multiprocessing import get_context
from multiprocessing.connection import wait
from typing import Any, Callable, Protocol

import numpy as np
import torch

from agents.evaluation.fitness import EnvPool, FitnessConfig, SliceResult, evaluate_slice
from agents.es.params import candidate_params
from agents.policies.normalizer import ObsNormalizer

log = logging.getLogger(__name__)

BACKENDS = ("serial", "process", "ray")
#: A worker evaluates its slice in chunks of at most this many individuals (their parameters, plastic
#: states and envs exist for one chunk at a time); fitnesses do not depend on it.
CHUNK = 128
#: A generation gives up after this many dead workers instead of replacing them forever.
MAX_REPLACEMENTS_PER_GENERATION = 8


@dataclass
class WorkerInit:
    """Everything a new worker needs, sent once: the policy, the strategy spec and state, the fitness config."""

    policy: Any
    strategy_factory: Callable[[], Any]  # picklable, e.g. functools.partial(OpenAIES, **kwargs)
    strategy_state: dict[str, Any]
    fitness: FitnessConfig
    collect_obs: bool = False  # gather each individual's observation statistics (observation normalisation)


@dataclass
class GenerationResult:
    """What a backend returns for one generation."""

    fitness: np.ndarray
    env_steps: int
    per_env: np.ndarray
    replaced_workers: int = 0
    bytes_sent: int = 0
    obs_stats: list[Any] | None = None  # per individual, in population order (``collect_obs``)


class Worker:
    """Evaluates slices of successive generations against its own strategy replica."""

    def __init__(self, init: WorkerInit) -> None:
        torch.set_num_threads(1)
        self.policy = init.policy
        self.strategy = init.strategy_factory()
        self.strategy.load_state_dict(init.strategy_state)
        self.pool = EnvPool(init.fitness)
        self.collect_obs = init.collect_obs

    def run(self, tell: np.ndarray | None, lo: int, hi: int, generation_seed: int,
            obs_norm: ObsNormalizer | None = None) -> SliceResult:
        """Apply last generation's fitnesses (if any), ask, and evaluate individuals ``lo:hi``.

        ``obs_norm``: the observation normaliser of this generation (sent each time: O(observation) bytes).
        """
        if tell is not None:
            self.strategy.tell(tell)
        candidates = self.strategy.ask()
        self.policy.obs_norm = obs_norm
        horizon = self.pool.config.horizon(self.strategy.generation)  # the generation's (growing) horizon
        parts = []
        for a in range(lo, hi, CHUNK):  # streamed: at most CHUNK individuals' parameters and states at a time
            b = min(a + CHUNK, hi)
            params, assignment = candidate_params(self.strategy, candidates, a, b)
            parts.append(evaluate_slice(self.policy, params, range(a, b), generation_seed, self.pool, assignment,
                                        collect_obs=self.collect_obs, max_steps=horizon))
        return SliceResult.concat(parts)

    def close(self) -> None:
        self.pool.close()


class Backend(Protocol):
    """One generation in, fitnesses out; ``close`` releases workers."""

    def generation(self, tell: np.ndarray | None, generation_seed: int,
                   obs_norm: ObsNormalizer | None = None) -> GenerationResult: ...

    def close(self) -> None: ...


def split(popsize: int, parts: int) -> list[tuple[int, int]]:
    """Contiguous, nearly equal slices ``[lo, hi)`` covering the population."""
    bounds = np.linspace(0, popsize, min(parts, popsize) + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def _replacement_init(init: WorkerInit, snapshot: Callable[[], dict[str, Any]]) -> WorkerInit:
    """What a replacement worker gets: the original init with the strategy state of this generation's start."""
    return dataclasses.replace(init, strategy_state=snapshot())


def _gather(results: list[tuple[tuple[int, int], SliceResult]], popsize: int, n_envs: int, replaced: int = 0,
            sent: int = 0) -> GenerationResult:
    fitness = np.full(popsize, np.nan)
    per_env = np.full((popsize, n_envs), np.nan)
    stats: list[Any] = [None] * popsize
    steps = 0
    for (lo, hi), r in results:
        fitness[lo:hi] = r.fitness
        per_env[lo:hi] = r.per_env
        if r.obs_stats is not None:
            stats[lo:hi] = r.obs_stats
        steps += r.env_steps
    return GenerationResult(fitness, steps, per_env, replaced, sent,
                            obs_stats=stats if any(x is not None for x in stats) else None)


class SerialBackend:
    """One in-process worker evaluating the whole population."""

    def __init__(self, init: WorkerInit, popsize: int) -> None:
        self.worker = Worker(init)
        self.popsize = popsize
        self.n_envs = len(init.fitness.env_ids)

    def generation(self, tell: np.ndarray | None, generation_seed: int,
                   obs_norm: ObsNormalizer | None = None) -> GenerationResult:
        r = self.worker.run(tell, 0, self.popsize, generation_seed, obs_norm)
        return _gather([((0, self.popsize), r)], self.popsize, self.n_envs)

    def close(self) -> None:
        self.worker.close()


def _process_main(conn: Any, init_bytes: bytes) -> None:
    # Ctrl-C reaches the whole process group: the trainer stops its workers itself, after its current write
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    worker = Worker(pickle.loads(init_bytes))
    try:
        while True:
            msg = conn.recv()
            if msg is None:
                break
            conn.send(worker.run(*msg))
    except (EOFError, BrokenPipeError, ConnectionResetError, KeyboardInterrupt):
        pass
    finally:
        worker.close()


class ProcessBackend:
    """Persistent local worker processes; a worker that dies is replaced and its slice re-run."""

    def __init__(self, init: WorkerInit, popsize: int, workers: int, snapshot: Callable[[], dict[str, Any]]) -> None:
        if workers < 1:
            raise ValueError(f"workers={workers!r} must be >= 1")
        self.init = init
        self.popsize = popsize
        self.slices = split(popsize, workers)
        self.snapshot = snapshot  # the trainer's strategy state at the start of the current generation
        self.ctx = get_context("spawn")
        self.procs: list[Any] = []
        self.conns: list[Any] = []
        init_bytes = pickle.dumps(init)
        self.bytes_sent = len(init_bytes) * len(self.slices)
        for _ in self.slices:
            proc, conn = self._start(init_bytes)
            self.procs.append(proc)
            self.conns.append(conn)

    def _start(self, init_bytes: bytes) -> tuple[Any, Any]:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_process_main, args=(child, init_bytes), daemon=True)
        proc.start()
        child.close()
        return proc, parent

    @property
    def pids(self) -> list[int]:
        """Process ids of the current workers (tests kill one to check recovery)."""
        return [p.pid for p in self.procs]

    def generation(self, tell: np.ndarray | None, generation_seed: int,
                   obs_norm: ObsNormalizer | None = None) -> GenerationResult:
        sent = self.bytes_sent
        self.bytes_sent = 0
        pending: dict[int, tuple[int, int]] = {}
        for k, (lo, hi) in enumerate(self.slices):
            msg = (tell, lo, hi, generation_seed, obs_norm)
            sent += len(pickle.dumps(msg))
            try:
                self.conns[k].send(msg)
            except (BrokenPipeError, OSError):
                pass  # the worker is dead; the wait below sees its sentinel and replaces it
            pending[k] = (lo, hi)
        results: list[tuple[tuple[int, int], SliceResult]] = []
        replaced = 0
        while pending:
            if replaced > MAX_REPLACEMENTS_PER_GENERATION:
                raise RuntimeError(f"{replaced} workers died in one generation; see the log above (a worker that "
                                   "cannot start, e.g. a script without an `if __name__ == '__main__':` guard)")
            ready = wait([self.conns[k] for k in pending] + [self.procs[k].sentinel for k in pending])
            for k in list(pending):
                conn, proc = self.conns[k], self.procs[k]
                got = None
                if conn in ready or proc.sentinel in ready:
                    try:
                        if conn.poll():
                            got = conn.recv()
                    except (EOFError, OSError):
                        got = None
                    if got is not None:
                        results.append((pending.pop(k), got))
                    elif not proc.is_alive():
                        lo, hi = pending[k]
                        log.warning("worker %d (pid %s) died with exit code %s; slice [%d, %d) re-run on a new worker",
                                    k, proc.pid, proc.exitcode, lo, hi)
                        replaced += 1
                        conn.close()
                        init_bytes = pickle.dumps(_replacement_init(self.init, self.snapshot))
                        sent += len(init_bytes)
                        self.procs[k], self.conns[k] = self._start(init_bytes)
                        self.conns[k].send((None, lo, hi, generation_seed, obs_norm))
        return _gather(results, self.popsize, len(self.init.fitness.env_ids), replaced, sent)

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.send(None)
            except (OSError, BrokenPipeError):
                pass
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
        self.procs, self.conns = [], []


class RayBackend:
    """Ray actors running :class:`Worker`; joins ``address`` or starts a local Ray."""

    def __init__(
        self, init: WorkerInit, popsize: int, workers: int, snapshot: Callable[[], dict[str, Any]], address: str | None
    ) -> None:
        try:
            import ray
        except ImportError as exc:  # pragma: no cover - depends on the optional extra
            raise ValueError("backend='ray' needs the ray extra: pip install 'hebb-gym[ray]'") from exc
        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}})
        self.actor_cls = ray.remote(num_cpus=1, max_restarts=0)(Worker)
        self.init = init
        self.popsize = popsize
        self.slices = split(popsize, workers)
        self.snapshot = snapshot
        self.actors = [self.actor_cls.remote(init) for _ in self.slices]
        self.bytes_sent = len(pickle.dumps(init)) * len(self.slices)  # as pickled; Ray's own framing not counted

    def generation(self, tell: np.ndarray | None, generation_seed: int,
                   obs_norm: ObsNormalizer | None = None) -> GenerationResult:
        ray = self.ray
        sent = self.bytes_sent
        self.bytes_sent = 0
        futures = {k: self.actors[k].run.remote(tell, lo, hi, generation_seed, obs_norm)
                   for k, (lo, hi) in enumerate(self.slices)}
        sent += sum(len(pickle.dumps((tell, lo, hi, generation_seed, obs_norm))) for lo, hi in self.slices)
        results: list[tuple[tuple[int, int], SliceResult]] = []
        replaced = 0
        for k, fut in futures.items():
            try:
                results.append((self.slices[k], ray.get(fut)))
            except ray.exceptions.RayActorError:
                lo, hi = self.slices[k]
                log.warning("ray worker %d died; slice [%d, %d) re-run on a new actor", k, lo, hi)
                replaced += 1
                init = _replacement_init(self.init, self.snapshot)
                sent += len(pickle.dumps(init))
                self.actors[k] = self.actor_cls.remote(init)
                results.append((self.slices[k], ray.get(self.actors[k].run.remote(None, lo, hi, generation_seed,
                                                                                       obs_norm))))
        return _gather(results, self.popsize, len(self.init.fitness.env_ids), replaced, sent)

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []


def make_backend(
    name: str,
    policy: Any,
    strategy: Any,
    strategy_factory: Callable[[], Any],
    fitness: FitnessConfig,
    workers: int | None = None,
    address: str | None = None,
    snapshot: Callable[[], dict[str, Any]] | None = None,
    collect_obs: bool = False,
) -> Backend:
    """Build a backend by name.

    ``strategy_factory()`` builds a fresh replica of ``strategy`` in a worker (its state is then loaded);
    ``snapshot()`` returns the strategy state at the start of the current generation, for new workers;
    ``collect_obs``: each generation also returns every individual's observation statistics.
    """
    if name not in BACKENDS:
        raise ValueError(f"backend={name!r} is not known; accepted: {', '.join(BACKENDS)}")
    workers = workers or os.cpu_count() or 1
    snapshot = snapshot or strategy.state_dict
    init = WorkerInit(policy, strategy_factory, snapshot(), fitness, collect_obs)
    if name == "serial":
        return SerialBackend(init, strategy.popsize)
    if name == "process":
        return ProcessBackend(init, strategy.popsize, workers, snapshot)
    return RayBackend(init, strategy.popsize, workers, snapshot, address)
