"""Batch kernels against hmmlearn's own compiled routines (hmmlearn._hmmc), sequence by sequence."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sparklift.hmm import kernels

_hmmc = pytest.importorskip("hmmlearn._hmmc")

LENGTHS = [1, 2, 9, 40, 3]


def _model(seed, K):
    rng = np.random.RandomState(seed)
    return rng.dirichlet(np.ones(K)), rng.dirichlet(np.ones(K), size=K), rng


def _offsets(lengths):
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def _reference(sp, A, lf, off):
    """hmmlearn's log-space routines, one sequence at a time, as its _do_estep uses them."""
    logprob, post, trans = [], [], np.zeros((len(sp), len(sp)))
    for a, b in itertools.pairwise(off):
        x = lf[a:b]
        lp, fwd = _hmmc.forward_log(sp, A, x)
        bwd = _hmmc.backward_log(sp, A, x)
        g = fwd + bwd
        g = np.exp(g - np.logaddexp.reduce(g, axis=1)[:, None])
        logprob.append(lp)
        post.append(g)
        if b - a > 1:
            trans += np.exp(_hmmc.compute_log_xi_sum(fwd, A, bwd, x))
    post = np.concatenate(post)
    start = sum(post[a] for a in off[:-1])
    return np.array(logprob), post, start, trans


