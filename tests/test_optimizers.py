"""ES optimisers: ClipUp's normalised, speed-limited steps and its state round trip."""

import numpy as np
import pytest

from agents.es.optimizers import OPTIMIZERS, ClipUp, make_optimizer


def test_clipup_first_step_is_lr_along_the_gradient():
    opt = ClipUp(3, momentum=0.9, max_speed_ratio=2.0)
    step = opt.step(np.array([3.0, 0.0, 4.0]), lr=0.1)
    np.testing.assert_allclose(step, [0.06, 0.0, 0.08])  # lr * g / |g|, whatever |g|
    np.testing.assert_allclose(ClipUp(3).step(np.array([300.0, 0.0, 400.0]), lr=0.1), step)


def test_clipup_speed_is_capped_at_max_speed():
    opt = ClipUp(2, momentum=0.9, max_speed_ratio=2.0)
    for _ in range(100):  # a constant gradient accelerates the velocity towards lr / (1 - m) = 10 lr
        step = opt.step(np.array([1.0, 1.0]), lr=0.1)
    assert np.linalg.norm(step) == pytest.approx(0.2)


def test_clipup_state_round_trip_continues_identically():
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(6, 5))
    a = make_optimizer("clipup", 5)
    for g in grads[:3]:
        a.step(g, 0.05)
    b = ClipUp(5)
    b.load_state_dict(a.state_dict())
    for g in grads[3:]:
        assert np.array_equal(a.step(g, 0.05), b.step(g, 0.05))
    assert "clipup" in OPTIMIZERS
    with pytest.raises(ValueError, match="momentum"):
        ClipUp(2, momentum=1.0)
