"""Learning-curve figures from run directories (matplotlib, headless)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from agents.training.rundir import read_metrics
from agents.util.figures import pyplot, save_figure


def plot_learning_curves(run_dirs: Sequence[str | os.PathLike], path: str | os.PathLike, title: str | None = None) -> Path:
    """Per run, overlaid: the search centre on fresh episodes (mean +- std, the learning curve; on a meta-task also
    its worst variant's mean, ``centre_min``), the population's mean fitness, and its best individual (dotted: one
    lucky episode, not a measure of learning); a PNG."""
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
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness")
    ax.set_title(title or "ES learning curve")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
