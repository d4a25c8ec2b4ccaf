"""Emission families: initialisation, frame likelihoods, statistics, M-step.

One class per hmmlearn emission model. An instance holds only
hyperparameters (hmmlearn's names and defaults); the fitted parameters live
in a plain ``dict`` of NumPy arrays so that they can be shipped to Spark
workers and saved as NPZ. The math is hmmlearn 0.3.3's, line for line where
it matters for equality of results:

============== ======= =============================== ===============================
family         letters parameter keys                  input frames ``X``
============== ======= =============================== ===============================
categorical    ``e``   ``emissionprob`` (K, F)         int symbols, shape (n,) ("int")
gaussian       ``mc``  ``means`` (K, F), ``covars``    float, (n,) if F == 1 ("float"),
                       (compact, see below)            else (n, F) ("vector")
poisson        ``l``   ``lambdas`` (K, F)              counts, (n,) if F == 1 ("int"),
                                                       else (n, F) ("vector")
multinomial    ``e``   ``emissionprob`` (K, F)         counts per symbol, (n, F) ("vector")
gmm            ``mcw`` ``weights`` (K, M), ``means``   as gaussian
                       (K, M, F), ``covars``
============== ======= =============================== ===============================

Gaussian ``covars`` use hmmlearn's compact internal form (what its
``covars_`` setter takes): spherical (K,), diag (K, F), full (K, F, F),
tied (F, F). :meth:`GaussianEmissions.public_attributes` returns hmmlearn's
public ``covars_`` (always (K, F, F), as hmmlearn's property does). GMM
``covars`` have hmmlearn's GMMHMM shapes: spherical (K, M), diag (K, M, F),
full (K, M, F, F), tied (K, F, F).

Statistics are additive over batches and partitions (no priors in them);
priors are applied once, in :meth:`m_step`. Where hmmlearn's M-step would
divide zero by zero for a state that received no responsibility (Gaussian,
Poisson and multinomial means/rates, GMM components), that state keeps its
previous parameters instead of becoming NaN; and GaussianHMM's occupation
counts are gathered even when only covariances are fitted (hmmlearn skips
them without "m" in ``params`` and then divides by zero). Everything else is
hmmlearn's arithmetic unchanged.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
from scipy import linalg, special

from sparklift.errors import InvalidInputError
from sparklift.hmm import kernels

__all__ = [
    "FAMILIES",
    "CategoricalEmissions",
    "EmissionFamily",
    "GMMEmissions",
    "GaussianEmissions",
    "MultinomialEmissions",
    "PoissonEmissions",
    "get_family",
]

_log = logging.getLogger("sparklift.hmm")

Params = dict[str, np.ndarray]
Stats = dict[str, np.ndarray]

COVARIANCE_TYPES = ("spherical", "diag", "full", "tied")


def _check_random_state(seed: Any) -> np.random.RandomState:
    """scikit-learn's check_random_state (int -> a fresh RandomState)."""
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, (int, np.integer)):
        return np.random.RandomState(seed)
    if isinstance(seed, np.random.RandomState):
        return seed
    raise ValueError(f"random_state must be None, an int or a numpy RandomState; got {seed!r}")


def _normalize(a: np.ndarray, axis: int | None = None) -> None:
    """hmmlearn.utils.normalize (in place; rows summing to 0 are left as they are)."""
    a_sum = a.sum(axis)
    if axis and a.ndim > 1:
        a_sum[a_sum == 0] = 1
        shape = list(a.shape)
        shape[axis] = 1
        a_sum.shape = tuple(shape)
    a /= a_sum


def _log_normalize(a: np.ndarray, axis: int) -> None:
    if a.shape[axis] == 1:
        a[:] = 0
    else:
        with np.errstate(under="ignore"):
            a_lse = special.logsumexp(a, axis, keepdims=True)
        a -= a_lse


def _as_2d(X: np.ndarray, dtype: Any = np.float64) -> np.ndarray:
    X = np.asarray(X, dtype=dtype)
    if X.ndim == 1:
        return X[:, None]
    if X.ndim != 2:
        raise ValueError(f"frames must be a 1-d or 2-d array; got shape {X.shape}")
    return X


def _check_sum_1(name: str, a: np.ndarray) -> None:
    s = a.sum(axis=-1)
    if not np.allclose(s, 1):
        raise ValueError(f"{name} rows must sum to 1 (got sums {np.round(s, 4)})")


def _check_covariance_type(covariance_type: str) -> None:
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(
            f"covariance_type must be one of {COVARIANCE_TYPES}; got {covariance_type!r}"
        )


def _check_finite(name: str, a: np.ndarray) -> None:
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} has NaN or infinite values")


def _check_shape(name: str, a: np.ndarray, shape: tuple[int, ...]) -> None:
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got {a.shape}")


def check_symbols(X: np.ndarray, n_features: int) -> None:
    """Raise :class:`InvalidInputError` unless every symbol is in ``[0, n_features)``.

    The compiled kernels index with symbols unchecked, so this guards them.
    """
    if X.size == 0:
        return
    lo, hi = int(X.min()), int(X.max())
    if lo < 0 or hi >= n_features:
        bad = (X < 0) | (n_features <= X)
        raise InvalidInputError(
            f"{int(bad.sum())} symbols are outside [0, n_features={n_features}) "
            f"(for example {int(X[bad][0])})"
        )


# --------------------------------------------------------------------------
# Gaussian densities (hmmlearn.stats), shared by GaussianHMM and GMMHMM


def _lmvn_diag(X: np.ndarray, means: np.ndarray, covars: np.ndarray) -> np.ndarray:
    nc, nf = means.shape
    covars = np.maximum(covars, np.finfo(float).tiny)
    with np.errstate(over="ignore"):
        quad = np.empty((X.shape[0], nc))
        for c in range(nc):
            quad[:, c] = (((X - means[c]) ** 2) / covars[c]).sum(axis=1)
        return -0.5 * (nf * np.log(2 * np.pi) + np.log(covars).sum(axis=-1) + quad)


def _cholesky_factors(
    covars: np.ndarray, min_covar: float = 1.0e-7
) -> tuple[np.ndarray, np.ndarray]:
    """hmmlearn's factorisation: the lower Cholesky factor and log-determinant of
    each ``(F, F)`` matrix, retried with ``min_covar`` added to its diagonal.

    Raises ``ValueError`` naming the first matrix that still has no factor.
    """
    nf = covars.shape[-1]
    mats = covars.reshape(-1, nf, nf)
    chols = np.empty_like(mats, dtype=float)
    logdets = np.empty(len(mats))
    for c, cv in enumerate(mats):
        try:
            cv_chol = linalg.cholesky(cv, lower=True)
        except linalg.LinAlgError:
            try:
                cv_chol = linalg.cholesky(cv + min_covar * np.eye(nf), lower=True)
            except linalg.LinAlgError:
                raise ValueError(
                    f"'covars' must be symmetric, positive-definite (matrix #{c} is not, "
                    f"even with {min_covar:g} added to its diagonal)"
                ) from None
        chols[c] = cv_chol
        logdets[c] = 2 * np.sum(np.log(np.diagonal(cv_chol)))
    return chols, logdets


