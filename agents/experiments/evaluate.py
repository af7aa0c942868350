"""Evaluate a trained policy (a run directory or a policy file) on one or more variants."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from PIL import Image

import hebb_gym  # noqa: F401  (registers the variants)
from agents.evaluation.envs import physics_env_kwargs
from agents.evaluation.rollout import GymStepper, Hook, Step, rollout
from agents.policies import load_policy
from agents import pretrained
from agents.training import TrainConfig
from agents.util.atomic import atomic_write, atomic_write_text
from agents.util.csvfile import csv_text
from agents.util.threads import one_torch_thread


@dataclass
class EnvScore:
    """Per-episode returns and distances of one policy on one env id."""

    env_id: str
    returns: np.ndarray
    distances: np.ndarray  # NaN where the env reports no distance (the car)
    lengths: np.ndarray

    def row(self) -> dict[str, Any]:
        d = np.where(np.isnan(self.distances), 0.0, self.distances)
        has_d = not np.isnan(self.distances).all()
        return {
            "env": self.env_id, "episodes": len(self.returns),
            "return_mean": float(self.returns.mean()), "return_std": float(self.returns.std()),
            "distance_mean": float(d.mean()) if has_d else "", "distance_std": float(d.std()) if has_d else "",
            "length_mean": float(self.lengths.mean()),
        }


def resolve_policy_path(run_or_policy: str | os.PathLike, which: str = "best") -> Path:
    """A policy file from a path that is the file itself, a run directory (``best.pt``) or ``pretrained:NAME``."""
    if pretrained.is_pretrained(run_or_policy):
        return pretrained.path_of(str(run_or_policy))
    p = Path(run_or_policy)
    if p.is_dir():
        p = p / f"{which}.pt"
    if not p.exists():
        raise FileNotFoundError(f"{run_or_policy}: no policy file here (expected a .pt file or a run directory "
                                f"containing {which}.pt)")
    return p


def run_env_kwargs(run_or_policy: str | os.PathLike, physics: str | None = None) -> dict[str, Any]:
    """The env kwargs of a run directory's fitness rollouts (a shipped agent's: its index entry's; {} for a file),
    with the quadruped's physics backend replaced by ``physics`` where given."""
    if pretrained.is_pretrained(run_or_policy):
        kwargs = dict(pretrained.entry(str(run_or_policy)).get("rollout_env_kwargs", {}))
    elif (Path(run_or_policy) / "config.json").is_file():
        cfg = json.loads((Path(run_or_policy) / "config.json").read_text())
        kwargs = TrainConfig.from_json(cfg["train"]).rollout_env_kwargs()
    else:
        kwargs = {}
    return {**kwargs, **physics_env_kwargs(physics)}


class _FirstEnvFrames(Hook):
    """Collects env 0's rendered frame after each of its steps (the GIF of ``video_dir``)."""

    def __init__(self, env: gym.Env) -> None:
        self.env = env
        self.frames: list[np.ndarray] = []

    def after_step(self, step: Step) -> None:
        if step.index.size and step.index[0] == 0:
            self.frames.append(self.env.render())


@one_torch_thread()
def evaluate_policy_on(
    policy: Any, env_id: str, episodes: int, seed: int = 0, max_steps: int | None = None,
    video_dir: str | os.PathLike | None = None, env_kwargs: dict[str, Any] | None = None,
    video_width: int | None = None,
) -> EnvScore:
    """Run ``episodes`` full episodes (episode i resets with ``seed + i``) in the lockstep loop, one env each.

    The numbers are those of ``policy.predict`` on a batch of the envs: a fresh state drawn from the
    policy's own generator, no early stop. ``video_dir``: also write an animated GIF of episode 0 there,
    ``video_width`` pixels wide (default: the env's frame width).
    """
    if episodes < 1:
        raise ValueError(f"episodes={episodes!r} must be >= 1")
    kw = dict(env_kwargs or {})
    if max_steps is not None:
        kw["max_episode_steps"] = max_steps
    render = video_dir is not None
    envs = [gym.make(env_id, render_mode="rgb_array" if render and i == 0 else None, **kw) for i in range(episodes)]
    video = _FirstEnvFrames(envs[0])
    try:
        batch = policy.batch(policy.get_flat()[None])
        state = policy.initial_state(episodes)  # what predict(state=None) starts from
        result = rollout(batch, state, GymStepper(envs), [seed + i for i in range(episodes)],
                         hooks=[video] if render else ())
    finally:
        for env in envs:
            env.close()
    if render and video.frames:
        save_gif(video.frames, Path(video_dir) / f"{env_id}-seed{seed}.gif", width=video_width)
    return EnvScore(env_id, result.returns[0], result.distances[0], result.lengths[0])


def save_gif(frames: Sequence[np.ndarray], path: Path, fps: int = 30, max_frames: int = 600,
             width: int | None = None) -> Path:
    """An animated GIF of RGB frames, written atomically: every n-th frame so that at most ``max_frames`` remain,
    each scaled to ``width`` pixels (the aspect kept; None: as they are)."""
    if width is not None and (isinstance(width, bool) or not isinstance(width, int) or width < 16):
        raise ValueError(f"width={width!r}: a GIF width is an int >= 16 pixels (or None: the frames' own)")
    step = max(1, -(-len(frames) // max_frames))
    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames[::step]]
    if width is not None:
        images = [im.resize((width, max(1, round(im.height * width / im.width))), Image.LANCZOS) for im in images]
    return atomic_write(path, lambda f: images[0].save(f, format="GIF", save_all=True, append_images=images[1:],
                                                        duration=int(1000 * step / fps), loop=0))


def scores_csv(scores: Sequence[EnvScore]) -> str:
    """CSV text of the per-env summary rows."""
    return csv_text([s.row() for s in scores])


def evaluate_to_files(
    run_or_policy: str | os.PathLike, env_ids: Sequence[str], episodes: int, out_csv: str | os.PathLike | None = None,
    seed: int = 0, max_steps: int | None = None, video_dir: str | os.PathLike | None = None,
    stock_env: bool = False, physics: str | None = None, video_width: int | None = None,
) -> list[EnvScore]:
    """Evaluate a run's best policy (or a policy file) on each env id; optionally write the CSV.

    A run directory is evaluated with the env kwargs its fitness rollouts used (physics backend,
    termination), unless ``stock_env``; a policy file always on the envs as registered. ``physics``
    chooses the quadruped's backend either way.
    """
    policy = load_policy(resolve_policy_path(run_or_policy))
    env_kwargs = physics_env_kwargs(physics) if stock_env else run_env_kwargs(run_or_policy, physics)
    scores = [evaluate_policy_on(policy, e, episodes, seed, max_steps, video_dir, env_kwargs, video_width)
              for e in env_ids]
    if out_csv is not None:
        atomic_write_text(out_csv, scores_csv(scores))
    return scores
