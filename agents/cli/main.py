"""The ``hebb-gym`` command line: one sub-command per job, each a thin layer over the library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]


def _envs(args: argparse.Namespace) -> int:
    import hebb_gym
    from agents.util.tables import markdown_table, text_table

    rows = [[v.id, v.task, v.variant, v.description] for v in hebb_gym.VARIANTS]
    if args.markdown:
        print(markdown_table(["ID", "task", "variant", "what differs from default"], rows))
        return 0
    if not args.rollout:
        print(text_table(["id", "task", "variant", "description"], rows))
        return 0
    from agents.experiments.random_rollouts import rollout_all, summary_rows

    ids = args.ids.split(",") if args.ids else None
    results = rollout_all(ids, max_steps=args.steps, seed=args.seed, backend=args.backend)
    headers = ["id", "return", "length", "steps/s", "distance"]
    print(text_table(headers, summary_rows(results)))
    return 0


def _train(args: argparse.Namespace) -> int:
    from agents.training import TrainConfig, train

    config = TrainConfig(
        env=args.env, agent=args.agent, rule=args.rule, rho=args.rho, init=args.init, popsize=args.popsize,
        generations=args.generations, sigma=args.sigma, sigma_decay=args.sigma_decay, sigma_floor=args.sigma_floor,
        lr=args.lr, lr_decay=args.lr_decay, lr_floor=args.lr_floor, optimizer=args.optimizer, l2=args.l2,
        episodes=args.episodes, max_steps=args.max_steps, early_stop=not args.no_early_stop,
        env_termination=args.env_termination, backend=args.backend, tensorboard=args.tensorboard,
        workers=args.workers, address=args.address, seed=args.seed,
        env_kwargs={"backend": args.physics} if args.physics else {},
    )
    result = train(config, args.out, resume=args.resume, progress=not args.quiet)
    print(f"best fitness {result.best_fitness:.3f} after {result.generations} generations")
    print(f"learning curve: {result.curve_path}")
    print(f"best policy:    {result.best_path}")
    print(f"last policy:    {result.last_path}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from agents.experiments.evaluate import evaluate_to_files
    from agents.util.tables import text_table

    out_csv = args.csv or (Path(args.target) / "evaluation.csv" if Path(args.target).is_dir() else None)
    scores = evaluate_to_files(args.target, args.env.split(","), args.episodes, out_csv, args.seed,
                               args.max_steps, args.video, stock_env=args.stock_env)
    rows = []
    for s in scores:
        r = s.row()
        dist = "" if r["distance_mean"] == "" else f"{r['distance_mean']:.3f} +- {r['distance_std']:.3f}"
        rows.append([r["env"], f"{r['return_mean']:.2f} +- {r['return_std']:.2f}", dist, r["length_mean"]])
    print(text_table(["env", "return", "distance", "length"], rows))
    if out_csv:
        print(f"csv: {out_csv}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from agents.training.curves import plot_learning_curves

    print(plot_learning_curves(args.runs, args.out))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="hebb-gym", description="Hebbian meta-learning agents and task variants on the Gymnasium API"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("envs", help="list the registered task variants, or roll out random actions in each")
    p.add_argument("--rollout", action="store_true", help="run a short random-action episode in every variant")
    p.add_argument("--steps", type=int, default=200, help="steps per rollout (default 200)")
    p.add_argument("--backend", choices=("mujoco", "bullet"), default="mujoco", help="quadruped physics")
    p.add_argument("--ids", default="", help="comma-separated ids to roll out (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--markdown", action="store_true", help="print the variants table as markdown")
    p.set_defaults(handler=_envs)

    p = sub.add_parser("train", help="meta-learn Hebbian rules (or static / LSTM weights) with Evolution Strategies")
    p.add_argument("--env", default="HebbAnt-Default-v0", help="env id, or comma-separated ids (the meta-task)")
    p.add_argument("--agent", default="hebbian", help="hebbian | static | lstm")
    p.add_argument("--rule", default="ABCD_lr", help="Hebbian rule (default ABCD_lr)")
    p.add_argument("--rho", type=int, default=1, help="synapses per rule: 1 = per-synapse rules")
    p.add_argument("--init", default="uniform", help="plastic weight init: uniform | normal | xavier | coevolved")
    p.add_argument("--popsize", type=int, default=200)
    p.add_argument("--generations", type=int, default=100)
    p.add_argument("--sigma", type=float, default=0.1)
    p.add_argument("--sigma-decay", type=float, default=0.999)
    p.add_argument("--sigma-floor", type=float, default=0.01)
    p.add_argument("--lr", type=float, default=0.2)
    p.add_argument("--lr-decay", type=float, default=0.995)
    p.add_argument("--lr-floor", type=float, default=0.001)
    p.add_argument("--optimizer", default="sgd", help="sgd | adam")
    p.add_argument("--l2", type=float, default=0.01, help="L2 penalty coefficient on mean(theta^2)")
    p.add_argument("--episodes", type=int, default=1, help="episodes per variant per individual")
    p.add_argument("--max-steps", type=int, default=1000, help="episode horizon")
    p.add_argument("--no-early-stop", action="store_true", help="disable the original code's early stops")
    p.add_argument("--env-termination", action="store_true",
                   help="keep the quadruped's own unhealthy termination during training (off by default)")
    p.add_argument("--backend", default="process", help="serial | process | ray")
    p.add_argument("--workers", type=int, default=0, help="worker processes (default: one per core)")
    p.add_argument("--address", default=None, help="Ray cluster address to join (ray backend)")
    p.add_argument("--physics", choices=("mujoco", "bullet"), default=None, help="quadruped physics backend")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/default", help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--tensorboard", action="store_true",
                   help="also log metrics as TensorBoard events in OUT/tensorboard (needs the tensorboard extra)")
    p.set_defaults(handler=_train)

    p = sub.add_parser("evaluate", help="evaluate a run's best policy or a policy file on variants")
    p.add_argument("target", help="run directory (uses best.pt) or policy file")
    p.add_argument("--env", required=True, help="env id or comma-separated ids")
    p.add_argument("--episodes", type=int, default=5)
    p.add_argument("--max-steps", type=int, default=None, help="episode horizon (default: the env's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--video", default=None, help="directory for an animated GIF of the first episode per env")
    p.add_argument("--csv", default=None, help="CSV path (default: RUN/evaluation.csv for a run directory)")
    p.add_argument("--stock-env", action="store_true",
                   help="evaluate a run on the envs as registered, not with the env kwargs it was trained with")
    p.set_defaults(handler=_evaluate)

    p = sub.add_parser("plot", help="overlay the learning curves of runs")
    p.add_argument("runs", nargs="+", help="run directories")
    p.add_argument("--out", default="learning_curves.png")
    p.set_defaults(handler=_plot)

    from agents.cli.experiments import add_experiment_commands
    from agents.cli.probes import add_probe_commands

    add_experiment_commands(sub)
    add_probe_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hebb-gym`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as exc:
        print(f"hebb-gym {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
