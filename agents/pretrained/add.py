"""Ship a trained run's best policy: copy it into this package and record it in ``index.json``.

    python -m agents.pretrained.add RUN --name static-ant [--episodes 100] [--seed 100000] [--command "..."] [--env IDS]
                                        [--csv docs/data/static-ant-eval.csv] [--policy best.pt[,last.pt]]
                                        [--choose-episodes 10[,N2...]] [--choose-keep K] [--choose-seed 1000]
                                        [--choose-by return] [--workers 1]

The entry records what ``hebb-gym pretrained`` lists: the agent kind, the training variants and preset,
the command, the generations, env-steps and wall-clock behind the shipped file and its own centre evaluation (from
the run's ``metrics.csv``, up to the generation that saved it), and the distance and
return of the shipped policy over ``--episodes`` fresh 1000-step episodes of every training variant and
of any others named by ``--env`` (the run's own env settings, no early stop), with the file's size and SHA-256. ``--csv`` also writes those scores as ``hebb-gym evaluate --csv`` would.
Several ``--policy`` files: the one with the best mean over ``--choose-episodes`` other fresh episodes of the
training variants ships (a centre chosen by a few noisy evaluations is re-judged on tracks it was not chosen on),
and the entry records that choice. Many files (``--policy 'centre-*.pt'``, every kept centre): a choice in stages,
``--choose-episodes 50,200 --choose-keep 8`` plays all on 50 episodes, the 8 best on 200 more, and ships the best
of those by its mean over all 250; ``--workers 2`` plays two files at once.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from agents.evaluation.envs import parse_env_ids
from agents.experiments.evaluate import evaluate_policy_on, scores_csv
from agents.policies import load_policy
from agents.pretrained import INDEX, PREFIX, entries, score_text, started_from
from agents.training import TrainConfig, read_metrics
from agents.training.rundir import rows_behind, trainer_seconds
from agents.util.atomic import atomic_write, atomic_write_json, atomic_write_text

FOLDER = Path(__file__).parent
CHOOSE_BY = ("return", "distance")


def policy_files_in(run: str | Path, pattern: str = "*.pt") -> list[str]:
    """The names of ``run``'s policy files matching ``pattern``, sorted (``checkpoint.pt``, the ES state, is none)."""
    return sorted(f.name for f in Path(run).glob(pattern) if f.name != "checkpoint.pt")


def _file_values(job: tuple[Path, tuple[str, ...], int, int, int, dict[str, Any], str]) -> np.ndarray:
    """One policy file's ``by`` over ``episodes`` episodes (seeds ``seed`` on) of each env id, concatenated."""
    path, env_ids, episodes, seed, max_steps, env_kwargs, by = job
    policy = load_policy(path)
    got = [evaluate_policy_on(policy, e, episodes, seed, max_steps=max_steps, env_kwargs=env_kwargs) for e in env_ids]
    return np.concatenate([s.returns if by == "return" else s.distances for s in got])


def choice_stages(episodes: int | Sequence[int]) -> list[int]:
    """The episode counts of a choice's stages: one count, or one per stage, each >= 1."""
    stages = [episodes] if isinstance(episodes, (int, np.integer)) else list(episodes)
    if not stages or any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 for n in stages):
        raise ValueError(f"choose_episodes={episodes!r}: a count >= 1, or one per stage")
    return [int(n) for n in stages]


def choose(run: Path, policy_files: Sequence[str], env_ids: Sequence[str], episodes: int | Sequence[int], seed: int,
           max_steps: int, env_kwargs: dict[str, Any], by: str = "return", keep: int | None = None,
           workers: int = 1) -> tuple[str, dict[str, float], list[dict[str, float]]]:
    """The file of ``policy_files`` with the highest mean ``by`` over its choosing episodes of each of ``env_ids``;
    every file's mean over the episodes it played; and each stage's means.

    ``episodes``: one count, or one per stage. Stage k plays the ``episodes[k]`` seeds after those of the stages
    before it (the first from ``seed``); after every stage but the last only the ``keep`` files with the best
    mean so far go on (None: all), and the choice is by the mean over all stages a file played. ``workers``
    files play at once, each in a process of its own (the same numbers as one process)."""
    if by not in CHOOSE_BY:
        raise ValueError(f"choose_by={by!r} is not known; accepted: {', '.join(CHOOSE_BY)}")
    stages = choice_stages(episodes)
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
        raise ValueError(f"choose_keep={keep!r}: how many files go on after a stage, >= 1 (or None: all)")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers={workers!r} must be an int >= 1")
    played: dict[str, list[np.ndarray]] = {f: [] for f in policy_files}
    per_stage, alive, first = [], list(policy_files), seed
    pool = get_context("spawn").Pool(min(workers, len(alive))) if workers > 1 else None
    try:
        for k, n in enumerate(stages):
            jobs = [(run / f, tuple(env_ids), n, first, max_steps, env_kwargs, by) for f in alive]
            values = pool.map(_file_values, jobs) if pool is not None else [_file_values(j) for j in jobs]
            for f, v in zip(alive, values):
                if np.isnan(v).any():
                    raise ValueError(f"choose_by={by!r}: {', '.join(env_ids)} report no {by}; choose by return")
                played[f].append(v)
            per_stage.append({f: float(v.mean()) for f, v in zip(alive, values)})
            first += n
            if k < len(stages) - 1 and keep is not None:
                alive = sorted(alive, key=lambda f: -np.concatenate(played[f]).mean())[:keep]
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    means = {f: float(np.concatenate(v).mean()) for f, v in played.items()}
    return max(alive, key=means.get), means, per_stage


