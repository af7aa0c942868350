"""Robustness probes of the NeurIPS 2020 paper: freeze plastic weights, saturate actuators, zero weights.

A probe run plays the same episodes (same env seeds, same initial plastic weights) twice or more: once
as is (the baseline) and once per probe condition, each condition in lockstep over its episodes through
the batched policy interface. Step ``t`` (0-based) is the t-th action of an episode; "the weights at
step t" are the plastic weights in effect when that action is computed, after any probe applied at t.

* ``freeze-weights@T[,T...]``: from step T on the plastic weights do not change (``state.frozen``);
  several T sweep one condition per T (the paper's Fig. 4 left).
* ``freeze-actuators@T0:T1``: for ``T0 <= t < T1`` every action sent to the env is the action space's
  high bound (the paper saturates the outputs to 1.0); the policy keeps acting and learning meanwhile.
* ``zero-weights@T:F``: just before step T a random (seeded) fraction F of each plastic layer's weights
  is set to zero in every episode; plasticity then continues.

:func:`probe_experiment` runs the conditions and returns the numbers; :func:`write_probe_outputs` writes
the CSVs, the curves PNG and (weight probes) the weight heat maps; :func:`run_probe` does both from a run
directory or a policy file (what ``hebb-gym probe`` calls).
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.util.atomic import atomic_write, atomic_write_json, atomic_write_text
from agents.util.threads import one_torch_thread

__all__ = [
    "PROBE_KINDS",
    "PROBE_SYNTAX",
    "Probe",
    "ProbeResult",
    "Rollout",
    "episode_horizon",
    "parse_probe",
    "probe_experiment",
    "run_condition",
    "run_probe",
    "write_probe_outputs",
    "zero_fraction_",
]

#: The probe kinds ``parse_probe`` accepts.
PROBE_KINDS = ("freeze-weights", "freeze-actuators", "zero-weights")
#: The accepted spellings, quoted in error messages and the CLI help.
PROBE_SYNTAX = "freeze-weights@T[,T...], freeze-actuators@T0:T1 or zero-weights@T:FRACTION"
#: Steps after the probe time at which the third weight heat map is taken (the paper shows t+10).
HEATMAP_AFTER = 10
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
    import hebb_gym  # noqa: F401  (registers the variants)

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


def _rng_for_zeroing(seed: int) -> np.random.Generator:
    """The generator of zero-weights masks, seeded from the run seed but independent of the env seeds."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) % 2**63, 0x7E50]))


