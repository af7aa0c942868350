"""Ship a trained run's best policy: copy it into this package and record it in ``index.json``.

    python -m agents.pretrained.add RUN --name static-ant [--episodes 100] [--seed 100000] [--command "..."] [--env IDS]
                                        [--csv docs/data/static-ant-eval.csv] [--policy best.pt]

The entry records what ``hebb-gym pretrained`` lists: the agent kind, the training variants and preset,
the command, the env-steps and wall-clock of the run (from its ``metrics.csv``), and the distance and
return of the shipped policy over ``--episodes`` fresh 1000-step episodes of every training variant and
of any others named by ``--env`` (the run's own env settings, no early stop), with the file's size and SHA-256. ``--csv`` also writes those scores as ``hebb-gym evaluate --csv`` would.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any, Sequence

from agents.evaluation.envs import parse_env_ids
from agents.experiments.evaluate import evaluate_policy_on, scores_csv
from agents.policies import load_policy
from agents.pretrained import INDEX, PREFIX, entries, score_text
from agents.training import TrainConfig, read_metrics
from agents.training.rundir import trainer_seconds
from agents.util.atomic import atomic_write_json, atomic_write_text

FOLDER = Path(__file__).parent


def add(run_dir: str | Path, name: str, episodes: int = 100, seed: int = 100_000, command: str = "",
        max_steps: int = 1000, env_ids: Sequence[str] | None = None,
        csv: str | Path | None = None, policy_file: str = "best.pt") -> dict[str, Any]:
    """Evaluate ``run_dir``'s ``best.pt``, copy it to ``NAME.pt`` beside this module and index it; the entry.

    ``policy_file``: ship another policy file of the run instead (``last.pt``: the final centre), recorded in
    the entry as ``run_file``.

    ``env_ids``: the variants to score it on (default: the ones it trained on; they are scored either way,
    first, so that unseen variants can be added, as ``hebb-gym evaluate`` with the same seeds would).
    ``csv``: also write the scores there, in ``hebb-gym evaluate --csv``'s format.
    """
    run = Path(run_dir)
    if not name.replace("-", "").isalnum():
        raise ValueError(f"name={name!r}: use letters, digits and dashes")
    config = TrainConfig.from_json(json.loads((run / "config.json").read_text())["train"])
    rows = read_metrics(run)
    if Path(policy_file).name != policy_file or not (run / policy_file).is_file():
        raise ValueError(f"policy_file={policy_file!r}: the name of a policy file in {run} "
                         f"(accepted: {', '.join(sorted(p.name for p in run.glob('*.pt') if p.name != 'checkpoint.pt'))})")
    policy = load_policy(run / policy_file)
    env_kwargs = config.rollout_env_kwargs()
    scores, measured = {}, []
    scored = list(config.env) + [e for e in (env_ids or ()) if e not in config.env]
    for env_id in scored:
        s = evaluate_policy_on(policy, env_id, episodes, seed, max_steps=max_steps, env_kwargs=env_kwargs)
        measured.append(s)
        row = s.row()  # the car reports no distance: None in the index
        scores[env_id] = {"episodes": episodes, "seed": seed, "max_steps": max_steps,
                          **{k: None if row[k] == "" else row[k]
                             for k in ("distance_mean", "distance_std", "return_mean", "return_std")}}
    if csv is not None:
        atomic_write_text(csv, scores_csv(measured))
    target = FOLDER / f"{name}.pt"
    shutil.copyfile(run / policy_file, target)
    data = target.read_bytes()
    centres = [r["best_centre"] for r in rows if math.isfinite(r["best_centre"])]
    minutes = sum(trainer_seconds(r) for r in rows) / 60
    entry = {
        "name": name, "file": target.name, "run_file": policy_file, "agent": config.agent, "env": list(config.env),
        "preset": config.preset, "command": command, "rollout_env_kwargs": env_kwargs,
        "generations": len(rows), "env_steps": int(sum(r["env_steps"] for r in rows)),
        "wall_clock_minutes": round(minutes, 1), "best_centre": max(centres, default=None),
        "num_params": policy.num_params, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
        "scores": scores,
    }
    others = [e for e in entries() if e["name"] != name]
    atomic_write_json(FOLDER / INDEX, {"agents": others + [entry]})
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.pretrained.add", description=__doc__.splitlines()[0])
    parser.add_argument("run", help="the training run directory (its best.pt is shipped)")
    parser.add_argument("--policy", default="best.pt", help="ship this policy file of the run instead (e.g. last.pt)")
    parser.add_argument("--name", required=True, help=f"the shipped name ({PREFIX}NAME)")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=100_000, help="episode i resets with seed + i")
    parser.add_argument("--command", default="", help="the command that trained the run, as the index shows it")
    parser.add_argument("--env", default=None,
                        help="comma-separated variants to score it on besides those it trained on")
    parser.add_argument("--csv", default=None, help="also write the scores to this CSV (hebb-gym evaluate's format)")
    args = parser.parse_args(argv)
    env_ids = None if args.env is None else parse_env_ids(args.env, one_task=False, name="--env")
    entry = add(args.run, args.name, args.episodes, args.seed, args.command, env_ids=env_ids, csv=args.csv,
                policy_file=args.policy)
    for env_id, s in entry["scores"].items():
        print(f"{env_id}: {score_text(s)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
