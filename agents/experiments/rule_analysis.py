"""What a HebbianPolicy evolved: coefficient distributions, how many distinct rules, the weight trajectory.

* **Distributions.** Every synapse's coefficients (its rule's row of the rule table, through
  ``policy.assignment``) summarised per dense layer and over the network; with shared rules (rho > 1)
  the rule table itself is summarised too (layer ``table``).
* **Distinct rules.** k-means (k-means++ seeding, Lloyd iterations, best of several seeded starts) on the
  rows of the rule table, in raw coefficient units. k is chosen in ``2..k_max`` by the largest mean
  silhouette (near ties, within 0.01, go to the smaller k), computed on a seeded subsample of at most
  ``silhouette_sample`` rules (silhouette is O(n^2)). A best silhouette below 0.25 is reported as
  ``weak`` structure (Kaufman & Rousseeuw's rule of thumb: the "clusters" are then arbitrary cuts of
  one cloud). A table of one or two rules is its own
  clustering.
* **Weight trajectory.** One episode's plastic weights, flattened (all layers, and each layer), every
  ``every`` steps, centred over time and projected on their first principal components (numpy SVD).

:func:`analyse_rules` writes everything for ``hebb-gym rules``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.experiments.probes import episode_horizon, run_condition
from agents.util.atomic import atomic_write_json, atomic_write_text
from agents.util.figures import pyplot, save_figure

__all__ = [
    "KMeansResult",
    "RulesResult",
    "analyse_rules",
    "choose_k",
    "coefficient_summary",
    "kmeans",
    "pca",
    "rule_table",
    "silhouette",
    "synapse_coefficients",
    "weight_trajectory",
]

#: Quantiles reported per layer and coefficient.
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
#: Below this best mean silhouette the clustering is reported as weak structure.
WEAK_SILHOUETTE = 0.25
#: Silhouettes within this of the best count as a tie, won by the smaller k (a subsample's score is noisy).
SILHOUETTE_TIE = 0.01
#: Largest trajectory matrix (steps x synapses) the default stride keeps, in numbers.
TRAJECTORY_BUDGET = 20_000_000


def _hebbian(policy: Any) -> Any:
    """The policy if it is a HebbianPolicy, else a ValueError naming its class."""
    from agents.policies.hebbian import HebbianPolicy

    if not isinstance(policy, HebbianPolicy):
        raise ValueError(  # noqa: TRY004  (a wrong kind of policy file is a bad value, as elsewhere)
            f"rule analysis needs a HebbianPolicy; got a {type(policy).__name__} (static and LSTM policies "
            "have no rules)"
        )
    return policy


def rule_table(policy: Any) -> np.ndarray:
    """The evolved rule table ``(M, k)``: row r is rule r, columns in ``policy.rule.coefficients`` order."""
    policy = _hebbian(policy)
    flat = policy.get_flat()
    sl = dict(policy.layout)["rules"]
    return flat[sl].reshape(policy.num_rules, policy.rule.k).astype(np.float64)


def layer_slices(policy: Any) -> list[tuple[str, slice]]:
    """Synapse index ranges of the dense layers ``dense.0``, ``dense.1``, ... (synapses numbered by layer)."""
    out, off = [], 0
    for j, (o, i) in enumerate(policy.spec.dense_shapes):
        out.append((f"dense.{j}", slice(off, off + o * i)))
        off += o * i
    return out


def synapse_coefficients(policy: Any) -> np.ndarray:
    """Every synapse's coefficients ``(N, k)``: its assigned rule's row."""
    return rule_table(policy)[policy.assignment]


def _summary_row(layer: str, name: str, x: np.ndarray) -> dict[str, Any]:
    """Count, mean, std, min, quantiles, max of one coefficient over a set of synapses or rules."""
    q = np.quantile(x, QUANTILES) if x.size else [math.nan] * len(QUANTILES)
    row: dict[str, Any] = {
        "layer": layer,
        "coefficient": name,
        "n": int(x.size),
        "mean": float(x.mean()) if x.size else math.nan,
        "std": float(x.std()) if x.size else math.nan,
        "min": float(x.min()) if x.size else math.nan,
    }
    row.update({f"q{round(p * 100):02d}": float(v) for p, v in zip(QUANTILES, q)})
    row["max"] = float(x.max()) if x.size else math.nan
    return row


def coefficient_summary(policy: Any) -> list[dict[str, Any]]:
    """Stats per layer (each dense layer, ``all``, and ``table`` for shared rules) and coefficient."""
    coeffs = synapse_coefficients(policy)
    names = policy.rule.coefficients
    rows = []
    groups = [(n, coeffs[s]) for n, s in layer_slices(policy)] + [("all", coeffs)]
    if policy.num_rules != policy.num_synapses:
        groups.append(("table", rule_table(policy)))
    for layer, c in groups:
        rows += [_summary_row(layer, n, c[:, j]) for j, n in enumerate(names)]
    return rows


# --- k-means and silhouette (numpy) ---------------------------------------------------------------


@dataclass
class KMeansResult:
    """Centres ``(k, d)``, labels ``(n,)`` and inertia (sum of squared distances to the centres)."""

    centres: np.ndarray
    labels: np.ndarray
    inertia: float


def _sq_dists(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``(n, k)`` between rows of x and rows of c."""
    d = (x * x).sum(1)[:, None] - 2.0 * x @ c.T + (c * c).sum(1)[None, :]
    return np.maximum(d, 0.0)


