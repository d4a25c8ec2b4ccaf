"""Classes from a folder the driver added to ``sys.path`` at run time work in the workers.

A notebook's ``sys.path.append("../src")`` (or a module beside the notebook)
is the common case: scikit-learn's own process pool inherits the path, and
Spark's Python workers used to fail with "No module named ...".
"""

from __future__ import annotations

import sys
import textwrap
import uuid

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.smoke

MODULE = textwrap.dedent(
    """
    from sklearn.linear_model import LinearRegression


    class ShiftedRegression(LinearRegression):
        '''A LinearRegression whose predictions are shifted by 100.'''

        def predict(self, X):
            return super().predict(X) + 100.0
    """
)


@pytest.fixture
def module_beside_the_driver(tmp_path, monkeypatch):
    name = f"user_models_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / f"{name}.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(folder))  # after the session started, as a notebook does
    module = __import__(name)
    yield module
    sys.modules.pop(name, None)


def test_runtime_sys_path_reaches_the_workers(
    spark, spark_mode, tmp_path, module_beside_the_driver
):
    from sklearn.model_selection import KFold

    from sparklift.grouped import fit_per_group
    from sparklift.inference import predict
    from sparklift.tuning import GridSearchCV

    Shifted = module_beside_the_driver.ShiftedRegression
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = X @ np.array([1.0, -2.0]) + rng.normal(scale=0.1, size=60)
    local = Shifted().fit(X, y)

    # A search: the estimator's class is pickled by reference to the module.
    search = GridSearchCV(Shifted(), {"fit_intercept": [True, False]}, cv=KFold(3))
    search.fit(X, y)
    assert search.best_params_ == {"fit_intercept": True}

    pdf = pd.DataFrame(X, columns=["a", "b"]).assign(y=y, g=np.arange(60) % 2)
    df = spark.createDataFrame(pdf)
    # Scoring a fitted model of that class.
    got = predict(df, local, input_cols=["a", "b"]).toPandas()["prediction"]
    np.testing.assert_allclose(got, local.predict(X), rtol=1e-12)
    # One model per group of that class.
    grouped = fit_per_group(df, "g", Shifted(), ["a", "b"], "y")
    assert grouped.failed_groups().empty
    # (CI time: the other modes run the broadcast path only; the loading code is the same.)
    strategies = ("broadcast", "cogroup") if spark_mode == "local" else ("broadcast",)
    for strategy in strategies:  # models shipped, or read from a table
        scored = grouped.predict(df, strategy=strategy).toPandas().sort_values(["g", "a"])
        for key, part in pdf.groupby("g"):
            model = Shifted().fit(part[["a", "b"]], part["y"])
            rows = scored[scored.g == key]
            np.testing.assert_allclose(
                rows["prediction"], model.predict(rows[["a", "b"]]), rtol=1e-9
            )
    # save() turns the in-memory pickles into skops files in the workers.
    if spark_mode == "local":
        grouped.save(str(tmp_path / "grouped"))