def zero_fraction_(weights: Sequence[Any], fraction: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Set ``round(fraction * n)`` random weights of each layer to zero, per (individual, env); in place.

    ``weights``: live ``(P, E, out, in)`` tensors (``batch.plastic_weights(state)``). Returns the masks,
    one ``(P, E, out, in)`` bool array per layer.
    """
    masks = []
    for w in weights:
        p, e, o, i = w.shape
        n = o * i
        k = round(fraction * n)
        mask = np.zeros((p, e, n), dtype=bool)
        for q in range(p):
            for env in range(e):
                mask[q, env, rng.choice(n, size=k, replace=False)] = True
        mask = mask.reshape(p, e, o, i)
        w[torch.from_numpy(mask)] = 0.0
        masks.append(mask)
    return masks




def _layer_copy(weights: Sequence[Any], env: int | None) -> list[np.ndarray]:
    """float32 numpy copies of the live weights of individual 0 (one env, or all envs if None)."""
    if env is None:
        return [w[0].detach().cpu().numpy().copy() for w in weights]
    return [w[0, env].detach().cpu().numpy().copy() for w in weights]


@one_torch_thread()
def run_condition(
    policy: Any,
    env_id: str,
    episodes: int,
    max_steps: int,
    seed: int = 0,
    probe: Probe | None = None,
    *,
    snapshot_steps: Sequence[int] = (),
    record_actions: bool = False,
    trajectory_every: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    label: str | None = None,
) -> Rollout:
    """Play ``episodes`` episodes (env seeds ``seed + i``, weights from ``seed``) in lockstep under one probe.

    ``probe`` is None (baseline) or a single-condition probe. ``snapshot_steps``: steps at which episode
    0's plastic weights are copied; ``record_actions``: keep the actions sent to the env and the policy's
    own; ``trajectory_every``: copy every episode's plastic weights every that many steps.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or episodes < 1:
        raise ValueError(f"episodes={episodes!r} is not accepted; use a positive integer")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} is not accepted; use an integer >= 0 (env seeds are seed + i)")
    if probe is not None and len(probe.conditions()) != 1:
        raise ValueError(f"probe {probe.label!r} holds several conditions; run each of probe.conditions()")
    if probe is not None:
        probe.check_horizon(max_steps)
        _check_policy_for(policy, probe)
    if trajectory_every is not None and (isinstance(trajectory_every, bool) or trajectory_every < 1):
        raise ValueError(
            f"trajectory_every={trajectory_every!r} is not accepted; use a positive integer or None"
        )
    import hebb_gym  # noqa: F401  (registers the variants)

    kw = dict(env_kwargs or {})
    envs = [gym.make(env_id, max_episode_steps=max_steps, **kw) for _ in range(episodes)]
    try:
        action_space = envs[0].action_space
        if (
            probe is not None
            and probe.kind == "freeze-actuators"
            and not isinstance(action_space, gym.spaces.Box)
        ):
            raise ValueError(
                f"probe {probe.label!r} saturates continuous actions; env {env_id!r} has action space "
                f"{action_space}, accepted: a Box action space"
            )
        batch = policy.batch(policy.get_flat()[None])
        state = batch.initial_state(episodes, seed)
        weights = batch.plastic_weights(state)
        obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
        act_shape = tuple(action_space.shape or ())
        rewards = np.zeros((episodes, max_steps))
        distances = np.full((episodes, max_steps), np.nan)
        running = np.zeros((episodes, max_steps), dtype=bool)
        log_dtype = action_space.dtype if np.issubdtype(action_space.dtype, np.floating) else np.float64
        sent_log = np.full((episodes, max_steps, *act_shape), np.nan, log_dtype) if record_actions else None
        policy_log = np.full((episodes, max_steps, *act_shape), np.nan, log_dtype) if record_actions else None
        active = np.ones(episodes, dtype=bool)
        snapshots: dict[int, list[np.ndarray]] = {}
        traj_steps: list[int] = []
        traj: list[list[np.ndarray]] = []
        zeroed = None
        snap_set = {int(t) for t in snapshot_steps}
        high = np.asarray(action_space.high) if isinstance(action_space, gym.spaces.Box) else None
        horizon = 0
        for t in range(max_steps):
            if not active.any():
                break
            horizon = t + 1
            if probe is not None and t == probe.start:
                if probe.kind == "freeze-weights":
                    state.frozen = True
                elif probe.kind == "zero-weights":
                    assert probe.fraction is not None
                    zeroed = [m[0] for m in zero_fraction_(weights, probe.fraction, _rng_for_zeroing(seed))]
            if t in snap_set and weights:
                snapshots[t] = _layer_copy(weights, 0)
            if trajectory_every is not None and t % trajectory_every == 0 and weights:
                traj_steps.append(t)
                traj.append(_layer_copy(weights, None))
            actions, state = batch.act(obs[None], state)
            actions = actions[0]
            sent = actions
            if probe is not None and probe.kind == "freeze-actuators":
                assert probe.window is not None and high is not None
                if probe.window[0] <= t < probe.window[1]:
                    sent = np.broadcast_to(high.astype(actions.dtype), actions.shape).copy()
            for i in np.nonzero(active)[0]:
                o, r, terminated, truncated, info = envs[i].step(sent[i])
                obs[i] = o
                rewards[i, t] = float(r)
                running[i, t] = True
                if "distance" in info:
                    distances[i, t] = float(info["distance"])
                elif t > 0:
                    distances[i, t] = distances[i, t - 1]
                if record_actions:
                    sent_log[i, t] = sent[i]
                    policy_log[i, t] = actions[i]
                if terminated or truncated:
                    active[i] = False
            for i in np.nonzero(~active)[0]:  # ended episodes hold their last distance
                if not running[i, t] and t > 0:
                    distances[i, t] = distances[i, t - 1]
    finally:
        for env in envs:
            env.close()
    trajectory = None
    if trajectory_every is not None and traj:
        trajectory = [np.stack([step[j] for step in traj]) for j in range(len(traj[0]))]
    return Rollout(
        label=label or ("baseline" if probe is None else probe.label),
        seeds=[seed + i for i in range(episodes)],
        rewards=rewards[:, :horizon],
        distances=distances[:, :horizon],
        running=running[:, :horizon],
        actions_sent=None if sent_log is None else sent_log[:, :horizon],
        actions_policy=None if policy_log is None else policy_log[:, :horizon],
        snapshots=snapshots,
        trajectory_steps=None if trajectory is None else np.asarray(traj_steps),
        trajectory=trajectory,
        zeroed=zeroed,
    )


