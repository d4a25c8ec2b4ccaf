"""scikit-learn search on Spark, and time-series cross-validation for Spark ML.

* :class:`GridSearchCV`, :class:`RandomizedSearchCV`, :class:`HalvingGridSearchCV`,
  :class:`HalvingRandomSearchCV`: scikit-learn's searches with every
  (candidate, split) fit run as a Spark task and the data pickled once per
  round, not once per fit (``spark_transfer_`` measures what travels).
* :class:`TimeSeriesCrossValidator`: a pyspark.ml Estimator like
  ``CrossValidator`` that splits on a time column and evaluates folds and
  parameter maps in parallel.

The names are imported lazily: Spark's Python workers import
``sparklift.tuning._executor`` for every search task, and should not pay for
importing pyspark.ml and scikit-learn's search machinery they never use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "GridSearchCV": "search",
    "HalvingGridSearchCV": "search",
    "HalvingRandomSearchCV": "search",
    "RandomizedSearchCV": "search",
    "SearchInWorkerWarning": "search",
    "SingleClassWarning": "timeseries",
    "SparkTransfer": "search",
    "TimeSeriesCrossValidator": "timeseries",
    "TimeSeriesCrossValidatorModel": "timeseries",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sparklift.tuning' has no attribute {name!r}")
    return getattr(importlib.import_module(f"sparklift.tuning.{module}"), name)


def __dir__() -> list[str]:
    return __all__
