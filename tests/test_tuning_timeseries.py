"""TimeSeriesCrossValidator against a plain sequential loop over the same folds."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import sys
import time

import numpy as np
import pytest

from sparklift.errors import (
    InvalidColumnTypeError,
    InvalidInputError,
    ModelFormatError,
    ResourceLimitError,
)
from sparklift.tuning import (
    SingleClassWarning,
    TimeSeriesCrossValidator,
    TimeSeriesCrossValidatorModel,
)
from sparklift.tuning.timeseries import build_folds

DAY0 = dt.date(2024, 1, 1)


def _panel(spark, n_days=24, per_day=6, seed=0, classes=False, drop_series_days=0):
    """Daily rows for ``per_day`` series: label = 2 x1 - x2 + trend + noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(n_days):
        for s in range(per_day):
            if s == 0 and d < drop_series_days:  # series 0 starts late (ragged panel)
                continue
            x1, x2 = rng.normal(size=2)
            y = 2 * x1 - x2 + 0.05 * d + rng.normal(scale=0.3)
            label = float(y > 0) if classes else float(y)
            rows.append((DAY0 + dt.timedelta(days=d), f"s{s}", float(x1), float(x2), label))
    df = spark.createDataFrame(rows, "day date, series string, x1 double, x2 double, label double")
    from pyspark.ml.feature import VectorAssembler

    return VectorAssembler(inputCols=["x1", "x2"], outputCol="features").transform(df)


def _lr_grid():
    from pyspark.ml.regression import LinearRegression
    from pyspark.ml.tuning import ParamGridBuilder

    lr = LinearRegression(maxIter=20)
    return lr, ParamGridBuilder().addGrid(lr.regParam, [0.0, 0.5]).build()


def _sequential_metrics(df, est, grid, evaluator, windows):
    """The reference: fit and evaluate every (fold, map) in turn, windows in days."""
    from pyspark.sql import functions as F

    out = []
    for (a, b), (c, d) in windows:
        train = df.where(F.col("day").between(a, b))
        valid = df.where(F.col("day").between(c, d))
        out.append([evaluator.evaluate(est.fit(train, pm).transform(valid)) for pm in grid])
    return np.array(out)


def day(i):
    return DAY0 + dt.timedelta(days=i)


def _daily_cv(est, grid, evaluator, **params):
    """A validator on the panel's ``day``: 4-day horizons after a 1-day gap, unless told."""
    params = {"timeCol": "day", "horizon": 4, "gap": 1, **params}
    return TimeSeriesCrossValidator(
        estimator=est, estimatorParamMaps=grid, evaluator=evaluator, **params
    )


# --- fold arithmetic, without Spark -----------------------------------------


def test_build_folds_expanding_with_gap():
    folds = build_folds(
        20, num_folds=3, horizon=4, gap=2, window_type="expanding", train_window=None
    )
    assert [(f.train, f.validation) for f in folds] == [
        ((0, 5), (8, 11)),
        ((0, 9), (12, 15)),
        ((0, 13), (16, 19)),
    ]


def test_build_folds_sliding_and_cutoffs():
    folds = build_folds(
        20,
        num_folds=0,
        horizon=3,
        gap=1,
        window_type="sliding",
        train_window=5,
        cutoff_indices=[2, 9],
    )
    assert [(f.train, f.validation) for f in folds] == [((0, 2), (4, 6)), ((5, 9), (11, 13))]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_folds": 6, "horizon": 4, "gap": 0}, "fold 0: the training window is empty"),
        ({"num_folds": 1, "horizon": 3, "gap": 0, "cutoff_indices": [18]}, "runs past the last"),
    ],
)
def test_build_folds_refuses_empty_or_overrunning_windows(kwargs, message):
    with pytest.raises(InvalidInputError, match=message):
        build_folds(20, window_type="expanding", train_window=None, **kwargs)


# --- Spark ------------------------------------------------------------------


def test_setters_match_the_constructor():
    values = {
        "timeCol": "t",
        "numFolds": 5,
        "cutoffs": ["2024-01-10"],
        "horizon": 3,
        "gap": 2,
        "windowType": "sliding",
        "trainWindow": 7,
        "seriesIdCols": ["store"],
        "parallelism": 4,
        "collectSubModels": True,
        "seed": 11,
    }
    built = TimeSeriesCrossValidator(**values)
    chained = TimeSeriesCrossValidator()
    for name, value in values.items():
        returned = getattr(chained, "set" + name[0].upper() + name[1:])(value)
        assert returned is chained
    for name, value in values.items():
        assert chained.getOrDefault(name) == built.getOrDefault(name) == value
    assert chained.setSeriesIdCols(None).getSeriesIdCols() == []


@pytest.mark.smoke  # fidelity in every mode, Connect included
def test_metrics_equal_a_sequential_loop(spark):
    from pyspark.ml.evaluation import RegressionEvaluator

    df = _panel(spark).cache()
    lr, grid = _lr_grid()
    evaluator = RegressionEvaluator(metricName="rmse")
    model = _daily_cv(lr, grid, evaluator, numFolds=3, parallelism=4).fit(df)
    # 24 days: validation windows 12-15, 16-19, 20-23; training ends one day before.
    windows = [
        ((day(0), day(10)), (day(12), day(15))),
        ((day(0), day(14)), (day(16), day(19))),
        ((day(0), day(18)), (day(20), day(23))),
    ]
    expected = _sequential_metrics(df, lr, grid, evaluator, windows)
    np.testing.assert_allclose(model.foldMetrics, expected, rtol=1e-9)
    np.testing.assert_allclose(model.avgMetrics, expected.mean(axis=0), rtol=1e-9)
    assert model.foldBoundaries[0] == {
        "trainStart": "2024-01-01",
        "trainEnd": "2024-01-11",
        "validationStart": "2024-01-13",
        "validationEnd": "2024-01-16",
    }
    best = int(np.argmin(expected.mean(axis=0)))
    ref_best = lr.fit(df, grid[best])
    np.testing.assert_allclose(model.bestModel.coefficients, ref_best.coefficients, rtol=1e-9)


SLIDING = {"numFolds": 3, "windowType": "sliding", "trainWindow": 8}
CUT_EARLY = {"cutoffs": [day(10), day(14), day(18)], "horizon": 3}  # day 23 unused


