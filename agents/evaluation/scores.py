"""Task scores and early stops, written once: what an episode is worth and when a hopeless one ends.

* car: the score is the episode return; the original code ends an episode after 20 consecutive negative
  rewards (the car is off the track or standing still).
* quadruped: the score is ``info["distance"]`` (x-progress since reset); from step 200 on, an episode
  ends once the torso has moved backwards 30 steps in a row.

:class:`EpisodeScores` keeps the running score and stop state of a batch of episodes and is what the
rollout loop (:mod:`agents.evaluation.rollout`) updates every step; :func:`stop_step` feeds one
constructed stream of rewards / distances through the same code, so a stop condition can be checked
without an environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

CAR_NEGATIVE_STREAK = 20
ANT_GRACE_STEPS = 200
ANT_BACKWARD_STREAK = 30

#: What a step's signal of a :class:`StreakStop` is: the step's reward, or its forward progress.
SIGNALS = ("reward", "progress")
#: What an episode scores: its return, its last ``info["distance"]``, or its return without the env's alive
#: bonus (the sum over steps of reward - ``info["reward_survive"]``; the quadruped only).
SCORES = ("return", "distance", "reward-no-alive")


@dataclass(frozen=True)
class StreakStop:
    """End an episode at step ``t >= grace`` once ``signal`` has been negative ``streak`` steps in a row.

    The streak is counted from the first step on (``grace`` only delays when it may end the episode), or,
    with ``from_grace``, only from step ``grace`` on (the original code's quadruped rule).
    """

    signal: str
    streak: int
    grace: int = 0
    from_grace: bool = False

    def __post_init__(self) -> None:
        if self.signal not in SIGNALS:
            raise ValueError(f"signal={self.signal!r} is not known; accepted: {', '.join(SIGNALS)}")
        if self.streak < 1 or self.grace < 0:
            raise ValueError(f"streak={self.streak!r}, grace={self.grace!r}; accepted: streak >= 1, grace >= 0")


@dataclass(frozen=True)
class TaskScore:
    """What an episode of a task scores (``"return"`` or ``"distance"``) and its early stop (None: none)."""

    score: str
    stop: StreakStop | None = None

    def __post_init__(self) -> None:
        if self.score not in SCORES:
            raise ValueError(f"score={self.score!r} is not known; accepted: {', '.join(SCORES)}")


#: The papers' tasks: the car scores its return, the quadruped its distance, each with its early stop.
TASK_SCORES = {
    "car": TaskScore("return", StreakStop("reward", CAR_NEGATIVE_STREAK)),
    "ant": TaskScore("distance", StreakStop("progress", ANT_BACKWARD_STREAK, ANT_GRACE_STEPS)),
}
#: The plain return, no early stop (evaluation and probes play whole episodes).
RETURN = TaskScore("return")
#: The original code's stops exactly: the car after 21 negative rewards in a row (``> 20``); the quadruped
#: once, counting from step 200 on, 31 steps in a row went backwards (``> 30``).
ORIGINAL_STOPS = {
    "car": StreakStop("reward", CAR_NEGATIVE_STREAK + 1),
    "ant": StreakStop("progress", ANT_BACKWARD_STREAK + 1, ANT_GRACE_STEPS + 1, from_grace=True),
}
#: What ``early_stop`` accepts (N, GRACE: integers).
EARLY_STOP_SYNTAX = ("auto (the task's own: car negative-streak:20, quadruped no-progress:200:30, others none), off, "
                     "original (the original code's exact rule), negative-streak:N (N negative rewards in a row), "
                     "no-progress:GRACE:N (at step GRACE or later, once the last N steps all moved backwards)")
#: What ``fitness`` accepts.
FITNESSES = ("auto", "return", "distance", "reward-no-alive")
#: The tasks whose envs report their alive bonus as ``info["reward_survive"]`` (both quadruped backends).
ALIVE_BONUS_TASKS = ("ant",)


def parse_early_stop(spec: str | bool, task: str | None) -> StreakStop | None:
    """The early stop named by ``spec`` (see :data:`EARLY_STOP_SYNTAX`) for an env of ``task`` (None: no known task)."""
    if spec is True or spec == "auto":
        return TASK_SCORES[task].stop if task in TASK_SCORES else None
    if spec is False or spec in ("off", "none"):
        return None
    if spec == "original":
        if task not in ORIGINAL_STOPS:
            raise ValueError("early_stop='original' is the car's or the quadruped's rule; this env has neither")
        return ORIGINAL_STOPS[task]
    parts = str(spec).split(":")
    try:
        if parts[0] == "negative-streak" and len(parts) == 2:
            return StreakStop("reward", int(parts[1]))
        if parts[0] == "no-progress" and len(parts) == 3:
            return StreakStop("progress", int(parts[2]), int(parts[1]))
    except ValueError as exc:
        if "streak=" in str(exc):
            raise ValueError(f"early_stop={spec!r}: {exc}") from None
    raise ValueError(f"early_stop={spec!r} is not accepted; accepted: {EARLY_STOP_SYNTAX}")


def task_score(task: str | None, fitness: str = "auto", early_stop: str | bool = "auto") -> TaskScore:
    """What an episode of an env of ``task`` scores, and its early stop.

    ``fitness``: ``auto`` (the quadruped's distance, else the return), ``return`` or ``distance`` (an env
    reporting ``info["distance"]``); ``early_stop``: see :data:`EARLY_STOP_SYNTAX`.
    """
    if fitness not in FITNESSES:
        raise ValueError(f"fitness={fitness!r} is not known; accepted: {', '.join(FITNESSES)}")
    if task is not None and task not in TASK_SCORES:
        raise ValueError(f"task={task!r} has no score; accepted: {', '.join(TASK_SCORES)} or None (any other env)")
    if fitness == "reward-no-alive" and task not in ALIVE_BONUS_TASKS:
        raise ValueError(f"fitness='reward-no-alive' is the quadruped's env reward minus its alive bonus "
                         f"(info['reward_survive']); it does not apply to an env of task {task!r}; accepted there: "
                         "auto, return, distance")
    score = fitness if fitness != "auto" else (TASK_SCORES[task].score if task in TASK_SCORES else "return")
    return TaskScore(score, parse_early_stop(early_stop, task))


class EpisodeScores:
    """Running return, distance, length and stop streak of ``m`` episodes; :meth:`update` takes one step.

    ``distances`` holds each episode's last reported ``info["distance"]`` (NaN until one is reported);
    forward progress is measured from 0 at reset.
    """

    def __init__(self, rule: TaskScore, m: int, early_stop: bool = True) -> None:
        self.rule = rule
        self.early_stop = bool(early_stop)
        self.returns = np.zeros(m)
        self.alive = np.zeros(m)  # the summed alive bonus (fitness 'reward-no-alive')
        self.distances = np.full(m, np.nan)
        self.lengths = np.zeros(m, dtype=np.int64)
        self._last = np.zeros(m)  # the distance progress is measured from
        self._streak = np.zeros(m, dtype=np.int64)

    def update(
        self, t: int, index: np.ndarray, reward: np.ndarray, distance: np.ndarray, reported: np.ndarray | None = None,
        alive: np.ndarray | None = None,
    ) -> np.ndarray:
        """Step ``t`` of episodes ``index``: rewards and distances (NaN: none); True where the early stop ends one.

        ``reported``: where ``distance`` was reported (default: everywhere); elsewhere the last one is kept.
        ``alive``: the step's alive bonus (``info["reward_survive"]``, NaN: none), needed by 'reward-no-alive'.
        """
        self.returns[index] += reward
        if self.rule.score == "reward-no-alive":
            if alive is None or not np.isfinite(alive).all():
                raise ValueError("fitness='reward-no-alive' needs the env's alive bonus as info['reward_survive'] "
                                 "at every step; this env does not report it (accepted: the quadruped's envs)")
            self.alive[index] += alive
        self.lengths[index] += 1
        progress = distance - self._last[index]
        self._last[index] = distance
        if reported is None:
            self.distances[index] = distance
        else:
            self.distances[index[reported]] = distance[reported]
        stop = self.rule.stop
        if stop is None:
            return np.zeros(len(index), dtype=bool)
        signal = reward if stop.signal == "reward" else progress
        counting = signal < 0 if not stop.from_grace or t >= stop.grace else np.zeros(len(index), dtype=bool)
        run = np.where(counting, self._streak[index] + 1, 0)
        self._streak[index] = run
        if not self.early_stop or t < stop.grace:
            return np.zeros(len(index), dtype=bool)
        return run >= stop.streak

    @property
    def scores(self) -> np.ndarray:
        """Each episode's score: its return, its distance, or its return without the alive bonus, as the rule says."""
        if self.rule.score == "reward-no-alive":
            return self.returns - self.alive
        return self.returns if self.rule.score == "return" else self.distances


def discard_diverged(scores: np.ndarray, diverged: np.ndarray) -> np.ndarray:
    """Scores ``(n, E)`` with NaN for every episode of an individual that diverged in any, and non-finite ones."""
    bad = np.asarray(diverged).any(axis=1)[:, None] | ~np.isfinite(scores)
    return np.where(bad, np.nan, scores)


def stop_step(
    rule: TaskScore, rewards: Sequence[float], distances: Sequence[float] | None = None, early_stop: bool = True
) -> int | None:
    """The step at which ``rule``'s early stop ends one episode with these per-step rewards / distances.

    None if it never does within the stream. The stream runs through :class:`EpisodeScores`, the code
    the rollout loop uses.
    """
    n = len(rewards)
    if distances is not None and len(distances) != n:
        raise ValueError(f"distances has {len(distances)} entries, rewards {n}; accepted: one of each per step")
    track = EpisodeScores(rule, 1, early_stop)
    index = np.zeros(1, dtype=np.intp)
    for t in range(n):
        d = np.nan if distances is None else float(distances[t])
        if track.update(t, index, np.array([float(rewards[t])]), np.array([d]))[0]:
            return t
    return None
