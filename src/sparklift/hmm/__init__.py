"""Hidden Markov models trained by distributed EM on Spark, with hmmlearn's results.

>>> from sparklift.hmm import CategoricalHMM
>>> est = CategoricalHMM(n_components=8, n_iter=100, tol=1e-2, random_state=0,
...                      sequence_col="events")                     # doctest: +SKIP
>>> model = est.fit(df)                                              # doctest: +SKIP
>>> model.transmat_, model.emissionprob_, model.monitor_.history     # doctest: +SKIP
>>> model.transform(df)            # adds log_likelihood and states  # doctest: +SKIP

The estimator classes are imported on first use, so that the numeric modules
(:mod:`sparklift.hmm.kernels`, :mod:`sparklift.hmm.emissions`) load without
pyspark.ml, for example inside Spark's Python workers.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "GMMHMM",
    "CategoricalHMM",
    "CategoricalHMMModel",
    "GMMHMMModel",
    "GaussianHMM",
    "GaussianHMMModel",
    "MultinomialHMM",
    "MultinomialHMMModel",
    "PoissonHMM",
    "PoissonHMMModel",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from sparklift.hmm import estimators

        return getattr(estimators, name)
    raise AttributeError(f"module 'sparklift.hmm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