def _check_policy_for(policy: Any, probe: Probe) -> None:
    """Weight probes need plastic weights: a clear ValueError for static and LSTM policies."""
    from agents.policies.hebbian import HebbianPolicy

    if probe.plastic_only and not isinstance(policy, HebbianPolicy):
        raise ValueError(
            f"probe {probe.label!r} edits plastic weights, but the policy is a {type(policy).__name__}; "
            "accepted: a HebbianPolicy (static and LSTM policies take only freeze-actuators@T0:T1)"
        )


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


def _heatmap_steps(t: int, horizon: int) -> list[int]:
    """Steps of the before / at / after heat maps of a probe at ``t`` that fall inside the episode."""
    return [s for s in (t - 1, t, t + HEATMAP_AFTER) if 0 <= s < horizon]


def probe_experiment(
    policy: Any,
    env_id: str,
    probe: Probe | str,
    episodes: int = 5,
    max_steps: int | None = None,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    record_actions: bool = False,
) -> ProbeResult:
    """Run the baseline and every condition of ``probe`` on the same seeds; nothing is written."""
    if isinstance(probe, str):
        probe = parse_probe(probe)
    horizon = episode_horizon(env_id, max_steps)
    probe.check_horizon(horizon)
    _check_policy_for(policy, probe)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed={seed!r} is not accepted; use an integer >= 0")
    if seed < 0:
        raise ValueError(f"seed={seed!r} is not accepted; use an integer >= 0 (env seeds are seed + i)")
    conditions = probe.conditions()
    snaps = (
        sorted({s for c in conditions for s in _heatmap_steps(c.start, horizon)})
        if probe.plastic_only
        else []
    )
    common: dict[str, Any] = {"record_actions": record_actions, "env_kwargs": env_kwargs}
    baseline = run_condition(policy, env_id, episodes, horizon, seed, None, snapshot_steps=snaps, **common)
    probed = [
        run_condition(
            policy,
            env_id,
            episodes,
            horizon,
            seed,
            c,
            snapshot_steps=_heatmap_steps(c.start, horizon) if c.plastic_only else (),
            **common,
        )
        for c in conditions
    ]
    names = [f"dense.{j}" for j in range(len(getattr(policy.spec, "dense_shapes", ())))]
    return ProbeResult(probe, env_id, horizon, int(seed), baseline, probed, conditions, layer_names=names)


# --- outputs --------------------------------------------------------------------------------------


