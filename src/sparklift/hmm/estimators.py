"""pyspark.ml Estimators and Models for hidden Markov models.

``CategoricalHMM``, ``GaussianHMM``, ``PoissonHMM``, ``MultinomialHMM`` and
``GMMHMM`` are pyspark.ml Estimators whose ``fit`` runs distributed EM
(:mod:`sparklift.hmm.em`) and returns the matching ``...Model``. Parameters
keep hmmlearn's names and defaults; fitted attributes keep hmmlearn's names
(``startprob_``, ``transmat_``, ``emissionprob_``, ``means_``, ``covars_``,
``lambdas_``, ``weights_``, ``n_features``, ``monitor_``).

Two names differ from hmmlearn because pyspark.ml reserves them:

* hmmlearn's ``params`` (letters of the parameters EM updates) is the Param
  ``update_params``; the constructors and ``setParams`` also accept
  ``params=`` as an alias, so ``CategoricalHMM(params="st")`` works.
* the Model's ``n_components`` is a Param (``model.getNComponents()``), as
  on the Estimator.

Persistence is sparklift's own (:mod:`sparklift.hmm.persistence`): JSON +
NPZ written by the driver, on Spark Classic and Connect alike.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import re
import warnings
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
from pyspark import keyword_only
from pyspark.ml.base import Estimator, Model
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.util import MLReadable, MLReader, MLWritable, MLWriter

from sparklift import _spark
from sparklift._spark import map_partitions, map_reduce, translate_errors
from sparklift.errors import (
    InvalidInputError,
    ModelFormatError,
    NotFittedError,
    ResourceLimitError,
)
from sparklift.hmm import core, em, emissions, persistence
from sparklift.hmm.sequences import (
    column_layout,
    flat_frames,
    require_dataframe,
    sample_frames,
    validate_sequences,
)


@contextlib.contextmanager
def _em_frames(data: Any, col: str, kind: str, n_features: int) -> Iterator[tuple[Any, int | None]]:
    """The cached data EM iterates over, and the frame ``dim`` if stored flat.

    Multivariate frames are cached once more, flattened (see
    :func:`sparklift.hmm.sequences.flat_frames`), and the nested cache
    released; the flat cache is released on exit.
    """
    em_data, dim = flat_frames(data, col, kind, n_features)
    if dim is None:
        yield data, None
        return
    em_data = em_data.cache()
    try:
        em_data.write.format("noop").mode("overwrite").save()  # fill it, then free the other
        data.unpersist()
        yield em_data, dim
    finally:
        em_data.unpersist()


# --------------------------------------------------------------------------- converters


def _to_prior(value: Any) -> float | list:
    """A prior: a number, or an array-like kept as nested lists (JSON-able)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"expected a number or an array of numbers; got {value!r}")
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        return float(arr)
    return arr.tolist()


def _prior_value(value: Any) -> Any:
    """A prior as hmmlearn takes it: a number, or an array (stored as a list here)."""
    return np.asarray(value, dtype=float) if isinstance(value, list) else value


def _to_optional_prior(value: Any) -> float | list | None:
    return None if value is None else _to_prior(value)


# Param converters are module-level functions bound with functools.partial (not
# closures), so that estimators and models pickle (joblib, MLflow).


def _int_at_least(minimum: int, name: str) -> Any:
    return functools.partial(_convert_int_at_least, minimum, name)


def _convert_int_at_least(minimum: int, name: str, value: Any) -> int:
    out = TypeConverters.toInt(value)
    if out < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return out


def _to_seed(value: Any) -> int:
    if isinstance(value, (np.random.RandomState, np.random.Generator)):
        raise TypeError(
            "random_state must be an int (or unset): a Spark Param is saved with the model, "
            "and a NumPy random generator cannot be. Pass a seed, e.g. random_state=0."
        )
    return TypeConverters.toInt(value)


def _float_at_least(minimum: float, name: str) -> Any:
    return functools.partial(_convert_float_at_least, minimum, name)


def _convert_float_at_least(minimum: float, name: str, value: Any) -> float:
    out = TypeConverters.toFloat(value)
    if not out >= minimum:
        raise ValueError(f"{name} must be a number >= {minimum}; got {value!r}")
    return out


def _float_not_nan(name: str) -> Any:
    # hmmlearn accepts any tol; a negative one (e.g. -inf) forces n_iter iterations.
    return functools.partial(_convert_float_not_nan, name)


def _convert_float_not_nan(name: str, value: Any) -> float:
    out = TypeConverters.toFloat(value)
    if np.isnan(out):
        raise ValueError(f"{name} must be a number (not NaN); got {value!r}")
    return out


def _choice(name: str, choices: tuple[str, ...]) -> Any:
    return functools.partial(_convert_choice, name, choices)


def _convert_choice(name: str, choices: tuple[str, ...], value: Any) -> str:
    out = TypeConverters.toString(value)
    if out not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}; got {value!r}")
    return out


def _letters(name: str) -> Any:
    return functools.partial(_convert_letters, name)


def _convert_letters(name: str, value: Any) -> str:
    out = TypeConverters.toString(value)
    if not re.fullmatch(r"[a-z]*", out):
        raise ValueError(
            f"{name} must be a string of parameter letters such as 'ste'; got {value!r}"
        )
    return out


def _to_model(value: Any) -> Any:
    if isinstance(value, _HMMModel) or type(value).__module__.startswith("hmmlearn"):
        return value
    raise TypeError(
        f"init_model must be a fitted sparklift HMM model or an hmmlearn model; got {type(value).__name__}"
    )


def _param(name: str, doc: str, converter: Any) -> Param:
    return Param(Params._dummy(), name, doc, typeConverter=converter)


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _with_accessors(cls: type) -> type:
    """Add pyspark.ml-style ``getX``/``setX`` for every Param declared on ``cls``."""
    for name, value in list(vars(cls).items()):
        if not isinstance(value, Param):
            continue

        def getter(self, _name=name):
            return self.getOrDefault(_name)

        def setter(self, value, _name=name):
            return self._set(**{_name: value})

        getter.__doc__ = f"Gets the value of {name} or its default."
        setter.__doc__ = f"Sets the value of {name}."
        setattr(cls, "get" + _camel(name), getter)
        setattr(cls, "set" + _camel(name), setter)
    return cls


# --------------------------------------------------------------------------- Params


