"""sparklift.grouped: per-group models must equal models fitted locally on each group."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from sparklift._spark import translate_errors
from sparklift.errors import InvalidInputError, ModelFormatError, ResourceLimitError
from sparklift.grouped import (
    GroupedModel,
    GroupFitWarning,
    UnknownGroupWarning,
    fit_per_group,
)

FEATURES = ["x0", "x1", "x2"]
GROUPS = ["a", "b", "c", "d"]


def make_groups(seed: int = 0, n_per_group: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for i, group in enumerate(GROUPS):
        X = rng.normal(size=(n_per_group, len(FEATURES)))
        coef = np.array([1.0 + i, -0.5 * i, 2.0])
        y = X @ coef + i + rng.normal(scale=0.1, size=n_per_group)
        part = pd.DataFrame(X, columns=FEATURES)
        part["y"] = y
        part["label"] = (y > np.median(y)).astype(int)
        part["store"] = group
        parts.append(part)
    pdf = pd.concat(parts, ignore_index=True)
    pdf.insert(0, "id", np.arange(len(pdf)))
    return pdf


def matrix(pdf: pd.DataFrame) -> np.ndarray:
    # C order, as sparklift builds it (pandas alone gives Fortran order, and BLAS
    # rounds the two differently in the last bit).
    return np.ascontiguousarray(pdf[FEATURES].to_numpy())


def local_fit(pdf: pd.DataFrame, estimator_factory, label: str) -> dict:
    return {
        g: estimator_factory().fit(matrix(part), part[label].to_numpy())
        for g, part in pdf.sort_values("id").groupby("store")
    }


def collect(df) -> pd.DataFrame:
    with translate_errors():
        return df.toPandas().sort_values("id").reset_index(drop=True)


@pytest.mark.smoke
def test_fit_predict_save_load_equal_local_models(spark, tmp_path):
    pdf = make_groups()
    df = spark.createDataFrame(pdf).repartition(3)
    grouped = fit_per_group(df, "store", LinearRegression(), FEATURES, "y", order_by="id")
    reference = local_fit(pdf, LinearRegression, "y")

    summary = grouped.summary().set_index("store").sort_index()
    assert list(summary.index) == GROUPS
    assert summary["error"].isna().all()
    assert (summary["n_rows"] == 40).all()
    assert (summary["fit_seconds"] >= 0).all()
    for g in GROUPS:
        part = pdf[pdf.store == g]
        model = grouped.get_model(g)
        np.testing.assert_array_equal(model.coef_, reference[g].coef_)
        assert model.intercept_ == reference[g].intercept_
        assert summary.loc[g, "train_score"] == reference[g].score(
            matrix(part), part["y"].to_numpy()
        )

    # Scoring: every row with its own group's model; an unknown group gets null, counted.
    new = pdf.copy()
    new.loc[new.index[:5], "store"] = "zzz"
    scoring = spark.createDataFrame(new).repartition(2)
    with pytest.warns(UnknownGroupWarning, match="5 rows") as record:
        scored = grouped.predict(scoring)
    assert record[0].message.count == 5
    assert grouped.unknown_rows_ == 5
    got = collect(scored)
    assert got["prediction"][:5].isna().all()
    for g in GROUPS:
        rows = (new.store == g).to_numpy()
        expected = reference[g].predict(matrix(new.loc[rows]))
        np.testing.assert_array_equal(got.loc[rows, "prediction"].to_numpy(), expected)

    path = str(tmp_path / "grouped")
    grouped.save(path)
    loaded = GroupedModel.load(path, spark=spark)
    assert (loaded.group_col, loaded.feature_cols, loaded.label_col) == ("store", FEATURES, "y")
    again = collect(loaded.predict(spark.createDataFrame(pdf)))
    expected = np.concatenate(
        [reference[g].predict(matrix(pdf.loc[pdf.store == g])) for g in GROUPS]
    )
    np.testing.assert_array_equal(again["prediction"].to_numpy(), expected)


def test_failed_group_does_not_fail_the_others_and_cogroup_matches(spark):
    pdf = make_groups(1)
    pdf.loc[pdf.store == "c", "label"] = 1  # one class only: LogisticRegression cannot fit
    df = spark.createDataFrame(pdf)
    with pytest.warns(GroupFitWarning, match="1 of 4 groups failed") as record:
        grouped = fit_per_group(df, "store", LogisticRegression(), FEATURES, "label")
    assert record[0].message.count == 1
    failed = grouped.failed_groups()
    assert list(failed["store"]) == ["c"]
    assert failed["error"][0].startswith("ValueError")
    assert "class" in failed["error"][0]
    reference = local_fit(pdf[pdf.store != "c"], LogisticRegression, "label")

    methods = ["predict", "predict_proba"]
    with pytest.warns(UnknownGroupWarning, match="40 rows"):
        broadcast = collect(grouped.predict(df, method=methods, strategy="broadcast"))
    with pytest.warns(UnknownGroupWarning):
        cogroup = collect(grouped.predict(df, method=methods, strategy="cogroup"))
    for got in (broadcast, cogroup):
        rows = (pdf.store == "c").to_numpy()
        assert got.loc[rows, "prediction"].isna().all()
        for g, model in reference.items():
            rows = (pdf.store == g).to_numpy()
            X = matrix(pdf.loc[rows])
            preds = got.loc[rows, "prediction"]
            np.testing.assert_allclose(
                np.stack([p["predict_proba"] for p in preds]), model.predict_proba(X), rtol=1e-6
            )
            np.testing.assert_array_equal([p["predict"] for p in preds], model.predict(X))
    with pytest.raises(InvalidInputError, match="40 rows belong to groups without"):
        grouped.predict(df, on_unknown="error")
    with pytest.raises(InvalidInputError, match="its fit failed"):
        grouped.get_model("c")


def test_limits_and_bad_input(spark, tmp_path):
    pdf = make_groups(2, n_per_group=10)
    pdf.loc[pdf.store == "b", "store"] = "a"  # group 'a' now has 20 rows
    df = spark.createDataFrame(pdf)
    with pytest.raises(ResourceLimitError, match=r"group 'a' of 'store' has 20 rows.*=15"):
        fit_per_group(df, "store", LinearRegression(), FEATURES, "y", max_rows_per_group=15)
    with pytest.raises(InvalidInputError, match=r"\['nope'\] not in the DataFrame"):
        fit_per_group(df, "store", LinearRegression(), [*FEATURES, "nope"], "y")
    nulls = pdf.astype({"store": object})
    nulls.loc[:2, "store"] = None
    with pytest.raises(InvalidInputError, match="'store' is null in 3 rows"):
        fit_per_group(spark.createDataFrame(nulls), "store", LinearRegression(), FEATURES, "y")
    with pytest.raises(InvalidInputError, match="has no fit"):
        fit_per_group(df, "store", object(), FEATURES, "y")
    (tmp_path / "metadata").mkdir()
    with pytest.raises(ModelFormatError, match="not a saved GroupedModel"):
        GroupedModel.load(str(tmp_path), spark=spark)