@pytest.mark.parametrize(
    ("window", "refit_from_cache"),
    [
        ({"numFolds": 3}, True),
        # CI time: `make test-all` runs these two.
        pytest.param(SLIDING, False, marks=pytest.mark.slow),
        pytest.param(CUT_EARLY, False, marks=pytest.mark.slow),
    ],
    ids=["expanding", "sliding", "cutoffs"],
)
def test_folds_keep_the_source_layout_and_the_refit_uses_every_row(spark, window, refit_from_cache):
    # The fits see the DataFrame's own partitions (a random forest's bootstrap
    # depends on them), and the best map is refitted on every row: from the
    # cache when the folds span all the data, else from the source.
    from pyspark.ml.evaluation import RegressionEvaluator
    from pyspark.ml.regression import LinearRegression
    from pyspark.ml.tuning import ParamGridBuilder
    from pyspark.sql import functions as F

    seen = []

    class Recording(LinearRegression):
        def _fit(self, dataset):
            parts = dataset.select(F.spark_partition_id().alias("p")).distinct().count()
            seen.append((parts, dataset.count(), dataset.storageLevel.useMemory))
            return super()._fit(dataset)

    df = _panel(spark).repartition(3)  # 144 rows, every day in each partition, not cached
    lr = Recording(maxIter=20)
    grid = ParamGridBuilder().addGrid(lr.regParam, [0.0, 0.5]).build()
    evaluator = RegressionEvaluator(metricName="rmse")
    model = _daily_cv(lr, grid, evaluator, parallelism=2, **window).fit(df)
    *folds, refit = seen
    assert len(folds) == 6
    assert all(parts == 3 for parts, _, _ in folds)
    assert refit == (3, 144, refit_from_cache)
    assert not df.storageLevel.useMemory  # the validator's cache is gone
    if window is CUT_EARLY:
        windows = [((day(0), day(e)), (day(e + 2), day(e + 4))) for e in (10, 14, 18)]
    else:
        start = (lambda e: day(e - 7)) if window is SLIDING else (lambda e: day(0))
        windows = [((start(e), day(e)), (day(e + 2), day(e + 5))) for e in (10, 14, 18)]
    plain = LinearRegression(maxIter=20)
    expected = _sequential_metrics(
        df, plain, [{plain.regParam: pm[lr.regParam]} for pm in grid], evaluator, windows
    )
    np.testing.assert_allclose(model.foldMetrics, expected, rtol=1e-9)
    best = grid[int(np.argmin(expected.mean(axis=0)))][lr.regParam]
    np.testing.assert_allclose(
        model.bestModel.coefficients, plain.fit(df, {plain.regParam: best}).coefficients, rtol=1e-9
    )


def test_the_users_own_cache_is_left_alone(spark):
    from pyspark.ml.evaluation import RegressionEvaluator

    df = _panel(spark).cache()
    df.count()
    lr, grid = _lr_grid()
    _daily_cv(lr, grid, RegressionEvaluator(), numFolds=2).fit(df)
    assert df.storageLevel.useMemory
    df.unpersist()


def test_in_parallel_the_longest_training_windows_go_first(spark, monkeypatch):
    # The cheapest pairs end a parallel search; in turn, folds in time order.
    from concurrent.futures import ThreadPoolExecutor

    from pyspark.ml.evaluation import RegressionEvaluator

    from sparklift.tuning import timeseries

    submitted = []

    class Recording(ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):
            submitted.append(args)  # (fold, map)
            return super().submit(fn, *args, **kwargs)

    monkeypatch.setattr(timeseries, "ThreadPoolExecutor", Recording)
    lr, grid = _lr_grid()
    for parallelism, folds in ((1, [0, 1, 2, 3]), (2, [3, 2, 1, 0])):
        submitted.clear()
        cv = _daily_cv(lr, grid, RegressionEvaluator(), numFolds=4, parallelism=parallelism)
        cv.fit(_panel(spark))
        assert submitted == [(f, j) for f in folds for j in range(len(grid))]


def test_sliding_window_with_cutoffs(spark):
    from pyspark.ml.evaluation import RegressionEvaluator

    df = _panel(spark, n_days=20)
    lr, grid = _lr_grid()
    evaluator = RegressionEvaluator(metricName="mae")
    cv = TimeSeriesCrossValidator(
        estimator=lr,
        estimatorParamMaps=grid,
        evaluator=evaluator,
        timeCol="day",
        cutoffs=["2024-01-08", day(13)],
        horizon=3,
        windowType="sliding",
        trainWindow=6,
        parallelism=2,
    )
    model = cv.fit(df)
    windows = [((day(2), day(7)), (day(8), day(10))), ((day(8), day(13)), (day(14), day(16)))]
    expected = _sequential_metrics(df, lr, grid, evaluator, windows)
    np.testing.assert_allclose(model.foldMetrics, expected, rtol=1e-9)


def test_time_and_series_columns_named_with_dots_and_spaces(spark):
    from pyspark.ml.evaluation import RegressionEvaluator

    df = _panel(spark, n_days=20)
    renamed = df.withColumnRenamed("day", "event.day").withColumnRenamed("series", "series id")
    lr, grid = _lr_grid()
    evaluator = RegressionEvaluator(metricName="mae")
    common = {"estimator": lr, "estimatorParamMaps": grid, "evaluator": evaluator}
    cv = TimeSeriesCrossValidator(timeCol="event.day", cutoffs=[day(13)], horizon=3, **common)
    model = cv.fit(renamed)
    expected = _sequential_metrics(
        df, lr, grid, evaluator, [((day(0), day(13)), (day(14), day(16)))]
    )
    np.testing.assert_allclose(model.foldMetrics, expected, rtol=1e-9)
    by_series = TimeSeriesCrossValidator(
        timeCol="event.day", seriesIdCols=["series id"], numFolds=1, horizon=3, **common
    ).fit(renamed)
    assert by_series.foldBoundaries == [
        {"trainPointsBack": [3, 19], "validationPointsBack": [0, 2]}
    ]


@pytest.mark.parametrize("bad", ["null", "NaN"])
def test_null_labels_in_the_folds_are_refused_with_a_count(spark, bad):
    from pyspark.ml.evaluation import RegressionEvaluator
    from pyspark.sql import functions as F

    df = _panel(spark, n_days=20)
    value = F.lit(None) if bad == "null" else F.lit(float("nan"))
    hit = (F.col("day") == F.lit(day(9))) & (F.col("series") == "s1")
    with_bad = df.withColumn("label", F.when(hit, value).otherwise(F.col("label")))
    lr, grid = _lr_grid()
    common = {"estimator": lr, "estimatorParamMaps": grid, "evaluator": RegressionEvaluator()}
    cv = TimeSeriesCrossValidator(timeCol="day", numFolds=2, horizon=3, **common)
    with pytest.raises(
        InvalidInputError,
        match=r"labelCol 'label' is null or NaN in 1 row \(the first at day = 2024-01-10\)",
    ):
        cv.fit(with_bad)
    # Even outside every fold (before a sliding window starts): the best map
    # is refitted on all the data. Refused before any fit.
    sliding = TimeSeriesCrossValidator(
        timeCol="day", numFolds=1, horizon=3, windowType="sliding", trainWindow=4, **common
    )
    with pytest.raises(InvalidInputError, match=r"in 1 row \(the first at day = 2024-01-10\)"):
        sliding.fit(with_bad)
    by_series = TimeSeriesCrossValidator(
        timeCol="day", seriesIdCols=["series"], numFolds=1, horizon=3, **common
    )
    with pytest.raises(InvalidInputError, match=r"in 1 row \(the first at day = 2024-01-10\)"):
        by_series.fit(with_bad)