@_with_accessors
class _HMMParams(Params):
    """Params shared by every HMM estimator and model."""

    n_components = _param(
        "n_components", "number of hidden states", _int_at_least(1, "n_components")
    )
    n_iter = _param("n_iter", "maximum number of EM iterations", _int_at_least(1, "n_iter"))
    tol = _param(
        "tol",
        "convergence threshold: EM stops when the log-likelihood gain is below it "
        "(-inf runs all n_iter iterations)",
        _float_not_nan("tol"),
    )
    update_params = _param(
        "update_params",
        "letters of the parameters EM updates (hmmlearn's 'params'): s startprob, t transmat, "
        "and the emission letters of the family",
        _letters("update_params"),
    )
    init_params = _param(
        "init_params",
        "letters of the parameters initialised before EM; the others come from init_model",
        _letters("init_params"),
    )
    random_state = _param("random_state", "seed of the initialisation", _to_seed)
    startprob_prior = _param("startprob_prior", "Dirichlet prior of startprob_", _to_prior)
    transmat_prior = _param("transmat_prior", "Dirichlet prior of the rows of transmat_", _to_prior)
    algorithm = _param(
        "algorithm", "decoder: 'viterbi' or 'map'", _choice("algorithm", ("viterbi", "map"))
    )
    implementation = _param(
        "implementation",
        "forward-backward implementation: 'scaling' (default; rescales each frame and falls "
        "back to log space per sequence on underflow; equal to 'log' to ~1e-12, 3-5x faster) "
        "or 'log' (hmmlearn's default)",
        _choice("implementation", ("log", "scaling")),
    )
    n_init = _param(
        "n_init",
        "number of EM restarts from different initialisations; the best is kept",
        _int_at_least(1, "n_init"),
    )
    init_model = _param(
        "init_model",
        "a sparklift or hmmlearn model giving the parameters not in init_params",
        _to_model,
    )
    checkpoint_dir = _param(
        "checkpoint_dir",
        "folder where parameters are saved after every iteration; a fit started again resumes there",
        TypeConverters.toString,
    )
    sequence_col = _param(
        "sequence_col", "column of sequences (one row per sequence)", TypeConverters.toString
    )
    loglik_col = _param(
        "loglik_col", "output column of per-sequence log-likelihood", TypeConverters.toString
    )
    states_col = _param(
        "states_col", "output column of the decoded state path", TypeConverters.toString
    )
    posteriors_col = _param(
        "posteriors_col",
        "output column of state posteriors (not produced when unset)",
        TypeConverters.toString,
    )
    verbose = _param("verbose", "print hmmlearn's per-iteration report", TypeConverters.toBoolean)
    progress = _param(
        "progress",
        "progress bar; unset: only when stderr is a terminal or verbose",
        TypeConverters.toBoolean,
    )
    init_sample_size = _param(
        "init_sample_size",
        "at most this many frames are sampled to the driver for initialisation (k-means etc.)",
        _int_at_least(1, "init_sample_size"),
    )
    num_partitions = _param(
        "num_partitions",
        "partitions of the cached training data; unset: the session's default parallelism",
        _int_at_least(1, "num_partitions"),
    )

    _common_defaults: ClassVar[dict[str, Any]] = {
        "n_components": 1,
        "n_iter": 10,
        "tol": 1e-2,
        "startprob_prior": 1.0,
        "transmat_prior": 1.0,
        "algorithm": "viterbi",
        # sparklift's default differs from hmmlearn's "log": our scaling kernel falls
        # back to log space per sequence on underflow, so it never underflows, equals
        # "log" to ~1e-12 and is 3-5x faster.
        "implementation": "scaling",
        "n_init": 1,
        "sequence_col": "sequence",
        "loglik_col": "log_likelihood",
        "states_col": "states",
        "verbose": False,
        "init_sample_size": 200_000,
    }


@_with_accessors
class _NFeaturesParam(Params):
    n_features = _param(
        "n_features",
        "number of symbols; inferred from the data when unset",
        _int_at_least(1, "n_features"),
    )


@_with_accessors
class _EmissionprobPriorParam(Params):
    emissionprob_prior = _param("emissionprob_prior", "Dirichlet prior of emissionprob_", _to_prior)


@_with_accessors
class _CovarianceParams(Params):
    covariance_type = _param(
        "covariance_type",
        "'spherical', 'diag', 'full' or 'tied'",
        _choice("covariance_type", ("spherical", "diag", "full", "tied")),
    )
    min_covar = _param(
        "min_covar", "floor on the covariance diagonal", _float_at_least(0.0, "min_covar")
    )
    means_prior = _param("means_prior", "mean of the Normal prior of means_", _to_optional_prior)
    means_weight = _param(
        "means_weight", "precision of the Normal prior of means_", _to_optional_prior
    )
    covars_prior = _param("covars_prior", "prior of covars_", _to_optional_prior)
    covars_weight = _param("covars_weight", "weight of the prior of covars_", _to_optional_prior)


@_with_accessors
class _PoissonParams(Params):
    lambdas_prior = _param("lambdas_prior", "Gamma prior shape of lambdas_", _to_prior)
    lambdas_weight = _param("lambdas_weight", "Gamma prior rate of lambdas_", _to_prior)


@_with_accessors
class _NTrialsParam(Params):
    n_trials = _param(
        "n_trials",
        "number of trials per frame (the counts of a frame sum to it)",
        _int_at_least(1, "n_trials"),
    )


@_with_accessors
class _MixtureParams(Params):
    n_mix = _param("n_mix", "number of Gaussian components per state", _int_at_least(1, "n_mix"))
    weights_prior = _param("weights_prior", "Dirichlet prior of weights_", _to_prior)


_PARAM_ALIASES = {"params": "update_params"}


# --------------------------------------------------------------------------- persistence glue


class _Writer(MLWriter):
    """``write().overwrite().save(path)`` for sparklift stages, through the driver's file system."""

    def __init__(self, instance: Any):
        super().__init__()
        self.instance = instance

    def save(self, path: str) -> None:
        if not isinstance(path, str):
            raise TypeError(f"path should be a string, got type {type(path).__name__}")
        self.instance._save_to(path, overwrite=self.shouldOverwrite)


class _Reader(MLReader):
    def __init__(self, cls: type):
        super().__init__()
        self.cls = cls

    def load(self, path: str) -> Any:
        return self.cls._load_from(path)


class _Persistable(MLWritable, MLReadable):
    """``save``/``write``/``load``/``read`` as pyspark.ml's MLWritable/MLReadable.

    Being MLWritable/MLReadable also lets a classic pyspark ``Pipeline`` /
    ``PipelineModel`` save and load these stages.
    """

    def write(self) -> _Writer:
        """An MLWriter: ``write().overwrite().save(path)``."""
        return _Writer(self)

    def save(self, path: str) -> None:
        """Save to ``path`` (a directory of JSON + NPZ); refuses to replace an existing path."""
        self.write().save(path)

    @classmethod
    def read(cls) -> _Reader:
        """An MLReader: ``Model.read().load(path)``."""
        return _Reader(cls)

    @classmethod
    def load(cls, path: str) -> Any:
        """Load an instance saved with :meth:`save`."""
        return cls.read().load(path)


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__name__}"


def _params_json(stage: Params) -> dict[str, Any]:
    out = {}
    for p in stage.params:
        if p.name == "init_model" or not stage.isSet(p):
            continue
        out[p.name] = persistence.to_json_value(stage.getOrDefault(p))
    return out


def _check_class(document: dict[str, Any], cls: type, path: str) -> None:
    saved = str(document.get("class", ""))
    if saved.rsplit(".", 1)[-1] != cls.__name__:
        raise ModelFormatError(
            f"{path} holds a {saved.rsplit('.', 1)[-1] or 'different object'}, not a {cls.__name__}; "
            f"load it with {saved.rsplit('.', 1)[-1]}.load."
        )


# --------------------------------------------------------------------------- estimators


def _family_kind(family_name: str) -> str:
    # Categorical symbols are integers; every other family reads frames as
    # float vectors (array<double> is read as one-dimensional frames).
    return "int" if family_name == "categorical" else "vector"


def _family_hyper(stage: Params, family_cls: type) -> dict[str, Any]:
    names = [n for n in inspect.signature(family_cls.__init__).parameters if n != "self"]
    hyper = {}
    for name in names:
        if stage.hasParam(name) and stage.isDefined(getattr(stage, name)):
            value = stage.getOrDefault(name)
            hyper[name] = np.asarray(value, dtype=float) if isinstance(value, list) else value
    return hyper


