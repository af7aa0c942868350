"""Compare Hebbian / static / LSTM policies and PPO models on the same variants with the same seeds.

Every agent is evaluated on every env id through SB3's ``evaluate_policy``: the env is a
``DummyVecEnv`` holding one env per episode (each wrapped in ``Monitor``), seeded so that env ``i``
resets with ``seed + i``; each env runs exactly one counted episode, so episode ``i`` of every agent
sees the same start state (and, for the car, the same track). Returns are the ``Monitor`` returns
(raw env rewards summed over the episode, rounded by ``Monitor`` to 6 decimals). ``evaluate_policy``
does not report the quadruped's distance, so a callback reads ``info["distance"]`` (x-progress since
reset) from the step that ends each counted episode. ES policies are re-loaded from their file for
every (agent, env) cell so their random initial plastic weights come from the same generator state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import gymnasium as gym
import numpy as np

import hebb_gym
from agents import pretrained
from agents.evaluation.envs import parse_env_ids, task_of
from agents.experiments.evaluate import EnvScore, resolve_policy_path
from agents.experiments.ppo import GENERIC_TASK, MODEL_FILE, is_ppo_path, load_ppo
from agents.policies import load_policy
from agents.util.atomic import atomic_write_text
from agents.util.csvfile import write_csv
from agents.util.figures import grouped_bars, pyplot, save_figure  # grouped_bars: also read from here by loo.py
from agents.util.tables import markdown_table
from agents.util.threads import one_torch_thread

RESULT_FIELDS = ("agent", "kind", "path", "env", "variant", "episodes", "seed", "max_steps", "return_mean",
                 "return_std", "distance_mean", "distance_std", "length_mean")
EPISODE_FIELDS = ("agent", "env", "episode", "reset_seed", "return", "distance", "length")


@dataclass(frozen=True)
class Contender:
    """One agent of a comparison: a label, ``"es"`` (Hebbian/static/LSTM policy file) or ``"ppo"``, and its file."""

    label: str
    kind: str
    path: Path


def resolve_agent(arg: str | os.PathLike) -> Contender:
    """``[LABEL=]PATH`` -> Contender; PATH is an ES run dir (its ``best.pt``), a ``.pt`` file, a PPO run dir or zip."""
    text = str(arg)
    label = None
    if pretrained.is_pretrained(text.split("=", 1)[-1]):  # [LABEL=]pretrained:NAME
        label, _, name = text.rpartition("=")
        return Contender(label or name[len(pretrained.PREFIX):], "es", pretrained.path_of(name))
    if "=" in text and not Path(text).exists():
        label, text = text.split("=", 1)
        if not label:
            raise ValueError(f"agent {arg!r}: empty label before '='; accepted: [LABEL=]PATH")
    p = Path(text)
    if not p.exists():
        raise FileNotFoundError(f"agent {arg!r}: {p} does not exist; accepted: an ES run directory, a policy .pt "
                                "file, a PPO run directory or a PPO model .zip")
    if is_ppo_path(p):
        path = p / MODEL_FILE if p.is_dir() else p
        default = p.name if p.is_dir() else (p.parent.name if p.name == MODEL_FILE else p.stem)
        return Contender(label or default, "ppo", path)
    path = resolve_policy_path(p)
    default = p.name if p.is_dir() else p.stem
    return Contender(label or default, "es", path)


def _unique_labels(contenders: list[Contender]) -> list[Contender]:
    seen: dict[str, int] = {}
    out = []
    for c in contenders:
        n = seen.get(c.label, 0)
        seen[c.label] = n + 1
        out.append(c if n == 0 else Contender(f"{c.label}-{n + 1}", c.kind, c.path))
    return out


class _DistanceRecorder:
    """An ``evaluate_policy`` callback: per env, the Monitor return/length and ``info["distance"]`` of its episode."""

    def __init__(self, n_envs: int) -> None:
        self.returns = np.full(n_envs, np.nan)
        self.distances = np.full(n_envs, np.nan)
        self.lengths = np.zeros(n_envs, dtype=np.int64)

    def __call__(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        i = locals_["i"]
        # evaluate_policy calls this only for envs still short of their episode target, before counting.
        if locals_["done"] and "episode" in locals_["info"]:
            info = locals_["info"]
            if "distance" in info:
                self.distances[i] = float(info["distance"])
            self.returns[i] = float(info["episode"]["r"])
            self.lengths[i] = int(info["episode"]["l"])


def _es_vec_env(env_id: str, episodes: int, seed: int, max_steps: int | None, env_kwargs: dict[str, Any]):
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    kw = dict(env_kwargs)
    if max_steps is not None:
        kw["max_episode_steps"] = max_steps
    venv = DummyVecEnv([lambda: Monitor(gym.make(env_id, **kw)) for _ in range(episodes)])
    venv.seed(seed)  # env i resets with seed + i at the first reset
    return venv


@one_torch_thread()
def evaluate_contender(contender: Contender, env_id: str, episodes: int, seed: int = 0,
                       max_steps: int | None = None, env_kwargs: dict[str, Any] | None = None,
                       trust_pickles: bool = False) -> EnvScore:
    """``episodes`` episodes of one agent on one env id through ``evaluate_policy``; episode i resets with seed + i.

    ``trust_pickles``: load PPO models this machine did not write (SB3 zips are pickles; see ``load_ppo``).
    """
    from stable_baselines3.common.evaluation import evaluate_policy

    if episodes < 1:
        raise ValueError(f"episodes={episodes!r} must be >= 1")
    kw = dict(env_kwargs or {})
    if contender.kind == "ppo":
        ppo = load_ppo(contender.path, trust_pickles)
        if (task_of(env_id) or GENERIC_TASK) != ppo.settings["task"]:
            raise ValueError(f"agent {contender.label!r} is a PPO model for task {ppo.settings['task']!r}; "
                             f"env {env_id!r} belongs to task {task_of(env_id) or GENERIC_TASK!r}")
        venv = ppo.make_eval_env(env_id, episodes, seed, max_steps, kw or ppo.settings.get("env_kwargs") or {})
        model: Any = ppo.model
    elif contender.kind == "es":
        model = load_policy(contender.path)
        venv = _es_vec_env(env_id, episodes, seed, max_steps, kw)
        if model.observation_space.shape != venv.observation_space.shape:
            venv.close()
            raise ValueError(f"agent {contender.label!r} expects observations of shape {model.observation_space.shape} "
                             f"but {env_id!r} gives {venv.observation_space.shape}")
    else:
        raise ValueError(f"contender.kind={contender.kind!r}; accepted: 'es', 'ppo'")
    recorder = _DistanceRecorder(episodes)
    try:
        returns, _lengths = evaluate_policy(model, venv, n_eval_episodes=episodes, deterministic=True,
                                           return_episode_rewards=True, callback=recorder)
    finally:
        venv.close()
    # evaluate_policy lists episodes in the order they end; the recorder holds them in env (= seed) order.
    if not np.allclose(np.sort(recorder.returns), np.sort(np.asarray(returns, dtype=float)), rtol=0, atol=1e-9):
        raise RuntimeError(f"episode bookkeeping disagrees with evaluate_policy for {contender.label} on {env_id}")
    return EnvScore(env_id, recorder.returns.copy(), recorder.distances.copy(), recorder.lengths.copy())


@dataclass
class CompareResult:
    """The scores of a comparison and the files written."""

    scores: dict[tuple[str, str], EnvScore]
    contenders: list[Contender]
    env_ids: list[str]
    csv_path: Path | None = None
    episodes_path: Path | None = None
    table_path: Path | None = None
    figure_path: Path | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)


def env_ids_for(env: str | Sequence[str] | None = None, task: str | None = None) -> list[str]:
    """The env ids to evaluate on: an explicit (comma-separated) list, or the five variants of ``task``."""
    if env and task:
        raise ValueError("give either env ids or task, not both")
    if task:
        return list(hebb_gym.variants(task))
    if not env:
        raise ValueError("no env ids: give env (e.g. 'HebbAnt-Default-v0,HebbAnt-LongRearLegs-v0') or task ('ant'|'car')")
    return list(parse_env_ids(env))


def variant_name(env_id: str) -> str:
    """The short variant name of an id (``HebbAnt-LongRearLegs-v0`` -> ``LongRearLegs``)."""
    try:
        return hebb_gym.get_variant(env_id).variant
    except ValueError:
        return env_id


def compare(agents: Sequence[str | os.PathLike | Contender], env: str | Sequence[str] | None = None,
            task: str | None = None, episodes: int = 5, out: str | os.PathLike | None = None, seed: int = 0,
            max_steps: int | None = None, env_kwargs: dict[str, Any] | None = None,
            title: str | None = None, trust_pickles: bool = False) -> CompareResult:
    """Evaluate every agent on every env id with the same seeds; write CSVs, a markdown table and a bar chart."""
    if not agents:
        raise ValueError("agents is empty; give at least one run directory, policy file or PPO model")
    env_ids = env_ids_for(env, task)
    contenders = _unique_labels([a if isinstance(a, Contender) else resolve_agent(a) for a in agents])
    scores: dict[tuple[str, str], EnvScore] = {}
    for c in contenders:
        for e in env_ids:
            scores[(c.label, e)] = evaluate_contender(c, e, episodes, seed, max_steps, env_kwargs, trust_pickles)
    result = CompareResult(scores, contenders, env_ids)
    result.rows = [_result_row(c, e, scores[(c.label, e)], seed, max_steps) for c in contenders for e in env_ids]
    if out is not None:
        out = Path(out)
        result.csv_path = write_csv(out / "results.csv", result.rows, RESULT_FIELDS)
        result.episodes_path = write_csv(out / "episodes.csv", _episode_rows(result, seed), EPISODE_FIELDS)
        result.table_path = atomic_write_text(out / "results.md", markdown_report(result, title))
        result.figure_path = plot_comparison(result, out / "results.png", title)
    return result


def _result_row(c: Contender, env_id: str, s: EnvScore, seed: int, max_steps: int | None) -> dict[str, Any]:
    r = s.row()
    return {"agent": c.label, "kind": c.kind, "path": str(c.path), "env": env_id, "variant": variant_name(env_id),
            "episodes": r["episodes"], "seed": seed, "max_steps": "" if max_steps is None else max_steps,
            "return_mean": r["return_mean"], "return_std": r["return_std"], "distance_mean": r["distance_mean"],
            "distance_std": r["distance_std"], "length_mean": r["length_mean"]}


def _episode_rows(result: CompareResult, seed: int) -> list[dict[str, Any]]:
    rows = []
    for c in result.contenders:
        for e in result.env_ids:
            s = result.scores[(c.label, e)]
            for i in range(len(s.returns)):
                d = s.distances[i]
                rows.append({"agent": c.label, "env": e, "episode": i, "reset_seed": seed + i,
                             "return": float(s.returns[i]), "distance": "" if np.isnan(d) else float(d),
                             "length": int(s.lengths[i])})
    return rows


def _pm(mean: float, std: float) -> str:
    return f"{mean:.2f} +- {std:.2f}"


def markdown_report(result: CompareResult, title: str | None = None) -> str:
    """Markdown: a return table (rows agent, columns variant), and a distance table for the quadruped."""
    headers = ["agent"] + [variant_name(e) for e in result.env_ids]
    first = next(iter(result.scores.values()))
    n = len(first.returns)
    lines = [f"# {title or 'Comparison'}", "",
             (f"{n} episodes per cell; episode i of every agent resets with seed {result.rows[0]['seed']} + i. "
              "Cells: mean +- std over episodes."), "", "## Return", ""]
    lines.append(markdown_table(headers, [[c.label] + [_pm(result.scores[(c.label, e)].returns.mean(),
                                                           result.scores[(c.label, e)].returns.std())
                                                       for e in result.env_ids] for c in result.contenders]))
    has_distance = any(not np.isnan(s.distances).all() for s in result.scores.values())
    if has_distance:
        lines += ["", "## Distance (x-progress since reset)", ""]
        lines.append(markdown_table(headers, [[c.label] + [_pm(np.nan_to_num(result.scores[(c.label, e)].distances).mean(),
                                                               np.nan_to_num(result.scores[(c.label, e)].distances).std())
                                                           for e in result.env_ids] for c in result.contenders]))
    return "\n".join(lines) + "\n"


def plot_comparison(result: CompareResult, path: str | os.PathLike, title: str | None = None) -> Path:
    """Grouped bar chart (variants x agents) of the mean return, and of the distance for the quadruped."""
    plt = pyplot()
    labels = [c.label for c in result.contenders]
    groups = [variant_name(e) for e in result.env_ids]
    has_distance = any(not np.isnan(s.distances).all() for s in result.scores.values())
    panels = [("return", lambda s: s.returns)] + ([("distance", lambda s: np.nan_to_num(s.distances))]
                                                 if has_distance else [])
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(6.0, 1.3 * len(groups) * max(1, len(labels)) ** 0.5 + 3),
                                                       3.4 * len(panels)), dpi=110, squeeze=False)
    for ax, (name, get) in zip(axes[:, 0], panels):
        means = np.array([[get(result.scores[(a, e)]).mean() for e in result.env_ids] for a in labels])
        stds = np.array([[get(result.scores[(a, e)]).std() for e in result.env_ids] for a in labels])
        grouped_bars(ax, groups, labels, means, stds, name)
    axes[0, 0].set_title(title or "Comparison (mean +- std over episodes)")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
