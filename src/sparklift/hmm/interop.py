"""Conversion between hmmlearn models and sparklift's (family, params) form.

hmmlearn is optional: it is imported inside the functions, and a clear
error says how to install it when it is missing.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from sparklift.errors import NotFittedError
from sparklift.hmm.emissions import FAMILIES, EmissionFamily, Params, get_family

__all__ = ["from_hmmlearn", "hmmlearn_settings", "to_hmmlearn"]

#: sparklift family name -> hmmlearn class name
HMMLEARN_CLASSES = {
    "categorical": "CategoricalHMM",
    "gaussian": "GaussianHMM",
    "poisson": "PoissonHMM",
    "multinomial": "MultinomialHMM",
    "gmm": "GMMHMM",
}

#: estimator-level settings shared by every hmmlearn HMM class
_SETTINGS = (
    "n_iter",
    "tol",
    "algorithm",
    "implementation",
    "params",
    "init_params",
    "startprob_prior",
    "transmat_prior",
    "random_state",
    "verbose",
)


def _hmmlearn() -> Any:
    try:
        from hmmlearn import hmm
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "this needs hmmlearn, which is not installed; install it with "
            "`pip install 'sparklift[hmmlearn]'` (or `pip install hmmlearn`)"
        ) from exc
    return hmm


def _plain(v: Any) -> Any:
    return v.tolist() if isinstance(v, np.ndarray) else v


def _n_features_of(family_name: str, params: Params) -> int | None:
    """The number of features the emission parameters are for (None without them)."""
    emission = params.get("emissionprob", params.get("lambdas", params.get("means")))
    if emission is None:
        return None
    return int(np.shape(emission)[2 if family_name == "gmm" else 1])


def from_hmmlearn(obj: Any, *, partial: bool = False) -> tuple[str, dict[str, Any], Params, int]:
    """Family, hyperparameters and parameters of a fitted hmmlearn model.

    Parameters
    ----------
    obj : hmmlearn.hmm.CategoricalHMM, GaussianHMM, PoissonHMM, MultinomialHMM or GMMHMM
        With its parameters set (fitted, or assigned by hand).
    partial : bool, default False
        Take only the parameters that are set (an ``init_model`` prepared as
        hmmlearn allows: some attributes assigned, the rest initialised by
        ``fit``). ``n_features`` is then None when no emission parameter says.

    Returns
    -------
    family_name : str
    hyperparameters : dict
        Keyword arguments of the family class (JSON-friendly values).
    params : dict of ndarray
        ``startprob``, ``transmat`` and the family's parameter keys.
    n_components : int

    Raises
    ------
    TypeError
        For a class sparklift does not mirror (e.g. the variational models).
    NotFittedError
        If the model has no parameters yet (unless ``partial``).
    """
    hmm = _hmmlearn()
    name = None
    for fam_name, cls_name in HMMLEARN_CLASSES.items():
        if type(obj) is getattr(hmm, cls_name):
            name = fam_name
    if name is None:
        raise TypeError(
            f"cannot convert {type(obj).__name__}: expected one of hmmlearn.hmm."
            + ", hmmlearn.hmm.".join(HMMLEARN_CLASSES.values())
        )
    if not partial and (not hasattr(obj, "startprob_") or not hasattr(obj, "transmat_")):
        raise NotFittedError(
            f"This {type(obj).__name__} has no startprob_/transmat_ yet; fit it or set its parameters first."
        )
    cls = FAMILIES[name]
    hyper: dict[str, Any] = {}
    for key in cls._hyper:
        if key == "n_features":
            continue
        hyper[key] = _plain(getattr(obj, key))
    if name == "multinomial" and hyper.get("n_trials") is not None:
        # after fit hmmlearn may hold one count per training frame; keep it only if single
        trials = np.unique(np.atleast_1d(hyper["n_trials"]))
        hyper["n_trials"] = int(trials[0]) if trials.size == 1 else None

    def attr(key: str, private: bool = False) -> np.ndarray | None:
        # hmmlearn keeps a Gaussian's covariances in _covars_ (covars_ is a view of them)
        value = getattr(obj, f"_{key}_" if private else f"{key}_", None)
        if value is None and not partial:
            raise NotFittedError(f"This {type(obj).__name__} has no {key}_ yet.")
        return None if value is None else np.array(value, dtype=np.float64)

    found: dict[str, np.ndarray | None] = {
        "startprob": attr("startprob"),
        "transmat": attr("transmat"),
    }
    if name in ("categorical", "multinomial"):
        found["emissionprob"] = attr("emissionprob")
    elif name == "poisson":
        found["lambdas"] = attr("lambdas")
    elif name == "gaussian":
        found["means"] = attr("means")
        cv = attr("covars", private=True)
        if cv is not None and obj.covariance_type == "spherical" and cv.ndim == 2:
            cv = cv.mean(axis=1)  # hmmlearn keeps spherical variances tiled to (K, F)
        found["covars"] = cv
    else:
        found["weights"] = attr("weights")
        found["means"] = attr("means")
        found["covars"] = attr("covars")
    params: Params = {k: v for k, v in found.items() if v is not None}
    for key in ("emissionprob", "lambdas"):
        if key in params:
            params[key] = np.atleast_2d(params[key])
    hyper["n_features"] = _n_features_of(name, params)
    if hyper["n_features"] is None:
        declared = getattr(obj, "n_features", None)
        hyper["n_features"] = None if declared is None else int(declared)
    if "startprob" in params:
        n_components = int(params["startprob"].shape[0])
    else:
        n_components = int(obj.n_components)
    return name, hyper, params, n_components


def hmmlearn_settings(obj: Any) -> dict[str, Any]:
    """The estimator settings of an hmmlearn model (``n_iter``, ``tol``, priors...)."""
    return {k: _plain(getattr(obj, k)) for k in _SETTINGS if hasattr(obj, k)}


def to_hmmlearn(
    family_name: str,
    hyper: dict[str, Any],
    params: Params,
    n_components: int,
    /,
    **hmmlearn_kwargs: Any,
) -> Any:
    """An hmmlearn model with exactly these parameters.

    Parameters
    ----------
    family_name : str
        A key of :data:`sparklift.hmm.emissions.FAMILIES`.
    hyper : dict
        The family's hyperparameters.
    params : dict of ndarray
    n_components : int
    **hmmlearn_kwargs
        Other constructor arguments (``n_iter``, ``tol``, ``algorithm``,
        ``implementation``, ``random_state``, and hmmlearn's own ``params``:
        the first four arguments are positional-only, so ``params="st"``
        here is hmmlearn's setting). ``init_params`` defaults to ``""`` so
        that a later ``fit`` starts from these parameters.

    Returns
    -------
    hmmlearn model
    """
    hmm = _hmmlearn()
    family: EmissionFamily = get_family(family_name, **hyper)
    cls = getattr(hmm, HMMLEARN_CLASSES[family_name])
    kwargs = {k: v for k, v in hyper.items() if k != "n_features" or family_name == "categorical"}
    kwargs.setdefault("init_params", "")
    kwargs.update(hmmlearn_kwargs)
    if family_name == "multinomial":
        # hmmlearn logs a long notice about its 0.3 API change on every construction
        hmm_log = logging.getLogger("hmmlearn.hmm")
        level = hmm_log.level
        hmm_log.setLevel(logging.ERROR)
        try:
            obj = cls(n_components=n_components, **kwargs)
        finally:
            hmm_log.setLevel(level)
    else:
        obj = cls(n_components=n_components, **kwargs)
    # Only the parameters given: an init_model saved with some attributes set
    # (as hmmlearn allows) comes back as it was; a fitted model has them all.
    for key in ("startprob", "transmat", "emissionprob", "lambdas", "weights", "means", "covars"):
        if key in params:
            setattr(obj, f"{key}_", np.array(params[key], dtype=np.float64))
    n_features = _n_features_of(family_name, params)
    if n_features is not None:
        obj.n_features = n_features
    del family  # validated the hyperparameters
    return obj
