"""scikit-learn search on Spark, and time-series cross-validation for Spark ML.

* :class:`GridSearchCV`, :class:`RandomizedSearchCV`, :class:`HalvingGridSearchCV`,
  :class:`HalvingRandomSearchCV`: scikit-learn's searches with every
  (candidate, split) fit run as a Spark task and the data shipped once.
* :class:`TimeSeriesCrossValidator`: a pyspark.ml Estimator like
  ``CrossValidator`` that splits on a time column and evaluates folds and
  parameter maps in parallel.
"""

from sparklift.tuning.search import (
    GridSearchCV,
    HalvingGridSearchCV,
    HalvingRandomSearchCV,
    RandomizedSearchCV,
    SparkTransfer,
)
from sparklift.tuning.timeseries import TimeSeriesCrossValidator, TimeSeriesCrossValidatorModel

__all__ = [
    "GridSearchCV",
    "HalvingGridSearchCV",
    "HalvingRandomSearchCV",
    "RandomizedSearchCV",
    "SparkTransfer",
    "TimeSeriesCrossValidator",
    "TimeSeriesCrossValidatorModel",
]