def _lmvn_full(X: np.ndarray, means: np.ndarray, covars: np.ndarray) -> np.ndarray:
    # hmmlearn's arithmetic: Cholesky per state (once), then a triangular
    # solve per frame, done by one compiled pass over the frames
    chols, logdets = _cholesky_factors(covars)
    return kernels.gaussian_full_loglik(X, means, chols, logdets)


def _log_mvn_density(
    X: np.ndarray, means: np.ndarray, covars: np.ndarray, covariance_type: str
) -> np.ndarray:
    nc, nf = means.shape
    if covariance_type == "diag":
        return _lmvn_diag(X, means, covars)
    if covariance_type == "spherical":
        cv = covars[:, None] if covars.ndim == 1 else covars
        return _lmvn_diag(X, means, np.broadcast_to(cv, (nc, nf)))
    if covariance_type == "tied":
        return _lmvn_full(X, means, np.broadcast_to(covars, (nc, nf, nf)))
    return _lmvn_full(X, means, covars)


def _fill_covars(
    covars: np.ndarray, covariance_type: str, n_components: int, n_features: int
) -> np.ndarray:
    """hmmlearn.utils.fill_covars: the (K, F, F) public form."""
    if covariance_type == "full":
        return covars
    if covariance_type == "diag":
        return np.array([np.diag(c) for c in covars])
    if covariance_type == "tied":
        return np.tile(covars, (n_components, 1, 1))
    # hmmlearn may hold spherical variances tiled to (K, F); one per state here
    flat = covars.mean(axis=1) if covars.ndim == 2 else np.ravel(covars)
    return np.eye(n_features)[None, :, :] * flat[:, None, None]


def _validate_gaussian_covars(covars: np.ndarray, covariance_type: str, n_components: int) -> None:
    """hmmlearn's _utils._validate_covars, with its messages."""
    if covariance_type == "spherical":
        if len(covars) != n_components:
            raise ValueError("'spherical' covars have length n_components")
        if np.any(covars <= 0):
            raise ValueError("'spherical' covars must be positive")
    elif covariance_type == "tied":
        if covars.ndim != 2 or covars.shape[0] != covars.shape[1]:
            raise ValueError("'tied' covars must have shape (n_dim, n_dim)")
        if not np.allclose(covars, covars.T) or np.any(linalg.eigvalsh(covars) <= 0):
            raise ValueError("'tied' covars must be symmetric, positive-definite")
    elif covariance_type == "diag":
        if covars.ndim != 2:
            raise ValueError("'diag' covars must have shape (n_components, n_dim)")
        if np.any(covars <= 0):
            raise ValueError("'diag' covars must be positive")
    elif covariance_type == "full":
        if covars.ndim != 3 or covars.shape[1] != covars.shape[2]:
            raise ValueError("'full' covars must have shape (n_components, n_dim, n_dim)")
        for n, cv in enumerate(covars):
            if not np.allclose(cv, cv.T) or np.any(linalg.eigvalsh(cv) <= 0):
                raise ValueError(
                    f"component {n} of 'full' covars must be symmetric, positive-definite"
                )


def _distribute_covar(tied_cv: np.ndarray, covariance_type: str, n_components: int) -> np.ndarray:
    if covariance_type == "spherical":
        # hmmlearn tiles to (K, F); the compact form keeps one value per state
        return np.full(n_components, tied_cv.mean())
    if covariance_type == "tied":
        return tied_cv
    if covariance_type == "diag":
        return np.tile(np.diag(tied_cv), (n_components, 1))
    return np.tile(tied_cv, (n_components, 1, 1))


# --------------------------------------------------------------------------
# the families


class EmissionFamily:
    """Interface of an emission family; subclasses hold hyperparameters only.

    All methods are plain NumPy and never keep data on the instance.
    """

    name: ClassVar[str] = ""
    letters: ClassVar[str] = ""
    #: hyperparameter names, in constructor order (used by ``get_params`` and persistence)
    _hyper: ClassVar[tuple[str, ...]] = ()
    n_features: int | None

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters as a dict (JSON-friendly: arrays become lists)."""
        out: dict[str, Any] = {}
        for key in self._hyper:
            v = getattr(self, key)
            out[key] = v.tolist() if isinstance(v, np.ndarray) else v
        return out

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    @property
    def input_kind(self) -> str:
        """ "int", "float" or "vector": the frame type this family reads."""
        raise NotImplementedError

    def with_n_features(self, n_features: int) -> EmissionFamily:
        """A copy of this family with ``n_features`` set."""
        hyper = self.get_params()
        hyper["n_features"] = int(n_features)
        return type(self)(**hyper)

    def infer_n_features(self, X: np.ndarray) -> int:
        """The ``n_features`` hmmlearn would infer from frames ``X``."""
        return int(_as_2d(X).shape[1])

    def prepare(self, X: np.ndarray) -> np.ndarray:
        """Frames in the array layout the other methods expect."""
        return _as_2d(X)

    def check_frames(self, X: np.ndarray) -> None:
        """Raise :class:`InvalidInputError` if frames cannot come from this family."""
        X = self.prepare(X)
        if X.dtype.kind == "f" and not np.all(np.isfinite(X)):
            bad = int((~np.isfinite(X)).any(axis=1).sum())
            raise InvalidInputError(f"{bad} frames have NaN or infinite values")

    def init_params(
        self, params: Params, X: np.ndarray, n_components: int, init_params: str, rng: Any
    ) -> Params:
        """Initialise the emission parameters whose letters are in ``init_params``.

        Parameters
        ----------
        params : dict
            Current parameters (parameters not re-initialised are kept).
        X : ndarray
            A sample of frames (concatenated sequences).
        n_components : int
        init_params : str
            hmmlearn's ``init_params`` letters.
        rng : None, int or numpy RandomState
            As hmmlearn's ``random_state`` attribute: an int seeds a fresh
            generator for each draw hmmlearn makes from it.

        Returns
        -------
        dict
            A new parameter dict.
        """
        raise NotImplementedError

    def log_likelihood(self, params: Params, X: np.ndarray) -> np.ndarray:
        """Emission log-likelihood of every frame under every state, (n_frames, K)."""
        raise NotImplementedError

    def empty_stats(self, n_components: int, n_features: int) -> Stats:
        """Zeroed additive statistics."""
        raise NotImplementedError

    def accumulate(
        self, stats: Stats, params: Params, X: np.ndarray, posteriors: np.ndarray
    ) -> None:
        """Add one batch's emission statistics to ``stats`` in place (no priors)."""
        raise NotImplementedError

    def m_step(self, params: Params, stats: Stats, fit_params: str) -> Params:
        """New emission parameters from summed statistics (priors applied here)."""
        raise NotImplementedError

    def check_params(self, params: Params) -> None:
        """Raise ``ValueError`` naming the parameter if ``params`` are invalid."""
        raise NotImplementedError

    def check_likelihood(self, params: Params) -> None:
        """Raise ``ValueError`` if :meth:`log_likelihood` would refuse ``params``.

        EM calls it before each E-step, so that parameters an M-step left
        unusable are reported on the driver, not from inside a Spark task.
        Only covariance matrices (the Gaussian and GMM families' ``"full"`` and
        ``"tied"`` types) can be refused there.
        """
        if getattr(self, "covariance_type", None) in ("full", "tied"):
            _cholesky_factors(np.asarray(params["covars"]))

    def n_fit_scalars(self, n_components: int, n_features: int) -> dict[str, int]:
        """Free scalars per parameter letter, as hmmlearn's ``_get_n_fit_scalars_per_param``."""
        nc = n_components
        return {"s": nc - 1, "t": nc * (nc - 1)}

    def check_can_sample(self) -> None:
        """Raise ``ValueError`` if these hyperparameters cannot sample (before any job)."""

    def sample_frames(
        self, params: Params, states: np.ndarray, rng: np.random.RandomState
    ) -> np.ndarray:
        """Draw one frame per entry of ``states``."""
        raise NotImplementedError

    def sample_one(self, params: Params, state: int, rng: np.random.RandomState) -> np.ndarray:
        """One frame, drawn exactly as hmmlearn's ``_generate_sample_from_state``."""
        raise NotImplementedError

    def public_attributes(self, params: Params) -> dict[str, np.ndarray]:
        """hmmlearn-named fitted emission attributes (``emissionprob_``, ``means_``...)."""
        raise NotImplementedError

    def params_from_public(self, attrs: dict[str, Any]) -> Params:
        """Inverse of :meth:`public_attributes`."""
        raise NotImplementedError

    def param_keys(self) -> tuple[str, ...]:
        """Keys of the emission parameters in a parameter dict."""
        raise NotImplementedError


