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

    python benchmarks/bench_inference.py            # 2,000,000 rows x 20 features
    python benchmarks/bench_inference.py --quick    # 200,000 rows
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--udf-rows", type=int, default=100_000, help="subset for the row UDF")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--master", default="local[2]")
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


if __name__ == "__main__":
    main()
