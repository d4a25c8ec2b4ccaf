"""HMM orchestration in plain NumPy: statistics, E-step, M-step, init, monitor.

This module knows nothing of Spark. The distributed EM loop (``em.py``)
calls :func:`e_step` on each Arrow batch inside a partition function, adds
the resulting :class:`Stats` on the driver and calls :func:`m_step`;
:func:`fit_arrays` is the same loop on in-memory arrays, the reference the
Spark loop is checked against and what the tests compare with hmmlearn.

A *batch* is ``(X, offsets)``: the frames of several sequences concatenated
(``X`` as each emission family expects, see :mod:`.emissions`) and int64
``offsets`` of length ``n_sequences + 1`` (Arrow list offsets), i.e.
hmmlearn's ``lengths`` as ``offsets = [0, *cumsum(lengths)]``.

Parameter dicts hold ``"startprob"`` (K,), ``"transmat"`` (K, K) and the
family's keys (``"emissionprob"``; ``"means"``, ``"covars"``; ``"lambdas"``;
``"weights"``).

Examples
--------
>>> import numpy as np
>>> from sparklift.hmm import core
>>> from sparklift.hmm.emissions import get_family
>>> X = np.random.RandomState(0).randint(0, 4, size=300)      # symbols
>>> offsets = core.lengths_to_offsets([100, 150, 50])
>>> family = get_family("categorical", n_features=4)
>>> start = core.init_params(family, 2, X, "ste", random_state=0)
>>> params, monitor = core.fit_arrays(family, start, X, offsets, n_iter=20, implementation="scaling")
>>> logprob, states = core.decode(family, params, X, offsets)
"""

from __future__ import annotations

import logging
import sys
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sparklift.errors import InvalidInputError
from sparklift.hmm import kernels
from sparklift.hmm.emissions import (
    EmissionFamily,
    Params,
    _check_random_state,
    _check_sum_1,
    _normalize,
    check_symbols,
)

__all__ = [
    "ConvergenceMonitor",
    "Stats",
    "check_params",
    "decode",
    "e_step",
    "fit_arrays",
    "init_params",
    "lengths_to_offsets",
    "m_step",
    "posteriors",
    "sample",
    "score",
]

_log = logging.getLogger("sparklift.hmm")

DECODER_ALGORITHMS = ("viterbi", "map")


def lengths_to_offsets(lengths: Any, n_frames: int | None = None) -> np.ndarray:
    """hmmlearn's ``lengths`` (None = one sequence) as int64 offsets."""
    if lengths is None:
        if n_frames is None:
            raise ValueError("either lengths or n_frames is needed")
        return np.array([0, n_frames], dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    off = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=off[1:])
    if n_frames is not None and off[-1] != n_frames:
        raise ValueError(f"lengths sum to {off[-1]} but there are {n_frames} frames")
    return off


# --------------------------------------------------------------------------
# statistics