def test_series_windows_are_counted_from_each_series_end(spark):
    from pyspark.ml.evaluation import RegressionEvaluator
    from pyspark.sql import functions as F

    # Series 0 starts on day 8 but, like the others, ends on day 15.
    df = _panel(spark, n_days=16, per_day=3, drop_series_days=8)
    ragged = df.where(F.col("series") != "s0").union(
        df.where(F.col("series") == "s0").withColumn("day", F.date_sub("day", 2))
    )  # ... and now ends two days before the others
    lr, grid = _lr_grid()
    evaluator = RegressionEvaluator()
    cv = TimeSeriesCrossValidator(
        estimator=lr,
        estimatorParamMaps=grid[:1],
        evaluator=evaluator,
        timeCol="day",
        seriesIdCols=["series"],
        numFolds=2,
        horizon=2,
    )
    model = cv.fit(ragged)
    assert model.foldBoundaries == [
        {"trainPointsBack": [4, 15], "validationPointsBack": [2, 3]},
        {"trainPointsBack": [2, 15], "validationPointsBack": [0, 1]},
    ]
    # The reference: each series' own last day, counted back by hand.
    ends = {
        r["series"]: r["end"]
        for r in ragged.groupBy("series").agg(F.max("day").alias("end")).collect()
    }

    def window(back_from, back_to):
        cond = None
        for s, end in ends.items():
            c = (F.col("series") == s) & F.col("day").between(
                end - dt.timedelta(days=back_to), end - dt.timedelta(days=back_from)
            )
            cond = c if cond is None else cond | c
        return ragged.where(cond)

    expected = []
    for tb, vb in [((4, 15), (2, 3)), ((2, 15), (0, 1))]:
        fitted = lr.fit(window(*tb), grid[0])
        expected.append(evaluator.evaluate(fitted.transform(window(*vb))))
    np.testing.assert_allclose(np.array(model.foldMetrics)[:, 0], expected, rtol=1e-9)
    # Refitted from the cache (every row, the index column dropped), as on the source.
    assert model.bestModel.numFeatures == 2
    np.testing.assert_allclose(
        model.bestModel.coefficients, lr.fit(ragged, grid[0]).coefficients, rtol=1e-9
    )


def test_null_times_are_refused_with_count_and_example(spark):
    from pyspark.ml.evaluation import RegressionEvaluator
    from pyspark.sql import functions as F

    df = _panel(spark, n_days=6, per_day=2)
    df = df.withColumn("day", F.when(F.col("x1") > 1.0, None).otherwise(F.col("day")))
    n_null = df.where(F.col("day").isNull()).count()
    assert n_null > 0
    lr, grid = _lr_grid()
    cv = TimeSeriesCrossValidator(
        estimator=lr, estimatorParamMaps=grid, evaluator=RegressionEvaluator(), timeCol="day"
    )
    with pytest.raises(
        InvalidInputError, match=rf"timeCol 'day' has {n_null} null rows?, for example"
    ):
        cv.fit(df)
    # A null series id would make one more series of its own: refused the same way.
    ids = _panel(spark, n_days=6, per_day=2)
    ids = ids.withColumn("series", F.when(F.col("x1") > 1.0, None).otherwise(F.col("series")))
    n_none = ids.where(F.col("series").isNull()).count()
    assert n_none > 0
    cv.setSeriesIdCols(["series"]).setNumFolds(1).setHorizon(1)
    with pytest.raises(
        InvalidInputError, match=rf"seriesIdCols \['series'\] are null in {n_none} rows?, for"
    ):
        cv.fit(ids)


@pytest.mark.smoke
def test_empty_time_window_is_a_clear_error(spark):
    from pyspark.ml.evaluation import RegressionEvaluator

    df = _panel(spark, n_days=5, per_day=2)
    lr, grid = _lr_grid()
    common = {
        "estimator": lr,
        "estimatorParamMaps": grid,
        "evaluator": RegressionEvaluator(),
        "timeCol": "day",
    }
    cv = TimeSeriesCrossValidator(**common, numFolds=4, horizon=2)
    with pytest.raises(InvalidInputError, match="fold 0: the training window is empty"):
        cv.fit(df)
    cv = cv.copy().setParams(numFolds=1, cutoffs=["2023-12-25"])
    with pytest.raises(InvalidInputError, match="before the first time"):
        cv.fit(df)
    # No rows at all: said as such, not as an empty window (with and without series).
    for series in ({}, {"seriesIdCols": ["series"]}):
        empty = TimeSeriesCrossValidator(**common, numFolds=2, **series)
        with pytest.raises(
            InvalidInputError, match=r"^The DataFrame has no rows \(timeCol 'day'\)"
        ):
            empty.fit(df.limit(0))


def _window_probe():
    """An Estimator and Evaluator that report which rows each fold's windows held.

    The metric is 1000 x training rows + the sum of ``hour`` over the
    validation rows, so a window that picked the wrong hour shows.
    """
    from pyspark.ml import Estimator, Model
    from pyspark.ml.evaluation import Evaluator
    from pyspark.sql import functions as F

    class Probe(Model):
        def __init__(self, train_rows=0):
            super().__init__()
            self.train_rows = train_rows

        def _transform(self, dataset):
            return dataset.withColumn("train_rows", F.lit(self.train_rows))

    class ProbeEstimator(Estimator):
        def _fit(self, dataset):
            return Probe(dataset.count())

    class ProbeEvaluator(Evaluator):
        def _evaluate(self, dataset):
            row = dataset.agg(F.first("train_rows"), F.sum("hour")).first()
            return 1000.0 * row[0] + row[1]

    return ProbeEstimator(), ProbeEvaluator()


@contextlib.contextmanager
def _driver_time_zone(name):
    """The driver's Python process in time zone ``name`` (Spark's session zone unchanged)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


def _probe_cv(**params):
    est, evaluator = _window_probe()
    return TimeSeriesCrossValidator(
        estimator=est, estimatorParamMaps=[{}], evaluator=evaluator, **params
    )


@pytest.mark.smoke
@pytest.mark.parametrize("time_type", ["timestamp", "timestamp_ntz"])
def test_timestamp_windows_are_exact_across_a_clock_change(spark, time_type):
    """Two instants that share a local wall-clock time stay two time points.

    On 2026-11-01 New York's clocks go back: 05:00 and 06:00 UTC are both
    01:00 there. With the driver's Python in that zone, a window bound that
    went through a Python datetime would land on the wrong instant. A
    timestamp without time zone has no such hour, and is checked too.
    """
    utc = dt.timezone.utc
    start = dt.datetime(2026, 11, 1, 0, tzinfo=utc if time_type == "timestamp" else None)
    rows = [(start + dt.timedelta(hours=h), h) for h in range(9) for _ in range(2)]
    df = spark.createDataFrame(rows, f"t {time_type}, hour int")
    cv = _probe_cv(timeCol="t", numFolds=4, horizon=1)
    with _driver_time_zone("America/New_York"):
        model = cv.fit(df)
    # Fold k validates on hour v = 5 + k (two rows) after training on hours 0..v-1.
    assert model.foldMetrics == [[1000.0 * 2 * v + 2 * v] for v in range(5, 9)]


def test_column_names_resolve_case_insensitively_as_in_spark(spark):
    from pyspark.ml.evaluation import RegressionEvaluator

    df = _panel(spark, n_days=12)
    lr, grid = _lr_grid()
    common = {"estimator": lr, "estimatorParamMaps": grid, "numFolds": 2, "horizon": 3}
    exact = TimeSeriesCrossValidator(
        evaluator=RegressionEvaluator(), timeCol="day", seriesIdCols=["series"], **common
    ).fit(df)
    cased = TimeSeriesCrossValidator(
        evaluator=RegressionEvaluator(),  # Spark ML checks its own columns case-sensitively
        timeCol="DAY",
        seriesIdCols=["Series"],
        **common,
    ).fit(df)
    assert cased.foldMetrics == exact.foldMetrics
    assert cased.foldBoundaries == exact.foldBoundaries
    assert cased.getOrDefault("timeCol") == "day"  # the column it used


def test_timestamp_cutoffs_are_exact_across_a_clock_change(spark):
    """Half-hourly data over New York's 2026-11-01 clock change, cut off at exact instants."""
    utc = dt.timezone.utc
    start = dt.datetime(2026, 11, 1, 4, tzinfo=utc)  # 00:00 in New York
    rows = [(start + dt.timedelta(minutes=30 * h), h) for h in range(8)]
    df = spark.createDataFrame(rows, "t timestamp, hour int")
    # 05:30 UTC (01:30 EDT) and 06:00 UTC (01:00 EST): out of order as local times.
    cutoffs = [start + dt.timedelta(minutes=30 * h) for h in (3, 4)]
    cv = _probe_cv(timeCol="t", cutoffs=cutoffs, horizon=1)
    with _driver_time_zone("America/New_York"):
        model = cv.fit(df)
    # Cut-off at point h: train on points 0..h (h + 1 rows), validate on point h + 1.
    assert model.foldMetrics == [[1000.0 * (h + 1) + (h + 1)] for h in (3, 4)]