@pytest.mark.smoke
@pytest.mark.parametrize("implementation", ["log", "scaling"])
def test_forward_backward_equals_hmmlearn(implementation):
    sp, A, rng = _model(0, 4)
    off = _offsets(LENGTHS)
    lf = rng.randn(off[-1], 4) * 3
    got = kernels.forward_backward(sp, A, lf, off, implementation)
    ref = _reference(sp, A, lf, off)
    for g, r in zip(got, ref, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(kernels.score(sp, A, lf, off, implementation), ref[0], rtol=1e-12)


def test_scaling_does_not_underflow_where_hmmlearn_does():
    # frames far from every state (Gaussian outliers): hmmlearn's scaled pass raises
    sp, A, rng = _model(1, 3)
    off = _offsets([30])
    lf = rng.randn(30, 3) - 800.0
    with pytest.raises(ValueError, match="underflow"):
        _hmmc.forward_scaling(sp, A, np.exp(lf))
    got = kernels.forward_backward(sp, A, lf, off, "scaling")
    ref = _reference(sp, A, lf, off)
    for g, r in zip(got, ref, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-12)


def test_left_right_model_and_impossible_sequence():
    K = 3
    sp = np.array([1.0, 0.0, 0.0])
    A = np.array([[0.6, 0.4, 0.0], [0.0, 0.7, 0.3], [0.0, 0.0, 1.0]])
    rng = np.random.RandomState(2)
    off = _offsets([5, 4])
    lf = rng.randn(9, K)
    lf[5, 0] = -np.inf  # the second sequence starts in a state that cannot emit its frame
    for impl in ("log", "scaling"):
        lp, post, start, trans = kernels.forward_backward(sp, A, lf, off, impl)
        ref = _reference(sp, A, lf[:5], off[:2])
        np.testing.assert_allclose(lp[0], ref[0][0], rtol=1e-12)
        assert lp[1] == -np.inf
        np.testing.assert_allclose(start, ref[2], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(trans, ref[3], rtol=1e-10, atol=1e-15)
        assert np.all(np.isfinite(post[:5]))
        assert trans[1, 0] == 0.0
        assert trans[2, 0] == 0.0


@pytest.mark.parametrize("implementation", ["log", "scaling"])
def test_categorical_fused_equals_generic(implementation):
    sp, A, rng = _model(3, 5)
    F = 7
    B = rng.dirichlet(np.ones(F), size=5)
    off = _offsets(LENGTHS)
    x = rng.randint(0, F, size=off[-1])
    lp, start, trans, obs = kernels.categorical_estep(sp, A, B, x, off, implementation)
    glp, post, gstart, gtrans = kernels.forward_backward(
        sp, A, np.log(B)[:, x].T, off, implementation
    )
    gobs = np.zeros((5, F))
    np.add.at(gobs.T, x, post)
    np.testing.assert_allclose(lp, glp, rtol=1e-12)
    np.testing.assert_allclose(start, gstart, rtol=1e-10)
    np.testing.assert_allclose(trans, gtrans, rtol=1e-10)
    np.testing.assert_allclose(obs, gobs, rtol=1e-10)


def test_categorical_scaling_falls_back_to_log_on_underflow():
    sp, A = np.array([0.5, 0.5]), np.array([[0.9, 0.1], [0.2, 0.8]])
    B = np.array([[1e-305, 0.5, 0.5], [1e-305, 0.3, 0.7]])
    x = np.zeros(
        6, dtype=np.int64
    )  # each frame ~1e-305 < 1e-300: the scaled pass cannot run (hmmlearn raises)
    off = _offsets([3, 3])
    a = kernels.categorical_estep(sp, A, B, x, off, "scaling")
    b = kernels.categorical_estep(sp, A, B, x, off, "log")
    for u, v in zip(a, b, strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-10)
    assert np.all(np.isfinite(a[0]))


def test_viterbi_equals_hmmlearn_including_forbidden_transitions():
    sp, A, rng = _model(4, 4)
    A[0, 2] = A[3, 1] = 0.0
    A /= A.sum(axis=1, keepdims=True)
    off = _offsets(LENGTHS)
    lf = rng.randn(off[-1], 4)
    lp, states = kernels.viterbi(sp, A, lf, off)
    assert states.dtype == np.int32
    for s, (a, b) in enumerate(itertools.pairwise(off)):
        ref_lp, ref_states = _hmmc.viterbi(sp, A, lf[a:b])
        np.testing.assert_allclose(lp[s], ref_lp, rtol=1e-12)
        np.testing.assert_array_equal(states[a:b], ref_states)


def test_viterbi_ties():
    K = 4
    sp, A = np.full(K, 0.25), np.full((K, K), 0.25)
    lf = np.zeros((6, K))
    _, states = kernels.viterbi(sp, A, lf, _offsets([6]))
    np.testing.assert_array_equal(states, _hmmc.viterbi(sp, A, lf)[1])


def test_bad_arguments():
    sp, A, _ = _model(5, 2)
    lf = np.zeros((4, 2))
    with pytest.raises(ValueError, match="implementation"):
        kernels.forward_backward(sp, A, lf, _offsets([4]), "fast")
    with pytest.raises(ValueError, match="offsets"):
        kernels.forward_backward(sp, A, lf, _offsets([3]))
    with pytest.raises(ValueError, match="framelogprob"):
        kernels.score(sp, A, np.zeros((4, 3)), _offsets([4]))
    with pytest.raises(ValueError, match="transmat"):
        kernels.viterbi(sp, np.eye(3), lf, _offsets([4]))


@pytest.mark.parametrize("nf", [1, 3])
def test_gaussian_full_loglik_and_stats(nf):
    stats_mod = pytest.importorskip("hmmlearn.stats")
    rng = np.random.RandomState(7)
    K, n = 4, 700  # n spans several statistics blocks
    X = rng.randn(n, nf) * 2
    means = rng.randn(K, nf)
    B = rng.randn(K, nf, nf)
    covars = B @ B.transpose(0, 2, 1) + np.eye(nf)
    chols = np.linalg.cholesky(covars)
    logdets = 2 * np.log(np.diagonal(chols, axis1=1, axis2=2)).sum(axis=1)
    lf = kernels.gaussian_full_loglik(X, means, chols, logdets)
    ref = stats_mod.log_multivariate_normal_density(X, means, covars, "full")
    np.testing.assert_allclose(lf, ref, rtol=1e-12)

    post = rng.dirichlet(np.ones(K), size=n)
    p, o, oo = np.ones(K), np.ones((K, nf)), np.ones((K, nf, nf))
    kernels.gaussian_full_stats(X, post, p, o, oo)
    np.testing.assert_allclose(p, 1 + post.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(o, 1 + post.T @ X, rtol=1e-12)
    ref_oo = 1 + np.array([(X * post[:, c : c + 1]).T @ X for c in range(K)])
    np.testing.assert_allclose(oo, ref_oo, rtol=1e-12)
    with pytest.raises(ValueError, match="C-contiguous"):
        kernels.gaussian_full_stats(X, post, p, o.astype(np.float32), oo)
