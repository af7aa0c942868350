"""Leave-one-out generalisation over the five variants of a task (the genomic-bottleneck protocol).

For every held-out variant, every agent and every seed (a *cell*) the agent is trained on the other
variants (ES: the meta-task fitness is the mean over them; PPO: one VecEnv mixing them) and then
evaluated, with the same evaluation seeds for every cell, on the held-out variant (test) and on each
variant it trained on (train). A cell lives in ``OUT/cells/<agent>/<held-out>/seed<k>/`` and is
finished when its ``result.json`` exists (written atomically, last); re-running the command skips
finished cells and resumes an interrupted ES run from its checkpoint.

What a cell trains with is a :class:`LOOConfig`: a ``TrainConfig`` template for the ES agents and a
``PPOConfig`` template for PPO, of which a cell sets the env ids, agent and seed, and an agent spec
(``hebbian:rho=16``) overrides fields; the settings and their types are those of the two configs.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

import hebb_gym
from agents.evaluation.envs import rollout_env_kwargs
from agents.experiments.compare import Contender, evaluate_contender
from agents.experiments.ppo import MODEL_FILE, PPO_OVERRIDABLE, PPOConfig, override_settings, train_ppo
from agents.policies import AGENTS
from agents.training import TrainConfig, train
from agents.util.atomic import atomic_write_json, atomic_write_text
from agents.util.csvfile import csv_text
from agents.util.figures import grouped_bars, pyplot, save_figure
from agents.util.settings import Setting, check_choices, settings_of
from agents.util.tables import markdown_table

AGENT_KINDS = AGENTS + ("ppo",)
#: TrainConfig fields that are no template flags: the cells set env, agent and seed; a preset is applied to a
#: template with TrainConfig.from_preset (a preset name alone would only be recorded).
ES_CELL_FIELDS = ("env", "agent", "seed", "preset")
#: TrainConfig fields every agent of the experiment shares (the horizon and env settings also make the
#: PPO cells and the evaluation), so an agent spec may not change them.
SHARED_FIELDS = ("max_steps", "env_kwargs", "env_termination")
#: PPOConfig fields a cell sets: ids and seed, and the horizon and env kwargs of the TrainConfig template.
PPO_CELL_FIELDS = ("env", "seed", "max_steps", "env_kwargs")
RESULT_FILE = "result.json"
METRICS = ("distance", "return")


def es_template_settings() -> dict[str, Setting]:
    """The TrainConfig settings the template of a leave-one-out experiment holds (flags of ``hebb-gym loo``)."""
    return {k: s for k, s in settings_of(TrainConfig).items() if k not in ES_CELL_FIELDS}


def ppo_template_settings() -> dict[str, Setting]:
    """The PPOConfig settings the PPO template holds (``--ppo-*`` flags of ``hebb-gym loo``), overrides aside."""
    return {k: s for k, s in settings_of(PPOConfig).items() if k not in PPO_CELL_FIELDS + ("overrides",)}


def spec_settings(kind: str) -> dict[str, Setting]:
    """The options an agent spec of ``kind`` accepts (``hebbian:rho=16``), each with its type and parser."""
    if kind == "ppo":
        return {**ppo_template_settings(), **override_settings()}
    identity = TrainConfig().identity()
    return {k: s for k, s in es_template_settings().items()
            if (k in identity or k == "generations") and k not in SHARED_FIELDS and s.kind != "dict"
            and (s.agents is None or kind in s.agents)}


@dataclass(frozen=True)
class AgentSpec:
    """An agent of the leave-one-out table: kind (hebbian/static/lstm/ppo) and options from its spec string."""

    kind: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        """The canonical spec string, e.g. ``hebbian:rho=16``; the row name in the tables."""
        return ":".join([self.kind] + [f"{k}={v}" for k, v in self.options])

    @property
    def dirname(self) -> str:
        """A folder name for the agent's cells (``hebbian-rho16``)."""
        name = "-".join([self.kind] + [f"{k}{v}" for k, v in self.options])
        return re.sub(r"[^A-Za-z0-9_.+-]", "_", name)