@pytest.mark.smoke
def test_dates_before_the_gregorian_reform_are_exact(spark):
    """Dates Python would send through the old Julian/Gregorian calendar stay put."""
    days = [dt.date(999, 1, 1), dt.date(1582, 10, 10), dt.date(1582, 10, 20), dt.date(2000, 1, 1)]
    rows = [(d, h) for h, d in enumerate(days) for _ in range(h + 1)]
    df = spark.createDataFrame(rows, "t date, hour int")
    model = _probe_cv(timeCol="t", numFolds=2, horizon=1).fit(df)
    # Fold 0 validates on day 2 (3 rows) after days 0-1 (1 + 2 rows); fold 1 on day 3.
    assert model.foldMetrics == [[3000.0 + 3 * 2], [6000.0 + 4 * 3]]


def _invalid_utf8_times(spark):
    """Time points a, z, 0x80 (not UTF-8), é, 0xFF (not UTF-8); point h has h + 1 rows of hour h."""
    from pyspark.sql import functions as F

    hex_times = ["61", "7A", "80", "C3A9", "FF"]
    rows = [(t, h) for h, t in enumerate(hex_times) for _ in range(h + 1)]
    return spark.createDataFrame(rows, "hex string, hour int").select(
        F.unhex("hex").cast("string").alias("t"), "hour"
    )


@pytest.mark.smoke
def test_string_times_that_are_not_valid_utf8_keep_their_rows(spark):
    """A string time column holding bytes that are not UTF-8 (as Parquet binary read as
    string may): windows select on the exact bytes and in Spark's byte order.

    Python would see such a value with a replacement character, which neither
    matches the row in Spark nor sorts where Spark sorts it: 0x80 comes before
    'é' (0xC3 0xA9) in Spark, after it as Python text.
    """
    df = _invalid_utf8_times(spark)
    model = _probe_cv(timeCol="t", numFolds=3, horizon=1).fit(df)
    # Fold k validates on point v = 2 + k (v + 1 rows of hour v) after points 0..v-1.
    expected = [[1000.0 * sum(range(1, v + 1)) + (v + 1) * v] for v in (2, 3, 4)]
    assert model.foldMetrics == expected
    # A cut-off given as text is placed by its UTF-8 bytes, in the same order.
    # Cut-off at point c: train on points 0..c, validate on point c + 1 (0x80 follows "z").
    model = _probe_cv(timeCol="t", cutoffs=["z", "\u00e9"], horizon=1).fit(df)
    assert model.foldMetrics == [[1000.0 * 3 + 3 * 2], [1000.0 * 10 + 5 * 4]]


def test_string_cutoffs_can_name_bytes_that_are_not_utf8(spark):
    df = _invalid_utf8_times(spark)
    # Python's surrogateescape form names the byte 0x80 itself (bytes work too).
    for cutoff in ("\udc80", b"\x80"):
        model = _probe_cv(timeCol="t", cutoffs=[cutoff], horizon=1).fit(df)
        assert model.foldMetrics == [[1000.0 * 6 + 4 * 3]]
    with pytest.raises(InvalidInputError, match=r"cutoffs\[0\] = '\\ud800' holds a lone"):
        _probe_cv(timeCol="t", cutoffs=["\ud800"], horizon=1).fit(df)


def test_nan_times_are_refused_like_nulls(spark):
    rows = [(1.0, 0)] * 2 + [(2.0, 1)] * 3 + [(float("nan"), 2)] * 4
    df = spark.createDataFrame(rows, "t double, hour int")
    with pytest.raises(InvalidInputError, match=r"timeCol 't' has 4 null or NaN rows"):
        _probe_cv(timeCol="t", numFolds=1, horizon=1).fit(df)
    with pytest.raises(InvalidInputError, match=r"has 4 null or NaN rows"):
        _probe_cv(timeCol="t", numFolds=1, horizon=1, seriesIdCols=["hour"]).fit(df)


def test_single_class_fold_refused_only_where_the_metric_is_undefined(spark):
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.evaluation import (
        BinaryClassificationEvaluator,
        MulticlassClassificationEvaluator,
    )
    from pyspark.sql import functions as F

    df = _panel(spark, n_days=12, per_day=4, classes=True)
    # From day 9 on every label is 1: the last validation window has one class.
    df = df.withColumn("label", F.when(F.col("day") >= day(9), 1.0).otherwise(F.col("label")))
    lr = LogisticRegression(maxIter=5)
    grid = [{lr.regParam: 0.0}]
    common = {"estimator": lr, "estimatorParamMaps": grid, "timeCol": "day", "numFolds": 2}
    binary = TimeSeriesCrossValidator(
        evaluator=BinaryClassificationEvaluator(), horizon=3, **common
    )
    with pytest.raises(
        InvalidInputError, match=r"fold 1: the validation window .* has 1 class.*areaUnderROC"
    ):
        binary.fit(df)
    # Accuracy is defined on one class: computed as Spark's CrossValidator would, with
    # a warning naming the window.
    accuracy = MulticlassClassificationEvaluator(metricName="accuracy")
    cv = TimeSeriesCrossValidator(evaluator=accuracy, horizon=3, **common)
    with pytest.warns(SingleClassWarning, match=r"1 window\(s\) \(fold 1 validation\)") as seen:
        model = cv.fit(df)
    assert seen[0].filename == __file__  # attributed to the caller's fit()
    windows = [((day(0), day(5)), (day(6), day(8))), ((day(0), day(8)), (day(9), day(11)))]
    expected = _sequential_metrics(df, lr, grid, accuracy, windows)
    np.testing.assert_allclose(model.foldMetrics, expected, rtol=1e-12)