def _init_model_params(
    init_model: Any, family_name: str
) -> tuple[dict[str, np.ndarray] | None, int | None]:
    """Parameters and n_features of an ``init_model`` (sparklift or hmmlearn)."""
    if init_model is None:
        return None, None
    if isinstance(init_model, _HMMModel):
        init_model._check_fitted()
        name, params, n_features = (
            init_model._family_name,
            init_model._fitted,
            init_model.n_features,
        )
    else:
        from sparklift.hmm import interop

        # As hmmlearn: what is set is kept (unless init_params names it), the rest initialised.
        name, hyper, params, _n_components = interop.from_hmmlearn(init_model, partial=True)
        n_features = hyper["n_features"]
    if name != family_name:
        raise InvalidInputError(
            f"init_model is a {name} HMM but this estimator fits a {family_name} HMM."
        )
    return {k: np.array(v, dtype=float) for k, v in params.items()}, n_features


# hmmlearn's attribute behind each parameter letter.
_LETTER_KEYS = {
    "s": ("startprob",),
    "t": ("transmat",),
    "e": ("emissionprob",),
    "m": ("means",),
    "c": ("covars",),
    "l": ("lambdas",),
    "w": ("weights",),
}


def _key_letter(key: str) -> str:
    return next(c for c, keys in _LETTER_KEYS.items() if key in keys)


def _warn_overwritten(base_params: dict[str, np.ndarray], init_params: str) -> None:
    """hmmlearn's ``_needs_init`` warning for each init_model parameter init_params replaces."""
    for key in base_params:
        code = _key_letter(key)
        if code in init_params:
            warnings.warn(
                f"Even though the {key + '_'!r} attribute is set, it will be overwritten "
                f"during initialization because 'init_params' contains {code!r} "
                "(pass init_params='' to keep every parameter of init_model)",
                UserWarning,
                stacklevel=4,
            )


def _check_init_model_shapes(
    base_params: dict[str, np.ndarray],
    init_params: str,
    n_components: int,
    covariance_type: str | None,
) -> None:
    """Shapes of the init_model parameters that are kept, against n_components (no Spark job)."""
    for key, value in base_params.items():
        if _key_letter(key) in init_params:
            continue
        shape = np.shape(value)
        if key == "covars" and covariance_type == "tied":
            continue
        if key == "startprob":
            ok = shape == (n_components,)
        elif key == "transmat":
            ok = shape == (n_components, n_components)
        else:
            ok = len(shape) >= 1 and shape[0] == n_components
        if not ok:
            raise InvalidInputError(
                f"init_model's {key}_ has shape {shape}, which does not match "
                f"n_components={n_components}"
            )


