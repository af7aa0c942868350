"""Learning-curve figures from run directories (matplotlib, headless)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from agents.training.rundir import read_metrics
from agents.util.figures import pyplot, save_figure


def plot_learning_curves(run_dirs: Sequence[str | os.PathLike], path: str | os.PathLike, title: str | None = None) -> Path:
    """Best and mean fitness per generation of one or more runs, overlaid, saved as a PNG."""
    plt = pyplot()
    if not run_dirs:
        raise ValueError("run_dirs is empty; give at least one run directory")
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for k, run in enumerate(run_dirs):
        rows = read_metrics(run)
        gens = [r["generation"] for r in rows]
        colour = f"C{k % 10}"
        label = Path(run).name or str(run)
        ax.plot(gens, [r["mean"] for r in rows], color=colour, label=f"{label} mean")
        ax.plot(gens, [r["best"] for r in rows], color=colour, ls="--", alpha=0.7, label=f"{label} best")
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness")
    ax.set_title(title or "ES learning curve")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