# Smoke with a date column; the decimal column's save differs only on the driver (CI time).
@pytest.mark.parametrize("time_col", [pytest.param("day", marks=pytest.mark.smoke), "decimal_day"])
def test_model_saves_and_loads(spark, tmp_path, time_col):
    from pyspark.ml.evaluation import RegressionEvaluator
    from pyspark.sql import functions as F

    df = _panel(spark, n_days=10, per_day=3)
    # A decimal time column's boundaries are Decimals, kept exact as strings
    # (the first is 0, which str() would write as "0E-8").
    df = df.withColumn("decimal_day", (F.datediff("day", F.lit(DAY0)) / 4).cast("decimal(12,8)"))
    lr, grid = _lr_grid()
    cv = TimeSeriesCrossValidator(
        estimator=lr,
        estimatorParamMaps=grid,
        evaluator=RegressionEvaluator(),
        timeCol=time_col,
        numFolds=2,
        horizon=2,
        parallelism=2,
    )
    model = cv.fit(df)
    path = str(tmp_path / "tscv")
    model.write().save(path)
    with pytest.raises(InvalidInputError, match=r"already exists; use \.write\(\)\.overwrite"):
        model.write().save(path)
    model.write().overwrite().save(path)
    loaded = TimeSeriesCrossValidatorModel.load(path)
    assert loaded.avgMetrics == model.avgMetrics
    assert loaded.foldMetrics == model.foldMetrics
    assert loaded.foldBoundaries == model.foldBoundaries
    assert loaded.getHorizon() == 2
    assert loaded.getTimeCol() == time_col
    if time_col == "decimal_day":  # exact strings, plain notation (never "5E-8")
        assert all(
            isinstance(v, str) and re.fullmatch(r"-?\d+\.\d{8}", v)
            for b in loaded.foldBoundaries
            for v in b.values()
        ), loaded.foldBoundaries
    np.testing.assert_allclose(loaded.bestModel.coefficients, model.bestModel.coefficients)

    # As CrossValidatorModel: the maps avgMetrics score, the estimator and the evaluator.
    def described(maps):
        return [sorted((p.parent, p.name, v) for p, v in m.items()) for m in maps]

    assert described(loaded.getEstimatorParamMaps()) == described(grid)
    assert type(loaded.getEstimator()) is type(lr)
    assert loaded.getEstimator().uid == lr.uid
    assert loaded.getEvaluator().getMetricName() == RegressionEvaluator().getMetricName()
    got = [r.prediction for r in loaded.transform(df).orderBy("day", "series").collect()]
    want = [r.prediction for r in model.transform(df).orderBy("day", "series").collect()]
    np.testing.assert_allclose(got, want)
    with pytest.raises(ModelFormatError, match="not a saved TimeSeriesCrossValidatorModel"):
        TimeSeriesCrossValidatorModel.load(str(tmp_path / "nothing-here"))


def test_unfitted_validator_saves_and_loads_alone_and_in_a_pipeline(spark, tmp_path):
    """As CrossValidator: Params, estimator, evaluator and maps come back, and fit the same."""
    from pyspark.ml import Pipeline
    from pyspark.ml.evaluation import RegressionEvaluator
    from pyspark.ml.feature import VectorAssembler

    from sparklift.errors import PathExistsError

    df = _panel(spark, n_days=12, per_day=3).drop("features")
    lr, grid = _lr_grid()
    assemble = VectorAssembler(inputCols=["x1", "x2"], outputCol="features")
    cv = TimeSeriesCrossValidator(
        estimator=Pipeline(stages=[assemble, lr]),
        estimatorParamMaps=grid,
        evaluator=RegressionEvaluator(metricName="mae"),
        timeCol="day",
        cutoffs=[DAY0 + dt.timedelta(days=5), "2024-01-08"],
        horizon=2,
        gap=1,
        windowType="sliding",
        trainWindow=4,
        parallelism=2,
    )
    path = str(tmp_path / "validator")
    cv.write().save(path)
    with pytest.raises(PathExistsError, match=r"already exists; use \.write\(\)\.overwrite"):
        cv.save(path)
    cv.write().overwrite().save(path)
    loaded = TimeSeriesCrossValidator.load(path)
    assert loaded.uid == cv.uid
    for name in ("timeCol", "horizon", "gap", "windowType", "trainWindow", "parallelism"):
        assert loaded.getOrDefault(name) == cv.getOrDefault(name), name
    assert loaded.getCutoffs() == cv.getCutoffs()  # a date stays a date, a string a string
    assert [type(c) for c in loaded.getCutoffs()] == [dt.date, str]
    assert not loaded.isSet("numFolds")  # defaults stay defaults
    assert loaded.getEvaluator().getMetricName() == "mae"
    inner = loaded.getEstimator().getStages()
    assert [type(st) for st in inner] == [type(assemble), type(lr)]
    assert [m[inner[1].regParam] for m in loaded.getEstimatorParamMaps()] == [0.0, 0.5]
    model, again = cv.fit(df), loaded.fit(df)
    assert again.foldBoundaries == model.foldBoundaries
    np.testing.assert_allclose(again.foldMetrics, model.foldMetrics, rtol=1e-12)
    model.save(str(tmp_path / "model"))
    with pytest.raises(ModelFormatError, match=r"Model', not a TimeSeriesCrossValidator\."):
        TimeSeriesCrossValidator.load(str(tmp_path / "model"))

    # Nothing to save without an estimator: refused, and nothing written.
    bare = str(tmp_path / "bare")
    with pytest.raises(
        InvalidInputError, match="cannot be saved: estimator, evaluator, estimatorParamMaps not set"
    ):
        TimeSeriesCrossValidator(timeCol="day").save(bare)
    assert not os.path.exists(bare)
    # A Pipeline stage without a writer is found before anything is written.
    from pyspark.ml import Transformer

    class Unwritable(Transformer):
        def _transform(self, dataset):
            return dataset

    odd = cv.copy().setEstimator(Pipeline(stages=[Unwritable(), assemble, lr]))
    with pytest.raises(
        InvalidInputError,
        match=r"its Pipeline stage Unwritable_\w+ "
        r"\(Unwritable\) has no writer",
    ):
        odd.save(bare)
    assert not os.path.exists(bare)

    Pipeline(stages=[cv]).save(str(tmp_path / "pipeline"))  # the validator unfitted inside
    stage = Pipeline.load(str(tmp_path / "pipeline")).getStages()[0]
    assert isinstance(stage, TimeSeriesCrossValidator)
    assert stage.getGap() == 1