@dataclass
class Stats:
    """Additive sufficient statistics of one or more batches.

    Attributes
    ----------
    nobs : int
        Number of sequences.
    n_frames : int
        Number of frames.
    logprob : float
        Total log-likelihood of the sequences under the parameters used.
    start : ndarray of shape (n_components,)
        Sum of first-frame posteriors.
    trans : ndarray of shape (n_components, n_components)
        Sum of expected transitions.
    emission : dict of str to ndarray
        The family's statistics (hmmlearn's names, e.g. ``"obs"``).
    """

    nobs: int
    n_frames: int
    logprob: float
    start: np.ndarray
    trans: np.ndarray
    emission: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def zeros(cls, family: EmissionFamily, n_components: int, n_features: int) -> Stats:
        """Empty statistics (the neutral element of ``+``)."""
        return cls(
            nobs=0,
            n_frames=0,
            logprob=0.0,
            start=np.zeros(n_components),
            trans=np.zeros((n_components, n_components)),
            emission=family.empty_stats(n_components, n_features),
        )

    def __add__(self, other: Stats | None) -> Stats:
        # None (an empty partition) and 0 (the start of sum()) are neutral
        if other is None or (isinstance(other, int) and other == 0):
            return self
        if set(self.emission) != set(other.emission):
            raise ValueError(
                f"cannot add statistics with different keys: {sorted(self.emission)} and {sorted(other.emission)}"
            )
        return Stats(
            nobs=self.nobs + other.nobs,
            n_frames=self.n_frames + other.n_frames,
            logprob=self.logprob + other.logprob,
            start=self.start + other.start,
            trans=self.trans + other.trans,
            emission={k: v + other.emission[k] for k, v in self.emission.items()},
        )

    __radd__ = __add__

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat dict of arrays (for compact transport, or ``np.savez``)."""
        out = {
            "nobs": np.array(self.nobs, dtype=np.int64),
            "n_frames": np.array(self.n_frames, dtype=np.int64),
            "logprob": np.array(self.logprob, dtype=np.float64),
            "start": self.start,
            "trans": self.trans,
        }
        for k, v in self.emission.items():
            out["emission/" + k] = v
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Stats:
        """Inverse of :meth:`to_arrays`."""
        return cls(
            nobs=int(arrays["nobs"]),
            n_frames=int(arrays["n_frames"]),
            logprob=float(arrays["logprob"]),
            start=np.asarray(arrays["start"], dtype=np.float64),
            trans=np.asarray(arrays["trans"], dtype=np.float64),
            emission={
                k[len("emission/") :]: np.asarray(v)
                for k, v in arrays.items()
                if k.startswith("emission/")
            },
        )


def _n_features(family: EmissionFamily, params: Params) -> int:
    if family.name in ("categorical", "multinomial"):
        return int(params["emissionprob"].shape[1])
    if family.name == "poisson":
        return int(params["lambdas"].shape[1])
    return int(params["means"].shape[-1])


def _batch(
    family: EmissionFamily, X: np.ndarray, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Frames in the family's layout and offsets starting at 0.

    ``offsets`` may start above 0 (a slice of Arrow list offsets); ``X`` may
    then be either the whole child array (frames are taken from
    ``offsets[0]:offsets[-1]``) or exactly the batch's frames.
    """
    X = family.prepare(X)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    if offsets.ndim != 1 or offsets.shape[0] < 1:
        raise ValueError("offsets must be a 1-d array of length n_sequences + 1")
    lo, hi = int(offsets[0]), int(offsets[-1])
    if lo != 0:
        if X.shape[0] >= hi:
            X = X[lo:hi]
        offsets = offsets - lo
    if X.shape[0] != hi - lo:
        raise ValueError(f"offsets cover {hi - lo} frames but X has {X.shape[0]}")
    return X, offsets


def _impossible_error(logprob: np.ndarray) -> InvalidInputError:
    bad = np.flatnonzero(~np.isfinite(logprob))
    return InvalidInputError(
        f"{bad.size} sequences have zero likelihood under the current parameters "
        f"(for example sequence {int(bad[0])} of its batch): a symbol or value that no state "
        "can emit, or a transition the model forbids"
    )