def compute_behind(policy_file: str, rows: list[dict[str, float]], centre_score: str = "mean") -> dict[str, Any]:
    """What the index records of the training behind a run's ``policy_file``, from the run's ``metrics.csv`` rows:
    the generations, env-steps and trainer minutes up to the generation that saved the file
    (:func:`~agents.training.rundir.rows_behind`; a run that went on after it does not count), and
    ``centre_score``, the file's own centre evaluation (its ``centre_mean`` or ``centre_min``; None when that
    generation evaluated no centre)."""
    behind = rows[:rows_behind(policy_file, rows)]
    score = behind[-1][f"centre_{centre_score}"] if behind else math.nan
    return {"generations": len(behind), "env_steps": int(sum(r["env_steps"] for r in behind)),
            "wall_clock_minutes": round(sum(trainer_seconds(r) for r in behind) / 60, 1),
            "centre_score": score if math.isfinite(score) else None}


def add(run_dir: str | Path, name: str, episodes: int = 100, seed: int = 100_000, command: str = "",
        max_steps: int = 1000, env_ids: Sequence[str] | None = None,
        csv: str | Path | None = None, policy_file: str | Sequence[str] = "best.pt",
        choose_episodes: int | Sequence[int] = 10, choose_seed: int = 1000, choose_by: str = "return",
        choose_keep: int | None = None, workers: int = 1) -> dict[str, Any]:
    """Evaluate ``run_dir``'s ``best.pt``, copy it to ``NAME.pt`` beside this module and index it; the entry.

    ``policy_file``: ship another policy file of the run instead (``last.pt``: the final centre), recorded in
    the entry as ``run_file``. Several: ship the one :func:`choose` prefers on ``choose_episodes`` episodes of
    the training variants from ``choose_seed`` (by ``choose_by``), which must not overlap the scoring seeds;
    the entry's ``chosen_by`` holds every file's mean. Several counts in ``choose_episodes``: a choice in
    stages, the ``choose_keep`` best going on after each (:func:`choose`); ``workers`` files play at once.
    A run begun with ``init_policy`` records it as ``started_from`` (:func:`started_from`): its own generations
    and env-steps are the fine-tuning's only.

    ``env_ids``: the variants to score it on (default: the ones it trained on; they are scored either way,
    first, so that unseen variants can be added, as ``hebb-gym evaluate`` with the same seeds would).
    ``csv``: also write the scores there, in ``hebb-gym evaluate --csv``'s format.
    """
    run = Path(run_dir)
    if not name.replace("-", "").isalnum():
        raise ValueError(f"name={name!r}: use letters, digits and dashes")
    saved = json.loads((run / "config.json").read_text())
    config = TrainConfig.from_json(saved["train"])
    rows = read_metrics(run)
    files = [policy_file] if isinstance(policy_file, str) else list(policy_file)
    for f in files:
        if Path(f).name != f or not (run / f).is_file():
            raise ValueError(f"policy_file={f!r}: the name of a policy file in {run} "
                             f"(accepted: {', '.join(policy_files_in(run))})")
        rows_behind(f, rows)  # a kept centre of a generation the metrics have
    if not files or len(set(files)) != len(files):
        raise ValueError(f"policy_file={policy_file!r}: one file, or several different ones to choose from")
    env_kwargs = config.rollout_env_kwargs()
    chosen_by = None
    if len(files) > 1:
        staged = not isinstance(choose_episodes, (int, np.integer))
        counts = choice_stages(choose_episodes)
        total = sum(counts)
        if choose_seed < seed + episodes and seed < choose_seed + total:
            raise ValueError(f"choose_seed={choose_seed!r}: its seeds {choose_seed}-{choose_seed + total - 1} "
                             f"overlap the scoring seeds {seed}-{seed + episodes - 1}; choose on other episodes")
        policy_file, means, stages = choose(run, files, config.env, choose_episodes, choose_seed, max_steps,
                                            env_kwargs, choose_by, choose_keep, workers)
        chosen_by = {"episodes": counts if staged else counts[0], "seed": choose_seed,
                     "by": choose_by, "means": means}
        if staged:
            chosen_by.update(keep=choose_keep, stages=stages)
    else:
        policy_file = files[0]
    policy = load_policy(run / policy_file)
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
    data = (run / policy_file).read_bytes()
    atomic_write(target, lambda f: f.write(data))
    entry = {
        "name": name, "file": target.name, "run_file": policy_file, "agent": config.agent, "env": list(config.env),
        "preset": config.preset, "command": command, "rollout_env_kwargs": env_kwargs,
        **compute_behind(policy_file, rows, config.centre_score),
        "num_params": policy.num_params, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
        "scores": scores,
    }
    if chosen_by is not None:
        entry["chosen_by"] = chosen_by
    shipped = entries()
    # what the run recorded when it started; a run from before that record: where the index says it began
    start = saved["started_from"] if "started_from" in saved else started_from(config.init_policy, shipped)
    if start is not None:
        entry["started_from"] = start
    others = [e for e in shipped if e["name"] != name]
    atomic_write_json(FOLDER / INDEX, {"agents": others + [entry]})
    return entry