def parse_agent_spec(text: str) -> AgentSpec:
    """``KIND[:key=value]...`` -> AgentSpec; KIND one of :data:`AGENT_KINDS`, keys those of :func:`spec_settings`."""
    if not isinstance(text, str):
        raise TypeError(f"agent spec must be a str like 'hebbian:rho=16'; got {type(text).__name__}")
    parts = [p.strip() for p in text.strip().split(":")]
    kind = parts[0]
    if kind not in AGENT_KINDS:
        raise ValueError(f"agent {text!r}: unknown agent {kind!r}; accepted: {', '.join(AGENT_KINDS)} "
                         "(optionally with :key=value options, e.g. 'hebbian:rho=16')")
    accepted = spec_settings(kind)
    opts: dict[str, Any] = {}
    for part in parts[1:]:
        if "=" not in part:
            raise ValueError(f"agent {text!r}: option {part!r} is not key=value; accepted keys for {kind}: "
                             f"{', '.join(accepted)}")
        key, value = (s.strip() for s in part.split("=", 1))
        if key not in accepted:
            raise ValueError(f"agent {text!r}: unknown option {key!r} for {kind}; accepted: {', '.join(accepted)}")
        try:
            opts[key] = accepted[key].parse_text(value)
        except ValueError as exc:
            raise ValueError(f"agent {text!r}: {exc}") from None
    return AgentSpec(kind, tuple(sorted(opts.items())))


def parse_agents(agents: str | Sequence[str | AgentSpec]) -> list[AgentSpec]:
    """A comma-separated string or a list of spec strings -> distinct AgentSpecs, in order."""
    items = [a for a in agents.split(",") if a.strip()] if isinstance(agents, str) else list(agents)
    if not items:
        raise ValueError("agents is empty; accepted: a comma-separated list such as 'hebbian,hebbian:rho=16,static,lstm,ppo'")
    specs: list[AgentSpec] = []
    for a in items:
        s = a if isinstance(a, AgentSpec) else parse_agent_spec(a)
        if s in specs:
            raise ValueError(f"agent {s.label!r} is listed twice")
        specs.append(s)
    return specs


