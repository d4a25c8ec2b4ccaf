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
previous parameters instead of becoming NaN; everything else is hmmlearn's
arithmetic unchanged.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
from scipy import linalg, special

from sparklift.errors import InvalidInputError

__all__ = [
    "FAMILIES",
    "CategoricalEmissions",
    "EmissionFamily",
    "GaussianEmissions",
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


def _check_finite(name: str, a: np.ndarray) -> None:
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} has NaN or infinite values")


def _check_shape(name: str, a: np.ndarray, shape: tuple[int, ...]) -> None:
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got {a.shape}")


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


def _lmvn_full(
    X: np.ndarray, means: np.ndarray, covars: np.ndarray, min_covar: float = 1.0e-7
) -> np.ndarray:
    nc, nf = means.shape
    out = np.empty((X.shape[0], nc))
    for c in range(nc):
        cv = covars[c]
        try:
            cv_chol = linalg.cholesky(cv, lower=True)
        except linalg.LinAlgError:
            try:
                cv_chol = linalg.cholesky(cv + min_covar * np.eye(nf), lower=True)
            except linalg.LinAlgError:
                raise ValueError("'covars' must be symmetric, positive-definite") from None
        cv_log_det = 2 * np.sum(np.log(np.diagonal(cv_chol)))
        cv_sol = linalg.solve_triangular(cv_chol, (X - means[c]).T, lower=True)
        out[:, c] = -0.5 * (nf * np.log(2 * np.pi) + (cv_sol**2).sum(axis=0) + cv_log_det)
    return out


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
    flat = np.ravel(covars)
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

    def n_fit_scalars(self, n_components: int, n_features: int) -> dict[str, int]:
        """Free scalars per parameter letter, as hmmlearn's ``_get_n_fit_scalars_per_param``."""
        nc = n_components
        return {"s": nc - 1, "t": nc * (nc - 1)}

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


class CategoricalEmissions(EmissionFamily):
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
        if X.size == 0:
            return
        bad = (X < 0) | ((self.n_features <= X) if self.n_features is not None else False)
        if bad.any():
            raise InvalidInputError(
                f"{int(bad.sum())} symbols are < 0 or >= n_features={self.n_features} "
                f"(for example {int(X[bad][0])})"
            )

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
        if covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {COVARIANCE_TYPES}; got {covariance_type!r}"
            )
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
        stats["post"] += posteriors.sum(axis=0)
        stats["obs"] += posteriors.T @ X
        if self.covariance_type in ("spherical", "diag"):
            stats["obs**2"] += posteriors.T @ X**2
        else:
            oo = stats["obs*obs.T"]
            for c in range(posteriors.shape[1]):
                oo[c] += (X * posteriors[:, c : c + 1]).T @ X

    def m_step(self, params: Params, stats: Stats, fit_params: str) -> Params:
        params = dict(params)
        means_prior = self.means_prior
        means_weight = self.means_weight
        denom = stats["post"][:, None]
        # a state with no responsibility keeps its parameters (hmmlearn: 0/0 = NaN)
        empty = stats["post"] == 0
        old_means = params["means"]
        old_covars = params["covars"]
        if "m" in fit_params:
            with np.errstate(invalid="ignore", divide="ignore"):
                means = (means_weight * means_prior + stats["obs"]) / (means_weight + denom)
            means = np.where(np.isfinite(means), means, old_means)
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


#: family name -> class
FAMILIES: dict[str, type[EmissionFamily]] = {
    "categorical": CategoricalEmissions,
    "gaussian": GaussianEmissions,
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