class _EmissionProbFamily(EmissionFamily):
    """Families whose emission parameter is ``emissionprob`` (categorical, multinomial)."""

    def check_params(self, params: Params) -> None:
        ep = np.atleast_2d(params["emissionprob"])
        if self.n_features is not None and ep.shape[1] != self.n_features:
            raise ValueError(
                f"emissionprob must have shape (n_components, {self.n_features}); got {ep.shape}"
            )
        _check_finite("emissionprob", ep)
        _check_sum_1("emissionprob", ep)

    def n_fit_scalars(self, n_components: int, n_features: int) -> dict[str, int]:
        out = super().n_fit_scalars(n_components, n_features)
        out["e"] = n_components * (n_features - 1)
        return out


class CategoricalEmissions(_EmissionProbFamily):
    """Categorical (discrete symbol) emissions, as hmmlearn's ``CategoricalHMM``.

    Parameters
    ----------
    n_features : int, optional
        Number of symbols; inferred as ``max(symbol) + 1`` when not given.
    emissionprob_prior : float or ndarray of shape (K, F), default 1.0
        Dirichlet prior on the rows of ``emissionprob``.
    """

    name = "categorical"
    letters = "e"
    _hyper = ("n_features", "emissionprob_prior")

    def __init__(self, n_features: int | None = None, emissionprob_prior: Any = 1.0) -> None:
        self.n_features = n_features
        self.emissionprob_prior = emissionprob_prior

    @property
    def input_kind(self) -> str:
        return "int"

    def prepare(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        if X.ndim != 1:
            raise ValueError(
                f"categorical frames must be a 1-d array of symbols; got shape {X.shape}"
            )
        if X.dtype.kind not in "iu":
            raise InvalidInputError(f"symbols must be integers; got dtype {X.dtype}")
        return np.ascontiguousarray(X, dtype=np.int64)

    def infer_n_features(self, X: np.ndarray) -> int:
        X = self.prepare(X)
        return int(X.max()) + 1 if X.size else 0

    def check_frames(self, X: np.ndarray) -> None:
        X = self.prepare(X)
        check_symbols(X, self.n_features if self.n_features is not None else np.iinfo(np.int64).max)

    def param_keys(self) -> tuple[str, ...]:
        return ("emissionprob",)

    def init_params(
        self, params: Params, X: np.ndarray, n_components: int, init_params: str, rng: Any
    ) -> Params:
        params = dict(params)
        nf = self.n_features if self.n_features is not None else self.infer_n_features(X)
        if "e" in init_params or "emissionprob" not in params:
            rs = _check_random_state(rng)
            ep = rs.rand(n_components, nf)
            _normalize(ep, axis=1)
            params["emissionprob"] = ep
        return params

    def log_likelihood(self, params: Params, X: np.ndarray) -> np.ndarray:
        X = self.prepare(X)
        check_symbols(X, params["emissionprob"].shape[1])
        with np.errstate(divide="ignore"):
            return np.ascontiguousarray(np.log(params["emissionprob"])[:, X].T)

    def empty_stats(self, n_components: int, n_features: int) -> Stats:
        return {"obs": np.zeros((n_components, n_features))}

    def accumulate(
        self, stats: Stats, params: Params, X: np.ndarray, posteriors: np.ndarray
    ) -> None:
        X = self.prepare(X)
        np.add.at(stats["obs"].T, X, posteriors)

    def m_step(self, params: Params, stats: Stats, fit_params: str) -> Params:
        params = dict(params)
        if "e" in fit_params:
            ep = np.maximum(self.emissionprob_prior - 1 + stats["obs"], 0)
            _normalize(ep, axis=1)
            params["emissionprob"] = ep
        return params

    def sample_one(self, params: Params, state: int, rng: np.random.RandomState) -> np.ndarray:
        cdf = np.cumsum(params["emissionprob"][state, :])
        return np.array([(cdf > rng.rand()).argmax()])

    def sample_frames(
        self, params: Params, states: np.ndarray, rng: np.random.RandomState
    ) -> np.ndarray:
        cdf = np.cumsum(params["emissionprob"], axis=1)[np.asarray(states)]
        u = rng.rand(len(states))
        return (cdf > u[:, None]).argmax(axis=1).astype(np.int64)

    def public_attributes(self, params: Params) -> dict[str, np.ndarray]:
        return {"emissionprob_": params["emissionprob"]}

    def params_from_public(self, attrs: dict[str, Any]) -> Params:
        return {"emissionprob": np.atleast_2d(np.asarray(attrs["emissionprob_"], dtype=np.float64))}


class GaussianEmissions(EmissionFamily):
    """Gaussian emissions, as hmmlearn's ``GaussianHMM``.

    Parameters
    ----------
    n_features : int, optional
        Dimension of a frame; inferred from the data when not given.
    covariance_type : {"spherical", "diag", "full", "tied"}, default "diag"
    min_covar : float, default 1e-3
    means_prior, means_weight, covars_prior, covars_weight
        hmmlearn's priors, with its defaults.
    """

    name = "gaussian"
    letters = "mc"
    _hyper = (
        "n_features",
        "covariance_type",
        "min_covar",
        "means_prior",
        "means_weight",
        "covars_prior",
        "covars_weight",
    )

    def __init__(
        self,
        n_features: int | None = None,
        covariance_type: str = "diag",
        min_covar: float = 1e-3,
        means_prior: Any = 0,
        means_weight: Any = 0,
        covars_prior: Any = 1e-2,
        covars_weight: Any = 1,
    ) -> None:
        _check_covariance_type(covariance_type)
        self.n_features = n_features
        self.covariance_type = covariance_type
        self.min_covar = min_covar
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight

    @property
    def input_kind(self) -> str:
        return "float" if self.n_features == 1 else "vector"

    def param_keys(self) -> tuple[str, ...]:
        return ("means", "covars")

    def init_params(
        self, params: Params, X: np.ndarray, n_components: int, init_params: str, rng: Any
    ) -> Params:
        from sklearn import cluster

        params = dict(params)
        X = self.prepare(X)
        if "m" in init_params or "means" not in params:
            kmeans = cluster.KMeans(n_clusters=n_components, random_state=rng, n_init=10)
            kmeans.fit(X)
            params["means"] = kmeans.cluster_centers_
        if "c" in init_params or "covars" not in params:
            cv = np.cov(X.T) + self.min_covar * np.eye(X.shape[1])
            if not cv.shape:
                cv.shape = (1, 1)
            params["covars"] = _distribute_covar(cv, self.covariance_type, n_components).copy()
        return params

    def log_likelihood(self, params: Params, X: np.ndarray) -> np.ndarray:
        X = self.prepare(X)
        return _log_mvn_density(X, params["means"], params["covars"], self.covariance_type)

    def empty_stats(self, n_components: int, n_features: int) -> Stats:
        stats = {
            "post": np.zeros(n_components),
            "obs": np.zeros((n_components, n_features)),
        }
        if self.covariance_type in ("spherical", "diag"):
            stats["obs**2"] = np.zeros((n_components, n_features))
        else:
            stats["obs*obs.T"] = np.zeros((n_components, n_features, n_features))
        return stats

    def accumulate(
        self, stats: Stats, params: Params, X: np.ndarray, posteriors: np.ndarray
    ) -> None:
        X = self.prepare(X)
        if self.covariance_type in ("spherical", "diag"):
            stats["post"] += posteriors.sum(axis=0)
            stats["obs"] += posteriors.T @ X
            stats["obs**2"] += posteriors.T @ X**2
            return
        post, obs, oo = stats["post"], stats["obs"], stats["obs*obs.T"]
        if all(a.dtype == np.float64 and a.flags.c_contiguous for a in (post, obs, oo)):
            # one compiled pass over the frames for all three statistics
            kernels.gaussian_full_stats(X, posteriors, post, obs, oo)
            return
        post += posteriors.sum(axis=0)
        obs += posteriors.T @ X
        for c in range(posteriors.shape[1]):
            oo[c] += (X * posteriors[:, c : c + 1]).T @ X

    def m_step(self, params: Params, stats: Stats, fit_params: str) -> Params:
        params = dict(params)
        means_prior = self.means_prior
        means_weight = self.means_weight
        denom = stats["post"][:, None]
        # A state whose new mean hmmlearn would compute as 0/0 (no responsibility,
        # no means prior) keeps its mean and covariance instead of becoming NaN.
        empty = np.zeros(stats["post"].shape[0], dtype=bool)
        old_means = params["means"]
        old_covars = params["covars"]
        if "m" in fit_params:
            with np.errstate(invalid="ignore", divide="ignore"):
                means = (means_weight * means_prior + stats["obs"]) / (means_weight + denom)
            empty = ~np.isfinite(means).all(axis=1)
            means[empty] = old_means[empty]
            params["means"] = means
        if "c" in fit_params:
            means = params["means"]
            covars_prior = self.covars_prior
            covars_weight = self.covars_weight
            meandiff = means - means_prior
            if self.covariance_type in ("spherical", "diag"):
                c_n = (
                    means_weight * meandiff**2
                    + stats["obs**2"]
                    - 2 * means * stats["obs"]
                    + means**2 * denom
                )
                c_d = max(covars_weight - 1, 0) + denom
                cv = (covars_prior + c_n) / np.maximum(c_d, 1e-5)
                if self.covariance_type == "spherical":
                    cv = cv.mean(1)
                cv[empty] = np.asarray(old_covars)[empty]
            else:
                nf = means.shape[1]
                nc = means.shape[0]
                c_n = np.empty((nc, nf, nf))
                for c in range(nc):
                    obsmean = np.outer(stats["obs"][c], means[c])
                    c_n[c] = (
                        means_weight * np.outer(meandiff[c], meandiff[c])
                        + stats["obs*obs.T"][c]
                        - obsmean
                        - obsmean.T
                        + np.outer(means[c], means[c]) * stats["post"][c]
                    )
                cvweight = max(covars_weight - nf, 0)
                with np.errstate(invalid="ignore", divide="ignore"):
                    if self.covariance_type == "tied":
                        cv = (covars_prior + c_n.sum(axis=0)) / (cvweight + stats["post"].sum())
                        if not np.all(np.isfinite(cv)):
                            cv = old_covars
                    else:
                        cv = (covars_prior + c_n) / (cvweight + stats["post"][:, None, None])
                        bad = empty | ~np.isfinite(cv).all(axis=(1, 2))
                        cv[bad] = old_covars[bad]
            params["covars"] = cv
        return params

    def check_params(self, params: Params) -> None:
        means = np.asarray(params["means"])
        if means.ndim != 2:
            raise ValueError(f"means must have shape (n_components, n_features); got {means.shape}")
        _check_finite("means", means)
        covars = np.asarray(params["covars"])
        _check_finite("covars", covars)
        _validate_gaussian_covars(covars, self.covariance_type, means.shape[0])

    def n_fit_scalars(self, n_components: int, n_features: int) -> dict[str, int]:
        nc, nf = n_components, n_features
        out = super().n_fit_scalars(nc, nf)
        out["m"] = nc * nf
        out["c"] = {
            "spherical": nc,
            "diag": nc * nf,
            "full": nc * nf * (nf + 1) // 2,
            "tied": nf * (nf + 1) // 2,
        }[self.covariance_type]
        return out

    def _full_covars(self, params: Params) -> np.ndarray:
        means = params["means"]
        return _fill_covars(params["covars"], self.covariance_type, means.shape[0], means.shape[1])

    def sample_one(self, params: Params, state: int, rng: np.random.RandomState) -> np.ndarray:
        return rng.multivariate_normal(params["means"][state], self._full_covars(params)[state])

    def sample_frames(
        self, params: Params, states: np.ndarray, rng: np.random.RandomState
    ) -> np.ndarray:
        states = np.asarray(states)
        means = params["means"]
        full = self._full_covars(params)
        X = np.empty((len(states), means.shape[1]))
        for k in range(means.shape[0]):
            idx = np.flatnonzero(states == k)
            if idx.size:
                X[idx] = rng.multivariate_normal(means[k], full[k], size=idx.size)
        return X

    def public_attributes(self, params: Params) -> dict[str, np.ndarray]:
        return {"means_": params["means"], "covars_": self._full_covars(params)}

    def params_from_public(self, attrs: dict[str, Any]) -> Params:
        """Accepts hmmlearn's full (K, F, F) ``covars_`` or the compact form."""
        means = np.atleast_2d(np.asarray(attrs["means_"], dtype=np.float64))
        cv = np.asarray(attrs["covars_"], dtype=np.float64)
        if "_covars_" in attrs:
            cv = np.asarray(attrs["_covars_"], dtype=np.float64)
        elif cv.ndim == 3 and self.covariance_type != "full":
            if self.covariance_type == "diag":
                cv = np.array([np.diag(c) for c in cv])
            elif self.covariance_type == "spherical":
                cv = np.array([c[0, 0] for c in cv])
            else:  # tied
                cv = cv[0]
        elif self.covariance_type == "spherical" and cv.ndim == 2:
            cv = cv.mean(axis=1)
        return {"means": means, "covars": cv}


class PoissonEmissions(EmissionFamily):
    """Poisson emissions, as hmmlearn's ``PoissonHMM``.

    Frames are counts: (n,) for one feature (``input_kind`` "int"), (n, F)
    otherwise ("vector"); any integer or float dtype.

    Parameters
    ----------
    n_features : int, optional
    lambdas_prior, lambdas_weight : float or ndarray, default 0.0
        hmmlearn's gamma prior (alpha, beta) on the rates.
    """

    name = "poisson"
    letters = "l"
    _hyper = ("n_features", "lambdas_prior", "lambdas_weight")

    def __init__(
        self, n_features: int | None = None, lambdas_prior: Any = 0.0, lambdas_weight: Any = 0.0
    ) -> None:
        self.n_features = n_features
        self.lambdas_prior = lambdas_prior
        self.lambdas_weight = lambdas_weight

    @property
    def input_kind(self) -> str:
        return "int" if self.n_features == 1 else "vector"

    def param_keys(self) -> tuple[str, ...]:
        return ("lambdas",)

    def check_frames(self, X: np.ndarray) -> None:
        super().check_frames(X)
        X = self.prepare(X)
        bad = (X < 0).any(axis=1)
        if bad.any():
            raise InvalidInputError(f"{int(bad.sum())} frames have negative counts")
        bad = (np.round(X) != X).any(axis=1)
        if bad.any():
            raise InvalidInputError(f"{int(bad.sum())} frames have counts that are not whole")

    def init_params(
        self, params: Params, X: np.ndarray, n_components: int, init_params: str, rng: Any
    ) -> Params:
        params = dict(params)
        X = self.prepare(X)
        nf = self.n_features if self.n_features is not None else X.shape[1]
        rs = _check_random_state(rng)
        mean_X = X.mean()
        var_X = X.var()
        if "l" in init_params or "lambdas" not in params:
            if not var_X > 0 or not mean_X > 0:
                raise InvalidInputError(
                    "cannot initialise Poisson rates: the counts have zero mean or zero variance; "
                    "give starting lambdas (init_model) or drop the constant data"
                )
            params["lambdas"] = rs.gamma(
                shape=mean_X**2 / var_X, scale=var_X / mean_X, size=(n_components, nf)
            )
        return params

    def log_likelihood(self, params: Params, X: np.ndarray) -> np.ndarray:
        X = self.prepare(X)
        lam = params["lambdas"]
        base = special.gammaln(X + 1).sum(axis=1)
        out = np.empty((X.shape[0], lam.shape[0]))
        for c in range(lam.shape[0]):
            out[:, c] = (special.xlogy(X, lam[c]) - lam[c]).sum(axis=1) - base
        return out

    def empty_stats(self, n_components: int, n_features: int) -> Stats:
        return {"post": np.zeros(n_components), "obs": np.zeros((n_components, n_features))}

    def accumulate(
        self, stats: Stats, params: Params, X: np.ndarray, posteriors: np.ndarray
    ) -> None:
        X = self.prepare(X)
        stats["post"] += posteriors.sum(axis=0)
        stats["obs"] += posteriors.T @ X

    def m_step(self, params: Params, stats: Stats, fit_params: str) -> Params:
        params = dict(params)
        if "l" in fit_params:
            alphas, betas = self.lambdas_prior, self.lambdas_weight
            n = stats["post"].sum()
            with np.errstate(invalid="ignore", divide="ignore"):
                y_bar = stats["obs"] / stats["post"][:, None]
                lam = (alphas + n * y_bar) / (betas + n)
            params["lambdas"] = np.where(np.isfinite(lam), lam, params["lambdas"])
        return params

    def check_params(self, params: Params) -> None:
        lam = np.atleast_2d(params["lambdas"])
        if self.n_features is not None and lam.shape[1] != self.n_features:
            raise ValueError(
                f"lambdas must have shape (n_components, {self.n_features}); got {lam.shape}"
            )
        _check_finite("lambdas", lam)
        if np.any(lam < 0):
            raise ValueError("lambdas must be non-negative")

    def n_fit_scalars(self, n_components: int, n_features: int) -> dict[str, int]:
        out = super().n_fit_scalars(n_components, n_features)
        out["l"] = n_components * n_features
        return out

    def sample_one(self, params: Params, state: int, rng: np.random.RandomState) -> np.ndarray:
        return rng.poisson(params["lambdas"][state])

    def sample_frames(
        self, params: Params, states: np.ndarray, rng: np.random.RandomState
    ) -> np.ndarray:
        return rng.poisson(params["lambdas"][np.asarray(states)])

    def public_attributes(self, params: Params) -> dict[str, np.ndarray]:
        return {"lambdas_": params["lambdas"]}

    def params_from_public(self, attrs: dict[str, Any]) -> Params:
        return {"lambdas": np.atleast_2d(np.asarray(attrs["lambdas_"], dtype=np.float64))}


class MultinomialEmissions(_EmissionProbFamily):
    """Multinomial emissions, as hmmlearn's (0.3) ``MultinomialHMM``.

    Each frame is a vector of non-negative integer counts over ``n_features``
    symbols, (n, F) ("vector"); its total is the number of trials.

    Parameters
    ----------
    n_features : int, optional
    n_trials : int, optional
        If given, every frame's counts must add up to it; needed for sampling.
    """

    name = "multinomial"
    letters = "e"
    _hyper = ("n_features", "n_trials")

    def __init__(self, n_features: int | None = None, n_trials: int | None = None) -> None:
        self.n_features = n_features
        self.n_trials = n_trials

    @property
    def input_kind(self) -> str:
        return "vector"

    def param_keys(self) -> tuple[str, ...]:
        return ("emissionprob",)

    def check_frames(self, X: np.ndarray) -> None:
        X = self.prepare(X)
        bad = (X < 0).any(axis=1) | (np.round(X) != X).any(axis=1)
        if bad.any():
            raise InvalidInputError(f"{int(bad.sum())} frames are not non-negative integer counts")
        if self.n_trials is not None:
            bad = X.sum(axis=1) != self.n_trials
            if bad.any():
                raise InvalidInputError(
                    f"{int(bad.sum())} frames do not add up to n_trials={self.n_trials} "
                    f"(for example one adds up to {int(X.sum(axis=1)[bad][0])})"
                )

    def init_params(
        self, params: Params, X: np.ndarray, n_components: int, init_params: str, rng: Any
    ) -> Params:
        params = dict(params)
        nf = self.n_features if self.n_features is not None else self.prepare(X).shape[1]
        if "e" in init_params or "emissionprob" not in params:
            rs = _check_random_state(rng)
            ep = rs.rand(n_components, nf)
            _normalize(ep, axis=1)
            params["emissionprob"] = ep
        return params

    def log_likelihood(self, params: Params, X: np.ndarray) -> np.ndarray:
        X = self.prepare(X)
        ep = params["emissionprob"]
        n = X.sum(axis=1)
        base = special.gammaln(n + 1) - special.gammaln(X + 1).sum(axis=1)
        out = np.empty((X.shape[0], ep.shape[0]))
        for c in range(ep.shape[0]):
            out[:, c] = base + special.xlogy(X, ep[c]).sum(axis=1)
        return out

    def empty_stats(self, n_components: int, n_features: int) -> Stats:
        return {"obs": np.zeros((n_components, n_features))}

    def accumulate(
        self, stats: Stats, params: Params, X: np.ndarray, posteriors: np.ndarray
    ) -> None:
        stats["obs"] += posteriors.T @ self.prepare(X)

    def m_step(self, params: Params, stats: Stats, fit_params: str) -> Params:
        params = dict(params)
        if "e" in fit_params:
            with np.errstate(invalid="ignore", divide="ignore"):
                ep = stats["obs"] / stats["obs"].sum(axis=1, keepdims=True)
            empty = ~np.isfinite(ep).all(axis=1)
            ep[empty] = params["emissionprob"][empty]
            params["emissionprob"] = ep
        return params

    def check_can_sample(self) -> None:
        self._single_n_trials()

    def _single_n_trials(self) -> int:
        n_trials: Any = np.unique(np.atleast_1d(self.n_trials)) if self.n_trials is not None else []
        if len(n_trials) != 1:
            raise ValueError("For sampling, a single n_trials must be given")
        return int(n_trials[0])

    def sample_one(self, params: Params, state: int, rng: np.random.RandomState) -> np.ndarray:
        from scipy.stats import multinomial

        return multinomial.rvs(
            n=self._single_n_trials(), p=params["emissionprob"][state, :], random_state=rng
        )

    def sample_frames(
        self, params: Params, states: np.ndarray, rng: np.random.RandomState
    ) -> np.ndarray:
        n = self._single_n_trials()
        ep = params["emissionprob"]
        return np.array([rng.multinomial(n, ep[k]) for k in np.asarray(states)]).reshape(
            len(states), ep.shape[1]
        )

    def public_attributes(self, params: Params) -> dict[str, np.ndarray]:
        return {"emissionprob_": params["emissionprob"]}

    def params_from_public(self, attrs: dict[str, Any]) -> Params:
        return {"emissionprob": np.atleast_2d(np.asarray(attrs["emissionprob_"], dtype=np.float64))}


class GMMEmissions(EmissionFamily):
    """Gaussian-mixture emissions, as hmmlearn's ``GMMHMM``.

    Parameters
    ----------
    n_features : int, optional
    n_mix : int, default 1
        Mixture components per state.
    covariance_type : {"spherical", "diag", "full", "tied"}, default "diag"
        "tied": the components of one state share one full covariance.
    min_covar : float, default 1e-3
    weights_prior, means_prior, means_weight, covars_prior, covars_weight
        hmmlearn's priors and defaults (``None`` covariance priors take
        hmmlearn's type-dependent defaults). Unlike hmmlearn's GMMHMM, the
        means prior is added once in the M-step, not into the statistics,
        so statistics from many partitions add up correctly.
    """

    name = "gmm"
    letters = "mcw"
    _hyper = (
        "n_features",
        "n_mix",
        "covariance_type",
        "min_covar",
        "weights_prior",
        "means_prior",
        "means_weight",
        "covars_prior",
        "covars_weight",
    )

    def __init__(
        self,
        n_features: int | None = None,
        n_mix: int = 1,
        covariance_type: str = "diag",
        min_covar: float = 1e-3,
        weights_prior: Any = 1.0,
        means_prior: Any = 0.0,
        means_weight: Any = 0.0,
        covars_prior: Any = None,
        covars_weight: Any = None,
    ) -> None:
        _check_covariance_type(covariance_type)
        self.n_features = n_features
        self.n_mix = n_mix
        self.covariance_type = covariance_type
        self.min_covar = min_covar
        self.weights_prior = weights_prior
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight

    @property
    def input_kind(self) -> str:
        return "float" if self.n_features == 1 else "vector"

    def param_keys(self) -> tuple[str, ...]:
        return ("weights", "means", "covars")

    def _priors(self, nc: int, nf: int) -> dict[str, np.ndarray]:
        """hmmlearn's ``_init_covar_priors`` + ``_fix_priors_shape``."""
        nm = self.n_mix
        ct = self.covariance_type
        cp, cw = self.covars_prior, self.covars_weight
        if ct == "full":
            cp = 0.0 if cp is None else cp
            cw = -(1.0 + nf + 1.0) if cw is None else cw
        elif ct == "tied":
            cp = 0.0 if cp is None else cp
            cw = -(nm + nf + 1.0) if cw is None else cw
        elif ct == "diag":
            cp = -1.5 if cp is None else cp
            cw = 0.0 if cw is None else cw
        else:
            cp = -(nm + 2.0) / 2.0 if cp is None else cp
            cw = 0.0 if cw is None else cw
        shapes = {
            "full": ((nc, nm, nf, nf), (nc, nm)),
            "tied": ((nc, nf, nf), (nc,)),
            "diag": ((nc, nm, nf), (nc, nm, nf)),
            "spherical": ((nc, nm), (nc, nm)),
        }[ct]
        return {
            "weights_prior": np.broadcast_to(self.weights_prior, (nc, nm)).copy(),
            "means_prior": np.broadcast_to(self.means_prior, (nc, nm, nf)).copy(),
            "means_weight": np.broadcast_to(self.means_weight, (nc, nm)).copy(),
            "covars_prior": np.broadcast_to(cp, shapes[0]).copy(),
            "covars_weight": np.broadcast_to(cw, shapes[1]).copy(),
        }

    def init_params(
        self, params: Params, X: np.ndarray, n_components: int, init_params: str, rng: Any
    ) -> Params:
        from sklearn import cluster

        params = dict(params)
        X = self.prepare(X)
        nc, nf, nm = n_components, X.shape[1], self.n_mix

        def compute_cv() -> np.ndarray:
            return np.cov(X.T) + self.min_covar * np.eye(nf)

        cv = None
        means: list[np.ndarray] = []
        # hmmlearn runs the k-means even when the means are given; it only
        # feeds the means, so it is skipped when they are not initialised
        if "m" in init_params or "means" not in params:
            main_kmeans = cluster.KMeans(n_clusters=nc, random_state=rng, n_init=10)
            labels = main_kmeans.fit_predict(X)
            main_centroid = np.mean(main_kmeans.cluster_centers_, axis=0)
            for label in range(nc):
                kmeans = cluster.KMeans(n_clusters=nm, random_state=rng, n_init=10)
                X_cluster = X[np.where(labels == label)]
                if X_cluster.shape[0] >= nm:
                    kmeans.fit(X_cluster)
                    means.append(kmeans.cluster_centers_)
                else:
                    if cv is None:
                        cv = compute_cv()
                    # hmmlearn draws these from numpy's global generator; we draw
                    # from random_state so that a seeded fit is reproducible
                    means.append(
                        _check_random_state(rng).multivariate_normal(main_centroid, cov=cv, size=nm)
                    )
        if "w" in init_params or "weights" not in params:
            params["weights"] = np.full((nc, nm), 1 / nm)
        if "m" in init_params or "means" not in params:
            params["means"] = np.stack(means)
        if "c" in init_params or "covars" not in params:
            if cv is None:
                cv = compute_cv()
            if not cv.shape:
                cv.shape = (1, 1)
            ct = self.covariance_type
            if ct == "tied":
                covars = np.zeros((nc, nf, nf))
                covars[:] = cv
            elif ct == "full":
                covars = np.zeros((nc, nm, nf, nf))
                covars[:] = cv
            elif ct == "diag":
                covars = np.zeros((nc, nm, nf))
                covars[:] = np.diag(cv)
            else:
                covars = np.zeros((nc, nm))
                covars[:] = cv.mean()
            params["covars"] = covars
        return params

    def _log_weighted_densities(self, params: Params, X: np.ndarray, i: int) -> np.ndarray:
        cur_means = params["means"][i]
        cur_covs = params["covars"][i]
        if self.covariance_type == "spherical":
            cur_covs = cur_covs[:, None]
        with np.errstate(divide="ignore"):
            log_w = np.log(params["weights"][i])
        return _log_mvn_density(X, cur_means, cur_covs, self.covariance_type) + log_w

    def log_likelihood(self, params: Params, X: np.ndarray) -> np.ndarray:
        X = self.prepare(X)
        nc = params["weights"].shape[0]
        out = np.empty((X.shape[0], nc))
        for i in range(nc):
            with np.errstate(under="ignore"):
                out[:, i] = special.logsumexp(self._log_weighted_densities(params, X, i), axis=1)
        return out

    def empty_stats(self, n_components: int, n_features: int) -> Stats:
        nc, nm, nf = n_components, self.n_mix, n_features
        c_shape = {
            "full": (nc, nm, nf, nf),
            "tied": (nc, nf, nf),
            "diag": (nc, nm, nf),
            "spherical": (nc, nm),
        }[self.covariance_type]
        return {
            "post_mix_sum": np.zeros((nc, nm)),
            "post_sum": np.zeros(nc),
            "m_n": np.zeros((nc, nm, nf)),
            "c_n": np.zeros(c_shape),
        }

    def accumulate(
        self, stats: Stats, params: Params, X: np.ndarray, posteriors: np.ndarray
    ) -> None:
        X = self.prepare(X)
        nc = posteriors.shape[1]
        stats["post_sum"] += posteriors.sum(axis=0)
        for p in range(nc):
            log_denses = self._log_weighted_densities(params, X, p)
            _log_normalize(log_denses, axis=-1)
            with np.errstate(under="ignore"):
                pcm = posteriors[:, p, None] * np.exp(log_denses)  # (n, M)
            stats["post_mix_sum"][p] += pcm.sum(axis=0)
            stats["m_n"][p] += pcm.T @ X
            centered = X[:, None, :] - params["means"][p]  # (n, M, F)
            ct = self.covariance_type
            if ct == "full":
                stats["c_n"][p] += np.einsum("ik,ikl,ikm->klm", pcm, centered, centered)
            elif ct == "diag":
                stats["c_n"][p] += np.einsum("ik,ikl->kl", pcm, centered**2)
            elif ct == "spherical":
                stats["c_n"][p] += np.einsum(
                    "ik,ik->k", pcm, np.einsum("...i,...i", centered, centered)
                )
            else:
                stats["c_n"][p] += np.einsum("ik,ikl,ikm->lm", pcm, centered, centered)

    def m_step(self, params: Params, stats: Stats, fit_params: str) -> Params:
        params = dict(params)
        nc, nm = params["weights"].shape
        nf = params["means"].shape[2]
        pr = self._priors(nc, nf)
        old_w, old_m, old_c = params["weights"], params["means"], params["covars"]
        with np.errstate(invalid="ignore", divide="ignore"):
            if "w" in fit_params:
                alphas_minus_one = pr["weights_prior"] - 1
                w_n = stats["post_mix_sum"] + alphas_minus_one
                w_d = (stats["post_sum"] + alphas_minus_one.sum(axis=1))[:, None]
                w = w_n / w_d
                bad = ~np.isfinite(w).all(axis=1)
                w[bad] = old_w[bad]
                params["weights"] = w
            if "m" in fit_params:
                lambdas, mus = pr["means_weight"], pr["means_prior"]
                m_n = stats["m_n"] + lambdas[:, :, None] * mus  # hmmlearn's prior, added once
                m_d = stats["post_mix_sum"] + lambdas
                m_d[(params["weights"] == 0) & (m_n == 0).all(axis=-1)] = 1
                m = m_n / m_d[:, :, None]
                m = np.where(np.isfinite(m), m, old_m)
                params["means"] = m
            if "c" in fit_params:
                lambdas, mus = pr["means_weight"], pr["means_prior"]
                centered_means = params["means"] - mus
                ct = self.covariance_type
                if ct == "full":
                    cmd = centered_means[..., :, None] * centered_means[..., None, :]
                    psis_t = np.transpose(pr["covars_prior"], axes=(0, 1, 3, 2))
                    c_n = psis_t + lambdas[:, :, None, None] * cmd + stats["c_n"]
                    c_d = (stats["post_mix_sum"] + 1 + pr["covars_weight"] + nf + 1)[
                        :, :, None, None
                    ]
                elif ct == "diag":
                    c_n = (
                        lambdas[:, :, None] * centered_means**2
                        + 2 * pr["covars_weight"]
                        + stats["c_n"]
                    )
                    c_d = stats["post_mix_sum"][:, :, None] + 1 + 2 * (pr["covars_prior"] + 1)
                elif ct == "spherical":
                    norm2 = np.einsum("...i,...i", centered_means, centered_means)
                    c_n = lambdas * norm2 + 2 * pr["covars_weight"] + stats["c_n"]
                    c_d = nf * (stats["post_mix_sum"] + 1) + 2 * (pr["covars_prior"] + 1)
                else:
                    cmd = centered_means[..., :, None] * centered_means[..., None, :]
                    psis_t = np.transpose(pr["covars_prior"], axes=(0, 2, 1))
                    c_n = np.einsum("ij,ijkl->ikl", lambdas, cmd) + psis_t + stats["c_n"]
                    c_d = (stats["post_sum"] + nm + pr["covars_weight"] + nf + 1)[:, None, None]
                c = c_n / c_d
                c = np.where(np.isfinite(c) & (c_d != 0), c, old_c)
                params["covars"] = c
        return params

    def check_params(self, params: Params) -> None:
        w = np.asarray(params["weights"])
        nc, nm = w.shape
        if nm != self.n_mix:
            raise ValueError(
                f"weights must have shape (n_components, n_mix={self.n_mix}); got {w.shape}"
            )
        _check_sum_1("weights", w)
        means = np.asarray(params["means"])
        if means.ndim != 3 or means.shape[:2] != (nc, nm):
            raise ValueError(
                f"means must have shape (n_components, n_mix, n_features); got {means.shape}"
            )
        nf = means.shape[2]
        covars = np.asarray(params["covars"])
        needed = {
            "spherical": (nc, nm),
            "tied": (nc, nf, nf),
            "diag": (nc, nm, nf),
            "full": (nc, nm, nf, nf),
        }[self.covariance_type]
        if covars.shape != needed:
            raise ValueError(
                f"{self.covariance_type!r} mixture covars must have shape {needed}, actual shape: {covars.shape}"
            )
        for name, a in (("weights", w), ("means", means), ("covars", covars)):
            _check_finite(name, a)
        if self.covariance_type in ("spherical", "diag") and np.any(covars < 0):
            raise ValueError(f"{self.covariance_type!r} mixture covars must be non-negative")
        if self.covariance_type in ("full", "tied"):
            mats = covars.reshape(-1, nf, nf)
            for i, cv in enumerate(mats):
                if not np.allclose(cv, cv.T) or linalg.eigvalsh(cv).min() < 0:
                    raise ValueError(f"covariance matrix #{i} is not symmetric positive definite")

    def n_fit_scalars(self, n_components: int, n_features: int) -> dict[str, int]:
        nc, nf, nm = n_components, n_features, self.n_mix
        out = super().n_fit_scalars(nc, nf)
        out["m"] = nc * nm * nf
        out["c"] = {
            "spherical": nc * nm,
            "diag": nc * nm * nf,
            "full": nc * nm * nf * (nf + 1) // 2,
            "tied": nc * nf * (nf + 1) // 2,
        }[self.covariance_type]
        out["w"] = nm - 1  # sic: hmmlearn counts the weights of one state
        return out

    def sample_one(self, params: Params, state: int, rng: np.random.RandomState) -> np.ndarray:
        nc, nm = params["weights"].shape
        nf = params["means"].shape[2]
        i_gauss = rng.choice(nm, p=params["weights"][state])
        if self.covariance_type == "tied":
            covs = params["covars"]
        else:
            covs = _fill_covars(params["covars"][:, i_gauss], self.covariance_type, nc, nf)
        return rng.multivariate_normal(params["means"][state, i_gauss], covs[state])

    def sample_frames(
        self, params: Params, states: np.ndarray, rng: np.random.RandomState
    ) -> np.ndarray:
        states = np.asarray(states)
        X = np.empty((len(states), params["means"].shape[2]))
        for t, k in enumerate(states):
            X[t] = self.sample_one(params, int(k), rng)
        return X

    def public_attributes(self, params: Params) -> dict[str, np.ndarray]:
        return {
            "weights_": params["weights"],
            "means_": params["means"],
            "covars_": params["covars"],
        }

    def params_from_public(self, attrs: dict[str, Any]) -> Params:
        return {
            "weights": np.asarray(attrs["weights_"], dtype=np.float64),
            "means": np.asarray(attrs["means_"], dtype=np.float64),
            "covars": np.asarray(attrs["covars_"], dtype=np.float64),
        }


#: family name -> class
FAMILIES: dict[str, type[EmissionFamily]] = {
    "categorical": CategoricalEmissions,
    "gaussian": GaussianEmissions,
    "poisson": PoissonEmissions,
    "multinomial": MultinomialEmissions,
    "gmm": GMMEmissions,
}


def get_family(name: str, **hyperparameters: Any) -> EmissionFamily:
    """An emission family by name, e.g. ``get_family("gaussian", covariance_type="full")``."""
    try:
        cls = FAMILIES[name]
    except KeyError:
        raise ValueError(
            f"unknown emission family {name!r}; expected one of {sorted(FAMILIES)}"
        ) from None
    return cls(**hyperparameters)