# The naive datetime is the case that needs Python's zone; the others run with
# `make test-all` (CI time).
@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("decimal", marks=pytest.mark.slow),
        "naive datetime",
        pytest.param("aware datetime", marks=pytest.mark.slow),
    ],
)
def test_saved_validator_cuts_where_the_original_does(spark, tmp_path, kind):
    """Cut-offs load back as the values they were: Decimals, naive datetimes read
    in Python's zone as F.lit reads them (the session zone differs here)."""
    from decimal import Decimal

    from pyspark.ml import Pipeline
    from pyspark.ml.evaluation import RegressionEvaluator
    from pyspark.ml.feature import VectorAssembler
    from pyspark.sql import functions as F

    df = _panel(spark, n_days=12, per_day=2).drop("features")
    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    if kind == "decimal":
        df = df.withColumn("t", (F.datediff("day", F.lit(DAY0)) / 4).cast("decimal(10,2)"))
        cutoffs = [Decimal("1.25"), Decimal("2.00")]
    else:
        hours = F.datediff("day", F.lit(DAY0)) * 3600
        df = df.withColumn("t", F.timestamp_seconds(F.lit(int(start.timestamp())) + hours))
        naive = kind == "naive datetime"
        at = [start + dt.timedelta(hours=h) for h in (5, 8)]  # after hour 5 and hour 8
        cutoffs = [c.replace(tzinfo=None) for c in at] if naive else at
    lr, grid = _lr_grid()
    cv = TimeSeriesCrossValidator(
        estimator=Pipeline(
            stages=[VectorAssembler(inputCols=["x1", "x2"], outputCol="features"), lr]
        ),
        estimatorParamMaps=grid,
        evaluator=RegressionEvaluator(),
        timeCol="t",
        cutoffs=cutoffs,
        horizon=2,
    )
    path = str(tmp_path / "cv")
    with _session_time_zone(spark, "Asia/Kolkata"), _driver_time_zone("UTC"):
        cv.save(path)
        loaded = TimeSeriesCrossValidator.load(path)
        assert loaded.getCutoffs() == cutoffs
        want, got = cv.fit(df), loaded.fit(df)
    assert got.foldBoundaries == want.foldBoundaries
    assert got.foldMetrics == want.foldMetrics


def test_a_failing_fit_stops_the_search_with_its_error(spark):
    from pyspark.ml.evaluation import RegressionEvaluator

    df = _panel(spark, n_days=8, per_day=2)
    lr, grid = _lr_grid()
    bad = [{**grid[0], lr.featuresCol: "no_such_column"}]
    cv = TimeSeriesCrossValidator(
        estimator=lr,
        estimatorParamMaps=bad,
        evaluator=RegressionEvaluator(),
        timeCol="day",
        numFolds=2,
        horizon=2,
        parallelism=2,
    )
    with pytest.raises(Exception, match="no_such_column"):
        cv.fit(df)


# --- clear errors on the inputs -----------------------------------------------


@pytest.mark.parametrize(
    ("expression", "type_name"),
    [
        ("x1 > 0", "boolean"),
        ("array(x1, x2)", "array<double>"),
        ("named_struct('d', day)", "struct<d:date>"),
        (None, "vector"),  # the assembled features column
    ],
)
def test_time_column_of_another_type_is_refused(spark, expression, type_name):
    from pyspark.sql import functions as F

    df = _panel(spark, n_days=6, per_day=2)
    time_col = "features" if expression is None else "t"
    if expression is not None:
        df = df.withColumn("t", F.expr(expression))
    lr, grid = _lr_grid()
    cv = TimeSeriesCrossValidator(
        estimator=lr,
        estimatorParamMaps=grid,
        evaluator=_regression_evaluator(),
        timeCol=time_col,
        numFolds=2,
        horizon=1,
    )
    with pytest.raises(InvalidColumnTypeError, match=rf"timeCol '{time_col}' has type {type_name}"):
        cv.fit(df)


def _regression_evaluator():
    from pyspark.ml.evaluation import RegressionEvaluator

    return RegressionEvaluator()


@pytest.mark.parametrize("time_type", ["date", "timestamp", "timestamp_ntz"])
def test_unreadable_cutoff_is_named(spark, time_type):
    from pyspark.sql import functions as F

    df = _panel(spark, n_days=6, per_day=2).withColumn("t", F.col("day").cast(time_type))
    cv = _probe_cv(timeCol="t", cutoffs=[str(day(2)), "notadate"], horizon=1)
    df = df.withColumn("hour", F.lit(1))
    with pytest.raises(InvalidInputError, match=r"cutoffs\[1\] = 'notadate' is not"):
        cv.fit(df)


def _classifier_cv(evaluator, estimator=None):
    from pyspark.ml.classification import LogisticRegression

    lr = LogisticRegression(maxIter=5)
    return TimeSeriesCrossValidator(
        estimator=estimator or lr,
        estimatorParamMaps=[{lr.regParam: 0.0}],
        evaluator=evaluator,
        timeCol="day",
        numFolds=2,
        horizon=3,
    )


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_missing_label_column_of_the_evaluator_is_named(spark, kind):
    from pyspark.ml.evaluation import (
        BinaryClassificationEvaluator,
        MulticlassClassificationEvaluator,
        RegressionEvaluator,
    )

    df = _panel(spark, n_days=12, per_day=4, classes=True)
    evaluator = {
        "binary": BinaryClassificationEvaluator,
        "multiclass": MulticlassClassificationEvaluator,
        "regression": RegressionEvaluator,  # a typo found only after every fit, before
    }[kind](labelCol="outcome")
    with pytest.raises(
        InvalidInputError, match=r"labelCol 'outcome' .* not in the dataset; its columns are \["
    ):
        _classifier_cv(evaluator).fit(df)


@pytest.mark.smoke  # a classifier's fit in a worker thread needs the session on Connect
def test_label_made_by_a_pipeline_stage_is_not_refused(spark):
    """A label a Pipeline stage derives (StringIndexer) is not in the input: that is fine."""
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.feature import StringIndexer
    from pyspark.sql import functions as F

    df = _panel(spark, n_days=12, per_day=4, classes=True)
    df = df.withColumn("kind", F.when(F.col("label") > 0, "up").otherwise("down")).drop("label")
    lr = LogisticRegression(maxIter=5)
    pipeline = Pipeline(stages=[StringIndexer(inputCol="kind", outputCol="label"), lr])
    model = _classifier_cv(MulticlassClassificationEvaluator(), pipeline).fit(df)
    assert len(model.foldMetrics) == 2


@contextlib.contextmanager
def _session_time_zone(spark, name):
    old = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", name)
    try:
        yield
    finally:
        spark.conf.set("spark.sql.session.timeZone", old)


def test_timestamp_boundaries_state_their_utc_offset(spark):
    """Boundaries are the session time zone's wall-clock time with its offset, never ambiguous.

    05:00 and 06:00 UTC on 2026-11-01 are both 01:00 in New York; the driver's
    own zone (Tokyo here) plays no part.
    """
    utc = dt.timezone.utc
    start = dt.datetime(2026, 11, 1, 3, tzinfo=utc)
    rows = [(start + dt.timedelta(hours=h), h) for h in range(5)]
    df = spark.createDataFrame(rows, "t timestamp, hour int")
    cv = _probe_cv(timeCol="t", numFolds=2, horizon=1)
    with _session_time_zone(spark, "America/New_York"), _driver_time_zone("Asia/Tokyo"):
        model = cv.fit(df)
    assert model.foldBoundaries == [
        {
            "trainStart": "2026-10-31T23:00:00-04:00",
            "trainEnd": "2026-11-01T01:00:00-04:00",
            "validationStart": "2026-11-01T01:00:00-05:00",
            "validationEnd": "2026-11-01T01:00:00-05:00",
        },
        {
            "trainStart": "2026-10-31T23:00:00-04:00",
            "trainEnd": "2026-11-01T01:00:00-05:00",
            "validationStart": "2026-11-01T02:00:00-05:00",
            "validationEnd": "2026-11-01T02:00:00-05:00",
        },
    ]
    instants = [dt.datetime.fromisoformat(b["trainEnd"]) for b in model.foldBoundaries]
    assert instants == [start + dt.timedelta(hours=2), start + dt.timedelta(hours=3)]