def _check_prior(name: str, value: Any, shape: tuple[int, ...]) -> None:
    prior = np.asarray(value, dtype=float)
    try:
        ok = np.broadcast_shapes(prior.shape, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise InvalidInputError(
            f"{name} has shape {prior.shape}; expected a scalar or an array broadcastable "
            f"to {shape}"
        )


def _check_priors(stage: Params, hyper: dict[str, Any], n_components: int, n_features: int):
    """Prior shapes, checked before fitting (hmmlearn would fail inside the M-step)."""
    K, F = n_components, n_features
    _check_prior("startprob_prior", stage.getOrDefault("startprob_prior"), (K,))
    _check_prior("transmat_prior", stage.getOrDefault("transmat_prior"), (K, K))
    shapes = {
        "emissionprob_prior": (K, F),
        "lambdas_prior": (K, F),
        "lambdas_weight": (K, F),
        "means_prior": (K, F),
        "means_weight": (K, F) if hyper.get("n_mix") is None else (K, hyper["n_mix"]),
    }
    if hyper.get("n_mix") is not None:
        shapes["weights_prior"] = (K, hyper["n_mix"])
        shapes["means_prior"] = (K, hyper["n_mix"], F)
    for name, shape in shapes.items():
        if hyper.get(name) is not None:
            _check_prior(name, hyper[name], shape)


def _value_checks(family_name: str) -> dict[str, bool]:
    """What every frame's values must be, for fit and scoring alike."""
    return {
        "nonnegative": family_name in ("poisson", "multinomial"),
        "integer": family_name == "multinomial",
        "whole": family_name == "poisson",
    }


def _init_model_hyper(init_model: Any) -> dict[str, Any]:
    """The emission hyperparameters of an init_model (covariance_type, n_mix, priors...)."""
    if isinstance(init_model, _HMMModel):
        return dict(init_model._hyper)
    from sparklift.hmm import interop

    _name, hyper, _params, _n = interop.from_hmmlearn(init_model, partial=True)
    return {k: v for k, v in hyper.items() if k != "n_features"}


def _hyper_from_json(hyper: dict[str, Any]) -> dict[str, Any]:
    return {k: _prior_value(v) for k, v in hyper.items()}


def _known_params(stage: Params, params: dict[str, Any], path: str) -> dict[str, Any]:
    """The saved Params this version knows; the others are skipped with a warning."""
    unknown = sorted(k for k in params if not stage.hasParam(k))
    if unknown:
        warnings.warn(
            f"{path}: skipping Param(s) {unknown} unknown to this version of sparklift "
            f"({type(stage).__name__})",
            UserWarning,
            stacklevel=4,
        )
    return {k: v for k, v in params.items() if k not in unknown}


def _default_parallelism(spark: Any) -> int | None:
    """The session's default parallelism, read from configuration (works on Connect)."""
    try:
        value = spark.conf.get("spark.default.parallelism", None)
        if value:
            return int(value)
        master = spark.conf.get("spark.master", None) or ""
    except Exception:  # a remote session may refuse to read static configuration
        return None
    import os

    match = re.fullmatch(r"local\[(\*|\d+)(?:,\s*\d+)?\]", master)
    if match:
        return os.cpu_count() or 1 if match.group(1) == "*" else int(match.group(1))
    match = re.fullmatch(r"local-cluster\[(\d+),\s*(\d+),\s*\d+\]", master)
    if match:
        return int(match.group(1)) * int(match.group(2))
    return None


def _restart_seeds(random_state: int | None, n_init: int) -> list[Any]:
    # Restart 0 uses random_state itself, so n_init=1 initialises exactly as hmmlearn.
    if n_init == 1:
        return [random_state]
    rng = np.random.RandomState(random_state)
    return [random_state, *(int(s) for s in rng.randint(0, 2**31 - 1, size=n_init - 1))]


def _digest_arrays(params: dict[str, np.ndarray] | None) -> str | None:
    if params is None:
        return None
    import hashlib

    h = hashlib.sha256()
    for key in sorted(params):
        h.update(key.encode())
        h.update(np.ascontiguousarray(params[key], dtype=float).tobytes())
    return h.hexdigest()


#: Driver memory an inferred emissionprob_ may take before the fit is refused.
_MAX_INFERRED_EMISSIONS_BYTES = 1 << 30
#: Inferred vocabularies this large, with fewer frames than symbols, look like ids.
_MIN_SUSPECT_SYMBOLS = 1_000


def _check_inferred_symbols(n_features: int, n_frames: int, n_components: int, col: str) -> None:
    """Symbols inferred as 0..max: ids used as symbols make that huge and mostly unseen.

    Small vocabularies (under 1,000 symbols) are left alone: a few frames of
    codes 0..9 are test data, not ids.
    """
    if n_features <= max(n_frames, _MIN_SUSPECT_SYMBOLS - 1):
        return
    advice = (
        f"Column '{col}' has symbols up to {n_features - 1:,}, so each state would have "
        f"n_features={n_features:,} emission probabilities, more than the {n_frames:,} "
        "frames. If the values are ids rather than codes 0..n-1, index them first "
        "(StringIndexer, or F.dense_rank() over the distinct values minus 1); if not, "
        "set n_features."
    )
    need = 8 * n_components * n_features
    if need > _MAX_INFERRED_EMISSIONS_BYTES:
        raise ResourceLimitError(
            f"{advice} Refused: emissionprob_ alone would take {need / 2**30:.1f} GiB on "
            "the driver."
        )
    warnings.warn(advice, UserWarning, stacklevel=4)


#: hmmlearn's fitted attributes, which users of hmmlearn assign by hand.
_FITTED_ATTRIBUTES = frozenset(
    (
        "startprob_",
        "transmat_",
        "emissionprob_",
        "lambdas_",
        "weights_",
        "means_",
        "covars_",
        "monitor_",
    )
)


class _HMMEstimator(Estimator, _HMMParams, _Persistable):
    """Base of the HMM estimators: binds an emission family and a Model class."""

    _family_name: ClassVar[str]
    _model_cls: ClassVar[type]
    _defaults: ClassVar[dict[str, Any]] = {}

    @keyword_only
    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self._setDefault(**{**self._common_defaults, **self._defaults})
        self.setParams(**kwargs)

    def setParams(self, **kwargs: Any) -> _HMMEstimator:
        """Set Params by keyword (``params=`` is accepted for ``update_params``)."""
        for alias, name in _PARAM_ALIASES.items():
            if alias in kwargs:
                kwargs[name] = kwargs.pop(alias)
        unknown = sorted(k for k in kwargs if not self.hasParam(k))
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unknown parameter(s) {unknown}; valid ones are "
                f"{sorted(p.name for p in self.params)}"
            )
        return self._set(**kwargs)

    # -- fitting ---------------------------------------------------------------------

    def fit(self, dataset: Any, params: Any = None) -> Any:
        """Fit on ``dataset`` (one sequence per row), as pyspark.ml's ``Estimator.fit``.

        ``params``, as in pyspark.ml, is an optional param map (or a list of
        them, giving one model each); hmmlearn's ``lengths`` have no place
        here: see :func:`sparklift.hmm.sequences.sequences_from_arrays`.
        """
        require_dataframe(dataset, self.getOrDefault("sequence_col"))
        # As Estimator.fit does, at the same depth, so that warnings name the caller.
        if params is None or (isinstance(params, dict) and not params):
            return self._fit(dataset)
        if isinstance(params, dict):
            return self.copy(params)._fit(dataset)
        return super().fit(dataset, params)

    def _fit(self, dataset: Any) -> _HMMModel:
        name = self._family_name
        family_cls = emissions.FAMILIES[name]
        col = self.getOrDefault("sequence_col")
        kind = _family_kind(name)
        get = self.getOrDefault
        n_components = get("n_components")
        allowed = "st" + family_cls.letters
        for pname, shown in (("update_params", "params"), ("init_params", "init_params")):
            extra = sorted(set(get(pname)) - set(allowed))
            if extra:
                raise InvalidInputError(
                    f"{shown}={get(pname)!r} contains {''.join(extra)!r}, which "
                    f"{type(self).__name__} does not use; allowed letters: {allowed!r}"
                )
        init_model = get("init_model") if self.isDefined(self.init_model) else None
        base_params, base_n_features = _init_model_params(init_model, name)

        n_features = (
            get("n_features") if self.hasParam("n_features") and self.isSet("n_features") else None
        )
        if n_features is None and name == "categorical" and base_n_features is not None:
            n_features = int(base_n_features)
        if (
            n_features is not None
            and base_n_features is not None
            and int(n_features) != int(base_n_features)
        ):
            raise InvalidInputError(
                f"init_model has n_features={base_n_features} but this estimator's "
                f"n_features={n_features}"
            )
        if n_features is None and base_n_features is not None:
            n_features = int(base_n_features)
        if base_params is not None:
            _warn_overwritten(base_params, get("init_params"))
            covariance_type = get("covariance_type") if self.hasParam("covariance_type") else None
            _check_init_model_shapes(base_params, get("init_params"), n_components, covariance_type)
        n_trials = get("n_trials") if self.hasParam("n_trials") and self.isSet("n_trials") else None
        hyper = _family_hyper(self, family_cls)
        if n_features is not None:
            _check_priors(self, hyper, n_components, int(n_features))

        nested, _ = column_layout(
            dataset, col, kind
        )  # a missing or mistyped column, before any job
        # Cache first and validate the cached data: the validation job fills the cache,
        # so the source is read once (the first EM iteration reuses it).
        data = dataset.select(_spark.col(col))
        n_partitions = (
            get("num_partitions")
            if self.isSet("num_partitions")
            else _default_parallelism(dataset.sparkSession)
        )
        if n_partitions:
            data = data.repartition(n_partitions)
        data = data.cache()
        infer_trials = name == "multinomial" and hyper.get("n_trials") is None
        try:
            summary = validate_sequences(
                data,
                col,
                kind,
                n_features,
                n_trials=n_trials,
                # A checkpoint is resumed only on the same data: its content counts.
                checksum=self.isSet("checkpoint_dir"),
                # Without n_trials, each frame's total is its own number of
                # trials (as hmmlearn); a model samples only with one total.
                frame_totals=infer_trials,
                example_from=dataset,
                **_value_checks(name),
            )
            hyper["n_features"] = n_features or summary.n_features
            if infer_trials:
                lo, hi = summary.frame_totals
                hyper["n_trials"] = lo if lo == hi else None
            _check_priors(self, hyper, n_components, hyper["n_features"])
            family = family_cls(**hyper)
            if name == "categorical" and n_features is None:
                _check_inferred_symbols(hyper["n_features"], summary.n_frames, n_components, col)
            self._warn_degenerate(family, summary, n_components, col, nested)
            return self._fit_cached(
                data,
                dataset.select(_spark.col(col)),
                col,
                kind,
                family,
                hyper,
                summary,
                base_params,
                n_components,
            )
        finally:
            data.unpersist()

    def _warn_degenerate(
        self, family: Any, summary: Any, n_components: int, col: str, nested: bool
    ) -> None:
        """hmmlearn's warnings for fits that cannot come to anything useful."""
        nf = int(family.n_features)
        if self._family_name == "multinomial" and not nested:
            # hmmlearn < 0.3 called the categorical model MultinomialHMM.
            warnings.warn(
                f"Column '{col}' has one number per frame, so MultinomialHMM reads each frame "
                "as a count of one single symbol (n_features=1) and its emissions can learn "
                "nothing. For a sequence of symbols use CategoricalHMM (hmmlearn < 0.3's "
                "MultinomialHMM); MultinomialHMM reads array<array<int>> frames of counts.",
                UserWarning,
                stacklevel=4,
            )
        # As hmmlearn: fewer data points (frames x columns of X) than free parameters.
        per_letter = family.n_fit_scalars(n_components, nf)
        n_scalars = sum(per_letter.get(c, 0) for c in self.getOrDefault("update_params"))
        n_points = summary.n_frames * (1 if self._family_name == "categorical" else nf)
        if n_points < n_scalars:
            warnings.warn(
                f"Fitting a model with {n_scalars} free scalar parameters with only "
                f"{n_points} data points will result in a degenerate solution.",
                UserWarning,
                stacklevel=4,
            )

    def _fit_cached(
        self,
        data: Any,
        source: Any,
        col: str,
        kind: str,
        family: Any,
        hyper: dict[str, Any],
        summary: Any,
        base_params: dict[str, np.ndarray] | None,
        n_components: int,
    ) -> _HMMModel:
        get = self.getOrDefault
        random_state = get("random_state") if self.isSet("random_state") else None
        init_params = get("init_params")
        update_params = get("update_params")
        # Categorical and multinomial emissions are initialised at random (as hmmlearn):
        # their initialisation reads no frames, so no sample is drawn.
        needs_data = self._family_name not in ("categorical", "multinomial") and (
            any(c in init_params for c in family.letters)
            or base_params is None
            or any(key not in base_params for key in family.param_keys())
        )
        if needs_data:
            # All frames fit in the sample: take them from the input in row order, as
            # hmmlearn sees them. Otherwise a seeded sample of the cached data, which
            # also fills the cache for the first iteration.
            small = summary.n_frames <= get("init_sample_size")
            X_sample = sample_frames(
                source if small else data,
                col,
                kind,
                get("init_sample_size"),
                0 if random_state is None else random_state,
                n_frames=summary.n_frames,
            )
        else:  # every emission parameter comes from init_model: no sample to draw
            X_sample = np.empty((0, summary.n_features), dtype=np.int64 if kind == "int" else float)
        fingerprint = {
            "class": type(self).__name__,
            "hyper": hyper,
            "n_components": n_components,
            "update_params": update_params,
            "init_params": init_params,
            "random_state": random_state,
            "startprob_prior": get("startprob_prior"),
            "transmat_prior": get("transmat_prior"),
            "implementation": get("implementation"),
            "tol": get("tol"),
            "data": [summary.n_sequences, summary.n_frames, summary.n_features, summary.checksum],
            "init_model": _digest_arrays(base_params),
        }
        checkpoint_dir = get("checkpoint_dir") if self.isSet("checkpoint_dir") else None
        n_init = get("n_init")
        best = None
        # EM iterates over the frames stored flat (cheaper to stream to Python every
        # iteration); the nested cache is released once the flat one is filled.
        with _em_frames(data, col, kind, hyper["n_features"]) as (em_data, dim):
            for k, seed in enumerate(_restart_seeds(random_state, n_init)):
                with warnings.catch_warnings():
                    if not needs_data:  # statistics of the empty sample are computed but unused
                        warnings.simplefilter("ignore", RuntimeWarning)
                    params0 = core.init_params(
                        family, n_components, X_sample, init_params, seed, base_params=base_params
                    )
                if base_params is not None:
                    try:
                        core.check_params(family, params0)
                    except ValueError as exc:
                        raise InvalidInputError(
                            f"init_model's parameters do not fit this estimator and data: {exc}"
                        ) from None
                checkpoint = None
                if checkpoint_dir is not None:
                    import posixpath

                    checkpoint = em.Checkpoint(
                        posixpath.join(checkpoint_dir, f"restart-{k}")
                        if n_init > 1
                        else checkpoint_dir,
                        {**fingerprint, "restart": k, "n_init": n_init},
                    )
                params, monitor = em.run_em(
                    em_data,
                    col,
                    kind,
                    family,
                    params0,
                    n_iter=get("n_iter"),
                    tol=get("tol"),
                    implementation=get("implementation"),
                    fit_params=update_params,
                    startprob_prior=np.asarray(get("startprob_prior"), dtype=float),
                    transmat_prior=np.asarray(get("transmat_prior"), dtype=float),
                    verbose=get("verbose"),
                    progress=get("progress") if self.isSet("progress") else None,
                    checkpoint=checkpoint,
                    desc=f"{type(self).__name__} EM"
                    + (f" (restart {k + 1}/{n_init})" if n_init > 1 else ""),
                    dim=dim,
                )
                score = monitor.history[-1] if monitor.history else -np.inf
                if best is None or score > best[0]:
                    best = (score, params, monitor)
        assert best is not None
        model = self._model_cls()
        self._copyValues(model)
        try:
            model._set_fitted(
                self._family_name, hyper, best[1], n_components, hyper["n_features"], best[2]
            )
        except ValueError as exc:
            # hmmlearn returns such a model, and then refuses to score with it.
            advice = em.covariance_advice(family) if "'full' covars" in str(exc) else ""
            raise InvalidInputError(
                f"EM ended with parameters that define no distribution: {exc}.{advice}"
            ) from None
        return model

    # -- persistence -----------------------------------------------------------------

    def _save_to(self, path: str, overwrite: bool) -> None:
        init_model = self.getOrDefault("init_model") if self.isSet("init_model") else None
        arrays: dict[str, np.ndarray] = {}
        init = None
        if init_model is not None:
            params, n_features = _init_model_params(init_model, self._family_name)
            arrays = {f"init_model.{k}": v for k, v in (params or {}).items()}
            init = {
                "n_features": n_features,
                "n_components": self.getOrDefault("n_components"),
                "hyper": persistence.to_json_value(_init_model_hyper(init_model)),
            }
        persistence.save_model(
            path,
            {
                "class": _qualname(type(self)),
                "uid": self.uid,
                "kind": "estimator",
                "params": _params_json(self),
                "init_model": init,
            },
            arrays,
            overwrite=overwrite,
        )

    @classmethod
    def _load_from(cls, path: str) -> _HMMEstimator:
        document, arrays = persistence.load_model(path)
        _check_class(document, cls, path)
        try:
            est = cls()
            if document.get("uid"):
                est._resetUid(document["uid"])  # as pyspark's own readers
            est._set(**_known_params(est, document.get("params", {}), path))
            if document.get("init_model"):
                saved = document["init_model"]
                params = {
                    k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("init_model.")
                }
                hyper = _hyper_from_json(saved.get("hyper", {}))
                with_features = {**hyper, "n_features": saved.get("n_features")}
                family = emissions.FAMILIES[cls._family_name](**with_features)
                if {"startprob", "transmat", *family.param_keys()} <= set(params):
                    model = cls._model_cls()
                    model._set_fitted(
                        cls._family_name,
                        hyper,
                        params,
                        int(np.asarray(params["startprob"]).shape[0]),
                        saved.get("n_features"),
                        None,
                    )
                else:  # an hmmlearn object with some attributes set: it comes back as one
                    from sparklift.hmm import interop

                    model = interop.to_hmmlearn(
                        cls._family_name,
                        with_features,
                        params,
                        int(saved.get("n_components", est.getOrDefault("n_components"))),
                    )
                est._set(init_model=model)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, ModelFormatError):
                raise
            raise ModelFormatError(f"Estimator directory {path} is damaged: {exc!r}") from None
        return est

    def __setattr__(self, name: str, value: Any) -> None:
        # hmmlearn users set startprob_, means_... before fit; here they would be
        # ignored silently, so they are refused with the way that works.
        if name in _FITTED_ATTRIBUTES:
            cls = type(self).__name__
            raise AttributeError(
                f"{cls} does not read hand-set attributes such as {name}: set them on an "
                f"hmmlearn.hmm.{cls} and pass it as init_model=..., with init_params naming "
                f"only the letters to initialise (init_params='' keeps all of them); or, to "
                f"score with fixed parameters, use {cls}Model.from_hmmlearn(that_object)."
            )
        super().__setattr__(name, value)