def _mean(x: np.ndarray) -> np.ndarray:
    """Mean over episodes (axis 0), NaN where every value is NaN, without warnings."""
    finite = np.isfinite(x)
    n = finite.sum(axis=0)
    s = np.where(finite, x, 0.0).sum(axis=0)
    return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def _std(x: np.ndarray) -> np.ndarray:
    """Population std over episodes (axis 0), NaN where every value is NaN."""
    m = _mean(x)
    finite = np.isfinite(x)
    n = finite.sum(axis=0)
    s = np.where(finite, (x - m) ** 2, 0.0).sum(axis=0)
    return np.where(n > 0, np.sqrt(s / np.maximum(n, 1)), np.nan)


def _pad(x: np.ndarray, horizon: int, hold: bool) -> np.ndarray:
    """Extend ``(E, H)`` to ``(E, horizon)`` columns, holding the last value (``hold``) or with zeros."""
    if x.shape[1] >= horizon:
        return x
    if x.shape[1] == 0:
        return np.zeros((x.shape[0], horizon))
    extra = (
        np.repeat(x[:, -1:], horizon - x.shape[1], axis=1)
        if hold
        else np.zeros((x.shape[0], horizon - x.shape[1]))
    )
    return np.concatenate([x, extra], axis=1)


def _fmt(v: float) -> str:
    """A CSV cell: empty for NaN, else repr-exact float."""
    return "" if not np.isfinite(v) else repr(float(v))


def step_table(result: ProbeResult) -> list[dict[str, Any]]:
    """Per condition and step: mean over episodes of reward, cumulative reward and distance (and stds)."""
    h = max(r.rewards.shape[1] for r in result.rollouts)
    rows: list[dict[str, Any]] = []
    for r in result.rollouts:
        rew = _pad(r.rewards, h, hold=False)
        cum = np.cumsum(rew, axis=1)
        dist = _pad(r.distances, h, hold=True)
        run = _pad(r.running.astype(float), h, hold=False)
        cols = {
            "reward": _mean(rew),
            "cumulative_reward": _mean(cum),
            "distance": _mean(dist),
            "reward_std": _std(rew),
            "cumulative_reward_std": _std(cum),
            "distance_std": _std(dist),
        }
        running = run.sum(axis=0)
        for t in range(h):
            row: dict[str, Any] = {"condition": r.label, "t": t}
            row.update({k: _fmt(v[t]) for k, v in cols.items()})
            row["episodes_running"] = int(running[t])
            rows.append(row)
    return rows


def episode_table(result: ProbeResult) -> list[dict[str, Any]]:
    """One row per condition and episode: env seed, return, final distance, length."""
    rows = []
    for r in result.rollouts:
        for e, s in enumerate(r.seeds):
            n = int(r.lengths[e])
            d = r.distances[e, n - 1] if n else np.nan
            rows.append(
                {
                    "condition": r.label,
                    "episode": e,
                    "seed": s,
                    "return": repr(float(r.returns[e])),
                    "distance": _fmt(d),
                    "length": n,
                }
            )
    return rows


def _csv_text(rows: list[dict[str, Any]]) -> str:
    """CSV text of dict rows (header from the first row)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _pyplot():
    """matplotlib.pyplot on the headless Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig: Any, path: Path) -> Path:
    """Save a figure as PNG atomically and close it."""
    plt = _pyplot()
    try:
        atomic_write(path, lambda f: fig.savefig(f, format="png"))
    finally:
        plt.close(fig)
    return path


