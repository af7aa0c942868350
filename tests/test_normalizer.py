"""Observation normaliser: Chan merges equal one pass, merge order fixed, frozen map, state round trip."""

import numpy as np
import pytest
import torch

from agents.policies.normalizer import ObsNormalizer, ObsStats


def _stats(x: np.ndarray) -> ObsStats:
    s = ObsStats(x.shape[1])
    s.add(x)
    return s


def test_merged_statistics_equal_one_pass():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(1001, 7))
    parts = [_stats(x[a:b]) for a, b in ((0, 10), (10, 500), (500, 1001))]
    merged = ObsStats.merged(7, parts)
    assert merged.count == 1001
    np.testing.assert_allclose(merged.mean, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(merged.var, x.var(axis=0), rtol=1e-10)


def test_merge_in_a_fixed_order_is_reproducible_bit_for_bit():
    rng = np.random.default_rng(1)
    parts = [_stats(rng.normal(size=(int(rng.integers(1, 50)), 4))) for _ in range(12)]
    a = ObsStats.merged(4, parts)
    b = ObsStats.merged(4, [None] + parts)  # None entries (individuals with no step) are skipped
    assert np.array_equal(a.mean, b.mean) and np.array_equal(a.m2, b.m2)


def test_normaliser_map_and_clip():
    x = np.random.default_rng(2).normal(5.0, 3.0, size=(400, 3))
    norm = ObsNormalizer.from_stats(_stats(x), clip=5.0, eps=1e-3)
    expected = np.clip((x - x.mean(axis=0)) / (x.std(axis=0) + 1e-3), -5, 5)
    np.testing.assert_allclose(norm(x), expected, rtol=1e-5, atol=1e-5)
    assert norm(np.full((1, 3), 1e9)).max() == pytest.approx(5.0)
    assert norm(x).dtype == np.float32


def test_empty_statistics_give_the_identity():
    norm = ObsNormalizer.from_stats(ObsStats(3))
    x = np.array([[0.5, -1.0, 2.0]], dtype=np.float32)
    np.testing.assert_allclose(norm(x), x / (1 + 1e-3), rtol=1e-6)


def test_state_round_trips_and_bad_values_are_refused():
    s = _stats(np.random.default_rng(3).normal(size=(20, 2)))
    t = ObsStats.from_state_dict(s.state_dict())
    assert t.count == s.count and np.array_equal(t.mean, s.mean) and np.array_equal(t.m2, s.m2)
    n = ObsNormalizer.from_stats(s)
    assert ObsNormalizer.from_state_dict(n.state_dict()) == n
    bad = s.state_dict()
    bad["mean"] = np.array([np.nan, 0.0])
    with pytest.raises(ValueError, match="non-finite"):
        ObsStats.from_state_dict(bad)
    with pytest.raises(ValueError, match="finite"):
        ObsNormalizer(np.zeros(2), np.array([1.0, np.inf]))
    with pytest.raises(ValueError, match="one length"):
        ObsNormalizer(np.zeros(2), np.ones(3))
    with pytest.raises(ValueError, match="positive integer"):
        ObsStats(0)


def test_apply_on_torch_batches():
    n = ObsNormalizer(np.array([1.0, 2.0]), np.array([2.0, 4.0]), eps=1e-3)
    x = torch.tensor([[[1.0, 2.0], [3.0, 6.0]]])  # (P, E, dim)
    out = n.apply(x)
    assert out.shape == x.shape
    np.testing.assert_allclose(out[0, 1].numpy(), [2 / 2.001, 4 / 4.001], rtol=1e-6)
