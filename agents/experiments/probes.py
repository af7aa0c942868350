"""Robustness probes of the NeurIPS 2020 paper, run as hooks of the lockstep rollout loop.

A probe run plays the same episodes (same env seeds, same initial plastic weights) twice or more: once
as is (the baseline) and once per probe condition, each condition in lockstep over its episodes through
:func:`agents.evaluation.rollout.rollout`. A probe is a :class:`~agents.evaluation.rollout.Hook` the loop
calls at each step (:func:`probe_hook`): :class:`FreezeWeights`, :class:`SaturateActuators`,
:class:`ZeroWeights`; :class:`Trace` records what the outputs need. "The weights at step t" are the
plastic weights in effect when the t-th action is computed, after any probe applied at t. The probe
kinds and their spellings are in :mod:`agents.experiments.probe_spec`.

:func:`probe_experiment` runs the conditions and returns the numbers; :func:`write_probe_outputs`
(:mod:`agents.experiments.probe_outputs`) writes the CSVs, the curves PNG and (weight probes) the weight
heat maps; :func:`run_probe` does both from a run directory or a policy file (what ``hebb-gym probe`` calls).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.evaluation.rollout import GymStepper, Hook, Step, rollout
from agents.experiments.evaluate import resolve_policy_path
from agents.experiments.probe_outputs import write_probe_outputs
from agents.experiments.probe_spec import (
    PROBE_KINDS,
    PROBE_SYNTAX,
    Probe,
    ProbeResult,
    Rollout,
    episode_horizon,
    parse_probe,
)
from agents.policies import load_policy
from agents.policies.base import PolicyState
from agents.policies.hebbian import HebbianPolicy
from agents.util.threads import one_torch_thread

__all__ = [
    "HEATMAP_AFTER",
    "PROBE_KINDS",
    "PROBE_SYNTAX",
    "FreezeWeights",
    "Probe",
    "ProbeResult",
    "Rollout",
    "SaturateActuators",
    "Trace",
    "ZeroWeights",
    "episode_horizon",
    "parse_probe",
    "probe_experiment",
    "probe_hook",
    "run_condition",
    "run_probe",
    "write_probe_outputs",
    "zero_fraction_",
]

#: Steps after the probe time at which the third weight heat map is taken (the paper shows t+10).
HEATMAP_AFTER = 10


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


class FreezeWeights(Hook):
    """``freeze-weights@T``: from step T on the plastic update is skipped (``state.frozen``)."""

    def __init__(self, t: int) -> None:
        self.t = t

    def before_act(self, t: int, state: PolicyState) -> None:
        if t == self.t:
            state.frozen = True


class ZeroWeights(Hook):
    """``zero-weights@T:F``: just before step T a seeded fraction F of every plastic layer is set to zero.

    ``masks``: afterwards, per layer the ``(P, E, out, in)`` bool mask of the zeroed weights.
    """

    def __init__(self, t: int, fraction: float, seed: int) -> None:
        self.t, self.fraction, self.seed = t, fraction, seed
        self.masks: list[np.ndarray] | None = None

    def before_act(self, t: int, state: PolicyState) -> None:
        if t == self.t:
            self.masks = zero_fraction_(state.weights, self.fraction, _rng_for_zeroing(self.seed))


class SaturateActuators(Hook):
    """``freeze-actuators@T0:T1``: for ``T0 <= t < T1`` every action sent is ``high`` (the policy still acts)."""

    def __init__(self, window: tuple[int, int], high: np.ndarray) -> None:
        self.window, self.high = window, np.asarray(high)

    def actions(self, t: int, actions: np.ndarray) -> np.ndarray:
        if self.window[0] <= t < self.window[1]:
            return np.broadcast_to(self.high.astype(actions.dtype), actions.shape).copy()
        return actions


def probe_hook(probe: Probe, env_id: str, action_space: gym.Space, seed: int) -> Hook:
    """The hook of a single-condition probe on ``env_id`` (``action_space``); ``seed`` seeds zero-weights masks."""
    if probe.kind == "freeze-weights":
        return FreezeWeights(probe.start)
    if probe.kind == "zero-weights":
        assert probe.fraction is not None
        return ZeroWeights(probe.start, probe.fraction, seed)
    assert probe.window is not None
    if not isinstance(action_space, gym.spaces.Box):
        raise ValueError(
            f"probe {probe.label!r} saturates continuous actions; env {env_id!r} has action space "
            f"{action_space}, accepted: a Box action space"
        )
    return SaturateActuators(probe.window, action_space.high)


class Trace(Hook):
    """Records E episodes of one individual: per-step rewards, distances, running flags, and on request the
    actions (sent and the policy's), episode 0's weights at ``snapshot_steps``, all weights every
    ``trajectory_every`` steps.
    """

    def __init__(self, episodes: int, max_steps: int, action_space: gym.Space, snapshot_steps: Sequence[int] = (),
                 record_actions: bool = False, trajectory_every: int | None = None) -> None:
        shape = (episodes, max_steps)
        self.rewards = np.zeros(shape)
        self.distances = np.full(shape, np.nan)
        self.running = np.zeros(shape, dtype=bool)
        act_shape = tuple(action_space.shape or ())
        dtype = action_space.dtype if np.issubdtype(action_space.dtype, np.floating) else np.float64
        self.sent = np.full(shape + act_shape, np.nan, dtype) if record_actions else None
        self.own = np.full(shape + act_shape, np.nan, dtype) if record_actions else None
        self.snap_set = {int(t) for t in snapshot_steps}
        self.every = trajectory_every
        self.snapshots: dict[int, list[np.ndarray]] = {}
        self.traj_steps: list[int] = []
        self.traj: list[list[np.ndarray]] = []
        self.horizon = 0

    def before_act(self, t: int, state: PolicyState) -> None:
        self.horizon = t + 1
        weights = state.weights
        if t in self.snap_set and weights:
            self.snapshots[t] = _layer_copy(weights, 0)
        if self.every is not None and t % self.every == 0 and weights:
            self.traj_steps.append(t)
            self.traj.append(_layer_copy(weights, None))

    def after_step(self, step: Step) -> None:
        t, i, tr = step.t, step.index, step.transition
        self.rewards[i, t] = tr.reward
        self.running[i, t] = True
        held = self.distances[:, t - 1] if t > 0 else np.full(len(self.distances), np.nan)
        self.distances[i, t] = np.where(tr.reported, tr.distance, held[i])
        idle = ~self.running[:, t]  # ended episodes hold their last distance
        self.distances[idle, t] = held[idle]
        if self.sent is not None and self.own is not None:
            self.sent[i, t] = step.sent[i]
            self.own[i, t] = step.actions[i]

    def rollout(self, label: str, seeds: list[int], zeroed: list[np.ndarray] | None) -> Rollout:
        """The record as a :class:`Rollout`, cut to the steps taken."""
        h = self.horizon
        trajectory = None
        if self.every is not None and self.traj:
            trajectory = [np.stack([step[j] for step in self.traj]) for j in range(len(self.traj[0]))]
        return Rollout(
            label=label,
            seeds=seeds,
            rewards=self.rewards[:, :h],
            distances=self.distances[:, :h],
            running=self.running[:, :h],
            actions_sent=None if self.sent is None else self.sent[:, :h],
            actions_policy=None if self.own is None else self.own[:, :h],
            snapshots=self.snapshots,
            trajectory_steps=None if trajectory is None else np.asarray(self.traj_steps),
            trajectory=trajectory,
            zeroed=zeroed,
        )


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
    kw = dict(env_kwargs or {})
    envs = [gym.make(env_id, max_episode_steps=max_steps, **kw) for _ in range(episodes)]
    try:
        action_space = envs[0].action_space
        hooks = [] if probe is None else [probe_hook(probe, env_id, action_space, seed)]
        trace = Trace(episodes, max_steps, action_space, snapshot_steps, record_actions, trajectory_every)
        batch = policy.batch(policy.get_flat()[None])
        state = batch.initial_state(episodes, seed)
        seeds = [seed + i for i in range(episodes)]
        rollout(batch, state, GymStepper(envs), seeds, max_steps=max_steps, hooks=[*hooks, trace])
    finally:
        for env in envs:
            env.close()
    zeroed = None
    if hooks and isinstance(hooks[0], ZeroWeights) and hooks[0].masks is not None:
        zeroed = [m[0] for m in hooks[0].masks]
    return trace.rollout(label or ("baseline" if probe is None else probe.label), seeds, zeroed)


def _check_policy_for(policy: Any, probe: Probe) -> None:
    """Weight probes need plastic weights: a clear ValueError for static and LSTM policies."""
    if probe.plastic_only and not isinstance(policy, HebbianPolicy):
        raise ValueError(
            f"probe {probe.label!r} edits plastic weights, but the policy is a {type(policy).__name__}; "
            "accepted: a HebbianPolicy (static and LSTM policies take only freeze-actuators@T0:T1)"
        )


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
    parsed = parse_probe(probe) if isinstance(probe, str) else probe
    path = resolve_policy_path(run_or_policy, which)
    policy = load_policy(path)
    env = env_id or policy.env_id
    if not env:
        raise ValueError(f"{path} records no env id; give env_id (--env)")
    result = probe_experiment(policy, env, parsed, episodes, max_steps, seed, env_kwargs)
    result.policy_path = str(path)
    return result, write_probe_outputs(result, out)