# --------------------------------------------------------------------------- models


class _HMMModel(Model, _HMMParams, _Persistable):
    """Base of the fitted HMM models.

    Fitted attributes keep hmmlearn's names (``startprob_``, ``transmat_``,
    the family's ``emissionprob_`` / ``means_`` / ``covars_`` / ``lambdas_`` /
    ``weights_``, ``n_features``, ``monitor_``); the number of states is the
    Param ``n_components`` (``getNComponents()``).

    ``transform(df)`` checks the sequence column first (one small Spark job,
    so bad input fails there with one clear error rather than inside a later
    action), then lazily adds ``loglik_col`` (double: each sequence's forward
    log-likelihood, hmmlearn's ``score`` of that sequence), ``states_col``
    (array<int>: the ``algorithm`` path, hmmlearn's ``decode``) and, when
    ``posteriors_col`` is set, array<array<double>> state posteriors
    (hmmlearn's ``predict_proba``). ``save(path)`` writes JSON + NPZ through
    the driver (see :mod:`sparklift.hmm.persistence`).
    """

    _family_name: ClassVar[str]
    _estimator_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(
            **{
                k: v
                for k, v in {**self._common_defaults, **self._estimator_defaults}.items()
                if self.hasParam(k)
            }
        )
        self._fitted: dict[str, np.ndarray] | None = None
        self._hyper: dict[str, Any] = {}
        self._public: dict[str, Any] = {}
        self.n_features: int | None = None
        self._monitor: Any = None

    def _set_fitted(
        self,
        family_name: str,
        hyper: dict[str, Any],
        params: dict[str, np.ndarray],
        n_components: int,
        n_features: int | None,
        monitor: Any,
    ) -> None:
        fitted = {k: np.asarray(v) for k, v in params.items()}
        startprob = fitted.get("startprob")
        if startprob is None or np.shape(startprob) != (int(n_components),):
            raise ValueError(
                f"startprob_ has shape {np.shape(startprob)}; expected (n_components,) = "
                f"({int(n_components)},)"
            )
        self._fitted = fitted
        self._hyper = dict(hyper)
        self._set(n_components=n_components)
        self.n_features = None if n_features is None else int(n_features)
        self._monitor = monitor
        family = self._family()
        core.check_params(family, self._fitted)
        public = family.public_attributes(self._fitted)
        self._public = {(k if k.endswith("_") else k + "_"): v for k, v in public.items()}

    def _family(self) -> Any:
        hyper = dict(self._hyper)
        if self.n_features is not None:
            hyper["n_features"] = self.n_features
        return emissions.FAMILIES[self._family_name](**hyper)

    def _check_fitted(self) -> None:
        if self._fitted is None:
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet. Fit an estimator, load a saved "
                "model, or use from_hmmlearn."
            )

    @property
    def startprob_(self) -> np.ndarray:
        """Initial state distribution, shape (n_components,)."""
        self._check_fitted()
        return self._fitted["startprob"]

    @property
    def transmat_(self) -> np.ndarray:
        """Transition matrix, shape (n_components, n_components)."""
        self._check_fitted()
        return self._fitted["transmat"]

    @property
    def monitor_(self) -> Any:
        """hmmlearn's ConvergenceMonitor of the fit (``history`` holds every iteration)."""
        self._check_fitted()
        return self._monitor

    def __setattr__(self, name: str, value: Any) -> None:
        # Scoring, export and save read the fitted arrays, not attributes: an
        # assigned means_ would show but be ignored, so it is refused.
        if name in _FITTED_ATTRIBUTES:
            cls = type(self).__name__
            raise AttributeError(
                f"{cls}.{name} is read-only: change it on model.to_hmmlearn() and bring that "
                f"back with {cls}.from_hmmlearn(...)."
            )
        super().__setattr__(name, value)

    def __getattr__(self, name: str) -> Any:
        # Family attributes (emissionprob_, means_, covars_, lambdas_, weights_).
        if name.endswith("_") and not name.startswith("_"):
            public = self.__dict__.get("_public")
            if public and name in public:
                return public[name]
            if self.__dict__.get("_fitted") is None and public is not None:
                raise NotFittedError(f"This {type(self).__name__} is not fitted yet.")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- scoring and decoding -------------------------------------------------------

    def _validated(self, dataset: Any, allow_empty: bool = False) -> tuple[str, str]:
        self._check_fitted()
        col = self.getOrDefault("sequence_col")
        kind = _family_kind(self._family_name)
        validate_sequences(
            dataset,
            col,
            kind,
            self.n_features,
            n_trials=self._hyper.get("n_trials"),
            allow_empty=allow_empty,
            **_value_checks(self._family_name),
        )
        return col, kind

    def _transform(self, dataset: Any) -> Any:
        from pyspark.sql.types import ArrayType, DoubleType, IntegerType, StructField, StructType

        # A day without sequences decodes to no rows (a scheduled job's
        # empty partition), as predict() scores none; fitting on none is refused.
        col, kind = self._validated(dataset, allow_empty=True)
        get = self.getOrDefault
        posteriors_col = get("posteriors_col") if self.isSet("posteriors_col") else None
        out_names = [get("loglik_col"), get("states_col")] + (
            [posteriors_col] if posteriors_col else []
        )
        clash = sorted(set(out_names) & set(dataset.columns))
        if clash:
            raise InvalidInputError(
                f"Output column(s) {clash} already exist in the DataFrame; set loglik_col, "
                "states_col or posteriors_col to other names (on the command line: "
                "--loglik-col, --states-col, --posteriors-col)."
            )
        fields = [
            StructField(get("loglik_col"), DoubleType()),
            StructField(get("states_col"), ArrayType(IntegerType())),
        ]
        if posteriors_col:
            fields.append(StructField(posteriors_col, ArrayType(ArrayType(DoubleType()))))
        schema = StructType(list(dataset.schema.fields) + fields)
        fn = em.decode_partition_fn(
            self._family(),
            self._fitted,
            col=col,
            kind=kind,
            algorithm=get("algorithm"),
            implementation=get("implementation"),
            out_names=out_names,
        )
        return map_partitions(dataset, fn, schema)

    def _score_stats(self, dataset: Any) -> tuple[float, int]:
        col, kind = self._validated(dataset)
        fn = em.score_partition_fn(
            self._family(),
            self._fitted,
            col=col,
            kind=kind,
            implementation=self.getOrDefault("implementation"),
        )
        with translate_errors():
            total = map_reduce(dataset.select(_spark.col(col)), fn)
        if total is None:
            raise InvalidInputError(f"Column '{col}' holds no sequences to score.")
        return float(total[0]), int(total[1])

    def score(self, dataset: Any) -> float:
        """Total log-likelihood of the sequences under the model, as hmmlearn's ``score``.

        Parameters
        ----------
        dataset : pyspark.sql.DataFrame
            One row per sequence in ``sequence_col``.

        Returns
        -------
        float
        """
        return self._score_stats(dataset)[0]

    def _n_free_parameters(self) -> int:
        # hmmlearn's aic/bic count every fitted scalar, whatever ``params`` says.
        counts = self._family().n_fit_scalars(self.getOrDefault("n_components"), self.n_features)
        return int(sum(counts.values()))

    def aic(self, dataset: Any) -> float:
        """Akaike information criterion ``-2 logL + 2 p``, as hmmlearn's ``aic``."""
        logprob, _ = self._score_stats(dataset)
        return -2 * logprob + 2 * self._n_free_parameters()

    def bic(self, dataset: Any) -> float:
        """Bayesian information criterion ``-2 logL + p log(n_frames)``, as hmmlearn's ``bic``."""
        logprob, n_frames = self._score_stats(dataset)
        return -2 * logprob + self._n_free_parameters() * np.log(n_frames)

    def sample(
        self,
        n_sequences: int = 1,
        length: int = 100,
        random_state: int | None = None,
        *,
        spark: Any = None,
    ) -> Any:
        """Generate sequences from the model, in parallel on Spark.

        Parameters
        ----------
        n_sequences : int
            Number of sequences.
        length : int
            Frames per sequence.
        random_state : int, optional
            Seed; sequence ``i`` is drawn from a generator seeded with
            ``(random_state, i)``, so the result does not depend on partitioning.
        spark : SparkSession, optional
            Defaults to the active session.

        Returns
        -------
        pyspark.sql.DataFrame
            Columns ``seq_id`` (long), ``sequence_col`` (frames, in the type
            the model reads) and ``states_col`` (array<int>).
        """
        self._check_fitted()
        if int(n_sequences) < 1 or int(length) < 1:
            raise ValueError(f"n_sequences and length must be >= 1; got {n_sequences}, {length}")
        self._family().check_can_sample()
        from pyspark.sql.types import (
            ArrayType,
            DoubleType,
            IntegerType,
            LongType,
            StructField,
            StructType,
        )

        from sparklift.session import get_spark

        spark = spark or get_spark()
        seed = (
            int(np.random.default_rng().integers(2**31 - 1))
            if random_state is None
            else int(random_state)
        )
        nested = self._family_name != "categorical" and (self.n_features or 1) > 1
        # Symbols and counts are integers (hmmlearn samples them as such).
        integral = self._family_name in ("categorical", "poisson", "multinomial")
        value_type = LongType() if integral else DoubleType()
        frame_type = ArrayType(value_type) if nested else value_type
        col, states_col = self.getOrDefault("sequence_col"), self.getOrDefault("states_col")
        schema = StructType(
            [
                StructField("seq_id", LongType()),
                StructField(col, ArrayType(frame_type)),
                StructField(states_col, ArrayType(IntegerType())),
            ]
        )
        fn = em.sample_partition_fn(
            self._family(),
            self._fitted,
            length=int(length),
            seed=seed,
            nested=nested,
            integral=integral,
            names=["seq_id", col, states_col],
        )
        ids = spark.range(int(n_sequences)).withColumnRenamed("id", "seq_id")
        return map_partitions(ids, fn, schema)

    # -- interop ---------------------------------------------------------------------

    def to_hmmlearn(self, **kwargs: Any) -> Any:
        """An hmmlearn model with the same parameters and settings (needs hmmlearn).

        Its ``init_params`` is ``""`` so that a later hmmlearn ``fit`` starts
        from these parameters; keyword arguments override any setting. Its
        ``implementation`` is ``"log"`` whichever sparklift used: sparklift's
        ``"scaling"`` gives hmmlearn's ``"log"`` results and never underflows,
        where hmmlearn's own ``"scaling"`` can fail on long sequences. A
        ``MultinomialHMM`` fitted without one common count total has
        ``n_trials=None``, which hmmlearn refuses to score with: pass
        ``n_trials=`` (hmmlearn's own fit stores the training frames' totals
        there; its likelihood uses each frame's own total either way).
        """
        from sparklift.hmm import interop

        self._check_fitted()
        get = self.getOrDefault
        settings = {
            "algorithm": get("algorithm"),
            "implementation": "log",
            "n_iter": get("n_iter"),
            "tol": get("tol"),
            "startprob_prior": _prior_value(get("startprob_prior")),
            "transmat_prior": _prior_value(get("transmat_prior")),
            "verbose": get("verbose"),
        }
        if self.isSet("random_state"):
            settings["random_state"] = get("random_state")
        settings.update(kwargs)
        # interop.to_hmmlearn's third positional argument is named ``params``,
        # so hmmlearn's ``params`` setting is assigned on the result instead.
        update_params = settings.pop("params", get("update_params"))
        obj = interop.to_hmmlearn(
            self._family_name,
            self._family_hyper_for_export(),
            self._fitted,
            get("n_components"),
            **settings,
        )
        obj.params = update_params
        return obj

    def _family_hyper_for_export(self) -> dict[str, Any]:
        hyper = dict(self._hyper)
        if self.n_features is not None:
            hyper["n_features"] = self.n_features
        return hyper

    @classmethod
    def from_hmmlearn(cls, obj: Any) -> _HMMModel:
        """A model with the parameters and settings of a fitted hmmlearn model."""
        from sparklift.hmm import interop

        name, hyper, params, n_components = interop.from_hmmlearn(obj)
        target = cls if getattr(cls, "_family_name", None) else _MODEL_BY_FAMILY[name]
        if target._family_name != name:
            raise InvalidInputError(
                f"{type(obj).__name__} is a {name} HMM; use {_MODEL_BY_FAMILY[name].__name__}.from_hmmlearn."
            )
        model = target()
        settings = {**interop.hmmlearn_settings(obj), **hyper}
        if "params" in settings:
            settings["update_params"] = settings.pop("params")
        for key, value in settings.items():
            if value is None or not model.hasParam(key):
                continue
            try:
                model._set(**{key: value})
            except (TypeError, ValueError):  # e.g. a RandomState instance as random_state
                continue
        # From the parameters' shapes, as hmmlearn does for a model whose
        # parameters were set by hand (its n_features is then still None).
        n_features = hyper.pop("n_features")
        declared = getattr(obj, "n_features", None)
        if declared is not None and int(declared) != n_features:
            raise InvalidInputError(
                f"{type(obj).__name__} has inconsistent parameters: n_features={declared}, but "
                f"its emission parameters are for {n_features} features."
            )
        try:
            model._set_fitted(
                name, hyper, params, n_components, n_features, getattr(obj, "monitor_", None)
            )
        except ValueError as exc:
            raise InvalidInputError(
                f"{type(obj).__name__} has inconsistent parameters: {exc}"
            ) from None
        return model

    # -- persistence -----------------------------------------------------------------

    def _save_to(self, path: str, overwrite: bool) -> None:
        self._check_fitted()
        monitor = self._monitor
        metadata = {
            "class": _qualname(type(self)),
            "uid": self.uid,
            "kind": "model",
            "family": self._family_name,
            "n_components": self.getOrDefault("n_components"),
            "n_features": self.n_features,
            "hyper": persistence.to_json_value(self._hyper),
            "params": _params_json(self),
            "monitor": None
            if monitor is None
            else {
                "tol": monitor.tol,
                "n_iter": monitor.n_iter,
                "verbose": bool(monitor.verbose),
                "history": [float(x) for x in monitor.history],
                "iter": int(monitor.iter),
            },
        }
        persistence.save_model(path, metadata, self._fitted, overwrite=overwrite)

    @classmethod
    def _load_from(cls, path: str) -> _HMMModel:
        document, arrays = persistence.load_model(path)
        target = cls
        if not getattr(cls, "_family_name", None):
            target = _MODEL_BY_FAMILY.get(str(document.get("family")), cls)
        _check_class(document, target, path)
        try:
            model = target()
            if document.get("uid"):
                model._resetUid(document["uid"])  # as pyspark's own readers
            model._set(**_known_params(model, document.get("params", {}), path))
            hyper = _hyper_from_json(document.get("hyper", {}))
            saved = document.get("monitor")
            monitor = None
            if saved is not None:
                monitor = core.ConvergenceMonitor(saved["tol"], saved["n_iter"], saved["verbose"])
                em._restore_monitor(monitor, saved["history"])
                monitor.iter = int(saved.get("iter", len(saved["history"])))
            model._set_fitted(
                document["family"],
                hyper,
                arrays,
                int(document["n_components"]),
                document.get("n_features"),
                monitor,
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ModelFormatError):
                raise
            raise ModelFormatError(f"Model directory {path} is damaged: {exc!r}") from None
        return model