def test_timestamp_ntz_boundaries_have_no_offset(spark):
    rows = [(dt.datetime(2026, 11, 1, h, 30, 15, 250), h) for h in range(4)]
    df = spark.createDataFrame(rows, "t timestamp_ntz, hour int")
    with _driver_time_zone("Asia/Tokyo"):
        model = _probe_cv(timeCol="t", numFolds=1, horizon=1).fit(df)
    assert model.foldBoundaries == [
        {
            "trainStart": "2026-11-01T00:30:15.000250",
            "trainEnd": "2026-11-01T02:30:15.000250",
            "validationStart": "2026-11-01T03:30:15.000250",
            "validationEnd": "2026-11-01T03:30:15.000250",
        }
    ]


@pytest.mark.parametrize("collation", [None, "UTF8_LCASE"])
def test_time_points_are_in_sparks_order(spark, collation):
    """Time points are sorted on the driver as Spark's orderBy sorts them (nulls first, NaN last)."""
    from pyspark.sql import functions as F

    from sparklift.tuning.timeseries import _in_time_order

    frames = {
        "string": spark.createDataFrame([("b",), ("A",), ("a",), ("B",), (None,)], "t string"),
        "double": spark.createDataFrame(
            [(2.5,), (float("nan"),), (-1.0,), (None,), (0.0,)], "t double"
        ),
        "date": spark.createDataFrame(
            [(dt.date(2024, 1, 2),), (dt.date(1500, 3, 1),), (None,)], "t date"
        ),
    }
    if collation:
        frames = {"string": frames["string"].select(F.collate("t", collation).alias("t"))}
    for name, df in frames.items():
        points = df.groupBy("t").agg(F.count(F.lit(1)).alias("n"))
        points = points.select("t", F.unix_date("t").alias("k") if name == "date" else "t", "n")
        ours = [row[0] for row in _in_time_order(points, df.schema["t"].dataType)]
        spark_order = [row[0] for row in points.orderBy("t").collect()]
        assert ours == spark_order or (
            name == "double" and str(ours) == str(spark_order)  # nan != nan
        ), name


def test_cutoffs_take_one_value_an_array_or_a_pandas_index():
    """As TypeConverters.toList: the Param holds a plain list whatever was given."""
    import pandas as pd

    def cutoffs(value):
        return TimeSeriesCrossValidator(timeCol="t", cutoffs=value).getCutoffs()

    first = dt.date(2024, 1, 4)
    assert cutoffs(first) == [first]
    assert cutoffs("2024-01-04") == ["2024-01-04"]
    assert cutoffs(np.array([3, 5])) == [3, 5]
    assert cutoffs(np.array([first], dtype=object)) == [first]
    assert cutoffs(pd.date_range("2024-01-04", periods=2)) == [
        dt.datetime(2024, 1, 4),
        dt.datetime(2024, 1, 5),
    ]


def test_pandas_timestamps_cut_off_a_date_column(spark):
    """A DatetimeIndex of days (what pd.date_range gives) on a date column, as dates do.

    A cut-off inside a day keeps that day in training: the day starts before it.
    """
    import pandas as pd

    rows = [(DAY0 + dt.timedelta(days=d), d) for d in range(8) for _ in range(2)]
    df = spark.createDataFrame(rows, "t date, hour int")
    by_date = _probe_cv(timeCol="t", cutoffs=[day(3), day(5)], horizon=1).fit(df)
    stamps = pd.DatetimeIndex([pd.Timestamp(day(3)), pd.Timestamp(day(5)) + pd.Timedelta("12h")])
    by_stamp = _probe_cv(timeCol="t", cutoffs=stamps, horizon=1).fit(df)
    # Cut-off at day h: train on days 0..h (2 rows each), validate on day h + 1.
    assert by_date.foldMetrics == [[1000.0 * 2 * (h + 1) + 2 * (h + 1)] for h in (3, 5)]
    assert by_stamp.foldMetrics == by_date.foldMetrics
    assert by_stamp.foldBoundaries == by_date.foldBoundaries
    # As a saved model's params hold them: ISO text of the naive datetimes.
    texts = [t.isoformat() for t in stamps]
    by_text = _probe_cv(timeCol="t", cutoffs=texts, horizon=1).fit(df)
    assert by_text.foldMetrics == by_date.foldMetrics
    aware = [dt.datetime(2024, 1, 4, tzinfo=dt.timezone.utc)]
    with pytest.raises(InvalidInputError, match=r"cutoffs\[0\] .* cannot be compared"):
        _probe_cv(timeCol="t", cutoffs=aware, horizon=1).fit(df)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes are Python 3.11+")
def test_a_failing_fit_says_which_fold_and_map(spark):
    """A StringIndexer in the Pipeline meets a label first seen in a later validation window."""
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.feature import StringIndexer, VectorAssembler
    from pyspark.ml.tuning import ParamGridBuilder

    rows = [
        (DAY0 + dt.timedelta(days=d), float(k), float(d), "c" if (d, k) == (7, 0) else "ab"[k % 2])
        for d in range(8)
        for k in range(4)
    ]
    df = spark.createDataFrame(rows, "day date, x1 double, x2 double, cls string")
    df = VectorAssembler(inputCols=["x1", "x2"], outputCol="features").transform(df)
    log = LogisticRegression(maxIter=5, labelCol="lab")
    pipe = Pipeline(stages=[StringIndexer(inputCol="cls", outputCol="lab"), log])
    cv = TimeSeriesCrossValidator(
        estimator=pipe,
        estimatorParamMaps=ParamGridBuilder().addGrid(log.regParam, [0.0]).build(),
        evaluator=MulticlassClassificationEvaluator(labelCol="lab"),
        timeCol="day",
        numFolds=2,
    )
    with pytest.raises(Exception, match="Unseen label") as info:
        cv.fit(df)
    notes = " ".join(getattr(info.value, "__notes__", []))
    assert "fold 1 {'trainStart'" in notes
    assert "parameter map 0" in notes
    assert "handleInvalid='keep'" in notes


