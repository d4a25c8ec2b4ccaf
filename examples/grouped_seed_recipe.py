"""One model per data set on Spark: fit, save, load and score per-group models.

This reproduces, the sparklift way, a hand-written PySpark recipe (the
"seed" the file names refer to) for fitting one scikit-learn model per data
set: it forced one gzip file per partition so that a pandas UDF saw one data
set at a time, and pickled each model to the driver's local disk (which does
not work on a cluster). Here the data set is just a column:
:func:`sparklift.grouped.fit_per_group` fits one clone per group in parallel,
keeps the models in a DataFrame (saved as Parquet with skops, loadable
anywhere Spark reads), and scores new rows with their own group's model.

Run it with the virtual environment that ``make demo`` or ``make test`` creates::

    .venv/bin/python examples/grouped_seed_recipe.py
"""

from __future__ import annotations

import argparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()

    # Imported after the arguments are parsed, so that --help answers at once.
    import tempfile

    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    from sparklift.grouped import GroupedModel, fit_per_group
    from sparklift.session import get_spark

    spark = get_spark("grouped-seed-recipe")
    rng = np.random.default_rng(0)
    frames = []
    for name, slope, noise in (("df1", 2.5, 0.5), ("df2", 3.0, 0.3)):
        part = pd.DataFrame({"x": rng.normal(size=100)})
        part["y"] = part["x"] * slope + rng.normal(scale=noise, size=100)
        part["name"] = name
        frames.append(part)
    df = spark.createDataFrame(pd.concat(frames, ignore_index=True))

    grouped = fit_per_group(df, "name", LinearRegression(), ["x"], "y")
    print(grouped.summary())
    for name in ("df1", "df2"):
        print(f"{name}: slope {grouped.get_model(name).coef_[0]:.2f}")  # about 2.5 and 3.0

    with tempfile.TemporaryDirectory() as tmp:
        grouped.save(f"{tmp}/models")
        loaded = GroupedModel.load(f"{tmp}/models", spark=spark)
        new = spark.createDataFrame(
            pd.DataFrame({"x": [1.0, 1.0, 1.0], "name": ["df1", "df2", "df3"]})
        )
        # df3 has no model: its row gets null, and a warning says how many rows did.
        loaded.predict(new).show()


if __name__ == "__main__":
    main()
