"""Scoring a logistic regression over a DataFrame: sparklift.inference.predict vs the alternatives.

Issue 5's claim, side by side in one run on ``local[2]``:

* the seed's row-at-a-time Python UDF (``udf(lambda *cols: float(model.predict((cols,))))``),
  timed on a subset because it is slow, reported in rows/s;
* a hand-written scalar pandas UDF over the same columns;
* ``sparklift.inference.predict`` (typed output, any method, model shipped once);
* the JVM alone scanning the same cached data (``write.format("noop")``): the ceiling;
* single-process scikit-learn ``predict`` on a NumPy array of the same shape: the
  physical reference for the model's own work.

Every Spark variant writes all input columns plus the prediction to the ``noop``
sink, so they do the same amount of output work. Best of ``--repeats`` runs.

After the timings (untimed), the scoring is checked: on every row, sparklift's
``predict`` (alone, and as the ``predict`` field of predict+predict_proba) must
equal the pandas UDF's label; on a deterministic sample of rows (``id``
multiple of a step, about ``--check-rows``), both and sparklift's
``predict_proba`` are compared with scikit-learn's own ``model.predict`` /
``model.predict_proba`` on the same rows' features, collected to the driver:
labels exactly, probabilities to 1e-12 (absolute). It prints
``predictions equal: True/False`` and exits with status 1 on False.

    python benchmarks/bench_inference.py            # 2,000,000 rows x 20 features
    python benchmarks/bench_inference.py --quick    # 200,000 rows
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from sparklift.inference import predict
from sparklift.session import get_spark


def best_time(action, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best


def noop(df) -> None:
    df.write.format("noop").mode("overwrite").save()


PROBA_ATOL = 1e-12


def check_predictions(df, model, cols: list[str], pandas_udf, check_rows: int) -> bool:
    """Untimed: sparklift predict vs the pandas UDF (all rows) and scikit-learn (a sample)."""
    from pyspark.sql import functions as F

    scored = predict(df.select("*", pandas_udf(*cols).alias("udf")), model, input_cols=cols)
    scored = predict(
        scored,
        model,
        input_cols=cols,
        output_col="both",
        method=["predict", "predict_proba"],
    )
    label = F.col("prediction").cast("double")
    both = F.col("both.predict").cast("double")
    totals = scored.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum((label != F.col("udf")).cast("int")).alias("vs_udf"),
        F.sum((both != F.col("udf")).cast("int")).alias("both_vs_udf"),
        F.sum(F.col("prediction").isNull().cast("int")).alias("nulls"),
    ).first()
    all_rows = totals["vs_udf"] == 0 and totals["both_vs_udf"] == 0 and totals["nulls"] == 0
    print(
        f"  all {totals['rows']:,} rows: sparklift predict != pandas UDF on {totals['vs_udf']} "
        f"rows, predict+predict_proba's predict != pandas UDF on {totals['both_vs_udf']}, "
        f"null predictions {totals['nulls']}"
    )

    n_rows = totals["rows"]
    step = max(1, n_rows // check_rows)
    sample = (
        scored.where(F.col("id") % step == 0)
        .select(
            "id",
            *cols,
            "udf",
            "prediction",
            F.col("both.predict").alias("both_predict"),
            F.col("both.predict_proba").alias("proba"),
        )
        .toPandas()
        .sort_values("id")
    )
    X = sample[cols].to_numpy(dtype=np.float64)
    expected = model.predict(X)
    expected_proba = model.predict_proba(X)
    proba = np.stack(sample["proba"].to_numpy())
    labels_equal = bool(
        np.array_equal(sample["prediction"].to_numpy(), expected)
        and np.array_equal(sample["both_predict"].to_numpy(), expected)
        and np.array_equal(sample["udf"].to_numpy(), expected.astype(np.float64))
    )
    proba_diff = (
        float(np.abs(proba - expected_proba).max())
        if proba.shape == expected_proba.shape
        else np.inf
    )
    print(
        f"  sample of {len(sample):,} rows (id % {step} == 0) vs scikit-learn on the same rows: "
        f"labels (sparklift predict, predict+predict_proba, pandas UDF) equal: {labels_equal}; "
        f"predict_proba max |difference| {proba_diff:.1e}"
        + (" (exactly equal)" if proba_diff == 0 else f" (tolerance {PROBA_ATOL:g})")
    )
    return all_rows and labels_equal and proba_diff <= PROBA_ATOL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--udf-rows", type=int, default=100_000, help="subset for the row UDF")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument(
        "--check-rows", type=int, default=20_000, help="rows compared with scikit-learn (about)"
    )
    parser.add_argument("--quick", action="store_true", help="200,000 rows, 20,000 for the row UDF")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.udf_rows, args.repeats = 200_000, 20_000, 2

    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType

    spark = get_spark("bench-inference", master=args.master, driver_memory="3g")
    cols = [f"f{i}" for i in range(args.features)]
    rng = np.random.default_rng(0)
    X_train = rng.normal(size=(10_000, args.features))
    w = rng.normal(size=args.features)
    y_train = (X_train @ w + rng.normal(size=10_000) > 0).astype(int)
    model = LogisticRegression().fit(X_train, y_train)

    n_parts = 2 * spark.sparkContext.defaultParallelism if hasattr(spark, "sparkContext") else 4
    df = spark.range(args.rows, numPartitions=n_parts).select(
        "id", *[F.randn(seed=i).alias(c) for i, c in enumerate(cols)]
    )
    df = df.cache()
    df.count()
    # As many partitions as the full data: limit() alone gives one, i.e. one core.
    small = df.limit(args.udf_rows).repartition(n_parts).cache()
    small.count()

    @F.udf(returnType=DoubleType())
    def row_udf(*values):
        return float(model.predict((values,))[0])

    @F.pandas_udf(DoubleType())
    def pandas_udf(*series: pd.Series) -> pd.Series:
        X = np.column_stack([s.to_numpy() for s in series])
        return pd.Series(model.predict(X).astype(np.float64))

    results: list[tuple[str, int, float]] = []

    def run(name: str, rows: int, action) -> None:
        seconds = best_time(action, args.repeats)
        results.append((name, rows, seconds))
        print(
            f"  {name:<44} {rows:>10,} rows {seconds:8.2f} s {rows / seconds:>12,.0f} rows/s",
            flush=True,
        )

    print(f"{args.rows:,} rows x {args.features} features, {args.master}, best of {args.repeats}")
    run("JVM only: scan (noop), the ceiling", args.rows, lambda: noop(df))
    run("sparklift predict", args.rows, lambda: noop(predict(df, model, input_cols=cols)))
    run(
        "hand-written scalar pandas UDF",
        args.rows,
        lambda: noop(df.select("*", pandas_udf(*cols).alias("prediction"))),
    )
    run(
        "sparklift predict, predict+predict_proba",
        args.rows,
        lambda: noop(predict(df, model, input_cols=cols, method=["predict", "predict_proba"])),
    )
    run(
        f"row-at-a-time UDF (seed), {args.udf_rows:,}-row subset",
        args.udf_rows,
        lambda: noop(small.select("*", row_udf(*cols).alias("prediction"))),
    )
    X = np.random.default_rng(1).normal(size=(args.rows, args.features))
    run("scikit-learn predict, one process, NumPy", args.rows, lambda: model.predict(X))

    rate = {name: rows / seconds for name, rows, seconds in results}
    ours = rate["sparklift predict"]
    print("\nratios (rows/s of sparklift predict / rows/s of the other; >1 = sparklift faster)")
    for name, value in rate.items():
        if name != "sparklift predict":
            print(f"  vs {name:<44} {ours / value:8.2f}x")
    row_udf_name = next(n for n in rate if n.startswith("row-at-a-time"))
    print(
        f"\ntargets: >= 50x the row UDF: {ours / rate[row_udf_name]:.1f}x; "
        f"within 10% of the pandas UDF: {ours / rate['hand-written scalar pandas UDF']:.2f}x"
    )

    print("\ncorrectness (untimed)")
    equal = check_predictions(df, model, cols, pandas_udf, args.check_rows)
    print(f"predictions equal: {equal}")
    if not equal:
        sys.exit(1)


if __name__ == "__main__":
    main()
