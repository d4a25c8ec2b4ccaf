"""Compiled forward-backward and Viterbi kernels over batches of sequences.

Every kernel takes a *batch*: the frames of many sequences concatenated along
the first axis, and ``offsets`` (int64, length ``n_sequences + 1``, exactly an
Arrow list array's offsets) saying where each sequence starts and ends. One
numba call handles the whole batch, so there is no Python overhead per
sequence.

The arithmetic follows hmmlearn 0.3.3's ``_hmmc`` (forward/backward passes,
``compute_scaling_xi_sum`` / ``compute_log_xi_sum``, Viterbi with the same
tie-breaking) so that results agree with hmmlearn to rounding. Two deliberate,
result-preserving differences:

* ``implementation="scaling"`` scales each frame's likelihoods by their
  maximum before the recursion and adds the scale back to the log-likelihood.
  The posteriors and expected transitions are mathematically unchanged, but a
  Gaussian frame far from every mean no longer underflows to zero (where
  hmmlearn raises "forward pass failed with underflow"). A sequence whose
  scaled recursion still underflows is redone in log space.
* ``implementation="log"`` uses the shared-maximum form of log-sum-exp (one
  ``exp`` per state instead of one per pair of states), falling back to the
  exact pairwise form wherever that could underflow.

All kernels are ``@njit(cache=True, nogil=True)``: the cache matters because
every Spark Python worker would otherwise compile them again.

Inputs must be float64 (int64 for symbols and offsets) and C-contiguous; the
Python wrappers below convert when needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

__all__ = [
    "categorical_estep",
    "forward_backward",
    "gaussian_full_loglik",
    "gaussian_full_stats",
    "score",
    "viterbi",
]

_MIN_SUM = 1e-300  # hmmlearn's underflow threshold in the scaled forward pass
_NEG_INF = -np.inf

IMPLEMENTATIONS = ("log", "scaling")


# --------------------------------------------------------------------------
# per-sequence building blocks (called from the batch kernels, inlined by numba)


@njit(cache=True, nogil=True)
def _logsumexp(v: Any) -> float:  # pragma: no cover - compiled
    m = _NEG_INF
    for x in v:
        if x > m:
            m = x
    if np.isinf(m):
        return m
    acc = 0.0
    for x in v:
        acc += np.exp(x - m)
    return np.log(acc) + m


# Only reassociation/contraction (lets LLVM vectorise the small dot products);
# no assumptions about NaN or infinities. Results move by rounding only.
_FASTMATH = {"reassoc", "contract", "arcp"}


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _seq_scaling(sp, A, fp, fwd, bwd, scale, gamma, M, tmp, accv):  # pragma: no cover - compiled
    """Scaled forward-backward on one sequence of frame probabilities ``fp``.

    Writes posteriors into ``gamma`` and adds ``sum_t outer(fwd[t], fp[t+1] * bwd[t+1])``
    into ``M``; the expected transitions are ``transmat * M`` (taken once per
    batch by the caller). Returns the log-likelihood of the (shifted) frames,
    or NaN when the recursion underflows (hmmlearn's "forward pass failed
    with underflow"); nothing has been added to ``M`` then and the caller
    redoes the sequence in log space.
    """
    T, K = fp.shape
    s = 0.0
    for i in range(K):
        v = sp[i] * fp[0, i]
        fwd[0, i] = v
        s += v
    if s < _MIN_SUM:
        return np.nan
    c = 1.0 / s
    scale[0] = c
    for i in range(K):
        fwd[0, i] *= c
    # the log of the product of the normalisers, taking few logs: prod stays
    # within [1e-150, 1e150] and a factor outside [1e-100, 1e100] is logged alone
    logprob = 0.0
    prod = 1.0
    if s < 1e-100 or s > 1e100:
        logprob += np.log(s)
    else:
        prod = s
    for t in range(1, T):
        for j in range(K):
            accv[j] = 0.0
        for i in range(K):
            a = fwd[t - 1, i]
            for j in range(K):
                accv[j] += a * A[i, j]
        s = 0.0
        for j in range(K):
            v = accv[j] * fp[t, j]
            accv[j] = v
            s += v
        if s < _MIN_SUM:
            return np.nan
        c = 1.0 / s
        scale[t] = c
        for j in range(K):
            fwd[t, j] = accv[j] * c
        if s < 1e-100 or s > 1e100:
            logprob += np.log(s)
        else:
            prod *= s
        if prod < 1e-150 or prod > 1e150:
            logprob += np.log(prod)
            prod = 1.0
    logprob += np.log(prod)
    # backward pass fused with the expected transitions and the posteriors
    for i in range(K):
        bwd[T - 1, i] = scale[T - 1]
    ssum = 0.0
    for i in range(K):
        v = fwd[T - 1, i] * bwd[T - 1, i]
        gamma[T - 1, i] = v
        ssum += v
    inv = 1.0 / ssum
    for i in range(K):
        gamma[T - 1, i] *= inv
    for t in range(T - 2, -1, -1):
        for j in range(K):
            tmp[j] = fp[t + 1, j] * bwd[t + 1, j]
        ssum = 0.0
        for i in range(K):
            f = fwd[t, i]
            acc = 0.0
            for j in range(K):
                acc += A[i, j] * tmp[j]
                M[i, j] += f * tmp[j]
            b = acc * scale[t]
            bwd[t, i] = b
            v = f * b
            gamma[t, i] = v
            ssum += v
        if ssum != 0.0:
            inv = 1.0 / ssum
            for i in range(K):
                gamma[t, i] *= inv
    return logprob


@njit(cache=True, nogil=True)
def _seq_forward_log(lsp, A, lA, lf, fwd):  # pragma: no cover - compiled
    """Log-space forward pass into ``fwd``; returns the log-likelihood."""
    T, K = lf.shape
    e = np.empty(K)
    buf = np.empty(K)
    for i in range(K):
        fwd[0, i] = lsp[i] + lf[0, i]
    for t in range(1, T):
        m = _NEG_INF
        for i in range(K):
            if fwd[t - 1, i] > m:
                m = fwd[t - 1, i]
        if np.isinf(m):
            for j in range(K):
                fwd[t, j] = _NEG_INF
            continue
        for i in range(K):
            e[i] = np.exp(fwd[t - 1, i] - m)
        for j in range(K):
            s = 0.0
            for i in range(K):
                s += e[i] * A[i, j]
            if s > 1e-250:
                fwd[t, j] = m + np.log(s) + lf[t, j]
            else:
                for i in range(K):
                    buf[i] = fwd[t - 1, i] + lA[i, j]
                fwd[t, j] = _logsumexp(buf) + lf[t, j]
    return _logsumexp(fwd[T - 1])


@njit(cache=True, nogil=True)
def _seq_log(lsp, A, lA, lf, fwd, bwd, gamma, trans_sum, want_trans):  # pragma: no cover - compiled
    """Log-space forward-backward on one sequence of frame log-likelihoods ``lf``.

    Writes posteriors into ``gamma`` and adds expected transitions into
    ``trans_sum``. Returns the log-likelihood (-inf for an impossible
    sequence, in which case nothing is added and ``gamma`` is NaN).
    """
    T, K = lf.shape
    e = np.empty(K)
    buf = np.empty(K)
    logprob = _seq_forward_log(lsp, A, lA, lf, fwd)
    if np.isinf(logprob) or np.isnan(logprob):
        for t in range(T):
            for i in range(K):
                gamma[t, i] = np.nan
        return _NEG_INF
    for i in range(K):
        bwd[T - 1, i] = 0.0
    v = np.empty(K)
    for t in range(T - 2, -1, -1):
        m = _NEG_INF
        for j in range(K):
            v[j] = lf[t + 1, j] + bwd[t + 1, j]
            if v[j] > m:
                m = v[j]
        if np.isinf(m):
            for i in range(K):
                bwd[t, i] = _NEG_INF
            continue
        for j in range(K):
            e[j] = np.exp(v[j] - m)
        for i in range(K):
            s = 0.0
            for j in range(K):
                s += A[i, j] * e[j]
            if s > 1e-250:
                bwd[t, i] = m + np.log(s)
            else:
                for j in range(K):
                    buf[j] = lA[i, j] + v[j]
                bwd[t, i] = _logsumexp(buf)
        if want_trans:
            # xi[t, i, j] = exp(fwd[t, i] + log A[i, j] + v[j] - logprob)
            #             = exp(fwd[t, i] - logprob + m) * A[i, j] * e[j]: K exps, not K * K
            for i in range(K):
                lfi = fwd[t, i] - logprob
                if np.isinf(lfi):
                    continue
                x = lfi + m
                if x < 700.0:
                    ef = np.exp(x)
                    for j in range(K):
                        trans_sum[i, j] += ef * A[i, j] * e[j]
                else:  # exp would overflow: the exact per-pair form
                    for j in range(K):
                        x = lfi + lA[i, j] + v[j]
                        if x > -745.0:
                            trans_sum[i, j] += np.exp(x)
    for t in range(T):
        m = _NEG_INF
        for i in range(K):
            x = fwd[t, i] + bwd[t, i]
            gamma[t, i] = x
            if x > m:
                m = x
        s = 0.0
        for i in range(K):
            x = np.exp(gamma[t, i] - m)
            gamma[t, i] = x
            s += x
        inv = 1.0 / s
        for i in range(K):
            gamma[t, i] *= inv
    return logprob


@njit(cache=True, nogil=True)
def _shifted_frameprob(lf, fp, shift):  # pragma: no cover - compiled
    """fp = exp(lf - max per frame); returns the sum of the shifts."""
    T, K = lf.shape
    total = 0.0
    for t in range(T):
        m = _NEG_INF
        for k in range(K):
            if lf[t, k] > m:
                m = lf[t, k]
        if np.isinf(m):
            m = 0.0  # an impossible frame: all zeros, the recursion reports it
        shift[t] = m
        total += m
        for k in range(K):
            fp[t, k] = np.exp(lf[t, k] - m)
    return total


# --------------------------------------------------------------------------
# batch kernels


@njit(cache=True, nogil=True)
def _forward_backward_batch(
    sp, A, lf, offsets, use_log, posteriors, start_sum, trans_sum, logprob
):  # pragma: no cover - compiled
    K = sp.shape[0]
    n_seq = offsets.shape[0] - 1
    max_len = 0
    for s in range(n_seq):
        n = offsets[s + 1] - offsets[s]
        if n > max_len:
            max_len = n
    fwd = np.empty((max_len, K))
    bwd = np.empty((max_len, K))
    scale = np.empty(max_len)
    fp = np.empty((max_len, K))
    shift = np.empty(max_len)
    M = np.zeros((K, K))
    tmp = np.empty(K)
    accv = np.empty(K)
    lsp = np.log(sp)
    lA = np.log(A)
    for s in range(n_seq):
        a = offsets[s]
        b = offsets[s + 1]
        T = b - a
        if T == 0:
            logprob[s] = 0.0
            continue
        gamma = posteriors[a:b]
        lfs = lf[a:b]
        lp = np.nan
        if not use_log:
            total = _shifted_frameprob(lfs, fp[:T], shift[:T])
            lp = _seq_scaling(sp, A, fp[:T], fwd[:T], bwd[:T], scale[:T], gamma, M, tmp, accv)
            if not np.isnan(lp):
                lp += total
        if np.isnan(lp):
            lp = _seq_log(lsp, A, lA, lfs, fwd[:T], bwd[:T], gamma, trans_sum, True)
        logprob[s] = lp
        if not np.isinf(lp):
            for k in range(K):
                start_sum[k] += gamma[0, k]
    for i in range(K):
        for j in range(K):
            trans_sum[i, j] += A[i, j] * M[i, j]


@njit(cache=True, nogil=True)
def _score_batch(sp, A, lf, offsets, logprob):  # pragma: no cover - compiled
    K = sp.shape[0]
    n_seq = offsets.shape[0] - 1
    max_len = 0
    for s in range(n_seq):
        n = offsets[s + 1] - offsets[s]
        if n > max_len:
            max_len = n
    fwd = np.empty((max_len, K))
    lsp = np.log(sp)
    lA = np.log(A)
    for s in range(n_seq):
        a = offsets[s]
        b = offsets[s + 1]
        if b == a:
            logprob[s] = 0.0
            continue
        logprob[s] = _seq_forward_log(lsp, A, lA, lf[a:b], fwd[: b - a])


@njit(cache=True, nogil=True)
def _viterbi_batch(lsp, lA, lf, offsets, logprob, states):  # pragma: no cover - compiled
    K = lsp.shape[0]
    n_seq = offsets.shape[0] - 1
    max_len = 0
    for s in range(n_seq):
        n = offsets[s + 1] - offsets[s]
        if n > max_len:
            max_len = n
    lat = np.empty((max_len, K))
    for s in range(n_seq):
        a = offsets[s]
        b = offsets[s + 1]
        T = b - a
        if T == 0:
            logprob[s] = 0.0
            continue
        for i in range(K):
            lat[0, i] = lsp[i] + lf[a, i]
        for t in range(1, T):
            for i in range(K):
                m = _NEG_INF
                for j in range(K):
                    x = lat[t - 1, j] + lA[j, i]
                    if x > m:  # std::max keeps the first of equal values
                        m = x
                lat[t, i] = m + lf[a + t, i]
        # final state: std::max_element, the first maximum
        prev = 0
        best = lat[T - 1, 0]
        for i in range(1, K):
            if lat[T - 1, i] > best:
                best = lat[T - 1, i]
                prev = i
        logprob[s] = best
        states[a + T - 1] = prev
        # backtrack: std::max over (value, index) pairs, so the last index wins ties
        for t in range(T - 2, -1, -1):
            bv = _NEG_INF
            bi = 0
            for i in range(K):
                x = lat[t, i] + lA[i, prev]
                if bv < x or (bv == x and bi < i):
                    bv = x
                    bi = i
            prev = bi
            states[a + t] = prev


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _categorical_estep_batch(
    sp, A, B, symbols, offsets, use_log, want_trans, want_obs, start_sum, trans_sum, obs_t, logprob
):  # pragma: no cover - compiled
    """Fused categorical E-step: frame likelihoods looked up from ``B``.

    ``B`` is the emission matrix transposed, (n_features, K), so a symbol's
    likelihoods are one contiguous row; ``obs_t`` is accumulated transposed
    the same way.
    """
    K = sp.shape[0]
    n_seq = offsets.shape[0] - 1
    max_len = 0
    for s in range(n_seq):
        n = offsets[s + 1] - offsets[s]
        if n > max_len:
            max_len = n
    fwd = np.empty((max_len, K))
    bwd = np.empty((max_len, K))
    scale = np.empty(max_len)
    fp = np.empty((max_len, K))
    gamma = np.empty((max_len, K))
    M = np.zeros((K, K))
    tmp = np.empty(K)
    accv = np.empty(K)
    lsp = np.log(sp)
    lA = np.log(A)
    lB = np.log(B)
    for s in range(n_seq):
        a = offsets[s]
        b = offsets[s + 1]
        T = b - a
        if T == 0:
            logprob[s] = 0.0
            continue
        lp = np.nan
        if not use_log:
            for t in range(T):
                row = symbols[a + t]
                for k in range(K):
                    fp[t, k] = B[row, k]
            lp = _seq_scaling(sp, A, fp[:T], fwd[:T], bwd[:T], scale[:T], gamma[:T], M, tmp, accv)
        if np.isnan(lp):
            for t in range(T):
                row = symbols[a + t]
                for k in range(K):
                    fp[t, k] = lB[row, k]
            lp = _seq_log(lsp, A, lA, fp[:T], fwd[:T], bwd[:T], gamma[:T], trans_sum, want_trans)
        logprob[s] = lp
        if np.isinf(lp):
            continue
        for k in range(K):
            start_sum[k] += gamma[0, k]
        if want_obs:
            for t in range(T):
                row = symbols[a + t]
                for k in range(K):
                    obs_t[row, k] += gamma[t, k]
    if want_trans:
        for i in range(K):
            for j in range(K):
                trans_sum[i, j] += A[i, j] * M[i, j]


# --------------------------------------------------------------------------
# full-covariance Gaussian emissions (GaussianHMM / tied)

_STATS_BLOCK = 256  # frames summed locally before adding into the totals


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _lmvn_full_batch(X, means_t, chols_t, inv_diag, logdets, out):  # pragma: no cover - compiled
    """out[t, c] = log N(X[t] | means[c], L_c L_c^T), L_c lower Cholesky factor.

    hmmlearn's ``_log_multivariate_normal_density_full`` with the triangular
    solve done frame by frame (forward substitution) in one pass over ``X``.
    State-minor layouts (``means_t[i, c]``, ``chols_t[i, k, c]``,
    ``inv_diag[i, c] = 1 / L_c[i, i]``) so the inner loop over states vectorises.
    """
    n, nf = X.shape
    K = means_t.shape[1]
    const = np.empty(K)
    for c in range(K):
        const[c] = -0.5 * (nf * np.log(2 * np.pi) + logdets[c])
    y = np.empty((nf, K))
    q = np.empty(K)
    for t in range(n):
        for c in range(K):
            q[c] = 0.0
        for i in range(nf):
            x = X[t, i]
            for c in range(K):
                acc = x - means_t[i, c]
                for k in range(i):
                    acc -= chols_t[i, k, c] * y[k, c]
                v = acc * inv_diag[i, c]
                y[i, c] = v
                q[c] += v * v
        for c in range(K):
            out[t, c] = const[c] - 0.5 * q[c]


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _gaussian_full_stats_batch(X, post, post_sum, obs, oo):  # pragma: no cover - compiled
    """Adds sum_t post[t, c], post[t, c] * X[t] and post[t, c] * outer(X[t], X[t]).

    One pass over the frames; each block of frames is summed locally first
    (better rounding than one long running sum), in state-minor layouts so
    the inner loop over states vectorises. ``oo`` gets the upper triangle
    summed and mirrored, so it is exactly symmetric.
    """
    n, nf = X.shape
    K = post.shape[1]
    npair = nf * (nf + 1) // 2
    bp = np.zeros(K)
    bo = np.zeros((nf, K))
    boo = np.zeros((npair, K))
    xx = np.empty(npair)
    for start in range(0, n, _STATS_BLOCK):
        stop = min(start + _STATS_BLOCK, n)
        bp[:] = 0.0
        bo[:] = 0.0
        boo[:] = 0.0
        for t in range(start, stop):
            r = 0
            for i in range(nf):
                for j in range(i, nf):
                    xx[r] = X[t, i] * X[t, j]
                    r += 1
            for c in range(K):
                bp[c] += post[t, c]
            for i in range(nf):
                x = X[t, i]
                for c in range(K):
                    bo[i, c] += post[t, c] * x
            for r in range(npair):
                v = xx[r]
                for c in range(K):
                    boo[r, c] += post[t, c] * v
        for c in range(K):
            post_sum[c] += bp[c]
        for i in range(nf):
            for c in range(K):
                obs[c, i] += bo[i, c]
        r = 0
        for i in range(nf):
            for j in range(i, nf):
                for c in range(K):
                    oo[c, i, j] += boo[r, c]
                r += 1
    for c in range(K):
        for i in range(nf):
            for j in range(i + 1, nf):
                oo[c, j, i] = oo[c, i, j]


# --------------------------------------------------------------------------
# Python entry points


def _f64(a: Any) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def _check_batch(
    startprob: np.ndarray,
    transmat: np.ndarray,
    frames: np.ndarray | None,
    offsets: Any,
    n_frames: int = 0,
) -> np.ndarray:
    K = startprob.shape[0]
    if startprob.ndim != 1:
        raise ValueError(f"startprob must be 1-d; got shape {startprob.shape}")
    if transmat.shape != (K, K):
        raise ValueError(f"transmat must have shape ({K}, {K}); got {transmat.shape}")
    if frames is not None:
        if frames.ndim != 2 or frames.shape[1] != K:
            raise ValueError(f"framelogprob must have shape (n_frames, {K}); got {frames.shape}")
        n_frames = frames.shape[0]
    off = np.ascontiguousarray(offsets, dtype=np.int64)
    if off.ndim != 1 or off.shape[0] < 1 or off[0] != 0 or off[-1] != n_frames:
        raise ValueError(
            "offsets must be a 1-d array starting at 0 and ending at n_frames "
            f"({n_frames}); got {off[:3]}...{off[-3:]}"
        )
    if off.shape[0] > 1 and np.any(np.diff(off) < 0):
        raise ValueError("offsets must be non-decreasing")
    return off


def _check_impl(implementation: str) -> bool:
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}; got {implementation!r}")
    return implementation == "log"


def forward_backward(
    startprob: np.ndarray,
    transmat: np.ndarray,
    framelogprob: np.ndarray,
    offsets: np.ndarray,
    implementation: str = "log",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Forward-backward over a batch of sequences.

    Parameters
    ----------
    startprob : ndarray of shape (n_components,)
    transmat : ndarray of shape (n_components, n_components)
    framelogprob : ndarray of shape (n_frames, n_components)
        Emission log-likelihood of every frame under every state.
    offsets : ndarray of int64, shape (n_sequences + 1,)
        Sequence ``i`` is frames ``offsets[i]:offsets[i + 1]``.
    implementation : {"log", "scaling"}
        As hmmlearn's ``implementation``.

    Returns
    -------
    logprob : ndarray of shape (n_sequences,)
        Log-likelihood of each sequence (``-inf`` for an impossible one).
    posteriors : ndarray of shape (n_frames, n_components)
        State posteriors per frame (NaN rows for impossible sequences).
    start_sum : ndarray of shape (n_components,)
        Sum over sequences of the first frame's posteriors.
    trans_sum : ndarray of shape (n_components, n_components)
        Sum over sequences and frames of the expected transitions.
        Impossible sequences contribute to neither sum.
    """
    use_log = _check_impl(implementation)
    sp, A, lf = _f64(startprob), _f64(transmat), _f64(framelogprob)
    off = _check_batch(sp, A, lf, offsets)
    K = sp.shape[0]
    n_seq = off.shape[0] - 1
    posteriors = np.empty((lf.shape[0], K))
    start_sum = np.zeros(K)
    trans_sum = np.zeros((K, K))
    logprob = np.empty(n_seq)
    _forward_backward_batch(sp, A, lf, off, use_log, posteriors, start_sum, trans_sum, logprob)
    return logprob, posteriors, start_sum, trans_sum


def score(
    startprob: np.ndarray,
    transmat: np.ndarray,
    framelogprob: np.ndarray,
    offsets: np.ndarray,
    implementation: str = "log",
) -> np.ndarray:
    """Log-likelihood of each sequence of a batch (the forward pass only).

    ``implementation`` is accepted for symmetry with hmmlearn; the log-space
    forward pass is used for both since it is exact and never underflows.

    Returns
    -------
    logprob : ndarray of shape (n_sequences,)
    """
    _check_impl(implementation)
    sp, A, lf = _f64(startprob), _f64(transmat), _f64(framelogprob)
    off = _check_batch(sp, A, lf, offsets)
    logprob = np.empty(off.shape[0] - 1)
    with np.errstate(divide="ignore"):
        _score_batch(sp, A, lf, off, logprob)
    return logprob


def viterbi(
    startprob: np.ndarray,
    transmat: np.ndarray,
    framelogprob: np.ndarray,
    offsets: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Most likely state path of each sequence of a batch.

    Ties are broken as hmmlearn's ``_hmmc.viterbi``: the first best final
    state, and the last best predecessor while tracing back.

    Returns
    -------
    logprob : ndarray of shape (n_sequences,)
        Log-probability of each best path.
    states : ndarray of int32, shape (n_frames,)
    """
    sp, A, lf = _f64(startprob), _f64(transmat), _f64(framelogprob)
    off = _check_batch(sp, A, lf, offsets)
    with np.errstate(divide="ignore"):
        lsp = np.log(sp)
        lA = np.ascontiguousarray(np.log(A))
    logprob = np.empty(off.shape[0] - 1)
    states = np.zeros(lf.shape[0], dtype=np.int32)
    _viterbi_batch(lsp, lA, lf, off, logprob, states)
    return logprob, states


def categorical_estep(
    startprob: np.ndarray,
    transmat: np.ndarray,
    emissionprob: np.ndarray,
    symbols: np.ndarray,
    offsets: np.ndarray,
    implementation: str = "log",
    want_trans: bool = True,
    want_obs: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fused categorical E-step: no frame likelihood matrix is materialised.

    Parameters
    ----------
    startprob, transmat : ndarray
    emissionprob : ndarray of shape (n_components, n_features)
    symbols : ndarray of int, shape (n_frames,)
        Symbols in ``[0, n_features)`` (not checked here: validate first).
    offsets : ndarray of int64, shape (n_sequences + 1,)
    implementation : {"log", "scaling"}
    want_trans, want_obs : bool
        Skip the expected transitions / emission counts when not fitted.

    Returns
    -------
    logprob : ndarray of shape (n_sequences,)
    start_sum : ndarray of shape (n_components,)
    trans_sum : ndarray of shape (n_components, n_components)
    obs_sum : ndarray of shape (n_components, n_features)
        Expected emission counts, hmmlearn's ``stats["obs"]``.
    """
    use_log = _check_impl(implementation)
    sp, A = _f64(startprob), _f64(transmat)
    B = np.ascontiguousarray(np.asarray(emissionprob, dtype=np.float64).T)
    x = np.ascontiguousarray(symbols, dtype=np.int64).reshape(-1)
    K = sp.shape[0]
    if B.shape[1] != K:
        raise ValueError(f"emissionprob must have {K} rows; got shape {emissionprob.shape}")
    off = _check_batch(sp, A, None, offsets, n_frames=x.shape[0])
    start_sum = np.zeros(K)
    trans_sum = np.zeros((K, K))
    obs_t = np.zeros((B.shape[0], K))
    logprob = np.empty(off.shape[0] - 1)
    _categorical_estep_batch(
        sp, A, B, x, off, use_log, want_trans, want_obs, start_sum, trans_sum, obs_t, logprob
    )
    return logprob, start_sum, trans_sum, np.ascontiguousarray(obs_t.T)


def gaussian_full_loglik(
    X: np.ndarray, means: np.ndarray, chols: np.ndarray, logdets: np.ndarray
) -> np.ndarray:
    """Log-density of every frame under every full-covariance Gaussian state.

    Parameters
    ----------
    X : ndarray of shape (n_frames, n_features)
    means : ndarray of shape (n_components, n_features)
    chols : ndarray of shape (n_components, n_features, n_features)
        Lower Cholesky factor of each state's covariance.
    logdets : ndarray of shape (n_components,)
        Log-determinant of each covariance (``2 * sum(log(diag(chol)))``).

    Returns
    -------
    ndarray of shape (n_frames, n_components)
    """
    x, L, ld = _f64(X), np.asarray(chols, dtype=np.float64), _f64(logdets)
    mu_t = _f64(np.asarray(means, dtype=np.float64).T)
    L_t = _f64(L.transpose(1, 2, 0))
    inv_diag = _f64(1.0 / np.diagonal(L, axis1=1, axis2=2).T)
    out = np.empty((x.shape[0], mu_t.shape[1]))
    _lmvn_full_batch(x, mu_t, L_t, inv_diag, ld, out)
    return out


def gaussian_full_stats(
    X: np.ndarray,
    posteriors: np.ndarray,
    post_sum: np.ndarray,
    obs: np.ndarray,
    obs_outer: np.ndarray,
) -> None:
    """Add a batch's full-covariance Gaussian statistics into the given arrays.

    ``post_sum`` (K,) += posteriors summed over frames; ``obs`` (K, F) +=
    ``posteriors.T @ X``; ``obs_outer`` (K, F, F) += per state
    ``(X * posteriors[:, c:c+1]).T @ X``. The three targets must be
    C-contiguous float64 arrays (they are updated in place).
    """
    x, g = _f64(X), _f64(posteriors)
    for a in (post_sum, obs, obs_outer):
        if a.dtype != np.float64 or not a.flags.c_contiguous:
            raise ValueError("statistics arrays must be C-contiguous float64")
    _gaussian_full_stats_batch(x, g, post_sum, obs, obs_outer)
