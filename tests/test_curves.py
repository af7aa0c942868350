"""Learning curves: the figure, and compute_to_target's measured answer or extrapolation (hebb-gym plot --target)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agents.cli import main as cli
from agents.training.curves import compute_to_target, compute_to_target_text
from agents.training.rundir import metrics_csv

STEPS = 1000  # env-steps per generation
SECONDS = 30.0  # seconds per generation (evaluation), plus 6 s per centre evaluation


def rows_of(centre, every=2):
    """A run's metrics rows: the centre evaluated every ``every`` generations by ``centre(env_steps so far)``."""
    rows = []
    for g in range(40):
        evaluated = (g + 1) % every == 0
        value = centre(STEPS * (g + 1)) if evaluated else math.nan
        rows.append({"generation": g, "env_steps": STEPS, "eval_seconds": SECONDS, "mean": 0.0, "best": 0.0,
                     "centre_mean": value, "centre_std": 1.0 if evaluated else math.nan,
                     "centre_min": value, "centre_seconds": 6.0 if evaluated else math.nan})
    return rows


def test_a_reached_target_is_measured_not_extrapolated():
    est = compute_to_target(rows_of(lambda s: s / 100.0), 150.0)  # 150 first reached at 16,000 steps (gen 15)
    assert est["reached"] and est["reached_generation"] == 15 and est["reached_env_steps"] == 16_000
    assert est["reached_minutes"] == pytest.approx((16 * SECONDS + 8 * 6.0) / 60)
    assert "centre reached 150 at generation 15" in compute_to_target_text("run", est)


def test_each_model_finds_the_crossing_of_a_curve_of_its_own_shape():
    linear = compute_to_target(rows_of(lambda s: 10.0 + 0.002 * s), 500.0)
    assert not linear["reached"] and linear["linear"]["env_steps"] == pytest.approx(245_000)
    assert linear["linear"]["minutes"] == pytest.approx(245_000 / (40 * STEPS) * (40 * SECONDS + 20 * 6.0) / 60)
    log = compute_to_target(rows_of(lambda s: 20.0 * math.log(s)), 300.0)
    assert log["log"]["env_steps"] == pytest.approx(math.exp(300.0 / 20.0), rel=1e-6)
    assert log["linear"]["env_steps"] < log["log"]["env_steps"]  # on a flattening curve the linear fit is the optimist
    assert log["linear"]["fitted_points"] == 10  # the second half of the 20 evaluations


def test_a_flat_or_falling_curve_gets_no_crossing():
    est = compute_to_target(rows_of(lambda s: 50.0 - s / 1e4), 100.0)
    assert est["linear"]["env_steps"] is None and est["log"]["env_steps"] is None
    assert "linear fit: never (slope <= 0)" in compute_to_target_text("run", est)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="fit_from=1.0 must be in"):
        compute_to_target(rows_of(lambda s: s), 1e9, fit_from=1.0)
    with pytest.raises(ValueError, match="at least 3 are needed"):
        compute_to_target(rows_of(lambda s: s, every=20), 1e9)


def test_plot_draws_the_target_and_prints_the_estimate(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.csv").write_text(metrics_csv(rows_of(lambda s: 10.0 + 0.002 * s)))
    assert cli(["plot", str(run), "--target", "500", "--out", str(tmp_path / "fig.png")]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "fig.png").stat().st_size > 0
    assert "run: best centre 90.0 < 500 after 0.04 M env-steps" in out and "linear fit: 0.2 M env-steps" in out
    assert np.isfinite(compute_to_target(rows_of(lambda s: s), 5.0)["reached_minutes"])
