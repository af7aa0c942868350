"""What a HebbianPolicy evolved: coefficient distributions, how many distinct rules, the weight trajectory.

* **Distributions.** Every synapse's coefficients (its rule's row of the rule table, through
  ``policy.assignment``) summarised per dense layer and over the network; with shared rules (rho > 1)
  the rule table itself is summarised too (layer ``table``).
* **Distinct rules.** k-means on the rows of the rule table, in raw coefficient units, k in ``2..k_max``
  by the largest mean silhouette (:func:`agents.experiments.rule_clusters.choose_k`, scikit-learn). A
  best silhouette below 0.25 is reported as ``weak`` structure (Kaufman & Rousseeuw's rule of thumb: the
  "clusters" are then arbitrary cuts of one cloud). A table of one or two rules is its own clustering.
* **Weight trajectory.** One episode's plastic weights, flattened (all layers, and each layer), every
  ``every`` steps, projected on their first principal components (``rule_clusters.pca``).

scikit-learn is the optional ``analysis`` extra (``pip install 'hebb-gym[analysis]'``); without it
:func:`analyse_rules` raises a ``ValueError`` saying so before writing anything. :func:`analyse_rules`
writes everything for ``hebb-gym rules``; the figures are drawn by :mod:`agents.experiments.rule_plots`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.experiments.evaluate import resolve_policy_path
from agents.experiments.probes import episode_horizon, run_condition
from agents.experiments.rule_clusters import choose_k, pca, require_sklearn, table_projection
from agents.experiments.rule_plots import plot_clusters, plot_histograms, plot_trajectory
from agents.policies import HebbianPolicy, Policy, load_policy
from agents.util.atomic import atomic_write_json
from agents.util.csvfile import write_csv

__all__ = [
    "RulesResult",
    "analyse_rules",
    "coefficient_summary",
    "layer_slices",
    "rule_table",
    "synapse_coefficients",
    "weight_trajectory",
]

#: Quantiles reported per layer and coefficient.
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
#: Below this best mean silhouette the clustering is reported as weak structure.
WEAK_SILHOUETTE = 0.25
#: Largest trajectory matrix (steps x synapses) the default stride keeps, in numbers.
TRAJECTORY_BUDGET = 20_000_000


def _hebbian(policy: Any) -> HebbianPolicy:
    """The policy if it is a HebbianPolicy, else a ValueError naming its class."""
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


# --- the weight trajectory --------------------------------------------------------------------------


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
    if isinstance(run_or_policy, Policy):
        policy, source = run_or_policy, None
    else:
        path = resolve_policy_path(run_or_policy, which)
        policy, source = load_policy(path), str(path)
    policy = _hebbian(policy)
    env = env_id or policy.env_id
    if not env:
        raise ValueError("the policy records no env id; give env_id (--env) for the weight trajectory")
    if isinstance(n_components, bool) or not isinstance(n_components, int) or n_components < 2:
        raise ValueError(f"n_components={n_components!r} is not accepted; use an integer >= 2")
    require_sklearn()  # before anything is written: without the extra, say so and leave out/ alone
    out = Path(out)
    names = policy.rule.coefficients
    files: dict[str, Path] = {}

    summary = coefficient_summary(policy)
    files["summary_csv"] = write_csv(out / "rules_summary.csv", summary, nonfinite="")
    coeffs = synapse_coefficients(policy)
    files["histograms_png"] = plot_histograms(
        [(n, coeffs[s]) for n, s in layer_slices(policy)] + [("all synapses", coeffs)],
        names,
        f"evolved {policy.rule.name} coefficients per synapse "
        f"({policy.num_rules} rule{'s' if policy.num_rules > 1 else ''}, rho={policy.rho})",
        out / "rules_histograms.png",
    )

    table = rule_table(policy)
    if not np.isfinite(table).all():
        raise ValueError("the rule table holds non-finite coefficients; nothing to cluster")
    k, fit, k_rows = choose_k(table, k_max, seed)
    best_sil = max((r["silhouette"] for r in k_rows if np.isfinite(r["silhouette"])), default=math.nan)
    structure = (
        "trivial" if not np.isfinite(best_sil) else ("weak" if best_sil < WEAK_SILHOUETTE else "clear")
    )
    order = np.argsort(-np.bincount(fit.labels_, minlength=k))  # clusters numbered by size
    relabel = np.empty(k, dtype=np.int64)
    relabel[order] = np.arange(k)
    labels, centres = relabel[fit.labels_], fit.cluster_centers_[order]
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
    files["clusters_csv"] = write_csv(out / "rules_clusters.csv", clusters, nonfinite="")
    files["k_csv"] = write_csv(out / "rules_k.csv", k_rows, nonfinite="")
    proj, centres_proj = table_projection(table, centres, seed)
    files["clusters_png"] = plot_clusters(
        proj, centres_proj, labels, k_rows, WEAK_SILHOUETTE, out / "rules_clusters.png", seed
    )

    steps, layers, roll = weight_trajectory(policy, env, max_steps, seed, every, env_kwargs)
    groups = {"all": np.concatenate([w.reshape(len(steps), -1) for w in layers], axis=1)}
    groups.update({f"dense.{j}": w.reshape(len(steps), -1) for j, w in enumerate(layers)})
    pca_rows: list[dict[str, Any]] = []
    explained: dict[str, list[float]] = {}
    projections: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if len(steps) >= 2:
        for name, x in groups.items():
            scores, ratio, _ = pca(x, n_components, seed)
            projections[name] = (scores, ratio)
            explained[name] = [float(v) for v in ratio]
            for t, sc in zip(steps, scores):
                r: dict[str, Any] = {"layer": name, "t": int(t)}
                r.update(
                    {f"pc{i + 1}": float(sc[i]) if i < len(sc) else math.nan for i in range(n_components)}
                )
                pca_rows.append(r)
        files["pca_csv"] = write_csv(out / "weights_pca.csv", pca_rows, nonfinite="")
        var_rows = [
            {"layer": n, "component": i + 1, "explained_variance_ratio": v}
            for n, vs in explained.items()
            for i, v in enumerate(vs)
        ]
        files["pca_variance_csv"] = write_csv(out / "weights_pca_variance.csv", var_rows, nonfinite="")
        files["pca_png"] = plot_trajectory(
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
                {kk: None if isinstance(v, float) and not math.isfinite(v) else v for kk, v in r.items()}
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