def e_step(
    family: EmissionFamily,
    params: Params,
    X: np.ndarray,
    offsets: np.ndarray,
    implementation: str = "log",
    fit_params: str | None = None,
) -> Stats:
    """Expected sufficient statistics of one batch.

    Parameters
    ----------
    family : EmissionFamily
    params : dict
    X : ndarray
        Frames of the batch (concatenated sequences).
    offsets : ndarray of int64, shape (n_sequences + 1,)
        Sequence ``i`` is frames ``offsets[i]:offsets[i + 1]``; may start
        above 0 (Arrow offsets of a sliced list array), with ``X`` either
        the whole child array or just the batch's frames.
    implementation : {"log", "scaling"}
    fit_params : str, optional
        hmmlearn's ``params`` letters; emission statistics are gathered only
        when one of the family's letters is present (default: all).

    Returns
    -------
    Stats

    Raises
    ------
    InvalidInputError
        If a sequence has zero likelihood (hmmlearn would produce NaN or
        raise an underflow error).
    """
    if fit_params is None:
        fit_params = "st" + family.letters
    X, offsets = _batch(family, X, offsets)
    K = params["startprob"].shape[0]
    nf = _n_features(family, params)
    want_emission = any(c in fit_params for c in family.letters)
    stats = Stats.zeros(family, K, nf)
    stats.nobs = int(offsets.shape[0] - 1)
    stats.n_frames = int(offsets[-1])
    if family.name == "categorical":
        check_symbols(X, nf)  # the fused kernel indexes with symbols unchecked
        logprob, start, trans, obs = kernels.categorical_estep(
            params["startprob"],
            params["transmat"],
            params["emissionprob"],
            X,
            offsets,
            implementation,
            want_trans="t" in fit_params,
            want_obs=want_emission,
        )
        if want_emission:
            stats.emission["obs"] = obs
    else:
        framelogprob = family.log_likelihood(params, X)
        logprob, post, start, trans = kernels.forward_backward(
            params["startprob"], params["transmat"], framelogprob, offsets, implementation
        )
        if not np.all(np.isfinite(logprob)):
            raise _impossible_error(logprob)
        if want_emission:
            family.accumulate(stats.emission, params, X, post)
    if not np.all(np.isfinite(logprob)):
        raise _impossible_error(logprob)
    stats.logprob = float(logprob.sum())
    if "s" in fit_params:
        stats.start = start
    if "t" in fit_params:
        stats.trans = trans
    return stats


def m_step(
    family: EmissionFamily,
    params: Params,
    stats: Stats,
    fit_params: str | None = None,
    startprob_prior: Any = 1.0,
    transmat_prior: Any = 1.0,
) -> Params:
    """New parameters from summed statistics, as hmmlearn's ``_do_mstep``.

    Probabilities that were exactly 0 stay 0 (left-right models); a row of
    ``transmat`` with no expected transitions and a flat prior becomes all
    zeros, as in hmmlearn (which warns about it).

    Returns
    -------
    dict
        A new parameter dict (``params`` is not modified).
    """
    if fit_params is None:
        fit_params = "st" + family.letters
    new = dict(params)
    if "s" in fit_params:
        sp = np.maximum(startprob_prior - 1 + stats.start, 0)
        sp = np.where(params["startprob"] == 0, 0, sp)
        _normalize(sp)
        new["startprob"] = sp
    if "t" in fit_params:
        tm = np.maximum(transmat_prior - 1 + stats.trans, 0)
        tm = np.where(params["transmat"] == 0, 0, tm)
        _normalize(tm, axis=1)
        new["transmat"] = tm
    return family.m_step(new, stats.emission, fit_params)


def check_params(family: EmissionFamily, params: Params) -> None:
    """Validate a parameter dict as hmmlearn's ``_check`` (``ValueError`` naming the parameter)."""
    for key in ("startprob", "transmat", *family.param_keys()):
        if key not in params:
            raise ValueError(f"parameter {key!r} is missing")
    sp = np.asarray(params["startprob"])
    K = sp.shape[0]
    if sp.ndim != 1:
        raise ValueError(f"startprob must be 1-d; got shape {sp.shape}")
    tm = np.asarray(params["transmat"])
    if tm.shape != (K, K):
        raise ValueError("transmat_ must have shape (n_components, n_components)")
    if not np.all(np.isfinite(sp)) or not np.all(np.isfinite(tm)):
        raise ValueError("startprob and transmat must be finite")
    _check_sum_1("startprob", sp)
    _check_sum_1("transmat", tm)
    family.check_params(params)


def init_params(
    family: EmissionFamily,
    n_components: int,
    X_sample: np.ndarray,
    init_params: str = "",
    random_state: Any = None,
    base_params: Params | None = None,
) -> Params:
    """Initial parameters, drawn as hmmlearn's ``_init`` draws them.

    Parameters
    ----------
    family : EmissionFamily
        With ``n_features`` set, or it is inferred from ``X_sample``.
    n_components : int
    X_sample : ndarray
        Frames to initialise from (all of them, or a bounded sample).
    init_params : str
        Letters to (re)initialise. Parameters not named here are taken from
        ``base_params`` and initialised only when missing, as hmmlearn does
        with attributes set before ``fit``.
    random_state : None, int or RandomState
        As hmmlearn's ``random_state``: the same value gives the same draws.
    base_params : dict, optional

    Returns
    -------
    dict
    """
    params: Params = dict(base_params or {})
    init = 1.0 / n_components
    rs = _check_random_state(random_state)
    if "s" in init_params or "startprob" not in params:
        params["startprob"] = rs.dirichlet(np.full(n_components, init))
    if "t" in init_params or "transmat" not in params:
        params["transmat"] = rs.dirichlet(np.full(n_components, init), size=n_components)
    return family.init_params(params, X_sample, n_components, init_params, random_state)


