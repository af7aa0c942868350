"""The figures of ``hebb-gym rules``: coefficient histograms, the rule clusters, the weight trajectory.

They draw numbers :mod:`agents.experiments.rule_analysis` computed; nothing here fits or projects.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from agents.util.figures import pyplot, save_figure

__all__ = ["plot_clusters", "plot_histograms", "plot_trajectory"]


def plot_histograms(
    groups: Sequence[tuple[str, np.ndarray]], names: Sequence[str], title: str, path: str | os.PathLike
) -> Path:
    """Histogram grid: rows the coefficients ``names``, columns the ``(label, coeffs (n, k))`` groups.

    A coefficient's bins span its range over all groups, so the panels of a row share one axis.
    """
    plt = pyplot()
    height = 1.05 + 1.9 * len(names)
    fig, axes = plt.subplots(
        len(names), len(groups), figsize=(2.8 * len(groups), height), dpi=110, squeeze=False
    )
    # fixed margins in inches: a layout engine costs more than the rest of the figure on 20 panels
    fig.subplots_adjust(
        left=0.06, right=0.98, bottom=0.35 / height, top=1 - 0.8 / height, wspace=0.28, hspace=0.4
    )
    for i, name in enumerate(names):
        lo = min(float(c[:, i].min()) for _, c in groups)
        hi = max(float(c[:, i].max()) for _, c in groups)
        bins = np.linspace(lo, hi if hi > lo else lo + 1e-9, 51)
        for j, (layer, c) in enumerate(groups):
            ax = axes[i][j]
            counts, _ = np.histogram(c[:, i], bins=bins)
            ax.stairs(counts, bins, fill=True, color=f"C{i % 10}")
            ax.tick_params(labelsize=6)
            if i == 0:
                ax.set_title(layer, fontsize=9)
            if j == 0:
                ax.set_ylabel(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def plot_clusters(
    proj: np.ndarray,
    centres_proj: np.ndarray,
    labels: np.ndarray,
    k_rows: Sequence[dict[str, Any]],
    weak: float,
    path: str | os.PathLike,
    seed: int,
) -> Path:
    """Rules on two axes ``proj (M, 2)`` coloured by cluster, centres marked; silhouette and inertia per k.

    At most 5000 rules (a seeded sample) are drawn; ``weak`` is the silhouette drawn as a dotted line.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    ax = axes[0]
    rng = np.random.default_rng(seed)
    show = rng.choice(len(proj), size=min(len(proj), 5000), replace=False)
    ax.scatter(proj[show, 0], proj[show, 1], c=labels[show], cmap="tab10", s=3, alpha=0.5, vmin=0, vmax=9)
    ax.scatter(centres_proj[:, 0], centres_proj[:, 1], c="black", marker="x", s=60)
    ax.set_xlabel("rule PC1")
    ax.set_ylabel("rule PC2")
    ax.set_title(f"{len(proj)} rules, k={len(centres_proj)} clusters", fontsize=9)
    ax = axes[1]
    ks = [r["k"] for r in k_rows]
    ax.plot(ks, [r["silhouette"] for r in k_rows], "o-", label="silhouette")
    ax.axhline(weak, color="grey", ls=":", lw=1)
    ax.set_xlabel("k")
    ax.set_ylabel("mean silhouette")
    ax2 = ax.twinx()
    ax2.plot(ks, [r["inertia"] for r in k_rows], "s--", color="C1", label="inertia")
    ax2.set_ylabel("inertia", color="C1")
    ax.set_title("choice of k (best silhouette)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_trajectory(
    steps: np.ndarray,
    projections: dict[str, tuple[np.ndarray, np.ndarray]],
    path: str | os.PathLike,
    title: str,
) -> Path:
    """PC1 vs PC2 of the weight trajectory per group (``name: (scores, explained ratios)``), by step."""
    plt = pyplot()
    fig, axes = plt.subplots(
        1, len(projections), figsize=(3.9 * len(projections), 4.0), dpi=110, squeeze=False
    )
    fig.subplots_adjust(left=0.07, right=0.95, bottom=0.14, top=0.86, wspace=0.4)
    for ax, (name, (scores, ratio)) in zip(axes[0], projections.items()):
        y = scores[:, 1] if scores.shape[1] > 1 else np.zeros(len(scores))
        ax.plot(scores[:, 0], y, color="grey", lw=0.5, alpha=0.6)
        sc = ax.scatter(scores[:, 0], y, c=steps, cmap="viridis", s=6)
        ax.scatter(scores[:1, 0], y[:1], marker="o", facecolors="none", edgecolors="red", s=50, label="start")
        ax.scatter(scores[-1:, 0], y[-1:], marker="*", color="red", s=60, label="end")
        r2 = ratio[1] if len(ratio) > 1 else 0.0
        ax.set_xlabel(f"PC1 ({100 * ratio[0]:.1f}%)")
        ax.set_ylabel(f"PC2 ({100 * r2:.1f}%)")
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    fig.colorbar(sc, ax=list(axes[0]), shrink=0.9, label="step")
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