# --------------------------------------------------------------------------- public classes


def _make_doc(title: str, extra: str) -> str:
    return f"""{title}

    A pyspark.ml Estimator: ``fit(df)`` runs distributed EM over the sequence
    column and returns the matching Model. Construct with keywords only; every
    hmmlearn hyperparameter keeps its name and default (hmmlearn's ``params``
    is the Param ``update_params``; ``params=`` is accepted as an alias),
    except ``implementation``, which defaults to "scaling" (see below).

    Parameters
    ----------
    n_components : int, default 1
        Number of hidden states.
    n_iter : int, default 10
        Maximum EM iterations.
    tol : float, default 1e-2
        Stop when the log-likelihood gain is below ``tol`` (``-inf``: run all
        ``n_iter`` iterations).
    params, init_params : str
        Letters of the parameters updated by EM / initialised before it.
    random_state : int, optional
        Seed of the initialisation.
    startprob_prior, transmat_prior : float or array, default 1.0
        Dirichlet priors.
{extra}
    algorithm : {{"viterbi", "map"}}, default "viterbi"
        Decoder used by ``transform``.
    implementation : {{"log", "scaling"}}, default "scaling"
        Forward-backward implementation. Unlike hmmlearn (default "log"),
        sparklift defaults to "scaling": it rescales each frame and falls back
        to log space per sequence on underflow, so it never underflows; results
        equal "log" to ~1e-12 and it is 3-5x faster.
    n_init : int, default 1
        EM restarts from different initialisations; the best log-likelihood wins.
    init_model : sparklift or hmmlearn model, optional
        Parameters whose letters are not in ``init_params`` are taken from it;
        those whose letters are in it are re-initialised, with hmmlearn's
        "will be overwritten" warning. Pass ``init_params=""`` to start from
        every parameter of ``init_model``. Its parameters are checked against
        ``n_components`` and the data's ``n_features`` before fitting.
    checkpoint_dir : str, optional
        Parameters are saved there after every iteration; a fit started again
        with the same folder resumes and reaches the same result. Resuming with
        an ``n_iter`` below the iterations already saved raises ``ValueError``
        (only the latest parameters are kept, so it cannot stop earlier).
    sequence_col : str, default "sequence"
        Input column, one row per sequence.
    loglik_col, states_col, posteriors_col : str
        Output columns of ``transform`` (posteriors only when set).
    verbose : bool, default False
        hmmlearn's per-iteration report (written above the progress bar).
    progress : bool, optional
        Progress bar; by default only on a terminal or when verbose.
    init_sample_size : int, default 200000
        Frames sampled to the driver for initialisation.
    num_partitions : int, optional
        Partitions of the cached training data (default: the session's parallelism).
    """