def _counts(text: str) -> int | list[int]:
    """``--choose-episodes``: one count, or several comma-separated (the stages of a choice)."""
    try:
        counts = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a count, or counts separated by commas (e.g. 50,200)") from None
    return counts[0] if len(counts) == 1 else counts


def policy_names(run: str | Path, spec: str) -> list[str]:
    """The policy files named by ``--policy``: comma-separated names, where a name with ``*`` or ``?`` stands for
    every file of ``run`` it matches (sorted; ``checkpoint.pt`` never)."""
    names = []
    for part in (p.strip() for p in spec.split(",")):
        if any(c in part for c in "*?["):
            found = policy_files_in(run, part)
            if not found:
                raise ValueError(f"--policy {part!r}: no file of {run} matches it")
            names += found
        else:
            names.append(part)
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.pretrained.add", description=__doc__.splitlines()[0])
    parser.add_argument("run", help="the training run directory (its best.pt is shipped)")
    parser.add_argument("--policy", default="best.pt",
                        help="ship this policy file of the run instead (e.g. last.pt), or the best of several "
                             "(comma-separated: best.pt,last.pt; a pattern such as 'centre-*.pt' names every "
                             "file of the run it matches) on the --choose episodes")
    parser.add_argument("--choose-episodes", type=_counts, default=10,
                        help="episodes per training variant that choose among several --policy files; several "
                             "(comma-separated, e.g. 50,200): a choice in stages, --choose-keep going on after each")
    parser.add_argument("--choose-keep", type=int, default=None,
                        help="how many files go on to the next stage of a staged choice (default: all)")
    parser.add_argument("--workers", type=int, default=1, help="files that play their choosing episodes at once")
    parser.add_argument("--choose-seed", type=int, default=1000,
                        help="their first seed (kept apart from the scoring seeds)")
    parser.add_argument("--choose-by", default="return", choices=CHOOSE_BY, help="what the choice compares")
    parser.add_argument("--name", required=True, help=f"the shipped name ({PREFIX}NAME)")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=100_000, help="episode i resets with seed + i")
    parser.add_argument("--command", default="", help="the command that trained the run, as the index shows it")
    parser.add_argument("--env", default=None,
                        help="comma-separated variants to score it on besides those it trained on")
    parser.add_argument("--csv", default=None, help="also write the scores to this CSV (hebb-gym evaluate's format)")
    args = parser.parse_args(argv)
    env_ids = None if args.env is None else parse_env_ids(args.env, one_task=False, name="--env")
    files = policy_names(args.run, args.policy)
    entry = add(args.run, args.name, args.episodes, args.seed, args.command, env_ids=env_ids, csv=args.csv,
                policy_file=files[0] if len(files) == 1 else files, choose_episodes=args.choose_episodes,
                choose_seed=args.choose_seed, choose_by=args.choose_by, choose_keep=args.choose_keep,
                workers=args.workers)
    if "chosen_by" in entry:
        means = ", ".join(f"{f} {m:.1f}" for f, m in entry["chosen_by"]["means"].items())
        print(f"chose {entry['run_file']} ({entry['chosen_by']['by']} over {entry['chosen_by']['episodes']} "
              f"episodes from seed {entry['chosen_by']['seed']}: {means})")
    for env_id, s in entry["scores"].items():
        print(f"{env_id}: {score_text(s)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