class ConvergenceMonitor:
    """Convergence of EM with hmmlearn's semantics.

    Parameters
    ----------
    tol : float
        EM has converged when the gain in log-likelihood is below ``tol``.
    n_iter : int
        Maximum number of iterations.
    verbose : bool
        Print each iteration to stderr (as hmmlearn).

    Attributes
    ----------
    history : deque
        Log-likelihoods of all iterations so far.
    iter : int
        Number of iterations done.
    """

    _template = "{iter:>10d} {log_prob:>16.8f} {delta:>+16.8f}"

    def __init__(self, tol: float, n_iter: int, verbose: bool = False) -> None:
        self.tol = tol
        self.n_iter = n_iter
        self.verbose = verbose
        self.history: deque[float] = deque()
        self.iter = 0

    def __repr__(self) -> str:
        return (
            f"ConvergenceMonitor(tol={self.tol!r}, n_iter={self.n_iter!r}, verbose={self.verbose!r}, "
            f"iter={self.iter}, history={list(self.history)})"
        )

    def _reset(self) -> None:
        self.iter = 0
        self.history.clear()

    def report(self, log_prob: float) -> None:
        """Record one iteration's log-likelihood, warning if it decreased."""
        if self.verbose:
            delta = log_prob - self.history[-1] if self.history else np.nan
            print(
                self._template.format(iter=self.iter + 1, log_prob=log_prob, delta=delta),
                file=sys.stderr,
            )
        precision = np.finfo(float).eps ** (1 / 2)
        if self.history and (log_prob - self.history[-1]) < -precision:
            delta = log_prob - self.history[-1]
            _log.warning(
                f"Model is not converging.  Current: {log_prob}"
                f" is not greater than {self.history[-1]}."
                f" Delta is {delta}"
            )
        self.history.append(log_prob)
        self.iter += 1

    @property
    def converged(self) -> bool:
        """Whether EM has converged (or reached ``n_iter``)."""
        return self.iter == self.n_iter or (
            len(self.history) >= 2 and self.history[-1] - self.history[-2] < self.tol
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly state (for checkpoints and saved models)."""
        return {
            "tol": self.tol,
            "n_iter": self.n_iter,
            "verbose": self.verbose,
            "iter": self.iter,
            "history": [float(x) for x in self.history],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConvergenceMonitor:
        """Inverse of :meth:`to_dict`."""
        m = cls(d["tol"], d["n_iter"], d.get("verbose", False))
        m.history.extend(float(x) for x in d["history"])
        m.iter = int(d["iter"])
        return m


def fit_arrays(
    family: EmissionFamily,
    params: Params,
    X: np.ndarray,
    offsets: np.ndarray,
    n_iter: int = 10,
    tol: float = 1e-2,
    *,
    implementation: str = "log",
    fit_params: str | None = None,
    startprob_prior: Any = 1.0,
    transmat_prior: Any = 1.0,
    verbose: bool = False,
) -> tuple[Params, ConvergenceMonitor]:
    """EM on in-memory arrays, as hmmlearn's ``fit`` after its ``_init``.

    Parameters
    ----------
    family : EmissionFamily
    params : dict
        Starting parameters (e.g. from :func:`init_params`).
    X : ndarray
    offsets : ndarray of int64, shape (n_sequences + 1,)
    n_iter, tol, implementation, startprob_prior, transmat_prior, verbose
        As hmmlearn's.
    fit_params : str, optional
        hmmlearn's ``params`` (letters updated by EM); default all.

    Returns
    -------
    params : dict
    monitor : ConvergenceMonitor
    """
    check_params(family, params)
    monitor = ConvergenceMonitor(tol, n_iter, verbose)
    X = family.prepare(X)
    for _ in range(n_iter):
        stats = e_step(family, params, X, offsets, implementation, fit_params)
        params = m_step(family, params, stats, fit_params, startprob_prior, transmat_prior)
        monitor.report(stats.logprob)
        if monitor.converged:
            break
        if (params["transmat"].sum(axis=1) == 0).any():
            _log.warning(
                "Some rows of transmat_ have zero sum because no transition from the state was ever observed."
            )
    return params, monitor


# --------------------------------------------------------------------------
# scoring and decoding


def score(
    family: EmissionFamily,
    params: Params,
    X: np.ndarray,
    offsets: np.ndarray,
    implementation: str = "log",
) -> np.ndarray:
    """Log-likelihood of each sequence, (n_sequences,); their sum is hmmlearn's ``score``."""
    X, offsets = _batch(family, X, offsets)
    flp = family.log_likelihood(params, X)
    return kernels.score(params["startprob"], params["transmat"], flp, offsets, implementation)


def posteriors(
    family: EmissionFamily,
    params: Params,
    X: np.ndarray,
    offsets: np.ndarray,
    implementation: str = "log",
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sequence log-likelihood and per-frame state posteriors (hmmlearn's ``score_samples``).

    Returns
    -------
    logprob : ndarray of shape (n_sequences,)
    posteriors : ndarray of shape (n_frames, n_components)
    """
    X, offsets = _batch(family, X, offsets)
    flp = family.log_likelihood(params, X)
    logprob, post, _, _ = kernels.forward_backward(
        params["startprob"], params["transmat"], flp, offsets, implementation
    )
    return logprob, post


def decode(
    family: EmissionFamily,
    params: Params,
    X: np.ndarray,
    offsets: np.ndarray,
    algorithm: str = "viterbi",
    implementation: str = "log",
) -> tuple[np.ndarray, np.ndarray]:
    """Most likely states, as hmmlearn's ``decode``, per sequence.

    Returns
    -------
    logprob : ndarray of shape (n_sequences,)
        For "viterbi", the log-probability of each best path; for "map",
        what hmmlearn reports: the sum over frames of the largest posterior
        (a probability sum, not a log-probability).
    states : ndarray of int32, shape (n_frames,)
    """
    if algorithm not in DECODER_ALGORITHMS:
        raise ValueError(f"algorithm must be one of {DECODER_ALGORITHMS}; got {algorithm!r}")
    X, offsets = _batch(family, X, offsets)
    if algorithm == "viterbi":
        flp = family.log_likelihood(params, X)
        return kernels.viterbi(params["startprob"], params["transmat"], flp, offsets)
    _, post = posteriors(family, params, X, offsets, implementation)
    states = np.argmax(post, axis=1).astype(np.int32)
    best = np.max(post, axis=1)
    lp = np.add.reduceat(best, offsets[:-1]) if best.size else np.zeros(offsets.shape[0] - 1)
    lp[np.diff(offsets) == 0] = 0.0
    return lp, states


def sample(
    family: EmissionFamily,
    params: Params,
    n_samples: int,
    random_state: Any = None,
    currstate: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One sequence drawn exactly as hmmlearn's ``sample`` draws it.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features) (categorical: (n_samples, 1))
    states : ndarray of int, shape (n_samples,)
    """
    rs = _check_random_state(random_state)
    transmat_cdf = np.cumsum(params["transmat"], axis=1)
    if currstate is None:
        startprob_cdf = np.cumsum(params["startprob"])
        currstate = int((startprob_cdf > rs.rand()).argmax())
    states = [currstate]
    X = [family.sample_one(params, currstate, rs)]
    for _ in range(n_samples - 1):
        currstate = int((transmat_cdf[currstate] > rs.rand()).argmax())
        states.append(currstate)
        X.append(family.sample_one(params, currstate, rs))
    return np.atleast_2d(X), np.array(states, dtype=int)
