"""sparklift: single-machine machine learning lifted onto Apache Spark.

hmmlearn-style hidden Markov models trained by distributed EM, scikit-learn
search and scoring fanned out over Spark, one model per group; DataFrames in
and out, pyspark.ml Pipelines, save/load, on local Spark, a cluster or
Spark Connect.
"""

from __future__ import annotations

__version__ = "0.1.0"

from sparklift._spark import translate_errors
from sparklift.session import get_spark

__all__ = ["__version__", "get_spark", "translate_errors"]