def _kmeans_once(x: np.ndarray, k: int, rng: np.random.Generator, max_iter: int) -> KMeansResult:
    """One k-means++ start followed by Lloyd iterations until the labels stop changing."""
    n = x.shape[0]
    centres = np.empty((k, x.shape[1]))
    centres[0] = x[rng.integers(n)]
    closest = _sq_dists(x, centres[:1])[:, 0]
    for j in range(1, k):
        total = closest.sum()
        idx = rng.choice(n, p=closest / total) if total > 0 else rng.integers(n)
        centres[j] = x[idx]
        closest = np.minimum(closest, _sq_dists(x, centres[j : j + 1])[:, 0])
    labels = np.full(n, -1)
    tol = 1e-4 * float(x.var(0).mean())  # stop when the centres move less than this (sklearn's default)
    for _ in range(max_iter):
        d = _sq_dists(x, centres)
        new = d.argmin(1)
        if np.array_equal(new, labels):
            break
        labels = new
        counts = np.bincount(labels, minlength=k)
        sums = np.stack(
            [np.bincount(labels, weights=x[:, j], minlength=k) for j in range(x.shape[1])], axis=1
        )
        empty = counts == 0
        old = centres.copy()
        centres[~empty] = sums[~empty] / counts[~empty, None]
        if empty.any():  # move an empty centre onto the point farthest from its centre
            far = np.argsort(d[np.arange(n), labels])[::-1]
            centres[empty] = x[far[: int(empty.sum())]]
        elif ((centres - old) ** 2).sum() <= tol:
            break
    d = _sq_dists(x, centres)
    labels = d.argmin(1)
    return KMeansResult(centres, labels, float(d[np.arange(n), labels].sum()))


def kmeans(x: np.ndarray, k: int, seed: int = 0, n_init: int = 4, max_iter: int = 100) -> KMeansResult:
    """k-means of the rows of ``x`` (best inertia of ``n_init`` seeded k-means++ starts)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"x has shape {x.shape}; accepted: (n, d) with n >= 1")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= x.shape[0]:
        raise ValueError(f"k={k!r} is not accepted; use an integer in [1, {x.shape[0]}] (the number of rows)")
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(max(1, n_init)):
        r = _kmeans_once(x, int(k), rng, max_iter)
        if best is None or r.inertia < best.inertia:
            best = r
    assert best is not None
    return best


def silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of a labelling (Rousseeuw 1987); singletons score 0; needs 2 <= clusters < n."""
    x = np.asarray(x, dtype=np.float64)
    labels = np.asarray(labels)
    ks = np.unique(labels)
    if not 2 <= len(ks) < len(labels):
        raise ValueError(
            f"silhouette needs 2 <= clusters < points; got {len(ks)} clusters of {len(labels)} points"
        )
    d = np.sqrt(_sq_dists(x, x))
    onehot = (labels[:, None] == ks[None, :]).astype(np.float64)
    sums = d @ onehot  # (n, K) total distance to each cluster
    counts = onehot.sum(0)
    own = np.searchsorted(ks, labels)
    n_own = counts[own]
    a = np.where(n_own > 1, sums[np.arange(len(x)), own] / np.maximum(n_own - 1, 1), 0.0)
    mean_other = sums / counts[None, :]
    mean_other[np.arange(len(x)), own] = np.inf
    b = mean_other.min(1)
    denom = np.maximum(a, b)
    s = np.where((n_own > 1) & (denom > 0), (b - a) / np.where(denom > 0, denom, 1.0), 0.0)
    return float(s.mean())


