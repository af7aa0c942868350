"""Clusters of rules and principal components, with scikit-learn (the optional ``analysis`` extra).

* :func:`choose_k`: ``KMeans`` (k-means++, ``KMEANS_STARTS`` starts seeded from ``seed``) for k in
  ``2..k_max``, k chosen by the largest ``silhouette_score`` on a seeded subsample (near ties, within
  ``SILHOUETTE_TIE``, go to the smaller k).
* :func:`pca`: ``PCA`` scores, explained variance ratios and components, each component's sign fixed
  so that its largest loading is positive; :func:`table_projection` puts rules and cluster centres on
  the rule table's first two components (the clusters figure).

scikit-learn is imported on first use and runs on one thread; without it these raise a ``ValueError``
naming ``pip install 'hebb-gym[analysis]'`` (:func:`require_sklearn` checks up front).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator

import numpy as np

__all__ = ["MISSING_SKLEARN", "choose_k", "pca", "require_sklearn", "table_projection"]

#: Silhouettes within this of the best count as a tie, won by the smaller k (a subsample's score is noisy).
SILHOUETTE_TIE = 0.01
#: Seeded k-means++ starts per k (KMeans' ``n_init``); the best inertia is kept.
KMEANS_STARTS = 4
#: What a user without the optional extra is told.
MISSING_SKLEARN = "the rule analysis needs scikit-learn, the analysis extra: pip install 'hebb-gym[analysis]'"


def require_sklearn() -> None:
    """Nothing if scikit-learn is installed, else a ValueError naming the extra (checked before any work)."""
    _sklearn()


def _sklearn() -> tuple[Any, Any, Any]:
    """scikit-learn's ``KMeans``, ``PCA`` and ``silhouette_score``, or a ValueError naming the extra."""
    try:
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA
        from sklearn.metrics import silhouette_score
    except ImportError as exc:
        raise ValueError(MISSING_SKLEARN) from exc
    return KMeans, PCA, silhouette_score


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """scikit-learn's OpenMP and BLAS on one thread: numbers that do not depend on the core count, and no
    threads spinning against torch's or other jobs' (k-means of 12k rules: 0.1 s, not 5 s, on 2 cores)."""
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    with threadpool_limits(limits=1):
        yield


# --- how many distinct rules ------------------------------------------------------------------------


def _kmeans(x: np.ndarray, k: int, seed: int) -> Any:
    """A fitted ``sklearn.cluster.KMeans`` of the rows of ``x`` (k-means++, KMEANS_STARTS seeded starts)."""
    kmeans_class, _, _ = _sklearn()
    return kmeans_class(n_clusters=k, n_init=KMEANS_STARTS, random_state=seed).fit(x)


def choose_k(
    x: np.ndarray, k_max: int = 8, seed: int = 0, silhouette_sample: int = 2000
) -> tuple[int, Any, list[dict[str, Any]]]:
    """k in ``2..k_max`` with the best mean silhouette; returns (k, its fitted KMeans, a row per k tried).

    Near ties go to the smaller k: the smallest k within SILHOUETTE_TIE of the best score is chosen.
    Tables of at most two rules (or two distinct rows) are returned as their own clustering. The fit's
    ``labels_``, ``cluster_centers_`` and ``inertia_`` are scikit-learn's.
    """
    if isinstance(k_max, bool) or not isinstance(k_max, (int, np.integer)) or k_max < 2:
        raise ValueError(f"k_max={k_max!r} is not accepted; use an integer >= 2")
    _, _, silhouette_score = _sklearn()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"x has shape {x.shape}; accepted: (n, d) with n >= 1")
    n = x.shape[0]
    n_unique = len(np.unique(x, axis=0))
    if n_unique <= 2 or n <= 2:
        k = max(1, n_unique)
        with _one_thread():
            fit = _kmeans(x, k, seed)
        return k, fit, [{"k": k, "inertia": float(fit.inertia_), "silhouette": math.nan}]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x51]))
    sample = rng.choice(n, size=silhouette_sample, replace=False) if n > silhouette_sample else np.arange(n)
    rows, fits = [], {}
    with _one_thread():
        for k in range(2, min(int(k_max), n_unique, n - 1) + 1):
            fit = _kmeans(x, k, seed)
            lab = fit.labels_[sample]
            ok = 2 <= len(np.unique(lab)) < len(lab)
            score = float(silhouette_score(x[sample], lab)) if ok else math.nan
            rows.append({"k": k, "inertia": float(fit.inertia_), "silhouette": score})
            fits[k] = fit
    scores = np.array([r["silhouette"] for r in rows], dtype=np.float64)
    if not np.isfinite(scores).any():
        return rows[0]["k"], fits[rows[0]["k"]], rows
    top = np.nanmax(scores)
    k = next(r["k"] for r in rows if np.isfinite(r["silhouette"]) and r["silhouette"] >= top - SILHOUETTE_TIE)
    return k, fits[k], rows


# --- principal components ---------------------------------------------------------------------------


def pca(x: np.ndarray, n_components: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of ``x (T, N)``, centred, on their first principal components (``sklearn.decomposition.PCA``).

    Returns (scores ``(T, c)``, explained variance ratios ``(c,)``, components ``(c, N)``) with
    c = min(n_components, T, N); each component's sign is fixed so its largest loading is positive (the
    same picture whatever solver scikit-learn picks). Rows that do not vary give zeros throughout.
    """
    _, pca_class, _ = _sklearn()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"x has shape {x.shape}; accepted: (T, N) with T >= 2 time points")
    if not np.isfinite(x).all():
        raise ValueError("x holds non-finite values; cut the trajectory before the weights diverge")
    c = min(int(n_components), *x.shape)
    if not np.ptp(x, axis=0).any():  # no variance: nothing to explain (scikit-learn would divide by zero)
        return np.zeros((x.shape[0], c)), np.zeros(c), np.zeros((c, x.shape[1]))
    with _one_thread():
        fit = pca_class(n_components=c, random_state=seed).fit(x)
    comps = fit.components_
    signs = np.sign(comps[np.arange(c), np.abs(comps).argmax(1)])
    signs[signs == 0] = 1.0
    comps = comps * signs[:, None]
    return (x - fit.mean_) @ comps.T, np.asarray(fit.explained_variance_ratio_, dtype=np.float64), comps


def table_projection(table: np.ndarray, centres: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rules and cluster centres on the table's first two principal components (zeros pad a 1-d table)."""
    if len(table) < 2:
        return np.zeros((len(table), 2)), np.zeros((len(centres), 2))
    _, _, comps = pca(table, 2, seed)
    mean = table.mean(0)
    proj, cproj = (table - mean) @ comps.T, (centres - mean) @ comps.T
    if proj.shape[1] < 2:
        proj, cproj = np.c_[proj, np.zeros(len(proj))], np.c_[cproj, np.zeros(len(cproj))]
    return proj, cproj
