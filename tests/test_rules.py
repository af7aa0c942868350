"""The Hebbian rule family against a per-synapse loop, shared rules and the rho bookkeeping."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

from agents.policies.rules import (
    RULES,
    apply_terms_,
    block_assignment,
    get_rule,
    hebbian_update,
    num_rules_for,
    shared_coefficients,
)

RULE_NAMES = [
    "A",
    "AD",
    "AD_lr",
    "ABC",
    "ABC_lr",
    "ABCD",
    "ABCD_lr",
    "ABCD_lr_D_out",
    "ABCD_lr_D_in_and_out",
]


def loop_dw(rule: str, c: dict[str, float], pre: float, post: float) -> float:
    """The formula of one synapse, written out by hand for each rule."""
    if rule == "A":
        return c["A"] * pre * post
    if rule == "AD":
        return c["A"] * pre * post + c["D"]
    if rule == "AD_lr":
        return c["eta"] * (c["A"] * pre * post + c["D"])
    if rule == "ABC":
        return c["A"] * pre * post + c["B"] * pre + c["C"] * post
    if rule == "ABC_lr":
        return c["eta"] * (c["A"] * pre * post + c["B"] * pre + c["C"] * post)
    if rule == "ABCD":
        return c["A"] * pre * post + c["B"] * pre + c["C"] * post + c["D"]
    if rule == "ABCD_lr":
        return c["eta"] * (c["A"] * pre * post + c["B"] * pre + c["C"] * post + c["D"])
    if rule == "ABCD_lr_D_out":
        return c["eta"] * (c["A"] * pre * post + c["B"] * pre + c["C"] * post) + c["D_out"]
    if rule == "ABCD_lr_D_in_and_out":
        return c["eta"] * (c["A"] * pre * post + c["B"] * pre + c["C"] * post + c["D_in"]) + c["D_out"]
    raise AssertionError(rule)


def loop_update(
    rule: str, w: np.ndarray, pre: np.ndarray, post: np.ndarray, coeffs: np.ndarray
) -> np.ndarray:
    """Per-synapse reference: w[b, j, i] += dw(pre[b, i], post[b, j]) with one batch dim b."""
    names = RULES[rule].coefficients
    out = w.astype(np.float64).copy()
    for b in range(w.shape[0]):
        for j in range(w.shape[1]):
            for i in range(w.shape[2]):
                c = {n: float(coeffs[b, j, i, q]) for q, n in enumerate(names)}
                out[b, j, i] += loop_dw(rule, c, float(pre[b, i]), float(post[b, j]))
    return out


def test_nine_rules_with_declared_coefficients() -> None:
    assert list(RULES) == RULE_NAMES
    assert RULES["ABCD_lr"].coefficients == ("eta", "A", "B", "C", "D")
    assert [RULES[n].k for n in RULE_NAMES] == [1, 2, 3, 3, 4, 4, 5, 5, 6]
    for r in RULES.values():
        assert r.formula and "dw" in repr(r)


@pytest.mark.parametrize("rule", RULE_NAMES)
@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rule_matches_per_synapse_loop(rule: str, backend: str, dtype: str) -> None:
    rng = np.random.default_rng(zlib.crc32(f"{rule}/{backend}/{dtype}".encode()))
    b, n_out, n_in, k = (
        int(rng.integers(1, 4)),
        int(rng.integers(1, 9)),
        int(rng.integers(1, 11)),
        RULES[rule].k,
    )
    w = rng.standard_normal((b, n_out, n_in)).astype(dtype)
    pre = rng.standard_normal((b, n_in)).astype(dtype)
    post = rng.standard_normal((b, n_out)).astype(dtype)
    coeffs = rng.standard_normal((b, n_out, n_in, k)).astype(dtype)
    expected = loop_update(rule, w, pre, post, coeffs)
    args = (w, pre, post, coeffs)
    if backend == "torch":
        args = tuple(torch.from_numpy(a) for a in args)
    before = [a.copy() if isinstance(a, np.ndarray) else a.clone() for a in args]
    got = hebbian_update(*args, rule=rule)
    assert type(got) is type(args[0])
    assert got.dtype == args[0].dtype and tuple(got.shape) == (b, n_out, n_in)
    tol = 1e-5 if dtype == "float32" else 1e-12
    got_np = got.numpy() if backend == "torch" else got
    np.testing.assert_allclose(got_np, expected, rtol=tol, atol=tol)
    for a, a0 in zip(args, before):  # pure: inputs untouched
        assert (a == a0).all()


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_in_place_torch_kernel_equals_pure_update(rule: str) -> None:
    g = torch.Generator().manual_seed(1)
    w = torch.randn(3, 2, 5, 7, generator=g)
    pre, post = torch.randn(3, 2, 7, generator=g), torch.randn(3, 2, 5, generator=g)
    coeffs = torch.randn(3, 1, 5, 7, RULES[rule].k, generator=g)  # per individual, broadcast over envs
    expected = hebbian_update(w, pre, post, coeffs.expand(3, 2, 5, 7, -1), rule=rule)
    apply_terms_(w, pre, post, RULES[rule].terms(coeffs))
    torch.testing.assert_close(w, expected, rtol=1e-6, atol=1e-6)


def test_leading_dims_broadcast() -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((2, 3, 4, 5))
    pre, post = rng.standard_normal((2, 3, 5)), rng.standard_normal((2, 3, 4))
    coeffs = rng.standard_normal((4, 5, 5))  # one rule set for every leading index
    got = hebbian_update(w, pre, post, coeffs)
    for a in range(2):
        for b in range(3):
            one = hebbian_update(w[a, b], pre[a, b], post[a, b], coeffs)
            np.testing.assert_allclose(got[a, b], one)


def test_shared_identity_assignment_equals_per_synapse() -> None:
    rng = np.random.default_rng(2)
    n_out, n_in, k = 6, 4, 5
    n = n_out * n_in
    table = rng.standard_normal((n, k))
    per_syn = shared_coefficients(table, np.arange(n))
    np.testing.assert_array_equal(per_syn, table)
    w = rng.standard_normal((n_out, n_in))
    pre, post = rng.standard_normal(n_in), rng.standard_normal(n_out)
    a = hebbian_update(w, pre, post, per_syn.reshape(n_out, n_in, k))
    b = hebbian_update(w, pre, post, table.reshape(n_out, n_in, k))
    np.testing.assert_array_equal(a, b)
    # torch and batched (one assignment per individual) agree with numpy
    tt = torch.from_numpy(np.stack([table, 2 * table]))
    got = shared_coefficients(tt, torch.arange(n).expand(2, n))
    np.testing.assert_array_equal(got.numpy(), np.stack([table, 2 * table]))
    np.testing.assert_array_equal(
        shared_coefficients(np.stack([table, table]), np.stack([np.arange(n)] * 2)), np.stack([table, table])
    )


def test_rho_n_is_one_rule_everywhere() -> None:
    n = 12160
    assert num_rules_for(n, n) == 1 and num_rules_for(n, "N") == 1
    assert (block_assignment(n, "N") == 0).all()
    table = np.arange(5, dtype=np.float64)[None]  # (1, 5)
    coeffs = shared_coefficients(table, block_assignment(n, n))
    assert coeffs.shape == (n, 5) and (coeffs == table).all()


def test_rho_bookkeeping() -> None:
    assert num_rules_for(12160, 1) == 12160
    assert num_rules_for(12160, 256) == 48  # ceil: the paper's rho values need not divide N
    a = block_assignment(10, 4)
    assert a.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="rho"):
        num_rules_for(10, 0)
    with pytest.raises(ValueError, match="rho"):
        num_rules_for(10, 11)
    with pytest.raises(TypeError, match="rho"):
        num_rules_for(10, 2.5)
    with pytest.raises(ValueError, match="rho"):
        num_rules_for(10, "all")


def test_bad_input() -> None:
    w, pre, post = np.zeros((3, 4)), np.zeros(4), np.zeros(3)
    with pytest.raises(ValueError, match="ABCD_lr"):
        get_rule("ABCDE")
    with pytest.raises(ValueError, match="not a known Hebbian rule"):
        hebbian_update(w, pre, post, np.zeros((3, 4, 5)), rule="Oja")
    with pytest.raises(ValueError, match="coeffs"):
        hebbian_update(w, pre, post, np.zeros((3, 4, 4)), rule="ABCD_lr")
    with pytest.raises(ValueError, match="pre"):
        hebbian_update(w, np.zeros(5), post, np.zeros((3, 4, 5)))
    with pytest.raises(ValueError, match="post"):
        hebbian_update(w, pre, np.zeros(2), np.zeros((3, 4, 5)))
    with pytest.raises(TypeError, match="numpy arrays or all torch tensors"):
        hebbian_update(torch.zeros(3, 4), pre, post, np.zeros((3, 4, 5)))
    with pytest.raises(ValueError, match="assignment"):
        shared_coefficients(np.zeros((2, 5)), np.array([0, 2]))
    with pytest.raises(TypeError, match="assignment"):
        shared_coefficients(np.zeros((2, 5)), np.array([0.0, 1.0]))