def plot_probe_curves(result: ProbeResult, path: str | os.PathLike) -> Path:
    """Reward per step, cumulative reward and distance, baseline vs each condition, probe window marked."""
    plt = _pyplot()
    has_d = any(r.has_distance for r in result.rollouts)
    panels = ["reward", "cumulative_reward"] + (["distance"] if has_d else [])
    titles = {"reward": "reward per step", "cumulative_reward": "cumulative reward", "distance": "distance"}
    rows = step_table(result)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4), dpi=110, squeeze=False)
    colours = {"baseline": "black"}
    for k, c in enumerate(result.conditions):
        colours[c.label] = f"C{k % 10}"
    for ax, key in zip(axes[0], panels):
        for r in result.rollouts:
            sel = [row for row in rows if row["condition"] == r.label]
            t = np.array([row["t"] for row in sel])
            y = np.array([float(row[key]) if row[key] != "" else np.nan for row in sel])
            colour = colours[r.label]
            ax.plot(t, y, color=colour, lw=1.2, label=r.label)
            if key != "reward" and len(r.seeds) > 1:
                sd = np.array(
                    [float(row[key + "_std"]) if row[key + "_std"] != "" else np.nan for row in sel]
                )
                ax.fill_between(t, y - sd, y + sd, color=colour, alpha=0.12, lw=0)
        for c in result.conditions:
            if c.kind == "freeze-actuators":
                assert c.window is not None
                ax.axvspan(c.window[0], c.window[1], color=colours[c.label], alpha=0.15)
            else:
                ax.axvline(c.start, color=colours[c.label], ls="--", lw=1)
        ax.set_xlabel("step t")
        ax.set_title(titles[key])
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    n = len(result.baseline.seeds)
    note = " - some episodes ended before the probe" if result.warnings() else ""
    fig.suptitle(
        f"{result.probe.label} on {result.env_id} (mean of {n} episode{'s' if n > 1 else ''}){note}",
        fontsize=10,
    )
    fig.tight_layout()
    return _save_figure(fig, Path(path))


