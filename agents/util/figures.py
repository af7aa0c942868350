"""The one matplotlib set-up of the package: headless pyplot, atomic PNG saving, grouped bar charts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from agents.util.atomic import atomic_write


def pyplot() -> Any:
    """matplotlib.pyplot on the headless Agg backend (imported on first use: matplotlib is slow to load)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike) -> Path:
    """Save ``fig`` as a PNG atomically and close it."""
    path = Path(path)
    try:
        atomic_write(path, lambda f: fig.savefig(f, format="png"))
    finally:
        pyplot().close(fig)
    return path


def grouped_bars(ax: Any, groups: Sequence[str], series: Sequence[str], means: np.ndarray, stds: np.ndarray,
                 ylabel: str) -> None:
    """Bars of ``means[series, group]`` with ``stds`` as error bars, one cluster per group."""
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(groups))
    for k, name in enumerate(series):
        ax.bar(x + (k - (len(series) - 1) / 2) * width, means[k], width, yerr=stds[k], capsize=3,
               label=name, color=f"C{k % 10}")
    ax.set_xticks(x)
    ax.set_xticklabels(groups, rotation=15, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.axhline(0, color="k", lw=0.6)
    ax.grid(axis="y", alpha=0.3)
