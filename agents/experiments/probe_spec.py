"""What a robustness probe is and what a probe run returns; no running, no files.

* ``freeze-weights@T[,T...]``: from step T on the plastic weights do not change (``state.frozen``);
  several T sweep one condition per T (the paper's Fig. 4 left).
* ``freeze-actuators@T0:T1``: for ``T0 <= t < T1`` every action sent to the env is the action space's
  high bound (the paper saturates the outputs to 1.0); the policy keeps acting and learning meanwhile.
* ``zero-weights@T:F``: just before step T a random (seeded) fraction F of each plastic layer's weights
  is set to zero in every episode; plasticity then continues.

Step ``t`` (0-based) is the t-th action of an episode. :func:`parse_probe` reads the spellings above into
a :class:`Probe`; a run of one condition is a :class:`Rollout`, a whole probe experiment (baseline and
conditions on the same seeds) a :class:`ProbeResult`. Running is :mod:`agents.experiments.probes`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

import hebb_gym  # noqa: F401  (registers the variants)

__all__ = ["PROBE_KINDS", "PROBE_SYNTAX", "Probe", "ProbeResult", "Rollout", "episode_horizon", "parse_probe"]

#: The probe kinds ``parse_probe`` accepts.
PROBE_KINDS = ("freeze-weights", "freeze-actuators", "zero-weights")
#: The accepted spellings, quoted in error messages and the CLI help.
PROBE_SYNTAX = "freeze-weights@T[,T...], freeze-actuators@T0:T1 or zero-weights@T:FRACTION"
_INT = re.compile(r"^\d+$")


@dataclass(frozen=True)
class Probe:
    """One parsed probe: its kind and parameters (``times`` for weight probes, ``window`` for actuators)."""

    kind: str
    times: tuple[int, ...] = ()
    window: tuple[int, int] | None = None
    fraction: float | None = None

    @property
    def label(self) -> str:
        """Canonical spelling, e.g. ``freeze-weights@10,50`` or ``zero-weights@100:0.33``."""
        if self.kind == "freeze-actuators":
            assert self.window is not None
            return f"freeze-actuators@{self.window[0]}:{self.window[1]}"
        if self.kind == "zero-weights":
            return f"zero-weights@{self.times[0]}:{self.fraction:g}"
        return "freeze-weights@" + ",".join(str(t) for t in self.times)

    @property
    def slug(self) -> str:
        """A file-name stem for this probe, e.g. ``freeze-weights_10-50`` or ``zero-weights_100_0.33``."""
        kind, arg = self.label.split("@")
        return kind + "_" + arg.replace(",", "-").replace(":", "_")

    @property
    def plastic_only(self) -> bool:
        """Whether the probe edits plastic weights (and so needs a HebbianPolicy)."""
        return self.kind in ("freeze-weights", "zero-weights")

    def conditions(self) -> list[Probe]:
        """One single-time probe per condition (a freeze-weights sweep splits into one per T)."""
        if self.kind == "freeze-weights" and len(self.times) > 1:
            return [Probe("freeze-weights", (t,)) for t in self.times]
        return [self]

    @property
    def start(self) -> int:
        """The step at which the probe acts (T, or T0 for the actuator window)."""
        return self.window[0] if self.window is not None else self.times[0]

    def check_horizon(self, horizon: int) -> None:
        """Raise ValueError if the probe acts outside an episode of ``horizon`` steps."""
        if self.kind == "freeze-actuators":
            assert self.window is not None
            t0, t1 = self.window
            if t1 > horizon:
                raise ValueError(
                    f"probe {self.label!r}: window {t0}:{t1} ends after the episode of {horizon} steps "
                    f"(--max-steps); accepted: 0 <= T0 < T1 <= {horizon}"
                )
            return
        bad = [t for t in self.times if t >= horizon]
        if bad:
            raise ValueError(
                f"probe {self.label!r}: step(s) {bad} lie outside the episode of {horizon} steps "
                f"(--max-steps); accepted: 0 <= T <= {horizon - 1}"
            )


def _step(text: str, what: str, spec: str) -> int:
    """A non-negative integer step from ``text``, or a ValueError naming ``what`` and the spec."""
    text = text.strip()
    if not _INT.match(text):
        raise ValueError(
            f"probe {spec!r}: {what}={text!r} is not a step; accepted: a non-negative integer "
            f"(probes: {PROBE_SYNTAX})"
        )
    return int(text)


def parse_probe(spec: str) -> Probe:
    """Parse ``freeze-weights@T[,T...]``, ``freeze-actuators@T0:T1`` or ``zero-weights@T:FRACTION``."""
    if not isinstance(spec, str):
        raise TypeError(f"probe={spec!r} must be a string; accepted: {PROBE_SYNTAX}")
    kind, sep, arg = spec.strip().partition("@")
    kind = kind.strip()
    if kind not in PROBE_KINDS:
        raise ValueError(f"probe {spec!r}: kind {kind!r} is not known; accepted: {PROBE_SYNTAX}")
    if not sep or not arg.strip():
        raise ValueError(f"probe {spec!r} has no parameters after '@'; accepted: {PROBE_SYNTAX}")
    if kind == "freeze-weights":
        parts = arg.split(",")
        times = tuple(_step(p, "T", spec) for p in parts)
        if len(set(times)) != len(times):
            raise ValueError(f"probe {spec!r}: T values {list(times)} repeat; accepted: distinct steps")
        return Probe(kind, tuple(sorted(times)))
    pieces = arg.split(":")
    if len(pieces) != 2:
        shape = "T0:T1" if kind == "freeze-actuators" else "T:FRACTION"
        raise ValueError(f"probe {spec!r}: {arg!r} is not {shape}; accepted: {PROBE_SYNTAX}")
    if kind == "freeze-actuators":
        t0, t1 = _step(pieces[0], "T0", spec), _step(pieces[1], "T1", spec)
        if t1 <= t0:
            raise ValueError(
                f"probe {spec!r}: window {t0}:{t1} is empty; accepted: T0:T1 with 0 <= T0 < T1 "
                "(the actuators are saturated for T0 <= t < T1)"
            )
        return Probe(kind, window=(t0, t1))
    t = _step(pieces[0], "T", spec)
    try:
        fraction = float(pieces[1])
    except ValueError:
        raise ValueError(
            f"probe {spec!r}: FRACTION={pieces[1].strip()!r} is not a number; accepted: 0 < FRACTION <= 1"
        ) from None
    if not (math.isfinite(fraction) and 0.0 < fraction <= 1.0):
        raise ValueError(
            f"probe {spec!r}: FRACTION={fraction!r} is outside (0, 1]; accepted: 0 < FRACTION <= 1"
        )
    return Probe(kind, (t,), fraction=fraction)


def episode_horizon(env_id: str, max_steps: int | None) -> int:
    """The episode length probes run: ``max_steps`` if given, else the env's registered limit."""
    if max_steps is not None:
        if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
            raise ValueError(f"max_steps={max_steps!r} is not accepted; use a positive integer")
        return int(max_steps)
    try:
        spec = gym.spec(env_id)
    except gym.error.Error as exc:
        raise ValueError(
            f"env={env_id!r} is not a registered Gymnasium id ({exc}); see `hebb-gym envs`"
        ) from None
    if spec.max_episode_steps is None:
        raise ValueError(f"env={env_id!r} registers no episode limit; give max_steps (--max-steps)")
    return int(spec.max_episode_steps)