def choose_k(
    x: np.ndarray, k_max: int = 8, seed: int = 0, silhouette_sample: int = 2000
) -> tuple[int, KMeansResult, list[dict[str, Any]]]:
    """k in ``2..k_max`` with the best mean silhouette; returns (k, its clustering, a row per k tried).

    Near ties go to the smaller k: the smallest k within SILHOUETTE_TIE of the best score is chosen.
    Tables of at most two rules (or two distinct rows) are returned as their own clustering.
    """
    if isinstance(k_max, bool) or not isinstance(k_max, (int, np.integer)) or k_max < 2:
        raise ValueError(f"k_max={k_max!r} is not accepted; use an integer >= 2")
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    n_unique = len(np.unique(x, axis=0))
    if n_unique <= 2 or n <= 2:
        k = max(1, n_unique)
        res = kmeans(x, k, seed)
        return k, res, [{"k": k, "inertia": res.inertia, "silhouette": math.nan}]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x51]))
    sample = rng.choice(n, size=silhouette_sample, replace=False) if n > silhouette_sample else np.arange(n)
    rows, fits = [], {}
    for k in range(2, min(int(k_max), n_unique, n - 1) + 1):
        res = kmeans(x, k, seed)
        lab = res.labels[sample]
        score = silhouette(x[sample], lab) if 2 <= len(np.unique(lab)) < len(lab) else math.nan
        rows.append({"k": k, "inertia": res.inertia, "silhouette": score})
        fits[k] = res
    scores = np.array([r["silhouette"] for r in rows], dtype=np.float64)
    if not np.isfinite(scores).any():
        return rows[0]["k"], fits[rows[0]["k"]], rows
    top = np.nanmax(scores)
    k = next(r["k"] for r in rows if np.isfinite(r["silhouette"]) and r["silhouette"] >= top - SILHOUETTE_TIE)
    return k, fits[k], rows


# --- PCA of the weight trajectory -------------------------------------------------------------------


def pca(x: np.ndarray, n_components: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project rows of ``x (T, N)`` (centred over T) on their first principal components via SVD.

    Returns (scores ``(T, c)``, explained variance ratios ``(c,)``, components ``(c, N)``);
    c = min(n_components, T, N), scores' signs fixed so each component's largest loading is positive.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"x has shape {x.shape}; accepted: (T, N) with T >= 2 time points")
    if not np.isfinite(x).all():
        raise ValueError("x holds non-finite values; cut the trajectory before the weights diverge")
    xc = x - x.mean(0)
    c = min(int(n_components), *xc.shape)
    if xc.shape[0] <= xc.shape[1]:  # few time points: eigen-decompose the (T, T) Gram matrix, same result
        var, u = np.linalg.eigh(xc @ xc.T)
        order = np.argsort(var)[::-1]
        var, u = np.maximum(var[order], 0.0), u[:, order]
        s = np.sqrt(var)
        vt = (u[:, :c].T @ xc) / np.where(s[:c] > 0, s[:c], 1.0)[:, None]
    else:
        u, s, vt = np.linalg.svd(xc, full_matrices=False)
        var = s**2
    total = var.sum()
    ratio = var[:c] / total if total > 0 else np.zeros(c)
    comps = vt[:c]
    signs = np.sign(comps[np.arange(c), np.abs(comps).argmax(1)])
    signs[signs == 0] = 1.0
    comps = comps * signs[:, None]
    scores = u[:, :c] * s[:c] * signs
    return scores, ratio, comps