class CategoricalHMMModel(_HMMModel, _EmissionprobPriorParam):
    """A fitted categorical HMM: ``startprob_``, ``transmat_``, ``emissionprob_``, ``n_features``."""

    _family_name = "categorical"
    _estimator_defaults: ClassVar[dict[str, Any]] = {
        "update_params": "ste",
        "init_params": "ste",
        "emissionprob_prior": 1.0,
    }


class CategoricalHMM(_HMMEstimator, _NFeaturesParam, _EmissionprobPriorParam):
    __doc__ = _make_doc(
        "Hidden Markov model with categorical (discrete symbol) emissions.",
        "    emissionprob_prior : float or array, default 1.0\n        Dirichlet prior of emissionprob_.\n"
        "    n_features : int, optional\n        Number of symbols; inferred when unset.",
    )
    _family_name = "categorical"
    _model_cls = CategoricalHMMModel
    _defaults: ClassVar[dict[str, Any]] = CategoricalHMMModel._estimator_defaults


_GAUSSIAN_DEFAULTS = {
    "update_params": "stmc",
    "init_params": "stmc",
    "covariance_type": "diag",
    "min_covar": 1e-3,
    "means_prior": 0.0,
    "means_weight": 0.0,
    "covars_prior": 1e-2,
    "covars_weight": 1.0,
}


