"""The ``ppo``, ``compare`` and ``loo`` sub-commands of ``hebb-gym``; ``agents/cli/main.py`` adds them to its parser."""

from __future__ import annotations

import argparse
from typing import Any

import hebb_gym
from agents.cli.options import add_settings, setting_values
from agents.evaluation.envs import PHYSICS, physics_env_kwargs, rollout_env_kwargs
from agents.experiments.compare import compare, env_ids_for
from agents.experiments.loo import AGENT_KINDS, METRICS, LOOConfig, es_template_settings, ppo_template_settings, run_loo
from agents.experiments.ppo import PPOConfig, override_settings, train_ppo
from agents.training import TrainConfig
from agents.util.settings import settings_of
from agents.util.tables import text_table

#: PPOConfig fields the ``ppo`` command sets by hand (``--env`` / ``--task``) or per key (the override flags).
PPO_BY_HAND = ("env", "overrides")


def _ppo_settings() -> list[Any]:
    return [s for name, s in settings_of(PPOConfig).items() if name not in PPO_BY_HAND]


def _loo_settings() -> list[Any]:
    return [s for name, s in settings_of(LOOConfig).items() if name not in ("train", "ppo")]


def _ppo(args: argparse.Namespace) -> int:
    overrides = {k: v for k, v in setting_values(args, override_settings().values()).items() if v is not None}
    config = PPOConfig(env=_env_or_task(args), overrides=overrides, **setting_values(args, _ppo_settings()))
    result = train_ppo(config, args.out, progress=not args.quiet)
    print(f"trained {result.timesteps} timesteps in {result.seconds:.1f} s")
    print(f"model:    {result.model_path}")
    print(f"settings: {result.settings_path}")
    if result.vecnormalize_path:
        print(f"vecnormalize: {result.vecnormalize_path}")
    return 0


def _env_or_task(args: argparse.Namespace) -> Any:
    if args.env and args.task:
        raise ValueError("give either --env or --task, not both")
    if args.task:
        return hebb_gym.variants(args.task)
    if not args.env:
        raise ValueError("give --env ID[,ID...] or --task ant|car")
    return args.env


def _compare(args: argparse.Namespace) -> int:
    if args.env and args.task:
        raise ValueError("give either --env or --task, not both")
    # Env kwargs of every cell: the physics backend, and with --no-env-termination the ES training setting.
    env_kwargs = rollout_env_kwargs(env_ids_for(args.env, args.task), physics_env_kwargs(args.physics),
                                    env_termination=not args.no_env_termination)
    result = compare(args.agents, env=args.env, task=args.task, episodes=args.episodes, out=args.out, seed=args.seed,
                     max_steps=args.max_steps, env_kwargs=env_kwargs, title=args.title,
                     trust_pickles=args.trust_pickles)
    rows = []
    for r in result.rows:
        dist = "" if r["distance_mean"] == "" else f"{r['distance_mean']:.3f} +- {r['distance_std']:.3f}"
        rows.append([r["agent"], r["variant"], f"{r['return_mean']:.2f} +- {r['return_std']:.2f}", dist,
                     r["length_mean"]])
    print(text_table(["agent", "variant", "return", "distance", "length"], rows))
    print(f"csv: {result.csv_path}\ntable: {result.table_path}\nfigure: {result.figure_path}")
    return 0


def _loo(args: argparse.Namespace) -> int:
    config = LOOConfig(train=TrainConfig(**setting_values(args, es_template_settings().values())),
                       ppo=PPOConfig(**setting_values(args, ppo_template_settings().values(), prefix="ppo_")),
                       **setting_values(args, _loo_settings()))
    seeds: Any = args.seeds
    if args.seed_list:
        seeds = [int(s) for s in args.seed_list.split(",") if s]
    result = run_loo(args.task, args.agents, seeds, args.out, config, variants=args.variants, metric=args.metric,
                     progress=not args.quiet, log=None if args.quiet else print)
    print(f"cells trained now: {len(result.trained)}, already finished: {len(result.skipped)}")
    print(result.paths["table"].read_text())
    for name, path in result.paths.items():
        print(f"{name}: {path}")
    return 0


def add_experiment_commands(sub: Any) -> None:
    """Add the ``ppo``, ``compare`` and ``loo`` sub-commands (with handlers) to argparse sub-parsers ``sub``."""
    p = sub.add_parser("ppo", help="train a Stable-Baselines3 PPO baseline on one or more variants (mixed)")
    p.add_argument("--env", default=None, help=settings_of(PPOConfig)["env"].help)
    p.add_argument("--task", default=None, help="ant | car: all five variants of the task")
    add_settings(p, _ppo_settings())  # one flag per PPOConfig field
    add_settings(p, override_settings().values())  # one flag per overridable PPO argument
    p.add_argument("--out", default="runs/ppo", help="run directory (model.zip, settings.json, ...)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_ppo)

    p = sub.add_parser("compare", help="evaluate ES runs / policy files and PPO models on the same variants and seeds")
    p.add_argument("agents", nargs="+", metavar="AGENT",
                   help="[LABEL=]PATH: ES run dir (best.pt), policy .pt, PPO run dir or model .zip")
    p.add_argument("--env", default=None, help="comma-separated env ids")
    p.add_argument("--task", default=None, help="ant | car: all five variants of the task")
    p.add_argument("--episodes", type=int, default=5, help="episodes per agent and variant")
    p.add_argument("--seed", type=int, default=0, help="episode i resets with seed + i")
    p.add_argument("--max-steps", type=int, default=None, help="episode horizon (default: the env's)")
    p.add_argument("--physics", choices=PHYSICS, default=None, help="quadruped physics backend")
    p.add_argument("--no-env-termination", action="store_true",
                   help="quadruped: turn the env's unhealthy termination off for every agent (the ES training setting)")
    p.add_argument("--title", default=None, help="title of the table and the figure")
    p.add_argument("--out", default="runs/compare", help="folder for results.csv, results.md, results.png")
    p.add_argument("--trust-pickles", action="store_true",
                   help="load PPO models this machine did not write (SB3 zips and vecnormalize.pkl are pickles, "
                        "which can run code)")
    p.set_defaults(handler=_compare)

    p = sub.add_parser("loo", help="leave-one-out generalisation: train on four variants, test on the fifth")
    p.add_argument("--task", required=True, help="ant | car")
    p.add_argument("--agents", default=",".join(AGENT_KINDS),
                   help="comma-separated agent specs, KIND[:key=value...] with KIND one of "
                        f"{', '.join(AGENT_KINDS)}, e.g. hebbian:rho=16 (default: {','.join(AGENT_KINDS)})")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds per cell, 0..K-1 (default 3)")
    p.add_argument("--seed-list", default=None, help="explicit comma-separated seeds (overrides --seeds)")
    p.add_argument("--variants", default=None, help="held-out variants to run (names or ids; default: all five)")
    p.add_argument("--metric", choices=METRICS, default=None,
                   help="table score (default: distance for ant, return for car)")
    add_settings(p, es_template_settings().values())  # the TrainConfig template of every ES cell
    add_settings(p, ppo_template_settings().values(), prefix="ppo_")  # the PPOConfig template of every PPO cell
    add_settings(p, _loo_settings())  # evaluation
    p.add_argument("--out", default="runs/loo", help="experiment folder (re-run to resume)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(handler=_loo)
