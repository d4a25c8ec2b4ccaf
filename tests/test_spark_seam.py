"""sparklift._spark: the seam every distributed computation goes through."""

from __future__ import annotations

import gc
import os

import numpy as np
import pyarrow as pa
import pytest

from sparklift import _spark
from sparklift._spark import decode_error, is_connect, map_partitions, map_reduce
from sparklift.errors import InvalidInputError

pytestmark = pytest.mark.smoke


def _sum_and_count(batches):
    total, count = 0.0, 0
    for batch in batches:
        values = batch.column("x").to_numpy()
        total += float(values.sum())
        count += len(values)
    return np.array([total, count]) if count else None


def test_map_reduce_sums_partials_from_every_partition(spark):
    rng = np.random.default_rng(0)
    values = rng.normal(size=1000)
    df = spark.createDataFrame([(float(v),) for v in values], "x double").repartition(5)
    result = map_reduce(df, _sum_and_count)
    np.testing.assert_allclose(result, [values.sum(), 1000])


def test_map_reduce_custom_combine(spark):
    df = spark.range(0, 100, numPartitions=4).selectExpr("cast(id as double) x")

    def max_of(batches):
        values = [b.column("x").to_numpy() for b in batches]
        return float(np.concatenate(values).max()) if values else None

    assert map_reduce(df, max_of, combine=max) == 99.0


def test_map_reduce_empty_dataframe_returns_empty(spark):
    df = spark.range(0).selectExpr("cast(id as double) x")
    assert map_reduce(df, _sum_and_count, empty="nothing") == "nothing"


def test_partition_error_reaches_driver_as_itself(spark):
    df = spark.range(10, numPartitions=2).selectExpr("cast(id as double) x")

    def reject(batches):
        for _batch in batches:
            raise InvalidInputError("column 'x' has 3 bad rows, for example row 7")
        return None

    with pytest.raises(InvalidInputError, match=r"^column 'x' has 3 bad rows, for example row 7$"):
        map_reduce(df, reject)


def test_other_errors_are_not_disguised(spark):
    df = spark.range(4, numPartitions=1).selectExpr("cast(id as double) x")

    def crash(batches):
        list(batches)
        raise ZeroDivisionError("boom")

    with pytest.raises(Exception, match="boom") as info:
        map_reduce(df, crash)
    assert not isinstance(info.value, InvalidInputError)


def test_map_partitions_declared_schema(spark):
    df = spark.range(0, 50, numPartitions=3).selectExpr("id", "cast(id as double) x")

    def double_it(batches):
        for batch in batches:
            x = batch.column("x").to_numpy()
            yield pa.RecordBatch.from_arrays(
                [batch.column("id"), pa.array(x * 2.0)], names=["id", "y"]
            )

    out = map_partitions(df, double_it, "id long, y double")
    rows = sorted(out.collect())
    assert [r.y for r in rows] == [2.0 * i for i in range(50)]


def _frozen_in_worker(batches):
    for _ in batches:
        pass
    return np.array([gc.get_freeze_count()])


def test_workers_freeze_long_lived_objects(spark, monkeypatch):
    # In the driver: the first call freezes, a second one (no new modules) does not.
    monkeypatch.setattr(_spark, "_frozen_at_modules", 0)
    calls = []
    monkeypatch.setattr(_spark.gc, "freeze", lambda: calls.append(1))
    _spark.task_done()
    _spark.task_done()
    assert calls == [1]
    # In the workers: after one sparklift task, a reused worker's later
    # collections skip its modules and classes (pyspark's daemon runs a full
    # gc.collect() after every task; pyspark itself never freezes).
    df = spark.range(0, 40, numPartitions=4).selectExpr("cast(id as double) x")
    map_reduce(df, _sum_and_count)
    (frozen,) = map_reduce(df, _frozen_in_worker, combine=np.maximum)
    assert frozen > 10_000  # the modules, classes and functions of pyspark, numpy, pyarrow


def test_task_failing_once_is_retried(spark, tmp_path):
    """A task that fails once is retried by Spark and the result is unchanged."""
    marker = str(tmp_path / "failed-once")

    def flaky(batches):
        if not os.path.exists(marker):
            with open(marker, "w") as fh:
                fh.write("x")
            raise RuntimeError("injected failure")
        return _sum_and_count(batches)

    df = spark.range(0, 100, numPartitions=1).selectExpr("cast(id as double) x")
    result = map_reduce(df, flaky)
    np.testing.assert_allclose(result, [4950.0, 100])
    assert os.path.exists(marker)


def test_decode_error_roundtrip():
    msg = "Traceback...\nRuntimeError: [sparklift-error:InvalidInputError]bad row 3[/sparklift-error]\n at ..."
    err = decode_error(msg)
    assert isinstance(err, InvalidInputError)
    assert str(err) == "bad row 3"
    assert decode_error("plain failure") is None


def test_is_connect_matches_mode(spark, spark_mode):
    assert is_connect(spark) == (spark_mode == "connect")


def _plus_one(items):
    for values in items:
        yield pa.array(values.to_numpy(zero_copy_only=False) + 1.0)


def _reject_arrays(items):
    for _values in items:
        raise InvalidInputError("column 'x': 1 bad row, for example x=3")
        yield  # pragma: no cover


def test_map_columns_adds_one_column(spark):
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType

    from sparklift._spark import map_columns

    df = spark.range(0, 20, numPartitions=2).selectExpr("id", "cast(id as double) x", "'k' tag")
    out = map_columns(df, "y", _plus_one, [F.col("x")], DoubleType())
    assert out.columns == ["id", "x", "tag", "y"]
    assert sorted(r.y for r in out.collect()) == [i + 1.0 for i in range(20)]
    bad = map_columns(df, "y", _reject_arrays, [F.col("x")], DoubleType())
    from sparklift._spark import translate_errors

    with pytest.raises(InvalidInputError, match="1 bad row"), translate_errors():
        bad.collect()