def default_stride(horizon: int, num_synapses: int) -> int:
    """Steps between trajectory samples so that (samples x synapses) stays within TRAJECTORY_BUDGET."""
    return max(1, math.ceil((horizon + 1) * num_synapses / TRAJECTORY_BUDGET))


def weight_trajectory(
    policy: Any,
    env_id: str,
    max_steps: int | None = None,
    seed: int = 0,
    every: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> tuple[np.ndarray, list[np.ndarray], Any]:
    """One episode's plastic weights every ``every`` steps: steps ``(S,)``, layers ``(S, out, in)``, Rollout.

    The trajectory stops at the episode's end and before the first non-finite weight.
    """
    policy = _hebbian(policy)
    horizon = episode_horizon(env_id, max_steps)
    stride = default_stride(horizon, policy.num_synapses) if every is None else every
    roll = run_condition(
        policy, env_id, 1, horizon, seed, None, trajectory_every=stride, env_kwargs=env_kwargs
    )
    assert roll.trajectory is not None and roll.trajectory_steps is not None
    steps = roll.trajectory_steps
    layers = [w[:, 0] for w in roll.trajectory]
    keep = steps < max(1, int(roll.lengths[0]))
    finite = np.all([np.isfinite(w.reshape(len(steps), -1)).all(1) for w in layers], axis=0)
    if not finite.all():
        keep &= np.arange(len(steps)) < int(np.argmin(finite))
    return steps[keep], [w[keep] for w in layers], roll


# --- the whole analysis -----------------------------------------------------------------------------


@dataclass
class RulesResult:
    """Numbers of a rule analysis (also written as ``rules.json``)."""

    coefficients: tuple[str, ...]
    summary: list[dict[str, Any]]
    k: int
    structure: str
    k_rows: list[dict[str, Any]]
    clusters: list[dict[str, Any]]
    labels: np.ndarray
    pca_rows: list[dict[str, Any]]
    explained: dict[str, list[float]]
    files: dict[str, Path] = field(default_factory=dict)


def _csv(rows: list[dict[str, Any]]) -> str:
    """CSV text of dict rows; NaN written as an empty cell."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()})
    return buf.getvalue()


def _plot_histograms(policy: Any, path: Path) -> Path:
    """Histogram grid: rows coefficients, columns dense layers plus all synapses."""
    plt = pyplot()
    coeffs = synapse_coefficients(policy)
    groups = [(n, coeffs[s]) for n, s in layer_slices(policy)] + [("all synapses", coeffs)]
    names = policy.rule.coefficients
    height = 1.05 + 1.9 * len(names)
    fig, axes = plt.subplots(
        len(names), len(groups), figsize=(2.8 * len(groups), height), dpi=110, squeeze=False
    )
    # fixed margins in inches: a layout engine costs more than the rest of the figure on 20 panels
    fig.subplots_adjust(
        left=0.06, right=0.98, bottom=0.35 / height, top=1 - 0.8 / height, wspace=0.28, hspace=0.4
    )
    for i, name in enumerate(names):
        lo, hi = float(coeffs[:, i].min()), float(coeffs[:, i].max())
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
    fig.suptitle(
        f"evolved {policy.rule.name} coefficients per synapse "
        f"({policy.num_rules} rule{'s' if policy.num_rules > 1 else ''}, rho={policy.rho})",
        fontsize=10,
    )
    return save_figure(fig, path)


def _plot_clusters(
    table: np.ndarray,
    labels: np.ndarray,
    centres: np.ndarray,
    k_rows: list[dict[str, Any]],
    path: Path,
    seed: int,
) -> Path:
    """Rules on the table's first two principal components, coloured by cluster; silhouette per k."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    ax = axes[0]
    rng = np.random.default_rng(seed)
    show = rng.choice(len(table), size=min(len(table), 5000), replace=False)
    if len(table) >= 2 and table.shape[1] >= 2 and np.ptp(table, axis=0).any():
        mean = table.mean(0)
        _, _, vt = np.linalg.svd(table - mean, full_matrices=False)
        proj, cproj = (table - mean) @ vt[:2].T, (centres - mean) @ vt[:2].T
        if proj.shape[1] < 2:
            proj, cproj = np.c_[proj, np.zeros(len(proj))], np.c_[cproj, np.zeros(len(cproj))]
    else:
        proj, cproj = np.c_[table[:, :1], np.zeros(len(table))], np.c_[centres[:, :1], np.zeros(len(centres))]
    ax.scatter(proj[show, 0], proj[show, 1], c=labels[show], cmap="tab10", s=3, alpha=0.5, vmin=0, vmax=9)
    ax.scatter(cproj[:, 0], cproj[:, 1], c="black", marker="x", s=60)
    ax.set_xlabel("rule PC1")
    ax.set_ylabel("rule PC2")
    ax.set_title(f"{len(table)} rules, k={len(centres)} clusters", fontsize=9)
    ax = axes[1]
    ks = [r["k"] for r in k_rows]
    ax.plot(ks, [r["silhouette"] for r in k_rows], "o-", label="silhouette")
    ax.axhline(WEAK_SILHOUETTE, color="grey", ls=":", lw=1)
    ax.set_xlabel("k")
    ax.set_ylabel("mean silhouette")
    ax2 = ax.twinx()
    ax2.plot(ks, [r["inertia"] for r in k_rows], "s--", color="C1", label="inertia")
    ax2.set_ylabel("inertia", color="C1")
    ax.set_title("choice of k (best silhouette)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def _plot_trajectory(
    steps: np.ndarray, projections: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str
) -> Path:
    """PC1 vs PC2 of the weight trajectory per group (all layers, each layer), coloured by step."""
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


def analyse_rules(
    run_or_policy: str | os.PathLike | Any,
    out: str | os.PathLike,
    env_id: str | None = None,
    max_steps: int | None = None,
    seed: int = 0,
    k_max: int = 8,
    every: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    which: str = "best",
    n_components: int = 3,
) -> RulesResult:
    """``hebb-gym rules``: write coefficient stats and histograms, the rule clusters, and the trajectory PCA.

    Files in ``out``: ``rules_summary.csv``, ``rules_histograms.png``, ``rules_clusters.csv``,
    ``rules_k.csv``, ``rules_clusters.png``, ``weights_pca.csv``, ``weights_pca_variance.csv``,
    ``weights_pca.png`` and ``rules.json``.
    """
    from agents.policies.base import Policy

    if isinstance(run_or_policy, Policy):
        policy, source = run_or_policy, None
    else:
        from agents.experiments.evaluate import resolve_policy_path
        from agents.policies import load_policy

        path = resolve_policy_path(run_or_policy, which)
        policy, source = load_policy(path), str(path)
    policy = _hebbian(policy)
    env = env_id or policy.env_id
    if not env:
        raise ValueError("the policy records no env id; give env_id (--env) for the weight trajectory")
    if isinstance(n_components, bool) or not isinstance(n_components, int) or n_components < 2:
        raise ValueError(f"n_components={n_components!r} is not accepted; use an integer >= 2")
    out = Path(out)
    names = policy.rule.coefficients
    files: dict[str, Path] = {}

    summary = coefficient_summary(policy)
    files["summary_csv"] = atomic_write_text(out / "rules_summary.csv", _csv(summary))
    files["histograms_png"] = _plot_histograms(policy, out / "rules_histograms.png")

    table = rule_table(policy)
    if not np.isfinite(table).all():
        raise ValueError("the rule table holds non-finite coefficients; nothing to cluster")
    k, res, k_rows = choose_k(table, k_max, seed)
    best_sil = max((r["silhouette"] for r in k_rows if np.isfinite(r["silhouette"])), default=math.nan)
    structure = (
        "trivial" if not np.isfinite(best_sil) else ("weak" if best_sil < WEAK_SILHOUETTE else "clear")
    )
    order = np.argsort(-np.bincount(res.labels, minlength=k))  # clusters numbered by size
    relabel = np.empty(k, dtype=np.int64)
    relabel[order] = np.arange(k)
    labels, centres = relabel[res.labels], res.centres[order]
    syn_labels = labels[policy.assignment]
    clusters = []
    for c in range(k):
        row: dict[str, Any] = {
            "cluster": c,
            "rules": int((labels == c).sum()),
            "synapses": int((syn_labels == c).sum()),
        }
        for name, s in layer_slices(policy):
            row[f"synapses_{name}"] = int((syn_labels[s] == c).sum())
        row.update({f"centre_{n}": float(v) for n, v in zip(names, centres[c])})
        clusters.append(row)
    files["clusters_csv"] = atomic_write_text(out / "rules_clusters.csv", _csv(clusters))
    files["k_csv"] = atomic_write_text(out / "rules_k.csv", _csv(k_rows))
    files["clusters_png"] = _plot_clusters(table, labels, centres, k_rows, out / "rules_clusters.png", seed)

    steps, layers, roll = weight_trajectory(policy, env, max_steps, seed, every, env_kwargs)
    groups = {"all": np.concatenate([w.reshape(len(steps), -1) for w in layers], axis=1)}
    groups.update({f"dense.{j}": w.reshape(len(steps), -1) for j, w in enumerate(layers)})
    pca_rows: list[dict[str, Any]] = []
    explained: dict[str, list[float]] = {}
    projections: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if len(steps) >= 2:
        for name, x in groups.items():
            scores, ratio, _ = pca(x, n_components)
            projections[name] = (scores, ratio)
            explained[name] = [float(v) for v in ratio]
            for t, sc in zip(steps, scores):
                r: dict[str, Any] = {"layer": name, "t": int(t)}
                r.update(
                    {f"pc{i + 1}": float(sc[i]) if i < len(sc) else math.nan for i in range(n_components)}
                )
                pca_rows.append(r)
        files["pca_csv"] = atomic_write_text(out / "weights_pca.csv", _csv(pca_rows))
        var_rows = [
            {"layer": n, "component": i + 1, "explained_variance_ratio": v}
            for n, vs in explained.items()
            for i, v in enumerate(vs)
        ]
        files["pca_variance_csv"] = atomic_write_text(out / "weights_pca_variance.csv", _csv(var_rows))
        files["pca_png"] = _plot_trajectory(
            steps,
            projections,
            out / "weights_pca.png",
            f"plastic weights over one episode of {env} (seed {seed}), first principal components",
        )
    result = RulesResult(names, summary, k, structure, k_rows, clusters, labels, pca_rows, explained, files)
    doc = {
        "policy": source,
        "rule": policy.rule.name,
        "coefficients": list(names),
        "rho": policy.rho,
        "num_rules": policy.num_rules,
        "num_synapses": policy.num_synapses,
        "clustering": {
            "k": k,
            "structure": structure,
            "criterion": "max mean silhouette over k in 2..k_max (ties within 0.01 to the smaller k)",
            "k_max": k_max,
            "best_silhouette": best_sil if np.isfinite(best_sil) else None,
            "per_k": [
                {
                    kk: (v if not (isinstance(v, float) and not math.isfinite(v)) else None)
                    for kk, v in r.items()
                }
                for r in k_rows
            ],
            "clusters": clusters,
        },
        "trajectory": {
            "env": env,
            "seed": seed,
            "max_steps": int(roll.rewards.shape[1]) if roll.rewards.size else 0,
            "steps_sampled": len(steps),
            "every": int(steps[1] - steps[0]) if len(steps) > 1 else None,
            "episode_return": float(roll.returns[0]),
            "explained_variance_ratio": explained,
            "note": None if len(steps) >= 2 else "fewer than 2 finite weight samples: no PCA",
        },
        "files": {kk: p.name for kk, p in files.items()},
    }
    files["json"] = atomic_write_json(out / "rules.json", doc)
    result.files = files
    return result