def test_nulls_a_stage_refuses_name_the_column_and_an_imputer_still_takes_them(spark):
    """Spark ML's own error names neither the column nor a row; the validator's does."""
    from pyspark.ml import Pipeline
    from pyspark.ml.evaluation import RegressionEvaluator
    from pyspark.ml.feature import Imputer, StringIndexer, VectorAssembler
    from pyspark.sql import functions as F

    base = _panel(spark, n_days=12, per_day=4).drop("features")
    # Two nulls and a NaN in X2 (named in another case than the data's x2),
    # one null in the series column, all inside the first training window.
    df = base.withColumn(
        "x2",
        F.when((F.col("day") == day(2)) & (F.col("series") == "s1"), F.lit(None))
        .when((F.col("day") == day(3)) & (F.col("series") == "s2"), F.lit(float("nan")))
        .when((F.col("day") == day(4)) & (F.col("series") == "s3"), F.lit(None))
        .otherwise(F.col("x2")),
    ).withColumn("series", F.when(F.col("day") == day(1), F.lit(None)).otherwise(F.col("series")))
    lr, grid = _lr_grid()
    assemble = VectorAssembler(inputCols=["x1", "X2"], outputCol="features")

    def validator(stages):
        return TimeSeriesCrossValidator(
            estimator=Pipeline(stages=stages),
            estimatorParamMaps=grid,
            evaluator=RegressionEvaluator(),
            timeCol="day",
            numFolds=2,
            parallelism=2,
        )

    with pytest.raises(InvalidInputError) as info:
        validator([assemble, lr]).fit(df)
    message = str(info.value)
    assert message.startswith(
        "Column 'x2' is null or NaN in 3 rows of the data (example row: {day="
    )
    assert "Encountered null" in message or "Encountered NaN" in message
    assert "In TimeSeriesCrossValidator fold" in message
    assert "handleInvalid='skip' or 'keep'" in message
    assert info.value.__context__ is not None  # Spark's own error, kept
    assert info.value.__suppress_context__

    # A StringIndexer that meets a null: its column, counted on its own.
    index = StringIndexer(inputCol="series", outputCol="series_index")
    indexed = VectorAssembler(inputCols=["x1", "series_index"], outputCol="features")
    with pytest.raises(InvalidInputError, match=r"^Column 'series' is null or NaN in 4 rows"):
        validator([index, indexed, lr]).fit(df.withColumn("x2", F.lit(0.0)))

    # Nulls outside every fold's windows (sliding windows from day 2): only
    # the refit on all the data meets them, and the error says so.
    early = base.withColumn(
        "x2", F.when(F.col("day") == day(0), F.lit(None)).otherwise(F.col("x2"))
    )
    sliding = TimeSeriesCrossValidator(
        estimator=Pipeline(stages=[assemble, lr]),
        estimatorParamMaps=grid,
        evaluator=RegressionEvaluator(),
        timeCol="day",
        numFolds=2,
        windowType="sliding",
        trainWindow=4,
    )
    with pytest.raises(InvalidInputError, match=r"^Column 'x2' is null or NaN in 4 rows") as info:
        sliding.fit(early)
    assert "refit of parameter map" in str(info.value)

    # Nulls in x2 that an Imputer fills, and in the StringIndexer's column:
    # the indexer's column is named, not the imputed one.
    impute = Imputer(inputCols=["x2"], outputCols=["x2_filled"])
    both = VectorAssembler(inputCols=["x2_filled", "series_index"], outputCol="features")
    with pytest.raises(InvalidInputError, match=r"^Column 'series' is null or NaN in 4 rows"):
        validator([impute, index, both, lr]).fit(df)

    # Nulls a stage is told to take are not refused: an Imputer fills them.
    filled = VectorAssembler(inputCols=["x1", "x2_filled"], outputCol="features")
    model = validator([impute, filled, lr]).fit(df)
    assert np.isfinite(model.avgMetrics).all()


def test_too_many_time_points_are_refused(spark, monkeypatch):
    from pyspark.ml.evaluation import RegressionEvaluator

    from sparklift.tuning import timeseries

    monkeypatch.setattr(timeseries, "MAX_TIME_POINTS", 11)
    lr, grid = _lr_grid()
    cv = TimeSeriesCrossValidator(
        estimator=lr, estimatorParamMaps=grid, evaluator=RegressionEvaluator(), timeCol="day"
    )
    with pytest.raises(
        ResourceLimitError, match="timeCol 'day' has 12 distinct values, more than the 11"
    ):
        cv.fit(_panel(spark, n_days=12, per_day=2))


def test_an_error_that_only_mentions_null_keeps_sparks_own_error_and_the_fold(spark):
    """Spark's ANSI hints ("... return NULL instead") are not a missing value in the data."""
    from pyspark.ml import Pipeline
    from pyspark.ml.evaluation import RegressionEvaluator
    from pyspark.ml.feature import VectorAssembler
    from pyspark.sql import functions as F

    if spark.conf.get("spark.sql.ansi.enabled").lower() != "true":
        pytest.skip("needs ANSI mode, Spark 4's default, for a division by zero to fail")
    # (Repartitioned: on Connect the rows are a local relation, whose
    # projections Spark evaluates while planning the validator's first query.)
    df = _panel(spark, n_days=12, per_day=3).drop("features").repartition(2)
    df = df.withColumn("ratio", F.col("x1") / F.when(F.col("day") == day(3), 0).otherwise(1))
    lr, grid = _lr_grid()
    cv = TimeSeriesCrossValidator(
        estimator=Pipeline(stages=[VectorAssembler(inputCols=["ratio"], outputCol="features"), lr]),
        estimatorParamMaps=grid,
        evaluator=RegressionEvaluator(),
        timeCol="day",
        numFolds=2,
    )
    with pytest.raises(Exception, match="DIVIDE_BY_ZERO") as info:
        cv.fit(df)
    assert not isinstance(info.value, InvalidInputError)
    assert "In TimeSeriesCrossValidator fold 0" in " ".join(getattr(info.value, "__notes__", []))


def test_text_that_sorts_out_of_time_order_and_repeated_cutoffs_are_refused(spark):
    from pyspark.ml.evaluation import RegressionEvaluator
    from pyspark.sql import functions as F

    df = _panel(spark, n_days=20)
    lr, grid = _lr_grid()
    common = {
        "estimator": lr,
        "estimatorParamMaps": grid,
        "evaluator": RegressionEvaluator(),
        "horizon": 3,
    }
    index = F.datediff("day", F.lit(DAY0)) + 1  # periods 1..20
    as_text = {
        "week": index.cast("string"),  # '10' sorts before '2'
        "us_date": F.date_format("day", "MM/dd/yyyy"),
    }
    for name, value in as_text.items():
        for series in ([], ["series"]):  # ranked per series in text order too
            with pytest.raises(
                InvalidColumnTypeError, match=rf"timeCol '{name}' is a string column"
            ):
                TimeSeriesCrossValidator(
                    timeCol=name, numFolds=2, seriesIdCols=series, **common
                ).fit(df.withColumn(name, value))
    # Zero-padded numbers sort as they count: taken as they are, equal to the date column.
    padded = df.withColumn("period", F.lpad(index.cast("string"), 3, "0"))
    by_text = TimeSeriesCrossValidator(timeCol="period", numFolds=2, **common).fit(padded)
    by_day = TimeSeriesCrossValidator(timeCol="day", numFolds=2, **common).fit(df)
    np.testing.assert_array_equal(by_text.foldMetrics, by_day.foldMetrics)
    with pytest.raises(InvalidInputError, match=r"cutoffs\[0\] = .* and cutoffs\[2\] = .* both"):
        TimeSeriesCrossValidator(timeCol="day", cutoffs=[day(10), day(12), day(10)], **common).fit(
            df
        )
