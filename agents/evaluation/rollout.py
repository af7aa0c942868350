"""The one lockstep rollout loop: a batch of (individual, env) pairs stepped together.

Training fitness, evaluation, probes and the rule analysis's weight trajectory all run :func:`rollout`:
``P`` individuals x ``E`` episodes each, one batched ``batch.act`` call per step, finished episodes
masked out, non-finite actions flagged (and, for fitness, their episodes ended). How the envs are
stepped is a :class:`Stepper`:

* :class:`GymStepper`: each Gymnasium env's own ``env.step`` (any env);
* :class:`AntStepper`: :class:`hebb_gym.ant_batch.AntBatch`, Ant-v5's step vectorised over MuJoCo
  quadrupeds, bit for bit equal to ``env.step`` (where :func:`hebb_gym.ant_batch.supports` says so).

What a caller needs beyond scores (probes freezing or zeroing weights, saturating actuators, traces of
weights and actions, video frames) is a :class:`Hook` the loop calls at each step, not a copy of the loop.
Env ``k`` of the flat batch is individual ``k // E``, episode ``k % E``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import gymnasium as gym
import numpy as np

from agents.evaluation.scores import RETURN, EpisodeScores, TaskScore
from agents.policies.base import PolicyBatch, PolicyState

__all__ = ["AntStepper", "GymStepper", "Hook", "RolloutResult", "Step", "Stepper", "Transition", "rollout"]


@dataclass
class Transition:
    """What one step of envs ``index`` returned, one row per stepped env."""

    obs: np.ndarray  # (k, *obs_shape)
    reward: np.ndarray  # (k,) float64
    terminated: np.ndarray  # (k,) bool
    truncated: np.ndarray  # (k,) bool
    distance: np.ndarray  # (k,) float64, info["distance"]; NaN where not reported
    reported: np.ndarray  # (k,) bool, where info["distance"] was reported
    progress: np.ndarray | None = None  # (k,) float64, info["progress"]; NaN where not reported (None: nowhere)
    fallen: np.ndarray | None = None  # (k,) bool, info["fallen"]; False where not reported (None: nowhere)
    alive: np.ndarray | None = None  # (k,) float64, info["reward_survive"]; NaN where not reported (None: nowhere)


class Stepper(Protocol):
    """A stepping strategy over ``size`` envs addressed by index."""

    size: int

    def reset(self, seeds: Sequence[int | None]) -> np.ndarray:
        """Reset env k with ``seeds[k]``; the observations ``(size, *obs_shape)``."""
        ...

    def step(self, index: np.ndarray, actions: np.ndarray) -> Transition:
        """Step envs ``index (k,)`` with ``actions (k, *act_shape)``."""
        ...


class GymStepper:
    """The generic strategy: ``env.step`` of each Gymnasium env."""

    def __init__(self, envs: Sequence[gym.Env]) -> None:
        self.envs = list(envs)
        self.size = len(self.envs)

    def reset(self, seeds: Sequence[int | None]) -> np.ndarray:
        return np.stack([env.reset(seed=s)[0] for env, s in zip(self.envs, seeds)])

    def step(self, index: np.ndarray, actions: np.ndarray) -> Transition:
        k = len(index)
        obs, reward = [], np.zeros(k)
        terminated, truncated = np.zeros(k, dtype=bool), np.zeros(k, dtype=bool)
        distance, reported = np.full(k, np.nan), np.zeros(k, dtype=bool)
        infos = []
        for row, j in enumerate(index.tolist()):
            o, r, term, trunc, info = self.envs[j].step(actions[row])
            obs.append(o)
            infos.append(info)
            reward[row], terminated[row], truncated[row] = r, term, trunc
            if "distance" in info:
                distance[row], reported[row] = info["distance"], True
        return Transition(np.stack(obs), reward, terminated, truncated, distance, reported,
                          progress=_info_column(infos, "progress", np.nan, np.float64),
                          fallen=_info_column(infos, "fallen", False, bool),
                          alive=_info_column(infos, "reward_survive", np.nan, np.float64))


def _info_column(infos: Sequence[dict[str, Any]], key: str, missing: Any, dtype: Any) -> np.ndarray | None:
    """``info[key]`` of each env as an array (``missing`` where an env did not report it); None if none did."""
    if not any(key in info for info in infos):
        return None
    return np.array([info.get(key, missing) for info in infos], dtype=dtype)


class AntStepper:
    """The lean MuJoCo strategy: an :class:`hebb_gym.ant_batch.AntBatch`, with the envs' time limits applied."""

    def __init__(self, ant: Any) -> None:
        self.ant = ant
        self.size = len(ant.envs)
        limits = [np.iinfo(np.int64).max if lim is None else lim for lim in ant.time_limits]
        self._limits = np.array(limits, dtype=np.int64)
        self._elapsed = np.zeros(self.size, dtype=np.int64)
        self._reported = np.ones(self.size, dtype=bool)

    def reset(self, seeds: Sequence[int | None]) -> np.ndarray:
        self._elapsed[:] = 0
        return self.ant.reset(list(seeds))

    def step(self, index: np.ndarray, actions: np.ndarray) -> Transition:
        obs, reward, terminated, distance = self.ant.step(index, actions)
        self._elapsed[index] += 1
        truncated = self._elapsed[index] >= self._limits[index]  # what each env's TimeLimit would say
        return Transition(obs, reward, terminated, truncated, distance, self._reported[: len(index)],
                          alive=self.ant.survive_reward)


