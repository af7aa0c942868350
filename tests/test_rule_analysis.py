"""Rule analysis (``hebb-gym rules``): clusters and components found on planted data, the files of a run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import hebb_gym  # noqa: F401
from agents.util.csvfile import read_csv
from agents.cli import main
from agents.experiments.rule_analysis import analyse_rules
from agents.experiments.rule_clusters import MISSING_SKLEARN, choose_k, pca
from agents.policies import HebbianPolicy, StaticPolicy

ENV = "HebbAnt-Default-v0"


def _needs_sklearn() -> None:
    pytest.importorskip("sklearn", reason="the rule analysis needs the analysis extra (scikit-learn)")


def test_silhouette_picks_the_planted_clusters() -> None:
    _needs_sklearn()
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0, 0], [5, 5, 0], [0, 5, 5]])
    x = np.concatenate([c + 0.1 * rng.standard_normal((60, 3)) for c in centres])
    k, fit, rows = choose_k(x, k_max=6, seed=0)
    assert k == 3 and [r["k"] for r in rows] == [2, 3, 4, 5, 6]
    assert max(rows, key=lambda r: r["silhouette"])["k"] == 3 and rows[1]["silhouette"] > 0.9
    assert sorted(np.bincount(fit.labels_)) == [60, 60, 60]
    assert np.allclose(np.sort(fit.cluster_centers_, axis=0), np.sort(centres, axis=0), atol=0.1)
    assert [r["inertia"] for r in rows] == sorted((r["inertia"] for r in rows), reverse=True)
    # the same seed gives the same clustering
    k2, fit2, rows2 = choose_k(x, k_max=6, seed=0)
    assert k2 == k and rows2 == rows and np.array_equal(fit2.labels_, fit.labels_)
    # one cloud: weak structure (best silhouette below 0.25 once there are enough dimensions)
    _, _, cloud = choose_k(rng.standard_normal((400, 5)), k_max=4, seed=0)
    assert max(r["silhouette"] for r in cloud) < 0.25


def test_pca_explains_the_variance() -> None:
    _needs_sklearn()
    # points on a line: one component explains everything, its sign fixed by the largest loading
    t = np.linspace(0, 1, 20)[:, None]
    scores, ratio, comps = pca(t * np.array([[1.0, 2.0, -2.0]]), 2)
    assert ratio[0] == pytest.approx(1.0) and ratio[1] == pytest.approx(0.0, abs=1e-12)
    assert np.allclose(comps[0], np.array([1, 2, -2]) / 3)
    assert np.ptp(scores[:, 0]) == pytest.approx(3.0)
    # a planted plane in 50 dimensions, variances 9 : 1 along two directions, tiny noise elsewhere
    rng = np.random.default_rng(1)
    basis = np.linalg.qr(rng.standard_normal((50, 2)))[0].T
    x = rng.standard_normal((300, 2)) * [3.0, 1.0] @ basis + 1e-3 * rng.standard_normal((300, 50))
    scores, ratio, comps = pca(x, 3, seed=0)
    assert ratio[:2] == pytest.approx([0.9, 0.1], abs=0.03) and ratio[2] < 1e-5
    assert np.allclose(np.abs(comps[:2] @ basis.T), np.eye(2), atol=0.05)
    assert scores.shape == (300, 3) and np.allclose(scores.var(0)[:2] / x.var(0).sum(), ratio[:2], rtol=1e-6)
    # weights that do not move: nothing to explain
    scores, ratio, _ = pca(np.ones((5, 4)), 3)
    assert not scores.any() and not ratio.any()
    with pytest.raises(ValueError, match="non-finite"):
        pca(np.array([[0.0, 1.0], [np.nan, 2.0]]))


def test_rules_without_sklearn_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pol.pt"
    HebbianPolicy.from_env(ENV, seed=5).save(path)
    for name in ("sklearn", "sklearn.cluster", "sklearn.decomposition", "sklearn.metrics"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if the extra were not installed
    assert main(["rules", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"hebb-gym rules: error: {MISSING_SKLEARN}"
    assert "pip install 'hebb-gym[analysis]'" in err and not (tmp_path / "out").exists()


def test_rules_command_writes_files(run_dir: Path, policy: HebbianPolicy, tmp_path: Path, probe_cli) -> None:
    _needs_sklearn()
    rc = probe_cli(["rules", str(run_dir), "--out", str(tmp_path), "--max-steps", "15", "--k-max", "3"])
    assert rc == 0
    for name in [
        "rules_summary.csv",
        "rules_histograms.png",
        "rules_clusters.csv",
        "rules_k.csv",
        "rules_clusters.png",
        "weights_pca.csv",
        "weights_pca_variance.csv",
        "weights_pca.png",
        "rules.json",
    ]:
        assert (tmp_path / name).stat().st_size > 0, name
    summary = read_csv(tmp_path / "rules_summary.csv")
    coeffs = policy.rule.coefficients
    assert {(r["layer"], r["coefficient"]) for r in summary} == {
        (layer, c) for layer in ("dense.0", "dense.1", "dense.2", "all") for c in coeffs
    }
    table = policy.get_flat()[dict(policy.layout)["rules"]].reshape(-1, len(coeffs))
    row = next(r for r in summary if r["layer"] == "dense.1" and r["coefficient"] == "A")
    a_layer1 = table[27 * 128 : 27 * 128 + 128 * 64, coeffs.index("A")].astype(np.float64)
    assert float(row["mean"]) == pytest.approx(a_layer1.mean())
    assert float(row["q50"]) == pytest.approx(np.median(a_layer1))
    clusters = read_csv(tmp_path / "rules_clusters.csv")
    assert sum(int(c["rules"]) for c in clusters) == policy.num_rules
    assert sum(int(c["synapses"]) for c in clusters) == policy.num_synapses
    doc = json.loads((tmp_path / "rules.json").read_text())
    assert doc["clustering"]["k"] == len(clusters) and 2 <= len(clusters) <= 3
    pca_rows = read_csv(tmp_path / "weights_pca.csv")
    assert [int(r["t"]) for r in pca_rows if r["layer"] == "all"] == list(range(15))
    assert {r["layer"] for r in pca_rows} == {"all", "dense.0", "dense.1", "dense.2"}


def test_rules_with_shared_rules(tmp_path: Path) -> None:
    _needs_sklearn()
    pol = HebbianPolicy.from_env(ENV, seed=2, rho=64)
    res = analyse_rules(pol, tmp_path, max_steps=10, k_max=4)
    assert pol.num_rules == 190
    assert sum(c["rules"] for c in res.clusters) == 190
    assert sum(c["synapses"] for c in res.clusters) == pol.num_synapses
    layers = {r["layer"] for r in res.summary}
    assert "table" in layers and all(r["n"] == 190 for r in res.summary if r["layer"] == "table")
    # one rule for the whole network: a trivial single cluster
    one = HebbianPolicy.from_env(ENV, seed=2, rho="N")
    res1 = analyse_rules(one, tmp_path / "one", max_steps=5)
    assert res1.k == 1 and res1.structure == "trivial" and res1.clusters[0]["synapses"] == one.num_synapses


def test_rules_rejects_non_hebbian(tmp_path: Path) -> None:
    path = tmp_path / "static.pt"
    StaticPolicy.from_env(ENV, seed=0).save(path)
    with pytest.raises(ValueError, match="needs a HebbianPolicy; got a StaticPolicy"):
        analyse_rules(path, tmp_path / "out")


def test_bad_arguments(policy: HebbianPolicy, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="k_max=1 is not accepted"):
        choose_k(np.arange(12.0).reshape(6, 2), k_max=1)
    with pytest.raises(ValueError, match="n_components=1 is not accepted"):
        analyse_rules(policy, tmp_path, n_components=1)