def plot_weight_heatmaps(
    result: ProbeResult, condition: Rollout, probe: Probe, path: str | os.PathLike
) -> Path:
    """Episode 0's plastic weights before, at and after the probe (rows: layers), plus the baseline after.

    Exact zeros are drawn black (the paper's black band of zeroed weights); colours are symmetric per layer.
    """
    plt = _pyplot()
    import matplotlib.colors as mcolors

    steps = sorted(condition.snapshots)
    cols = [(f"t={s}" + (" (probe)" if s == probe.start else ""), condition.snapshots[s]) for s in steps]
    if steps and steps[-1] in result.baseline.snapshots:
        cols.append((f"baseline t={steps[-1]}", result.baseline.snapshots[steps[-1]]))
    n_layers = len(cols[0][1]) if cols else 0
    height = 0.9 + 2.7 * n_layers
    fig, axes = plt.subplots(n_layers, len(cols), figsize=(3.6 * len(cols), height), dpi=110, squeeze=False)
    fig.subplots_adjust(
        left=0.05, right=0.97, bottom=0.45 / height, top=1 - 0.75 / height, wspace=0.3, hspace=0.6
    )
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="black")
    for j in range(n_layers):
        vals = np.concatenate([c[1][j][np.isfinite(c[1][j])].ravel() for c in cols])
        vmax = float(np.abs(vals).max()) if vals.size else 1.0
        norm = mcolors.Normalize(-vmax or -1.0, vmax or 1.0)
        for k, (title, ws) in enumerate(cols):
            ax = axes[j][k]
            w = np.ma.masked_where((ws[j] == 0) | ~np.isfinite(ws[j]), ws[j])
            im = ax.imshow(w, cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
            name = result.layer_names[j] if j < len(result.layer_names) else f"layer {j}"
            ax.set_title(f"{name}, {title}", fontsize=8)
            ax.set_xlabel("in", fontsize=7)
            ax.set_ylabel("out", fontsize=7)
            ax.tick_params(labelsize=6)
        fig.colorbar(im, ax=list(axes[j]), shrink=0.9)
    fig.suptitle(f"{probe.label}: plastic weights of episode 0 (zeros black)", fontsize=10)
    return _save_figure(fig, Path(path))


def write_probe_outputs(result: ProbeResult, out: str | os.PathLike) -> dict[str, Path]:
    """Write ``<slug>.csv`` (per step), ``<slug>_episodes.csv``, ``<slug>.png``, ``<slug>.json``, heatmaps."""
    out = Path(out)
    slug = result.probe.slug
    files: dict[str, Path] = {}
    files["steps_csv"] = atomic_write_text(out / f"{slug}.csv", _csv_text(step_table(result)))
    files["episodes_csv"] = atomic_write_text(out / f"{slug}_episodes.csv", _csv_text(episode_table(result)))
    files["curves_png"] = plot_probe_curves(result, out / f"{slug}.png")
    heat: dict[str, str] = {}
    if result.probe.plastic_only:
        for c, r in zip(result.conditions, result.probed):
            if not r.snapshots:
                continue
            stem = c.slug
            png = plot_weight_heatmaps(result, r, c, out / f"{stem}_weights.png")
            arrays = {
                f"t{s}_{name}": w for s, ws in r.snapshots.items() for name, w in zip(result.layer_names, ws)
            }
            arrays.update(
                {
                    f"baseline_t{s}_{name}": w
                    for s, ws in result.baseline.snapshots.items()
                    if s in r.snapshots
                    for name, w in zip(result.layer_names, ws)
                }
            )
            npz = atomic_write(out / f"{stem}_weights.npz", lambda f, a=arrays: np.savez_compressed(f, **a))
            files[f"weights_png:{c.label}"] = png
            files[f"weights_npz:{c.label}"] = npz
            heat[c.label] = png.name
    summary = {
        "probe": result.probe.label,
        "env": result.env_id,
        "policy": result.policy_path,
        "episodes": len(result.baseline.seeds),
        "env_seeds": result.baseline.seeds,
        "seed": result.seed,
        "max_steps": result.horizon,
        "conditions": [
            {
                "condition": r.label,
                "return_mean": float(r.returns.mean()),
                "return_std": float(r.returns.std()),
                "distance_mean": _json_float(_final_distances(r).mean()) if r.has_distance else None,
                "distance_std": _json_float(_final_distances(r).std()) if r.has_distance else None,
                "length_mean": float(r.lengths.mean()),
                **({"zeroed_fraction": [float(m.mean()) for m in r.zeroed]} if r.zeroed is not None else {}),
            }
            for r in result.rollouts
        ],
        "episodes_at_probe": dict(zip([c.label for c in result.conditions], result.episodes_at_probe())),
        "warnings": result.warnings(),
        "files": {k: p.name for k, p in files.items()},
    }
    files["summary_json"] = atomic_write_json(out / f"{slug}.json", summary)
    return files


def _final_distances(r: Rollout) -> np.ndarray:
    """Each episode's distance after its last step."""
    n = r.lengths
    return np.array([r.distances[e, n[e] - 1] if n[e] else np.nan for e in range(len(n))])


def _json_float(v: float) -> float | None:
    """A JSON-safe float (None for NaN / inf)."""
    return float(v) if np.isfinite(v) else None


def run_probe(
    run_or_policy: str | os.PathLike,
    probe: str | Probe,
    out: str | os.PathLike,
    env_id: str | None = None,
    episodes: int = 5,
    max_steps: int | None = None,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    which: str = "best",
) -> tuple[ProbeResult, dict[str, Path]]:
    """``hebb-gym probe``: load a run's policy (or a policy file), run the probe, write the files."""
    from agents.experiments.evaluate import resolve_policy_path
    from agents.policies import load_policy

    parsed = parse_probe(probe) if isinstance(probe, str) else probe
    path = resolve_policy_path(run_or_policy, which)
    policy = load_policy(path)
    env = env_id or policy.env_id
    if not env:
        raise ValueError(f"{path} records no env id; give env_id (--env)")
    result = probe_experiment(policy, env, parsed, episodes, max_steps, seed, env_kwargs)
    result.policy_path = str(path)
    return result, write_probe_outputs(result, out)
