"""Task scores and early stops, written once: what an episode is worth and when a hopeless one ends.

* car: the score is the episode return; the original code ends an episode after 20 consecutive negative
  rewards (the car is off the track or standing still).
* quadruped: the score is ``info["distance"]`` (x-progress since reset); from step 200 on, an episode
  ends once the torso has moved backwards 30 steps in a row. On the PyBullet backend the original
  code's own quantities are there too: ``fitness="progress"`` sums PyBullet's progress term
  (``info["progress"]``), and ``early_stop="original"`` counts its signs and ends a fallen episode
  (``info["fallen"]``) as that code did.

:class:`EpisodeScores` keeps the running score and stop state of a batch of episodes and is what the
rollout loop (:mod:`agents.evaluation.rollout`) updates every step; :func:`stop_step` feeds one
constructed stream of rewards / distances through the same code, so a stop condition can be checked
without an environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from hebb_gym.ant import PROGRESS_BACKENDS

CAR_NEGATIVE_STREAK = 20
ANT_GRACE_STEPS = 200
ANT_BACKWARD_STREAK = 30

#: What a step's signal of a :class:`StreakStop` is: the step's reward; its forward progress (the change of
#: ``info["distance"]``); or the env's own ``info["progress"]`` where it reports one (PyBullet's progress
#: term), else the forward progress.
SIGNALS = ("reward", "progress", "env-progress")
#: What an episode scores: its return, its last ``info["distance"]``, the sum of its ``info["progress"]``, or
#: its return without the env's alive bonus (the sum over steps of reward - ``info["reward_survive"]``; the
#: quadruped only).
SCORES = ("return", "distance", "progress", "reward-no-alive")


@dataclass(frozen=True)
class StreakStop:
    """End an episode at step ``t >= grace`` once ``signal`` has been negative ``streak`` steps in a row.

    The streak is counted from the first step on (``grace`` only delays when it may end the episode), or,
    with ``from_grace``, only from step ``grace`` on (the original code's quadruped rule). With ``fall``,
    an episode also ends at any step ``t >= grace`` at which the env reports ``info["fallen"]`` true (the
    original code's ``done`` of PyBullet's quadruped; an env that reports no fall never ends this way).
    """

    signal: str
    streak: int
    grace: int = 0
    from_grace: bool = False
    fall: bool = False

    def __post_init__(self) -> None:
        if self.signal not in SIGNALS:
            raise ValueError(f"signal={self.signal!r} is not known; accepted: {', '.join(SIGNALS)}")
        if self.streak < 1 or self.grace < 0:
            raise ValueError(f"streak={self.streak!r}, grace={self.grace!r}; accepted: streak >= 1, grace >= 0")


@dataclass(frozen=True)
class TaskScore:
    """What an episode of a task scores (one of :data:`SCORES`) and its early stop (None: none)."""

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
#: at a step ``t > 200`` (0-based policy steps, the 40 burn-in steps not counted) once, counting from
#: step 201 on, 31 steps in a row had negative progress (``> 30``) or once it has fallen (PyBullet's
#: ``done``). Its progress is PyBullet's progress term where the env reports it (the bullet backend),
#: else the torso's x progress; an env reporting no fall (MuJoCo) stops on the streak only.
ORIGINAL_STOPS = {
    "car": StreakStop("reward", CAR_NEGATIVE_STREAK + 1),
    "ant": StreakStop("env-progress", ANT_BACKWARD_STREAK + 1, ANT_GRACE_STEPS + 1, from_grace=True, fall=True),
}
#: What ``early_stop`` accepts (N, GRACE: integers).
EARLY_STOP_SYNTAX = ("auto (the task's own: car negative-streak:20, quadruped no-progress:200:30, others none), off, "
                     "original (the original code's exact rule; the quadruped's on bullet counts PyBullet's progress "
                     "term and ends a fall after step 200), negative-streak:N (N negative rewards in a row), "
                     "no-progress:GRACE:N (at step GRACE or later, once the last N steps all moved backwards)")
#: What ``fitness`` accepts.
FITNESSES = ("auto", *SCORES)
#: The tasks whose envs report their alive bonus as ``info["reward_survive"]`` (both quadruped backends).
ALIVE_BONUS_TASKS = ("ant",)
#: What each value of ``fitness`` means (the ``--fitness`` help).
FITNESS_SYNTAX = ("auto (the quadruped's distance, else the return), return, distance (info['distance']), "
                  "progress (the sum of info['progress']: PyBullet's progress term, the original code's fitness; "
                  f"the quadruped on backend {' or '.join(PROGRESS_BACKENDS)} only), reward-no-alive (the "
                  "quadruped's env reward without its alive bonus)")


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


def task_score(task: str | None, fitness: str = "auto", early_stop: str | bool = "auto",
               backend: str | None = None) -> TaskScore:
    """What an episode of an env of ``task`` scores, and its early stop.

    ``fitness``: see :data:`FITNESS_SYNTAX` (``distance`` needs an env reporting ``info["distance"]``,
    ``progress`` one reporting ``info["progress"]``); ``early_stop``: see :data:`EARLY_STOP_SYNTAX`;
    ``backend``: the quadruped's physics backend (its ``backend`` env kwarg; None: the env's default).

    ``progress`` on the quadruped needs a backend of :data:`hebb_gym.ant.PROGRESS_BACKENDS`: PyBullet's
    potential is a construct of its loader (the mean of its 21 links and the floor, per 0.0165 s), which
    MuJoCo's model has no counterpart of; there the torso's ``distance`` is the score.
    """
    if fitness not in FITNESSES:
        raise ValueError(f"fitness={fitness!r} is not known; accepted: {', '.join(FITNESSES)}")
    if task is not None and task not in TASK_SCORES:
        raise ValueError(f"task={task!r} has no score; accepted: {', '.join(TASK_SCORES)} or None (any other env)")
    if fitness in ("progress", "distance") and task == "car":  # every episode would score NaN
        raise ValueError(f"fitness={fitness!r} needs an env reporting info[{fitness!r}]; the car reports none "
                         "(accepted for the car: auto, return)")
    if fitness == "progress" and task == "ant" and backend not in PROGRESS_BACKENDS:
        raise ValueError(f"fitness='progress' is PyBullet's progress term; the quadruped reports it on backend "
                         f"{' or '.join(map(repr, PROGRESS_BACKENDS))} only, not on {backend or 'mujoco (the default)'!r} "
                         "(env_kwargs backend=bullet / --physics bullet; on MuJoCo use fitness 'distance')")
    if fitness == "reward-no-alive" and task not in ALIVE_BONUS_TASKS:
        raise ValueError(f"fitness='reward-no-alive' is the quadruped's env reward minus its alive bonus "
                         f"(info['reward_survive']); it does not apply to an env of task {task!r}; accepted there: "
                         + ("auto, return" if task == "car" else "auto, return, distance"))
    score = fitness if fitness != "auto" else (TASK_SCORES[task].score if task in TASK_SCORES else "return")
    return TaskScore(score, parse_early_stop(early_stop, task))


class EpisodeScores:
    """Running return, distance, progress, length and stop streak of ``m`` episodes; :meth:`update` takes one step.

    ``distances`` holds each episode's last reported ``info["distance"]`` (NaN until one is reported);
    forward progress is measured from 0 at reset. ``progress`` is the sum of the ``info["progress"]``
    reported (0 where none was).
    """

    def __init__(self, rule: TaskScore, m: int, early_stop: bool = True) -> None:
        self.rule = rule
        self.early_stop = bool(early_stop)
        self.returns = np.zeros(m)
        self.progress = np.zeros(m)
        self.alive = np.zeros(m)  # the summed alive bonus (fitness 'reward-no-alive')
        self.distances = np.full(m, np.nan)
        self.lengths = np.zeros(m, dtype=np.int64)
        self._last = np.zeros(m)  # the distance progress is measured from
        self._streak = np.zeros(m, dtype=np.int64)

    def update(
        self, t: int, index: np.ndarray, reward: np.ndarray, distance: np.ndarray, reported: np.ndarray | None = None,
        env_progress: np.ndarray | None = None, fallen: np.ndarray | None = None, alive: np.ndarray | None = None,
    ) -> np.ndarray:
        """Step ``t`` of episodes ``index``: rewards and distances (NaN: none); True where the early stop ends one.

        ``reported``: where ``distance`` was reported (default: everywhere); elsewhere the last one is kept.
        ``env_progress``: the envs' ``info["progress"]`` (NaN or None: none reported); ``fallen``: their
        ``info["fallen"]`` (None: none reported).
        ``alive``: the step's alive bonus (``info["reward_survive"]``, NaN: none), needed by 'reward-no-alive'.
        """
        has_progress = env_progress is not None and not np.isnan(env_progress).any()
        if self.rule.score == "progress" and not has_progress:
            raise ValueError("fitness='progress' needs an env reporting info['progress'] at every step (the "
                             f"quadruped on backend {' or '.join(PROGRESS_BACKENDS)}); this env does not")
        self.returns[index] += reward
        if has_progress:
            self.progress[index] += env_progress
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
        if stop.signal == "reward":
            signal = reward
        elif stop.signal == "env-progress" and env_progress is not None:
            signal = np.where(np.isnan(env_progress), progress, env_progress)
        else:
            signal = progress
        counting = signal < 0 if not stop.from_grace or t >= stop.grace else np.zeros(len(index), dtype=bool)
        run = np.where(counting, self._streak[index] + 1, 0)
        self._streak[index] = run
        if not self.early_stop or t < stop.grace:
            return np.zeros(len(index), dtype=bool)
        ended = run >= stop.streak
        if stop.fall and fallen is not None:
            ended |= fallen
        return ended

    @property
    def scores(self) -> np.ndarray:
        """Each episode's score: its return, distance, summed progress or return without the alive bonus."""
        if self.rule.score == "reward-no-alive":
            return self.returns - self.alive
        return {"return": self.returns, "distance": self.distances, "progress": self.progress}[self.rule.score]


