"""An SVC grid search with every fit a Spark task, then scoring a Spark DataFrame.

This reproduces, the sparklift way, recipe 1 of a hand-written PySpark
recipe (the "seed" the docs refer to): it wrapped scikit-learn's
GridSearchCV in joblibspark's backend, which pickles X and y into every
batch. Here the search class itself is the only change: X and y are pickled
once on the driver, broadcast to each executor once per Spark job and handed
to a Python worker once per Spark task (a few per task slot, not one per
fit); the results equal scikit-learn's, and the refitted best model is used
to score a Spark DataFrame (the seed's recipe 2) with a pandas UDF.

The seed's ``SVC(probability=True, random_state=0)`` is left out: scikit-learn
1.9 deprecates ``probability`` (a FutureWarning in every fit), the example
only predicts classes, and ``random_state`` served only the probabilities.
Where probabilities are needed, use ``CalibratedClassifierCV(SVC(), ensemble=False)``.

Run it with the virtual environment that ``make demo`` or ``make test`` creates::

    .venv/bin/python examples/tuning_grid_search.py
"""

# No ``from __future__ import annotations`` here: pandas_udf reads the type
# hints of ``predict`` below, and ``pd`` is imported inside main().
import argparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()

    # Imported after the arguments are parsed, so that --help answers at once.
    import pandas as pd
    from pyspark.sql.functions import pandas_udf
    from sklearn.datasets import make_classification
    from sklearn.svm import SVC

    from sparklift.session import get_spark
    from sparklift.tuning import GridSearchCV

    spark = get_spark("tuning-grid-search")
    X, y = make_classification(n_samples=1000, random_state=0)
    param_grid = {
        "C": [0.001, 0.01, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0],
        "kernel": ["rbf", "poly", "sigmoid"],
        "shrinking": [True, False],
    }
    search = GridSearchCV(
        SVC(gamma="auto"),
        param_grid=param_grid,
        return_train_score=False,
        cv=3,
        verbose=1,  # shows the progress bar of finished fits
    )
    search.fit(X, y)
    print("best parameters:", search.best_params_, f"score {search.best_score_:.3f}")
    transfer = search.spark_transfer_
    print(
        f"{transfer.n_fits} fits in {transfer.n_spark_jobs} Spark jobs of "
        f"{transfer.n_spark_tasks} tasks (X is {X.nbytes / 1e6:.2f} MB): "
        f"{transfer.total_bytes / 1e6:.2f} MB serialised on the driver, "
        f"{transfer.broadcast_bytes / 1e6:.2f} MB broadcast to each executor, "
        f"{transfer.worker_bytes / 1e6:.2f} MB delivered to Python workers"
    )

    # Recipe 2: score a Spark DataFrame with the refitted best model.
    X_score, _ = make_classification(n_samples=100, random_state=1)
    columns = [f"feature{i}" for i in range(X_score.shape[1])]
    df = spark.createDataFrame(pd.DataFrame(X_score, columns=columns).reset_index(names="id"))
    best = search.best_estimator_

    @pandas_udf("double")
    def predict(*features: pd.Series) -> pd.Series:
        return pd.Series(best.predict(pd.concat(features, axis=1).to_numpy()), dtype="float64")

    df.select("id", predict(*columns).alias("prediction")).show(5)


if __name__ == "__main__":
    main()
