"""The ``ppo``, ``compare`` and ``loo`` sub-commands of ``hebb-gym``; ``agents/cli/main.py`` adds them to its parser."""

from __future__ import annotations

import argparse
from typing import Any

from agents.util.tables import text_table


def _physics(args: argparse.Namespace) -> dict[str, Any]:
    return {"backend": args.physics} if getattr(args, "physics", None) else {}


def _ppo(args: argparse.Namespace) -> int:
    from agents.experiments.ppo import PPOConfig, train_ppo

    overrides: dict[str, Any] = {}
    if args.n_steps is not None:
        overrides["n_steps"] = args.n_steps
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    if args.n_epochs is not None:
        overrides["n_epochs"] = args.n_epochs
    if args.learning_rate is not None:
        overrides["learning_rate"] = args.learning_rate
    env = _env_or_task(args)
    config = PPOConfig(env=env, timesteps=args.timesteps, seed=args.seed, n_envs=args.n_envs,
                       max_steps=args.max_steps, overrides=overrides, env_kwargs=_physics(args))
    result = train_ppo(config, args.out, progress=not args.quiet)
    print(f"trained {result.timesteps} timesteps in {result.seconds:.1f} s")
    print(f"model:    {result.model_path}")
    print(f"settings: {result.settings_path}")
    if result.vecnormalize_path:
        print(f"vecnormalize: {result.vecnormalize_path}")
    return 0


def _env_or_task(args: argparse.Namespace) -> Any:
    import hebb_gym

    if args.env and args.task:
        raise ValueError("give either --env or --task, not both")
    if args.task:
        return hebb_gym.variants(args.task)
    if not args.env:
        raise ValueError("give --env ID[,ID...] or --task ant|car")
    return args.env


def _compare_env_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Env kwargs of every compare cell: the physics backend, and with --no-env-termination the ES setting."""
    import hebb_gym

    kwargs = _physics(args)
    ids = hebb_gym.variants(args.task) if args.task else (args.env or "").split(",")
    if args.no_env_termination and ids[0] and hebb_gym.task_of(ids[0]) == "ant":
        kwargs["terminate_when_unhealthy"] = False
    return kwargs


def _compare(args: argparse.Namespace) -> int:
    from agents.experiments.compare import compare

    if args.env and args.task:
        raise ValueError("give either --env or --task, not both")
    result = compare(args.agents, env=args.env, task=args.task, episodes=args.episodes, out=args.out, seed=args.seed,
                     max_steps=args.max_steps, env_kwargs=_compare_env_kwargs(args), title=args.title)
    rows = []
    for r in result.rows:
        dist = "" if r["distance_mean"] == "" else f"{r['distance_mean']:.3f} +- {r['distance_std']:.3f}"
        rows.append([r["agent"], r["variant"], f"{r['return_mean']:.2f} +- {r['return_std']:.2f}", dist,
                     r["length_mean"]])
    print(text_table(["agent", "variant", "return", "distance", "length"], rows))
    print(f"csv: {result.csv_path}\ntable: {result.table_path}\nfigure: {result.figure_path}")
    return 0


def _loo_env_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Env kwargs every LOO cell trains and is tested with; the quadruped's unhealthy termination is off
    (as in ES training, see docs/training.md) unless --env-termination, so all agents meet the same envs."""
    kwargs = _physics(args)
    if args.task == "ant" and not args.env_termination:
        kwargs["terminate_when_unhealthy"] = False
    return kwargs


def _loo(args: argparse.Namespace) -> int:
    from agents.experiments.loo import LOOBudget, run_loo

    budget = LOOBudget(generations=args.generations, popsize=args.popsize, episodes=args.episodes,
                       max_steps=args.max_steps, eval_episodes=args.eval_episodes, eval_seed=args.eval_seed,
                       ppo_timesteps=args.ppo_timesteps, ppo_n_envs=args.ppo_n_envs, backend=args.backend,
                       workers=args.workers, policy=args.policy, env_kwargs=_loo_env_kwargs(args))
    seeds: Any = args.seeds
    if args.seed_list:
        seeds = [int(s) for s in args.seed_list.split(",") if s]
    result = run_loo(args.task, args.agents, seeds, args.out, budget, variants=args.variants, metric=args.metric,
                     progress=not args.quiet, log=None if args.quiet else print)
    print(f"cells trained now: {len(result.trained)}, already finished: {len(result.skipped)}")
    print(result.paths["table"].read_text())
    for name, path in result.paths.items():
        print(f"{name}: {path}")
    return 0


