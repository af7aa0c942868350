"""Learning-curve figures from run directories (matplotlib, headless)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from agents.training.rundir import read_metrics, trainer_seconds
from agents.util.figures import pyplot, save_figure


def plot_learning_curves(run_dirs: Sequence[str | os.PathLike], path: str | os.PathLike, title: str | None = None,
                         target: float | None = None) -> Path:
    """Per run, overlaid: the search centre on fresh episodes (mean +- std, the learning curve; on a meta-task also
    its worst variant's mean, ``centre_min``), the population's mean fitness, and its best individual (dotted: one
    lucky episode, not a measure of learning); ``target``: a score to reach, as a horizontal line; a PNG."""
    plt = pyplot()
    if not run_dirs:
        raise ValueError("run_dirs is empty; give at least one run directory")
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for k, run in enumerate(run_dirs):
        rows = read_metrics(run)
        gens = [r["generation"] for r in rows]
        colour = f"C{k % 10}"
        label = Path(run).name or str(run)
        centre = [(r["generation"], r["centre_mean"], r["centre_std"]) for r in rows
                  if math.isfinite(r.get("centre_mean", math.nan))]
        if centre:
            g, m, sd = (np.array(c) for c in zip(*centre))
            ax.plot(g, m, color=colour, lw=2, marker="o", ms=2.5, label=f"{label} centre (fresh episodes)")
            ax.fill_between(g, m - sd, m + sd, color=colour, alpha=0.15, lw=0)
        worst = [(r["generation"], r["centre_min"]) for r in rows
                 if math.isfinite(r.get("centre_min", math.nan)) and r["centre_min"] < r["centre_mean"]]
        if worst:  # more than one training variant
            g, m = (np.array(c) for c in zip(*worst))
            ax.plot(g, m, color=colour, lw=1.2, ls="-.", marker="v", ms=2.5, label=f"{label} centre, worst variant")
        ax.plot(gens, [r["mean"] for r in rows], color=colour, ls="--", alpha=0.8, label=f"{label} population mean")
        ax.plot(gens, [r["best"] for r in rows], color=colour, ls=":", alpha=0.5, label=f"{label} best individual")
    if target is not None:
        ax.axhline(target, color="k", lw=1, ls=(0, (6, 3)), alpha=0.6, label=f"target {target:g}")
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness")
    ax.set_title(title or "ES learning curve")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


#: The curve models :func:`compute_to_target` fits to the centre's recent evaluations against env-steps.
EXTRAPOLATIONS = ("linear", "log")


def compute_to_target(rows: Sequence[dict[str, float]], target: float, fit_from: float = 0.5) -> dict[str, object]:
    """How far a run is from a centre score of ``target``, and an extrapolation of the compute to reach it.

    ``rows``: a run's ``metrics.csv`` (:func:`agents.training.rundir.read_metrics`). The centre evaluations are
    taken against the env-steps and the trainer's minutes (evaluation and centre time) up to them. If one reached
    ``target``, the first such is the answer (``reached``). Otherwise two least-squares fits over the centre
    evaluations from the ``fit_from`` fraction of them on: ``linear`` (the score keeps rising at the fitted rate
    per env-step: the optimistic end) and ``log`` (score linear in log env-steps: diminishing returns); each gives
    the env-steps where it crosses ``target`` (None where its fitted slope is not positive) and the minutes at the
    run's mean env-steps per minute so far. An extrapolation, not a measurement: a curve may flatten or jump.
    """
    if not 0.0 <= fit_from < 1.0:
        raise ValueError(f"fit_from={fit_from!r} must be in [0, 1): the fraction of the centre evaluations left out")
    steps, minutes, points = 0, 0.0, []
    for r in rows:
        steps += int(r["env_steps"])
        minutes += trainer_seconds(r) / 60.0
        if math.isfinite(r.get("centre_mean", math.nan)):
            points.append((steps, minutes, r["centre_mean"], int(r["generation"])))
    out: dict[str, object] = {"target": target, "env_steps": steps, "minutes": minutes,
                              "evaluations": len(points), "best_centre": max((p[2] for p in points), default=None)}
    hit = next((p for p in points if p[2] >= target), None)
    out["reached"] = hit is not None
    if hit is not None:
        out.update({"reached_env_steps": hit[0], "reached_minutes": hit[1], "reached_generation": hit[3]})
        return out
    used = points[int(len(points) * fit_from):]
    if len(used) < 3:
        raise ValueError(f"{len(points)} centre evaluations leave {len(used)} to fit from fit_from={fit_from}; "
                         "at least 3 are needed (evaluate the centre more often, or lower fit_from)")
    x = np.array([p[0] for p in used], dtype=float)
    y = np.array([p[2] for p in used], dtype=float)
    per_minute = steps / minutes if minutes > 0 else math.nan
    for model in EXTRAPOLATIONS:
        u = x if model == "linear" else np.log(x)
        slope, intercept = np.polyfit(u, y, 1)
        at_target = None
        if slope > 0:
            crossing = (target - intercept) / slope
            at_target = float(crossing if model == "linear" else math.exp(min(crossing, 700.0)))
        out[model] = {"slope": float(slope), "intercept": float(intercept), "fitted_points": len(used),
                      "env_steps": at_target,
                      "minutes": None if at_target is None else at_target / per_minute}
    return out


def compute_to_target_text(name: str, estimate: dict[str, object]) -> str:
    """One line of :func:`compute_to_target`'s answer, as ``hebb-gym plot --target`` prints it."""
    t = estimate["target"]
    so_far = f"{estimate['env_steps'] / 1e6:.2f} M env-steps, {estimate['minutes']:.0f} min"
    if estimate["reached"]:
        return (f"{name}: centre reached {t:g} at generation {estimate['reached_generation']}, after "
                f"{estimate['reached_env_steps'] / 1e6:.2f} M env-steps, {estimate['reached_minutes']:.0f} min")
    parts = []
    for model in EXTRAPOLATIONS:
        e = estimate[model]
        parts.append(f"{model} fit: never (slope <= 0)" if e["env_steps"] is None else
                     f"{model} fit: {e['env_steps'] / 1e6:.1f} M env-steps, {e['minutes'] / 60:.1f} h")
    best = estimate["best_centre"]
    return (f"{name}: best centre {best:.1f} < {t:g} after {so_far}; to {t:g}, extrapolated from the last "
            f"{estimate['linear']['fitted_points']} centre evaluations at this run's speed: " + "; ".join(parts))