def discard_diverged(scores: np.ndarray, diverged: np.ndarray) -> np.ndarray:
    """Scores ``(n, E)`` with NaN for every episode of an individual that diverged in any, and non-finite ones."""
    bad = np.asarray(diverged).any(axis=1)[:, None] | ~np.isfinite(scores)
    return np.where(bad, np.nan, scores)


def stop_step(
    rule: TaskScore, rewards: Sequence[float], distances: Sequence[float] | None = None, early_stop: bool = True,
    progress: Sequence[float] | None = None, fallen: Sequence[bool] | None = None,
) -> int | None:
    """The step at which ``rule``'s early stop ends one episode with these per-step rewards / distances.

    ``progress`` / ``fallen``: the env's per-step ``info["progress"]`` / ``info["fallen"]`` (None: not
    reported). None if it never ends within the stream. The stream runs through :class:`EpisodeScores`,
    the code the rollout loop uses.
    """
    n = len(rewards)
    for name, stream in (("distances", distances), ("progress", progress), ("fallen", fallen)):
        if stream is not None and len(stream) != n:
            raise ValueError(f"{name} has {len(stream)} entries, rewards {n}; accepted: one of each per step")
    track = EpisodeScores(rule, 1, early_stop)
    index = np.zeros(1, dtype=np.intp)
    for t in range(n):
        d = np.nan if distances is None else float(distances[t])
        p = None if progress is None else np.array([float(progress[t])])
        f = None if fallen is None else np.array([bool(fallen[t])])
        if track.update(t, index, np.array([float(rewards[t])]), np.array([d]), env_progress=p, fallen=f)[0]:
            return t
    return None