def add_experiment_commands(sub: Any) -> None:
    """Add the ``ppo``, ``compare`` and ``loo`` sub-commands (with handlers) to argparse sub-parsers ``sub``."""
    p = sub.add_parser("ppo", help="train a Stable-Baselines3 PPO baseline on one or more variants (mixed)")
    p.add_argument("--env", default=None, help="env id, or comma-separated ids (one VecEnv mixing them)")
    p.add_argument("--task", default=None, help="ant | car: all five variants of the task")
    p.add_argument("--timesteps", type=int, default=None, help="total timesteps (default: published, ant 2e6 / car 4e6)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-envs", type=int, default=None, help="envs in the VecEnv (default: published; rounded up "
                   "to a multiple of the number of ids)")
    p.add_argument("--n-steps", type=int, default=None, help="override PPO n_steps (rollout length per env)")
    p.add_argument("--batch-size", type=int, default=None, help="override PPO batch_size")
    p.add_argument("--n-epochs", type=int, default=None, help="override PPO n_epochs")
    p.add_argument("--learning-rate", type=float, default=None, help="override the (initial) learning rate")
    p.add_argument("--max-steps", type=int, default=None, help="episode horizon (default: the env's, 1000)")
    p.add_argument("--physics", choices=("mujoco", "bullet"), default=None, help="quadruped physics backend")
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
    p.add_argument("--physics", choices=("mujoco", "bullet"), default=None, help="quadruped physics backend")
    p.add_argument("--no-env-termination", action="store_true",
                   help="quadruped: turn the env's unhealthy termination off for every agent (the ES training setting)")
    p.add_argument("--title", default=None, help="title of the table and the figure")
    p.add_argument("--out", default="runs/compare", help="folder for results.csv, results.md, results.png")
    p.set_defaults(handler=_compare)

    p = sub.add_parser("loo", help="leave-one-out generalisation: train on four variants, test on the fifth")
    p.add_argument("--task", required=True, help="ant | car")
    p.add_argument("--agents", default="hebbian,static,lstm,ppo",
                   help="comma-separated agent specs: hebbian, hebbian:rho=16, static, lstm, ppo (default: "
                        "hebbian,static,lstm,ppo)")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds per cell, 0..K-1 (default 3)")
    p.add_argument("--seed-list", default=None, help="explicit comma-separated seeds (overrides --seeds)")
    p.add_argument("--variants", default=None, help="held-out variants to run (names or ids; default: all five)")
    p.add_argument("--generations", type=int, default=100, help="ES generations per cell")
    p.add_argument("--popsize", type=int, default=200, help="ES population size")
    p.add_argument("--episodes", type=int, default=1, help="ES training episodes per variant per individual")
    p.add_argument("--max-steps", type=int, default=1000, help="episode horizon (training and evaluation)")
    p.add_argument("--eval-episodes", type=int, default=5, help="evaluation episodes per variant")
    p.add_argument("--eval-seed", type=int, default=1_000_000, help="evaluation episode i resets with this + i")
    p.add_argument("--ppo-timesteps", type=int, default=None, help="PPO timesteps per cell (default: published)")
    p.add_argument("--ppo-n-envs", type=int, default=None, help="PPO envs (default: published, multiple of 4)")
    p.add_argument("--policy", choices=("best", "last"), default="best", help="ES policy file a cell evaluates")
    p.add_argument("--metric", choices=("distance", "return"), default=None,
                   help="table score (default: distance for ant, return for car)")
    p.add_argument("--backend", default="process", help="ES backend: serial | process | ray")
    p.add_argument("--workers", type=int, default=0, help="ES worker processes (default: one per core)")
    p.add_argument("--physics", choices=("mujoco", "bullet"), default=None, help="quadruped physics backend")
    p.add_argument("--env-termination", action="store_true",
                   help="keep the quadruped's unhealthy termination in every cell (off by default, for all agents)")
    p.add_argument("--out", default="runs/loo", help="experiment folder (re-run to resume)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(handler=_loo)
