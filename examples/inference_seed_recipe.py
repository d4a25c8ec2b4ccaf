"""Score a scikit-learn model over a Spark DataFrame in Arrow batches, and as a pipeline stage.

This reproduces, the sparklift way, a hand-written PySpark recipe (the
"seed" the file names refer to) for scoring a scikit-learn model on Spark:
it trained an SVC with a grid search on 1,000 rows, then scored a Spark
DataFrame through a row-at-a-time UDF (``float(model.predict((cols,)))``),
which moves a few thousand rows per second. Here the same model scores Arrow
batches with :func:`sparklift.inference.predict` (typed outputs, several
methods at once), then sits in a Spark Pipeline that is saved and loaded.

Run it with the virtual environment that ``make demo`` or ``make test`` creates::

    .venv/bin/python examples/inference_seed_recipe.py
"""

from __future__ import annotations

import argparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()

    # Imported after the arguments are parsed, so that --help answers at once.
    import tempfile
    import warnings

    import pandas as pd
    from pyspark.ml import PipelineModel
    from sklearn.datasets import make_classification
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC

    from sparklift.inference import ModelTransformer, predict
    from sparklift.session import get_spark

    spark = get_spark("inference-seed-recipe")
    # scikit-learn 1.9 deprecates SVC(probability=True), which the seed uses.
    warnings.filterwarnings("ignore", message="The `probability` parameter", category=FutureWarning)

    # Recipe 1 of the seed, smaller grid: a model trained on one machine.
    X, y = make_classification(n_samples=1000, random_state=0)
    grid = {"C": [0.1, 1.0, 10.0], "kernel": ["rbf", "poly"]}
    search = GridSearchCV(SVC(gamma="auto", random_state=0, probability=True), grid, cv=3)
    model = search.fit(X, y).best_estimator_
    print(f"best params: {search.best_params_}")

    # Recipe 2: score a (here small, in production huge) DataFrame.
    X_score, _ = make_classification(n_samples=100, random_state=0)
    columns = [f"feature{i}" for i in range(20)]
    pdf = pd.DataFrame(X_score, columns=columns).reset_index().rename(columns={"index": "id"})
    df = spark.createDataFrame(pdf)

    scored = predict(df, model, input_cols=columns, method=["predict", "predict_proba"])
    scored.select("id", "prediction.predict", "prediction.predict_proba").show(5, truncate=False)

    # The same model as a pyspark.ml stage, saved and loaded with its pipeline.
    stage = ModelTransformer(model=model, inputCols=columns, outputCol="label")
    with tempfile.TemporaryDirectory() as tmp:
        PipelineModel(stages=[stage]).write().save(f"{tmp}/pipeline")
        loaded = PipelineModel.load(f"{tmp}/pipeline")
        loaded.transform(df).select("id", "label").show(5)


if __name__ == "__main__":
    main()