class GaussianHMMModel(_HMMModel, _CovarianceParams):
    """A fitted Gaussian HMM: ``means_``, ``covars_`` (hmmlearn's shape for the covariance type)."""

    _family_name = "gaussian"
    _estimator_defaults: ClassVar[dict[str, Any]] = _GAUSSIAN_DEFAULTS


class GaussianHMM(_HMMEstimator, _CovarianceParams):
    __doc__ = _make_doc(
        "Hidden Markov model with Gaussian emissions.",
        "    covariance_type : {'spherical', 'diag', 'full', 'tied'}, default 'diag'\n"
        "    min_covar : float, default 1e-3\n"
        "    means_prior, means_weight, covars_prior, covars_weight : float or array\n"
        "        hmmlearn's priors.",
    )
    _family_name = "gaussian"
    _model_cls = GaussianHMMModel
    _defaults: ClassVar[dict[str, Any]] = _GAUSSIAN_DEFAULTS


class PoissonHMMModel(_HMMModel, _PoissonParams):
    """A fitted Poisson HMM: ``lambdas_``."""

    _family_name = "poisson"
    _estimator_defaults: ClassVar[dict[str, Any]] = {
        "update_params": "stl",
        "init_params": "stl",
        "lambdas_prior": 0.0,
        "lambdas_weight": 0.0,
    }


class PoissonHMM(_HMMEstimator, _PoissonParams):
    __doc__ = _make_doc(
        "Hidden Markov model with Poisson emissions (a vector of counts per frame).",
        "    lambdas_prior, lambdas_weight : float or array, default 0.0\n        Gamma prior of lambdas_.",
    )
    _family_name = "poisson"
    _model_cls = PoissonHMMModel
    _defaults: ClassVar[dict[str, Any]] = PoissonHMMModel._estimator_defaults


class MultinomialHMMModel(_HMMModel, _NTrialsParam):
    """A fitted multinomial HMM: ``emissionprob_``."""

    _family_name = "multinomial"
    _estimator_defaults: ClassVar[dict[str, Any]] = {"update_params": "ste", "init_params": "ste"}


class MultinomialHMM(_HMMEstimator, _NTrialsParam):
    __doc__ = _make_doc(
        "Hidden Markov model with multinomial emissions (counts per frame summing to n_trials).",
        "    n_trials : int, optional\n        Trials per frame: every frame's counts must add up to it. Unset,\n"
        "        each frame's own total is its number of trials (as hmmlearn); the\n"
        "        model keeps the total when all frames share one, which sampling needs.",
    )
    _family_name = "multinomial"
    _model_cls = MultinomialHMMModel
    _defaults: ClassVar[dict[str, Any]] = MultinomialHMMModel._estimator_defaults


_GMM_DEFAULTS = {
    "update_params": "stmcw",
    "init_params": "stmcw",
    "covariance_type": "diag",
    "min_covar": 1e-3,
    "n_mix": 1,
    "weights_prior": 1.0,
    "means_prior": 0.0,
    "means_weight": 0.0,
}


class GMMHMMModel(_HMMModel, _CovarianceParams, _MixtureParams):
    """A fitted GMM-HMM: ``weights_``, ``means_``, ``covars_``."""

    _family_name = "gmm"
    _estimator_defaults: ClassVar[dict[str, Any]] = _GMM_DEFAULTS


class GMMHMM(_HMMEstimator, _CovarianceParams, _MixtureParams):
    __doc__ = _make_doc(
        "Hidden Markov model with Gaussian mixture emissions.",
        "    n_mix : int, default 1\n        Mixture components per state.\n"
        "    covariance_type, min_covar, weights_prior, means_prior, means_weight,\n"
        "    covars_prior, covars_weight\n        As hmmlearn's GMMHMM.",
    )
    _family_name = "gmm"
    _model_cls = GMMHMMModel
    _defaults: ClassVar[dict[str, Any]] = _GMM_DEFAULTS


_MODEL_BY_FAMILY: dict[str, type[_HMMModel]] = {
    cls._family_name: cls
    for cls in (
        CategoricalHMMModel,
        GaussianHMMModel,
        PoissonHMMModel,
        MultinomialHMMModel,
        GMMHMMModel,
    )
}
ESTIMATORS: dict[str, type[_HMMEstimator]] = {
    cls._family_name: cls
    for cls in (CategoricalHMM, GaussianHMM, PoissonHMM, MultinomialHMM, GMMHMM)
}
