"""The ``probe`` and ``rules`` sub-commands of ``hebb-gym`` (wired in by :func:`add_probe_commands`)."""

from __future__ import annotations

import argparse
from typing import Any

from agents.evaluation.envs import PHYSICS, parse_env_ids
from agents.experiments.evaluate import run_env_kwargs
from agents.experiments.probes import PROBE_SYNTAX, run_probe
from agents.experiments.rule_analysis import analyse_rules
from agents.util.tables import text_table

__all__ = ["add_probe_commands"]


def _env_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Env kwargs: a run directory's training settings (physics, termination), then ``--physics``."""
    return run_env_kwargs(args.run, args.physics)


def _env_id(args: argparse.Namespace) -> str | None:
    """``--env``: one registered id, or None for the one the policy was made for."""
    if args.env is None:
        return None
    ids = parse_env_ids(args.env, one_task=False, name="--env")
    if len(ids) != 1:
        raise ValueError(f"--env={args.env!r} names {len(ids)} envs; accepted: one env id")
    return ids[0]


def _probe(args: argparse.Namespace) -> int:
    """Run a robustness probe and print where its files went."""
    result, files = run_probe(
        args.run,
        args.probe,
        args.out,
        env_id=_env_id(args),
        episodes=args.episodes,
        max_steps=args.max_steps,
        seed=args.seed,
        env_kwargs=_env_kwargs(args),
        which=args.which,
    )
    rows = []
    for r in result.rollouts:
        n = r.lengths
        dist = ""
        if r.has_distance:
            d = [r.distances[e, n[e] - 1] for e in range(len(n)) if n[e]]
            dist = f"{float(sum(d) / len(d)):.3f}" if d else ""
        rows.append([r.label, f"{r.returns.mean():.2f} +- {r.returns.std():.2f}", dist, float(n.mean())])
    print(text_table(["condition", "return", "distance", "length"], rows))
    for msg in result.warnings():
        print(f"warning: {msg}")
    for key, path in files.items():
        print(f"{key}: {path}")
    return 0


def _rules(args: argparse.Namespace) -> int:
    """Analyse a HebbianPolicy's evolved rules and print the clustering and where the files went."""
    res = analyse_rules(
        args.run,
        args.out,
        env_id=_env_id(args),
        max_steps=args.max_steps,
        seed=args.seed,
        k_max=args.k_max,
        every=args.every,
        env_kwargs=_env_kwargs(args),
        which=args.which,
    )
    headers = ["cluster", "rules", "synapses"] + [f"centre {n}" for n in res.coefficients]
    rows = [
        [c["cluster"], c["rules"], c["synapses"]] + [c[f"centre_{n}"] for n in res.coefficients]
        for c in res.clusters
    ]
    print(f"{res.k} cluster(s) of rules ({res.structure} structure; k by best mean silhouette)")
    print(text_table(headers, rows))
    if res.explained.get("all"):
        ev = ", ".join(f"{100 * v:.1f}%" for v in res.explained["all"])
        print(f"weight trajectory: explained variance of the first components {ev}")
    for key, path in res.files.items():
        print(f"{key}: {path}")
    return 0


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; accepted: an integer >= 1") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v} is not accepted; use an integer >= 1")
    return v


def _common(p: argparse.ArgumentParser) -> None:
    """Flags shared by ``probe`` and ``rules``."""
    p.add_argument("run", help="run directory (uses best.pt, see --which) or policy file")
    p.add_argument("--env", default=None, help="env id (default: the one the policy was made for)")
    p.add_argument(
        "--max-steps",
        type=_positive_int,
        default=None,
        help="episode horizon (default: the env's registered limit, 1000 for the paper's tasks)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="env seeds are SEED, SEED+1, ...; also seeds the weights"
    )
    p.add_argument("--which", choices=("best", "last"), default="best", help="policy file of a run directory")
    p.add_argument("--physics", choices=PHYSICS, default=None, help="quadruped physics backend")
    p.add_argument("--out", required=True, help="output directory")


def add_probe_commands(sub: Any) -> None:
    """Add the ``probe`` and ``rules`` sub-commands (with handlers) to ``hebb-gym``'s subparsers object."""
    p = sub.add_parser(
        "probe",
        help="robustness probes: freeze plastic weights, saturate actuators, zero weights mid-episode",
        description="Run a policy with and without a probe on the same seeds; write per-step CSVs, "
        "a curves PNG and (weight probes) weight heat maps. See docs/probes.md.",
    )
    _common(p)
    p.add_argument("--probe", required=True, metavar="SPEC", help=f"{PROBE_SYNTAX} (steps are 0-based)")
    p.add_argument("--episodes", type=_positive_int, default=5, help="episodes per condition (default 5)")
    p.set_defaults(handler=_probe)

    p = sub.add_parser(
        "rules",
        help="analyse evolved Hebbian rules: distributions, clusters, weight-trajectory PCA",
        description="Histograms and stats of the evolved coefficients per layer, k-means clusters of the "
        "rules (k by silhouette) and one episode's weight trajectory on its principal "
        "components. See docs/probes.md.",
    )
    _common(p)
    p.add_argument("--k-max", type=int, default=8, help="largest number of clusters tried (default 8)")
    p.add_argument(
        "--every",
        type=_positive_int,
        default=None,
        help="trajectory sample stride in steps (default: 1, larger for big networks)",
    )
    p.set_defaults(handler=_rules)