@dataclass
class LOOConfig:
    """How every cell is trained and evaluated; the same experiment runs at paper or laptop scale.

    ``train``: the ES settings of every ES cell (the cell sets ``env``, ``agent`` and ``seed``; its
    ``max_steps``, ``env_kwargs`` and ``env_termination`` also make the PPO cells and the evaluation).
    ``ppo``: the PPO settings of every PPO cell (the cell sets ``env``, ``seed``, ``max_steps``, ``env_kwargs``).
    """

    train: TrainConfig = field(default_factory=TrainConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    eval_episodes: int = field(default=5, metadata={"help": "evaluation episodes per variant"})
    eval_seed: int = field(default=1_000_000, metadata={
        "help": "evaluation episode i resets with this + i, in every cell"})
    policy: str = field(default="best", metadata={
        "help": "the ES policy file a cell evaluates: the best-evaluated centre (best.pt), or the final one",
        "choices": ("best", "last")})

    def __post_init__(self) -> None:
        if not isinstance(self.train, TrainConfig) or not isinstance(self.ppo, PPOConfig):
            raise TypeError("train must be a TrainConfig and ppo a PPOConfig (the templates of every cell)")
        if self.eval_episodes < 1:
            raise ValueError(f"eval_episodes={self.eval_episodes!r} must be >= 1")
        check_choices("policy", self.policy, settings_of(LOOConfig)["policy"].choices)

    def env_kwargs(self, env_ids: Sequence[str]) -> dict[str, Any]:
        """Env kwargs every agent trains and is evaluated with (the ES trainer's, for all agents)."""
        return rollout_env_kwargs(env_ids, self.train.env_kwargs, self.train.env_termination)

    def es_config(self, spec: AgentSpec, train_ids: Sequence[str], seed: int) -> TrainConfig:
        return replace(self.train, env=tuple(train_ids), agent=spec.kind, seed=seed, **dict(spec.options))

    def ppo_config(self, spec: AgentSpec, train_ids: Sequence[str], seed: int) -> PPOConfig:
        opts = dict(spec.options)
        overrides = {**self.ppo.overrides, **{k: opts.pop(k) for k in list(opts) if k in PPO_OVERRIDABLE}}
        return replace(self.ppo, env=tuple(train_ids), seed=seed, max_steps=self.train.max_steps,
                       env_kwargs=self.env_kwargs(train_ids), overrides=overrides, **opts)

    def identity(self) -> dict[str, Any]:
        """The settings that define the results (not where or how fast they are computed), flat."""
        train, ppo = self.train.to_json(), asdict(self.ppo)
        d = {k: train[k] for k in es_template_settings() if k in self.train.identity() or k == "generations"}
        d.update({f"ppo_{k}": ppo[k] for k in (*ppo_template_settings(), "overrides")})
        d.update(eval_episodes=self.eval_episodes, eval_seed=self.eval_seed, policy=self.policy)
        return d


def resolve_variants(task: str, variants: str | Sequence[str] | None) -> list[str]:
    """The held-out env ids: all five of ``task``, or those named (ids or short names like ``LongRearLegs``)."""
    all_ids = list(hebb_gym.variants(task))  # raises ValueError on an unknown task
    if not variants:
        return all_ids
    names = [v for v in variants.split(",") if v] if isinstance(variants, str) else list(variants)
    short = {hebb_gym.get_variant(e).variant: e for e in all_ids}
    out = []
    for v in names:
        e = v if v in all_ids else short.get(v)
        if e is None:
            raise ValueError(f"variants: {v!r} is not a variant of task {task!r}; accepted: "
                             f"{', '.join(short)} (or their ids)")
        if e not in out:
            out.append(e)
    return out


def _score(row: dict[str, Any], metric: str) -> float:
    return float(row[f"{metric}_mean"])


@dataclass
class LOOResult:
    """Per-cell scores and the files of a leave-one-out experiment."""

    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    trained: list[tuple[str, str, int]]  # cells trained by this call (agent, held-out, seed)
    skipped: list[tuple[str, str, int]]  # cells found finished
    paths: dict[str, Path] = field(default_factory=dict)


def run_loo(task: str, agents: str | Sequence[str | AgentSpec], seeds: int | Sequence[int], out: str | os.PathLike,
            config: LOOConfig | None = None, variants: str | Sequence[str] | None = None,
            metric: str | None = None, progress: bool = False,
            log: Callable[[str], None] | None = None) -> LOOResult:
    """Run (or finish) every cell (agent, held-out variant, seed), then write the CSVs, the table and the figure."""
    config = config or LOOConfig()
    all_ids = list(hebb_gym.variants(task)) if task in ("ant", "car") else None
    if all_ids is None:
        raise ValueError(f"task={task!r}; accepted: 'ant', 'car'")
    specs = parse_agents(agents)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list or (isinstance(seeds, int) and seeds < 1):
        raise ValueError(f"seeds={seeds!r}; accepted: a count >= 1 or a non-empty list of ints")
    held_out = resolve_variants(task, variants)
    metric = metric or ("distance" if task == "ant" else "return")
    if metric not in METRICS or (task == "car" and metric == "distance"):
        raise ValueError(f"metric={metric!r}; accepted: {'distance, return' if task == 'ant' else 'return'}")
    say = log or (lambda msg: None)
    out = Path(out)
    _check_settings(out, task, config)
    trained, skipped = [], []
    for h in held_out:
        for spec in specs:
            for seed in seed_list:
                cell = (spec.label, h, seed)
                cell_dir = out / "cells" / spec.dirname / hebb_gym.get_variant(h).variant / f"seed{seed}"
                if (cell_dir / RESULT_FILE).exists():
                    skipped.append(cell)
                    continue
                say(f"cell {spec.label} / held-out {h} / seed {seed}: training on {len(all_ids) - 1} variants")
                run_cell(spec, h, all_ids, seed, config, cell_dir, progress)
                trained.append(cell)
    rows = collect_rows(out, specs, held_out, seed_list, all_ids)
    summary = summarise(rows, specs, held_out, metric)
    result = LOOResult(rows, summary, trained, skipped)
    result.paths["results"] = atomic_write_text(out / "results.csv", csv_text(rows))
    result.paths["summary"] = atomic_write_text(out / "summary.csv", csv_text(summary))
    result.paths["table"] = atomic_write_text(out / "results.md", markdown_report(summary, specs, held_out, task,
                                                                                 metric, config, seed_list))
    result.paths["figure"] = plot_loo(summary, specs, held_out, metric, out / "results.png")
    return result


def _check_settings(out: Path, task: str, config: LOOConfig) -> None:
    """Record the task and settings in ``loo.json``; refuse to mix cells made with other settings."""
    path = out / "loo.json"
    mine = {"task": task, "budget": config.identity()}
    if path.exists():
        saved = json.loads(path.read_text())
        if saved != mine:
            diff = {k: (saved["budget"].get(k), v) for k, v in mine["budget"].items() if saved["budget"].get(k) != v}
            if saved.get("task") != task:
                diff["task"] = (saved.get("task"), task)
            raise ValueError(f"out={str(out)!r} holds a leave-one-out run with other settings (saved, given): {diff}; "
                             "use the same flags to continue it, or another --out")
        return
    atomic_write_json(path, mine)


def run_cell(spec: AgentSpec, held_out: str, all_ids: Sequence[str], seed: int, config: LOOConfig,
             cell_dir: Path, progress: bool = False) -> dict[str, Any]:
    """Train one agent on every variant but ``held_out``, evaluate it on all of them, write ``result.json``."""
    train_ids = tuple(e for e in all_ids if e != held_out)
    t0 = time.perf_counter()
    if spec.kind == "ppo":
        contender = Contender(spec.label, "ppo", _train_ppo_cell(config.ppo_config(spec, train_ids, seed),
                                                                 cell_dir / "ppo", progress))
    else:
        contender = Contender(spec.label, "es", _train_es_cell(config.es_config(spec, train_ids, seed), config.policy,
                                                               cell_dir / "run", progress))
    train_seconds = time.perf_counter() - t0
    scores = {}
    for e in all_ids:
        s = evaluate_contender(contender, e, config.eval_episodes, config.eval_seed, config.train.max_steps,
                               config.env_kwargs(all_ids))
        scores[e] = {"returns": s.returns.tolist(), "lengths": s.lengths.tolist(),
                     "distances": [None if math.isnan(d) else float(d) for d in s.distances]}
    result = {"agent": spec.label, "kind": spec.kind, "held_out": held_out, "train_envs": list(train_ids),
              "seed": seed, "policy": str(contender.path.relative_to(cell_dir)), "budget": config.identity(),
              "train_seconds": round(train_seconds, 2), "eval_seconds": round(time.perf_counter() - t0 - train_seconds, 2),
              "scores": scores}
    atomic_write_json(cell_dir / RESULT_FILE, result)
    return result


def _train_es_cell(config: TrainConfig, policy: str, run_dir: Path, progress: bool) -> Path:
    # An interrupted cell left a run directory with a checkpoint: continue it exactly where it stopped.
    train(config, run_dir, resume=(run_dir / "config.json").exists(), progress=progress)
    return run_dir / f"{policy}.pt"


def _train_ppo_cell(config: PPOConfig, run_dir: Path, progress: bool) -> Path:
    if (run_dir / MODEL_FILE).exists():  # trained, but the evaluation was interrupted
        return run_dir / MODEL_FILE
    if run_dir.exists():  # an interrupted PPO run has no checkpoint: start it again
        shutil.rmtree(run_dir)
    return train_ppo(config, run_dir, progress=progress).model_path


def collect_rows(out: Path, specs: Sequence[AgentSpec], held_out: Sequence[str], seeds: Sequence[int],
                 all_ids: Sequence[str]) -> list[dict[str, Any]]:
    """One row per (agent, held-out, seed, evaluated env) from the cells' ``result.json`` files."""
    rows = []
    for spec in specs:
        for h in held_out:
            for seed in seeds:
                path = out / "cells" / spec.dirname / hebb_gym.get_variant(h).variant / f"seed{seed}" / RESULT_FILE
                res = json.loads(path.read_text())
                for e in all_ids:
                    s = res["scores"][e]
                    ret = np.asarray(s["returns"], dtype=float)
                    dist = [d for d in s["distances"] if d is not None]
                    rows.append({
                        "agent": spec.label, "held_out": hebb_gym.get_variant(h).variant, "seed": seed,
                        "env": e, "variant": hebb_gym.get_variant(e).variant,
                        "role": "test" if e == h else "train", "episodes": len(ret),
                        "return_mean": float(ret.mean()), "return_std": float(ret.std()),
                        "distance_mean": float(np.mean(dist)) if dist else "",
                        "distance_std": float(np.std(dist)) if dist else "",
                        "length_mean": float(np.mean(s["lengths"])), "train_seconds": res["train_seconds"],
                    })
    return rows


def summarise(rows: list[dict[str, Any]], specs: Sequence[AgentSpec], held_out: Sequence[str],
              metric: str) -> list[dict[str, Any]]:
    """Per (agent, held-out): train and test score, mean and std over seeds.

    A seed's test score is its mean ``metric`` on the held-out variant; its train score is the mean over
    the variants it trained on of their mean ``metric``.
    """
    summary = []
    for spec in specs:
        for h in held_out:
            name = hebb_gym.get_variant(h).variant
            mine = [r for r in rows if r["agent"] == spec.label and r["held_out"] == name]
            seeds = sorted({r["seed"] for r in mine})
            test = np.array([_score(r, metric) for s in seeds for r in mine if r["seed"] == s and r["role"] == "test"])
            train = np.array([np.mean([_score(r, metric) for r in mine if r["seed"] == s and r["role"] == "train"])
                              for s in seeds])
            summary.append({"agent": spec.label, "held_out": name, "metric": metric, "seeds": len(seeds),
                            "train_mean": float(train.mean()), "train_std": float(train.std()),
                            "test_mean": float(test.mean()), "test_std": float(test.std())})
    return summary


def markdown_report(summary: list[dict[str, Any]], specs: Sequence[AgentSpec], held_out: Sequence[str], task: str,
                    metric: str, config: LOOConfig, seeds: Sequence[int]) -> str:
    """The paper-shaped tables: rows agent, columns held-out variant; test score, then train score."""
    names = [hebb_gym.get_variant(h).variant for h in held_out]
    by = {(r["agent"], r["held_out"]): r for r in summary}
    lines = [f"# Leave-one-out generalisation: {task}", "",
             (f"Score: {metric} per episode ({config.eval_episodes} evaluation episodes per variant, "
              f"horizon {config.train.max_steps}); cells: mean +- std over {len(seeds)} seed(s) {list(seeds)}. "
              f"ES: {config.train.generations} generations x population {config.train.popsize}; "
              f"PPO: {config.ppo.timesteps or 'published'} timesteps."), ""]
    for part, what in (("test", "Test: score on the held-out variant"),
                       ("train", "Train: mean score over the four variants trained on")):
        lines += [f"## {what}", ""]
        rows = []
        for spec in specs:
            cells = [by[(spec.label, n)] for n in names]
            mean_all = float(np.mean([c[f"{part}_mean"] for c in cells]))
            rows.append([spec.label] + [f"{c[f'{part}_mean']:.2f} +- {c[f'{part}_std']:.2f}" for c in cells]
                        + [f"{mean_all:.2f}"])
        lines.append(markdown_table(["agent"] + [f"held-out {n}" for n in names] + ["mean"], rows))
        lines.append("")
    return "\n".join(lines)


def plot_loo(summary: list[dict[str, Any]], specs: Sequence[AgentSpec], held_out: Sequence[str], metric: str,
             path: str | os.PathLike) -> Path:
    """Two grouped bar charts (held-out variant x agent): test score above, train score below."""
    names = [hebb_gym.get_variant(h).variant for h in held_out]
    by = {(r["agent"], r["held_out"]): r for r in summary}
    labels = [s.label for s in specs]
    fig, axes = pyplot().subplots(2, 1, figsize=(max(6.0, 1.6 * len(names) + 3), 7), dpi=110)
    for ax, part in zip(axes, ("test", "train")):
        means = np.array([[by[(a, n)][f"{part}_mean"] for n in names] for a in labels])
        stds = np.array([[by[(a, n)][f"{part}_std"] for n in names] for a in labels])
        grouped_bars(ax, [f"held-out {n}" for n in names], labels, means, stds, f"{part} {metric}")
    axes[0].set_title(f"Leave-one-out {metric}: test (held-out) and train (seen variants)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


__all__ = ["AGENT_KINDS", "AgentSpec", "LOOConfig", "LOOResult", "collect_rows", "markdown_report", "parse_agent_spec",
           "parse_agents", "plot_loo", "resolve_variants", "run_cell", "run_loo", "summarise"]