@dataclass
class Step:
    """What :meth:`Hook.after_step` sees of step ``t``: the envs stepped and what they returned.

    ``actions`` (the policy's) and ``sent`` (after the hooks) are flat ``(P * E, *act_shape)``;
    ``done[i]``: env ``index[i]`` ended at this step (terminated, truncated or stopped early).
    """

    t: int
    index: np.ndarray
    transition: Transition
    done: np.ndarray
    actions: np.ndarray
    sent: np.ndarray


class Hook:
    """Called by :func:`rollout` at each step; subclasses override what they need (all no-ops here)."""

    def before_act(self, t: int, state: PolicyState) -> None:
        """Before the policy acts at step ``t``: may edit ``state`` (freeze, zero or copy plastic weights)."""

    def actions(self, t: int, actions: np.ndarray) -> np.ndarray:
        """The actions ``(P, E, *act_shape)`` to send at step ``t`` (default: the policy's)."""
        return actions

    def after_step(self, step: Step) -> None:
        """After the envs of step ``step.t`` were stepped (record rewards, distances, frames)."""


@dataclass
class RolloutResult:
    """Per (individual, episode) ``(P, E)``: score, return, last distance, length, non-finite flag; steps taken."""

    scores: np.ndarray  # the task score (return, distance or summed progress)
    returns: np.ndarray
    distances: np.ndarray  # last info["distance"]; NaN where none was reported
    lengths: np.ndarray
    nonfinite: np.ndarray  # the policy sent a non-finite action in this episode
    steps: int


def rollout(
    batch: PolicyBatch,
    state: PolicyState,
    stepper: Stepper,
    seeds: Sequence[int | None],
    *,
    max_steps: int | None = None,
    score: TaskScore = RETURN,
    early_stop: bool = False,
    stop_nonfinite: bool = False,
    hooks: Sequence[Hook] = (),
) -> RolloutResult:
    """Run ``state``'s P x E episodes in lockstep: reset env k with ``seeds[k]``, step until all have ended.

    ``max_steps``: at most that many steps (None: until every episode ends by itself); ``score`` with
    ``early_stop``: the task score and whether its early stop applies; ``stop_nonfinite``: end an
    episode whose policy sends a non-finite action (else the action goes to the env and is only flagged);
    ``hooks``: called at each step, in order.
    """
    n, E = state.n_individuals, state.n_envs
    m = n * E
    if stepper.size != m or len(seeds) != m:
        raise ValueError(f"stepper has {stepper.size} envs and seeds {len(seeds)}; accepted: {m} of each "
                         f"({n} individuals x {E} episodes)")
    flat_obs = stepper.reset(seeds)
    obs = flat_obs.reshape((n, E) + flat_obs.shape[1:])
    track = EpisodeScores(score, m, early_stop)
    active = np.ones(m, dtype=bool)
    nonfinite = np.zeros(m, dtype=bool)
    t = 0
    while (max_steps is None or t < max_steps) and active.any():
        for h in hooks:
            h.before_act(t, state)
        actions, state = batch.act(obs, state)
        sent = actions
        for h in hooks:
            sent = h.actions(t, sent)
        flat_actions = actions.reshape((m,) + actions.shape[2:])
        flat_sent = np.asarray(sent).reshape((m,) + actions.shape[2:])
        bad = active & ~np.isfinite(flat_sent.reshape(m, -1)).all(axis=1)
        if bad.any():
            nonfinite |= bad
            if stop_nonfinite:
                active &= ~bad
        index = np.flatnonzero(active)
        if index.size:
            tr = stepper.step(index, flat_sent[index])
            flat_obs[index] = tr.obs
            stop = track.update(t, index, tr.reward, tr.distance, tr.reported, tr.progress, tr.fallen, tr.alive)
            done = tr.terminated | tr.truncated | stop
            active[index[done]] = False
            for h in hooks:
                h.after_step(Step(t, index, tr, done, flat_actions, flat_sent))
        t += 1
    shape = (n, E)
    return RolloutResult(
        track.scores.reshape(shape).copy(), track.returns.reshape(shape), track.distances.reshape(shape),
        track.lengths.reshape(shape), nonfinite.reshape(shape), int(track.lengths.sum()),
    )
