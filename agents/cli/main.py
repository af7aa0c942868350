"""The ``hebb-gym`` command line: one sub-command per job, each a thin layer over the library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

import hebb_gym
from agents import pretrained
from agents.cli.experiments import add_experiment_commands
from agents.cli.options import add_settings, setting_values
from agents.cli.probes import add_probe_commands
from agents.evaluation.envs import PHYSICS, import_env_modules, parse_env_ids
from agents.experiments.evaluate import evaluate_to_files, scores_csv
from agents.util.atomic import atomic_write_text
from agents.experiments.random_rollouts import rollout_all, summary_rows
from agents.training import TrainConfig, TrainingError, read_metrics, train, train_config
from agents.training.presets import list_presets, preset_description
from agents.training.curves import compute_to_target, compute_to_target_text, plot_learning_curves
from agents.util.settings import settings_of
from agents.util.tables import markdown_table, text_table

Handler = Callable[[argparse.Namespace], int]


def _envs(args: argparse.Namespace) -> int:
    rows = [[v.id, v.task, v.variant, v.description] for v in hebb_gym.VARIANTS]
    if args.markdown:
        print(markdown_table(["ID", "task", "variant", "what differs from default"], rows))
        return 0
    if not args.rollout:
        print(text_table(["id", "task", "variant", "description"], rows))
        return 0
    ids = parse_env_ids(args.ids, one_task=False, name="--ids") if args.ids else None
    results = rollout_all(ids, max_steps=args.steps, seed=args.seed, backend=args.backend)
    headers = ["id", "return", "length", "steps/s", "distance"]
    print(text_table(headers, summary_rows(results)))
    return 0


def _train(args: argparse.Namespace) -> int:
    config = train_config(setting_values(args, settings_of(TrainConfig).values()), args.out, args.resume)
    result = train(config, args.out, resume=args.resume, progress=not args.quiet)
    print(f"best fitness {result.best_fitness:.3f} after {result.generations} generations")
    print(f"learning curve: {result.curve_path}")
    print(f"best policy:    {result.best_path}")
    print(f"last policy:    {result.last_path}")
    return 0


def _presets(args: argparse.Namespace) -> int:
    if args.show:
        config = TrainConfig.from_preset(args.show, **({"agent": args.agent} if args.agent else {}))
        print(text_table(["setting", "value"], [[k, v] for k, v in config.to_json().items()]))
        return 0
    print(text_table(["preset", "description"], [[name, preset_description(name)] for name in list_presets()]))
    return 0


def _pretrained(args: argparse.Namespace) -> int:
    shipped = pretrained.entries()
    if not shipped:
        print("this build ships no pretrained agents")
        return 0
    rows = []
    for e in shipped:
        scores = ", ".join(f"{env}{'*' if env in e['env'] else ''}: {pretrained.score_text(s, brief=True)}"
                           for env, s in e["scores"].items())
        total = pretrained.total_compute(e)  # a fine-tune: with the compute it started from, its own in brackets
        own = "started_from" in e
        rows.append([pretrained.PREFIX + e["name"], e["agent"], ",".join(e["env"]), e.get("preset") or "",
                     f"{total['env_steps'] / 1e6:.1f}M" + (f" ({e['env_steps'] / 1e6:.1f}M its own)" if own else ""),
                     f"{total['wall_clock_minutes']:.0f} min" + (f" ({e['wall_clock_minutes']:.0f} its own)" if own else ""),
                     scores])
    print(text_table(["name", "agent", "trained on", "preset", "env-steps", "wall-clock",
                      "score over fresh episodes: distance, or return (*: a training variant)"], rows))
    for e in shipped:
        print(f"{pretrained.PREFIX}{e['name']}: {e['command']}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    out_csv = args.csv or (Path(args.target) / "evaluation.csv" if Path(args.target).is_dir() else None)
    env_ids = parse_env_ids(args.env, one_task=False, name="--env")
    scores = evaluate_to_files(args.target, env_ids, args.episodes, None, args.seed,
                               args.max_steps, args.video, stock_env=args.stock_env, physics=args.physics,
                               video_width=args.video_width)
    rows = []
    for s in scores:
        r = s.row()
        dist = "" if r["distance_mean"] == "" else f"{r['distance_mean']:.3f} +- {r['distance_std']:.3f}"
        rows.append([r["env"], f"{r['return_mean']:.2f} +- {r['return_std']:.2f}", dist, r["length_mean"]])
    print(text_table(["env", "return", "distance", "length"], rows))  # the results first: a failed write loses none
    if out_csv:
        atomic_write_text(out_csv, scores_csv(scores))
        print(f"csv: {out_csv}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    print(plot_learning_curves(args.runs, args.out, target=args.target))
    if args.target is not None:
        for run in args.runs:
            print(compute_to_target_text(Path(run).name or str(run), compute_to_target(read_metrics(run), args.target)))
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
    p.add_argument("--backend", choices=PHYSICS, default=PHYSICS[0], help="quadruped physics")
    p.add_argument("--ids", default="", help="comma-separated ids to roll out (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--markdown", action="store_true", help="print the variants table as markdown")
    p.set_defaults(handler=_envs)

    p = sub.add_parser("train", help="meta-learn Hebbian rules (or static / LSTM weights) with Evolution Strategies")
    add_settings(p, settings_of(TrainConfig).values(), given_only=True)  # one flag per TrainConfig field
    p.add_argument("--out", default="runs/default", help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_train)

    p = sub.add_parser("presets", help="list the shipped training presets (hebb-gym train --preset NAME)")
    p.add_argument("--show", default=None, help="print every resolved setting of this preset")
    p.add_argument("--agent", default=None, help="the agent kind to resolve --show for (presets may differ by kind)")
    p.set_defaults(handler=_presets)

    p = sub.add_parser("pretrained", help="list the agents shipped with the package (pretrained:NAME)")
    p.set_defaults(handler=_pretrained)

    p = sub.add_parser("evaluate", help="evaluate a run's best policy or a policy file on variants")
    p.add_argument("target", help="run directory (uses best.pt), policy file, or pretrained:NAME")
    p.add_argument("--env", required=True, help="env id or comma-separated ids")
    p.add_argument("--episodes", type=int, default=5)
    p.add_argument("--max-steps", type=int, default=None, help="episode horizon (default: the env's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--video", default=None, help="directory for an animated GIF of the first episode per env")
    p.add_argument("--video-width", type=int, default=None, help="the GIF's width in pixels (default: the env's frames')")
    p.add_argument("--csv", default=None, help="CSV path (default: RUN/evaluation.csv for a run directory)")
    p.add_argument("--stock-env", action="store_true",
                   help="evaluate a run on the envs as registered, not with the env kwargs it was trained with")
    p.add_argument("--physics", choices=PHYSICS, default=None,
                   help="quadruped physics backend (default: the one the run trained on)")
    p.set_defaults(handler=_evaluate)

    p = sub.add_parser("plot", help="overlay the learning curves of runs")
    p.add_argument("runs", nargs="+", help="run directories")
    p.add_argument("--out", default="learning_curves.png")
    p.add_argument("--target", type=float, default=None,
                   help="a centre score to reach: drawn, and per run when it was reached or, extrapolated from "
                        "its recent centre evaluations, how many env-steps and hours it would take")
    p.set_defaults(handler=_plot)

    add_experiment_commands(sub)
    add_probe_commands(sub)
    for name in ("evaluate", "ppo", "compare", "probe", "rules"):  # train has it as a TrainConfig setting
        sub.choices[name].add_argument(
            "--env-module", action="append", default=[], metavar="MODULE",
            help="import this module first, which registers env ids (comma-separated or repeated)")
    return parser


def _import_env_modules(args: argparse.Namespace) -> None:
    names = getattr(args, "env_module", None)
    if isinstance(names, list) and all(isinstance(n, str) for n in names):  # the non-train commands' flag
        import_env_modules([m.strip() for n in names for m in n.split(",") if m.strip()])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hebb-gym`` console script."""
    args = build_parser().parse_args(argv)
    try:
        _import_env_modules(args)
        return int(args.handler(args) or 0)
    except (ValueError, TypeError, OSError, TrainingError) as exc:  # expected failures: one line, exit code 2
        what = f"{exc.strerror}: {exc.filename}" if isinstance(exc, OSError) and exc.filename else exc
        print(f"hebb-gym {args.command}: error: {what}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hebb-gym {args.command}: stopped by a signal{_resume_hint(args)}", file=sys.stderr)
        return 130


def _resume_hint(args: argparse.Namespace) -> str:
    out = getattr(args, "out", None)
    if args.command != "train" or out is None or not (Path(out) / "checkpoint.pt").exists():
        return ""
    return f"; every finished generation is saved: continue with  hebb-gym train --resume --out {out}"


if __name__ == "__main__":
    sys.exit(main())
