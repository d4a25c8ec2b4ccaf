"""``sparklift tune``: results equal scikit-learn's GridSearchCV on the same Parquet data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import sklearn.model_selection as skms
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from sparklift.cli import main


@pytest.fixture
def parquet(tmp_path):
    X, y = make_classification(n_samples=200, n_features=4, random_state=2)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(target=y)
    path = tmp_path / "data.parquet"
    frame.to_parquet(path)
    return path, X, y


def test_tune_writes_scikit_learns_results(spark, parquet, tmp_path):
    path, X, y = parquet
    out = tmp_path / "results.json"
    code = main(
        [
            "tune",
            str(path),
            "--label",
            "target",
            "--estimator",
            "sklearn.linear_model.LogisticRegression",
            "--estimator-params",
            '{"max_iter": 300}',
            "--grid",
            '{"C": [0.01, 1.0]}',
            "--cv",
            "3",
            "--scoring",
            "accuracy",
            "--output",
            str(out),
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    ref = skms.GridSearchCV(
        LogisticRegression(max_iter=300), {"C": [0.01, 1.0]}, cv=3, scoring="accuracy"
    ).fit(X, y)
    assert result["best_params"] == ref.best_params_
    assert result["best_score"] == ref.best_score_
    np.testing.assert_array_equal(
        result["cv_results"]["mean_test_score"], ref.cv_results_["mean_test_score"]
    )


def test_tune_reports_bad_arguments_clearly(spark, parquet, capsys):
    path, _, _ = parquet
    base = ["tune", str(path), "--estimator", "sklearn.linear_model.LogisticRegression"]
    assert main([*base, "--label", "nope", "--grid", "{}"]) == 1
    assert "--label column 'nope' is not in" in capsys.readouterr().err
    assert main([*base, "--label", "target", "--grid", "{C: 1}"]) == 1
    assert "--grid is not valid JSON" in capsys.readouterr().err