@dataclass
class Rollout:
    """Per-step record of one condition over E episodes (arrays are ``(E, H)``, H the longest episode).

    After an episode ends its reward counts as 0 and its distance holds its final value, so means over
    episodes stay defined. ``distances`` is NaN for envs that report no ``info["distance"]`` (the car).
    """

    label: str
    seeds: list[int]
    rewards: np.ndarray
    distances: np.ndarray
    running: np.ndarray
    actions_sent: np.ndarray | None = (
        None  # (E, H, *act_shape) in the action dtype; NaN once the episode ended
    )
    actions_policy: np.ndarray | None = None  # what the policy chose, same shape
    snapshots: dict[int, list[np.ndarray]] = field(default_factory=dict)  # t -> per-layer (out, in), ep 0
    trajectory_steps: np.ndarray | None = None  # (S,) steps at which trajectory rows were taken
    trajectory: list[np.ndarray] | None = None  # per layer (S, E, out, in)
    zeroed: list[np.ndarray] | None = None  # zero-weights: per layer (E, out, in) bool masks

    @property
    def cumulative(self) -> np.ndarray:
        """Cumulative reward after each step, ``(E, H)``."""
        return np.cumsum(self.rewards, axis=1)

    @property
    def returns(self) -> np.ndarray:
        """Episode returns, ``(E,)``."""
        return self.rewards.sum(axis=1)

    @property
    def lengths(self) -> np.ndarray:
        """Episode lengths in steps, ``(E,)``."""
        return self.running.sum(axis=1)

    @property
    def has_distance(self) -> bool:
        """Whether the env reported a distance (the quadruped)."""
        return bool(np.isfinite(self.distances).any())


@dataclass
class ProbeResult:
    """The baseline and the probed conditions of one probe experiment."""

    probe: Probe
    env_id: str
    horizon: int
    seed: int
    baseline: Rollout
    probed: list[Rollout]
    conditions: list[Probe]
    policy_path: str | None = None
    layer_names: list[str] = field(default_factory=list)

    @property
    def rollouts(self) -> list[Rollout]:
        """Baseline first, then the probed conditions."""
        return [self.baseline, *self.probed]

    def episodes_at_probe(self) -> list[int]:
        """Per condition, how many episodes were still running when its probe acted (at its start step)."""
        out = []
        for c, r in zip(self.conditions, self.probed):
            out.append(int(r.running[:, c.start].sum()) if c.start < r.running.shape[1] else 0)
        return out

    def warnings(self) -> list[str]:
        """Conditions whose probe never acted, or acted on only some episodes (they ended earlier)."""
        n = len(self.baseline.seeds)
        msgs = []
        for c, k in zip(self.conditions, self.episodes_at_probe()):
            if k < n:
                msgs.append(
                    f"{c.label}: only {k} of {n} episodes were still running at step {c.start} "
                    "(the others had already ended: Ant-v5 ends an episode when the torso leaves its healthy height "
                    "range, and diverging rules end it early)"
                )
        return msgs
