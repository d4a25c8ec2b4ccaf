"""sparklift.grouped: per-group models must equal models fitted locally on each group."""

from __future__ import annotations

import os
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, LogisticRegression

from sparklift._spark import translate_errors
from sparklift.errors import (
    FitFailedError,
    InvalidColumnTypeError,
    InvalidInputError,
    ModelFormatError,
    PathExistsError,
    ResourceLimitError,
)
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


def matrix(pdf: pd.DataFrame, columns: list[str] = FEATURES) -> pd.DataFrame:
    # What fit_per_group gives an estimator: the features by name, over a matrix in
    # C order (pandas alone gives Fortran order, and BLAS rounds the two
    # differently in the last bit).
    return pd.DataFrame(np.ascontiguousarray(pdf[columns].to_numpy()), columns=columns)


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

    summary = grouped.summary().set_index("store")
    assert list(summary.index) == GROUPS  # in key order
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
    with pytest.raises(PathExistsError, match=r"grouped already exists; pass overwrite=True"):
        grouped.save(path)
    with pytest.raises(PathExistsError):
        grouped.write().save(path)
    grouped.write().overwrite().save(path)  # pyspark.ml's spelling
    loaded = GroupedModel.load(path, spark=spark)
    assert (loaded.group_col, loaded.feature_cols, loaded.label_col) == ("store", FEATURES, "y")
    again = collect(loaded.predict(spark.createDataFrame(pdf)))
    expected = np.concatenate(
        [reference[g].predict(matrix(pdf.loc[pdf.store == g])) for g in GROUPS]
    )
    np.testing.assert_array_equal(again["prediction"].to_numpy(), expected)


# Spark SQL literals, one per group of make_groups: keys that Python reads
# differently from Arrow (dates, time zones) or that are not equal to
# themselves (NaN, which Spark groups as one key).
KEY_LITERALS = {
    "date": ["date'2024-01-01'", "date'2024-01-02'", "date'1969-12-31'", "date'2024-03-01'"],
    "timestamp": [
        "timestamp'2024-01-01 00:00:00'",
        "timestamp'2024-01-01 12:30:00'",
        "timestamp'1969-12-31 23:59:59'",
        "timestamp'2024-06-30 23:00:00'",
    ],
    "double": ["0.5D", "double('NaN')", "-1.0D", "2.0D"],
}


@pytest.mark.parametrize("kind", sorted(KEY_LITERALS))
def test_date_timestamp_and_nan_keys_score_with_their_own_models(spark, kind):
    pdf = make_groups(3, n_per_group=20)
    cases = " ".join(
        f"WHEN '{g}' THEN {lit}" for g, lit in zip(GROUPS, KEY_LITERALS[kind], strict=True)
    )
    df = spark.createDataFrame(pdf).selectExpr("*", f"CASE store {cases} END AS key")
    grouped = fit_per_group(df, "key", LinearRegression(), FEATURES, "y", order_by="id")
    assert grouped.n_groups == 4
    reference = local_fit(pdf, LinearRegression, "y")
    for strategy in ("broadcast", "cogroup"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", UnknownGroupWarning)
            got = collect(grouped.predict(df, strategy=strategy))
        assert grouped.unknown_rows_ == 0
        for g in GROUPS:
            rows = (pdf.store == g).to_numpy()
            np.testing.assert_array_equal(
                got.loc[rows, "prediction"].to_numpy(),
                reference[g].predict(matrix(pdf.loc[rows])),
                err_msg=f"{kind} key of group {g}, {strategy}",
            )


def test_column_names_with_dots_and_spaces(spark):
    pdf = make_groups(4, n_per_group=15)
    names = {"x0": "x.0", "x1": "x 1", "store": "store.id"}
    df = spark.createDataFrame(pdf.rename(columns=names))
    features = [names.get(c, c) for c in FEATURES]
    grouped = fit_per_group(df, "store.id", LinearRegression(), features, "y", order_by="id")
    reference = local_fit(pdf, LinearRegression, "y")
    assert set(grouped.summary()["store.id"]) == set(GROUPS)
    np.testing.assert_array_equal(grouped.get_model("b").coef_, reference["b"].coef_)
    for strategy in ("broadcast", "cogroup"):
        got = collect(grouped.predict(df, strategy=strategy))
        for g in GROUPS:
            rows = (pdf.store == g).to_numpy()
            np.testing.assert_array_equal(
                got.loc[rows, "prediction"].to_numpy(), reference[g].predict(matrix(pdf.loc[rows]))
            )


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
    with pytest.raises(InvalidInputError, match="40 rows in groups without"):
        grouped.predict(df, on_unknown="error")
    with pytest.raises(InvalidInputError, match="its fit failed"):
        grouped.get_model("c")
    # NaN or an infinity the model refuses, in a row that has a model: named and
    # counted, with the model's own words (before: only the model's message).
    odd = pdf.copy()
    # (pandas NaN would become a null in createDataFrame: infinities here)
    first = int(np.flatnonzero(odd.store == "a")[1])  # rows are numbered as in the input
    odd.loc[odd.index[odd.store == "a"][[1, 4]], "x2"] = [np.inf, -np.inf]
    odd.loc[odd.index[odd.store == "c"][0], "x0"] = np.inf  # no model: null, as before
    with pytest.warns(UnknownGroupWarning):
        scored = grouped.predict(spark.createDataFrame(odd).coalesce(1))
    with (
        pytest.raises(
            InvalidInputError,
            match=r"^LogisticRegression.predict refused NaN or infinite features, found in 2 rows "
            rf"of a batch: the first in column 'x2' = inf at row {first} of a batch \(store='a'\)\. "
            r"The model said: ValueError: Input X contains infinity",
        ),
        translate_errors(),
    ):
        scored.write.format("noop").mode("overwrite").save()  # (toPandas would warn)


# pyspark warns when toPandas meets the (expected) task error mid-way.
@pytest.mark.slow  # CI time: `make test-all` runs it
@pytest.mark.filterwarnings("ignore:toPandas attempted Arrow optimization:UserWarning")
def test_null_features_fail_their_group_with_a_count_and_predict_on_null(spark):
    pdf = make_groups(2)
    rows_b = pdf.index[pdf.store == "b"][:3]
    pdf["x1"] = pdf["x1"].astype(object)
    pdf.loc[rows_b, "x1"] = None  # three nulls in group b
    df = spark.createDataFrame(
        pdf, "id long, x0 double, x1 double, x2 double, y double, label long, store string"
    )
    with pytest.warns(GroupFitWarning, match="1 of 4 groups failed") as record:
        grouped = fit_per_group(df, "store", LinearRegression(), FEATURES, "y")
    assert record[0].message.count == 1
    failed = grouped.failed_groups()
    assert list(failed["store"]) == ["b"]
    assert "feature column 'x1' has 3 null values" in failed["error"][0]
    clean = pdf[pdf.store != "b"].astype({"x1": float})
    reference = local_fit(clean, LinearRegression, "y")
    for g, model in reference.items():
        np.testing.assert_allclose(grouped.get_model(g).coef_, model.coef_, rtol=1e-12)
    # Scoring: rows of b have no model and get null, null features or not.
    with pytest.warns(UnknownGroupWarning):
        got = collect(grouped.predict(df))
    assert got.loc[got.store == "b", "prediction"].isna().all()
    # A null feature in a row that has a model is refused with a count, or gets
    # null when asked.
    pdf.loc[pdf.index[pdf.store == "a"][:2], "x1"] = None  # two nulls in group a
    df = spark.createDataFrame(pdf, df.schema)
    # (the task that meets them counts the nulls of its partition, without a pre-pass)
    with (
        pytest.warns(UnknownGroupWarning),
        pytest.raises(InvalidInputError, match=r"'x1' has null values in [1-4] rows"),
    ):
        collect(grouped.predict(df.where("store = 'a'").union(df.where("x1 is null"))))
    # The same through the cogroup path, and with the public translate_errors.
    import sparklift

    with (
        pytest.warns(UnknownGroupWarning),
        pytest.raises(InvalidInputError, match=r"'x1' has null values"),
        sparklift.translate_errors(),
    ):
        grouped.predict(df.where("x1 is null"), strategy="cogroup").collect()
    from sparklift.inference import NullFeaturesWarning

    with pytest.warns(UnknownGroupWarning), pytest.warns(NullFeaturesWarning) as nulls:
        got = collect(grouped.predict(df, on_null="null"))
    assert [w.message.count for w in nulls if w.category is NullFeaturesWarning] == [5]
    assert got.loc[got.x1.isna(), "prediction"].isna().all()
    a = ((got.store == "a") & got.x1.notna()).to_numpy()
    np.testing.assert_array_equal(
        got.loc[a, "prediction"].to_numpy(),
        reference["a"].predict(matrix(got.loc[a].astype({"x1": float}))),
    )


def test_limits_and_bad_input(spark, tmp_path):
    from pyspark.sql import functions as F

    pdf = make_groups(2, n_per_group=10)
    pdf.loc[pdf.store == "b", "store"] = "a"  # group 'a' now has 20 rows
    df = spark.createDataFrame(pdf)
    extra = make_groups(3, n_per_group=12).query("store == 'a'").assign(store="c")
    big = pd.concat([pdf, extra])  # 'a' 20 rows, 'c' 22, 'd' 10
    with pytest.raises(
        ResourceLimitError,
        match=r"2 group\(s\) of 'store' have more than max_rows_per_group=11 rows; "
        r"the biggest: 'c' \(22 rows\), 'a' \(20 rows\)",
    ):
        fit_per_group(
            spark.createDataFrame(big),
            "store",
            LinearRegression(),
            FEATURES,
            "y",
            max_rows_per_group=11,
        )
    with pytest.raises(InvalidInputError, match=r"\['nope'\] not in the DataFrame"):
        fit_per_group(df, "store", LinearRegression(), [*FEATURES, "nope"], "y")
    nulls = pdf.astype({"store": object})
    nulls.loc[:2, "store"] = None
    with pytest.raises(InvalidInputError, match="'store' is null in 3 rows"):
        fit_per_group(spark.createDataFrame(nulls), "store", LinearRegression(), FEATURES, "y")
    with pytest.raises(InvalidInputError, match="has no fit"):
        fit_per_group(df, "store", object(), FEATURES, "y")
    with pytest.raises(InvalidInputError, match=r"LinearRegression is a supervised .* label_col"):
        fit_per_group(df, "store", LinearRegression(), FEATURES)
    named = df.withColumn("name", F.col("store").cast("string"))
    with pytest.raises(
        InvalidColumnTypeError,
        match=r"'name' has type string; fit_per_group needs numeric columns \(encode strings",
    ):
        fit_per_group(named, "store", LinearRegression(), [*FEATURES, "name"], "y")
    pairs = df.selectExpr("*", "struct(store, id % 2 AS half) AS pair")
    with pytest.raises(InvalidColumnTypeError, match=r"group column 'pair' has type struct<"):
        fit_per_group(pairs, "pair", LinearRegression(), FEATURES, "y")
    (tmp_path / "metadata").mkdir()
    with pytest.raises(ModelFormatError, match="not a saved GroupedModel"):
        GroupedModel.load(str(tmp_path), spark=spark)


def _stream(table, sizes, **spec_args):
    """Run the worker-side fitting loop on ``table`` cut into batches of ``sizes``."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import StringType, StructField, StructType

    from sparklift import _serialize
    from sparklift.grouped import _fit_sorted_groups, _FitSpec, _models_schema

    class _Schema:  # enough of a DataFrame for _models_schema
        schema = StructType([StructField("store", StringType())])

    payload, digest = _serialize.transport_dumps(LinearRegression())
    spec = _FitSpec(
        payload=payload,
        digest=digest,
        group_col="store",
        feature_cols=tuple(FEATURES),
        label_col="y",
        max_rows=spec_args.get("max_rows", 10**6),
        schema=to_arrow_schema(_models_schema(_Schema(), "store")),
    )
    batches, start = [], 0
    for size in sizes:
        batches.append(table.slice(start, size).to_batches()[0])
        start += size
    assert start == table.num_rows
    out = pa.Table.from_batches(list(_fit_sorted_groups(iter(batches), spec)), spec.schema)
    if spec_args.get("rows"):
        return {r["store"]: r for r in out.to_pylist()}
    return {
        r["store"]: (_serialize.loads(r["model"], allow_pickle=True), r["n_rows"])
        for r in out.to_pylist()
    }


@pytest.mark.parametrize("sizes", [[160], [1, 39, 40, 80], [7, 60, 2, 91], [1] * 160])
def test_streamed_groups_equal_local_fits_across_batch_boundaries(sizes):
    # The worker loop sees a partition as arbitrary Arrow batches: a group split
    # over several batches, or a batch holding several groups, is still one fit.
    import pyarrow as pa

    pdf = make_groups(3)
    table = pa.Table.from_pandas(pdf[["store", *FEATURES, "y"]], preserve_index=False)
    got = _stream(table.combine_chunks(), sizes)
    want = local_fit(pdf, LinearRegression, "y")
    assert sorted(got) == GROUPS
    for g in GROUPS:
        model, n = got[g]
        assert n == 40
        np.testing.assert_allclose(model.coef_, want[g].coef_, rtol=1e-12)


def test_streamed_nulls_and_oversized_groups_are_reported_whole():
    import pyarrow as pa

    pdf = make_groups(4, n_per_group=10).astype({"store": object})
    pdf.loc[:12, "store"] = None  # 13 null keys: sorted first, across two batches
    pdf = pdf.sort_values("store", na_position="first", kind="stable")
    table = pa.Table.from_pandas(pdf[["store", *FEATURES, "y"]], preserve_index=False)
    with pytest.raises(InvalidInputError, match="'store' is null in 13 rows"):
        _stream(table.combine_chunks(), [5, 5, 30])
    ok = make_groups(4, n_per_group=10)
    table = pa.Table.from_pandas(ok[["store", *FEATURES, "y"]], preserve_index=False)
    # Group sizes are counted to the end even when the rows are no longer kept.
    with pytest.raises(ResourceLimitError, match=r"group 'a' of 'store' has 10 rows.*=4"):
        _stream(table.combine_chunks(), [3, 3, 34], max_rows=4)


def test_many_small_batches_on_spark_and_empty_input(spark):
    # Spark cuts each partition into Arrow batches of maxRecordsPerBatch rows:
    # with 7, every group spans several batches and batches span groups.
    pdf = make_groups(5)
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    old = spark.conf.get(key)
    spark.conf.set(key, "7")
    try:
        model = fit_per_group(
            spark.createDataFrame(pdf), "store", LinearRegression(), FEATURES, "y", partitions=2
        )
        summary = model.summary().set_index("store")
    finally:
        spark.conf.set(key, old)
    want = local_fit(pdf, LinearRegression, "y")
    assert summary["n_rows"].to_dict() == dict.fromkeys(GROUPS, 40)
    for g in GROUPS:
        np.testing.assert_allclose(model.get_model(g).coef_, want[g].coef_, rtol=1e-12)
    empty = spark.createDataFrame(pdf).where("store = 'none'")
    with pytest.raises(InvalidInputError, match="empty"):
        fit_per_group(empty, "store", LinearRegression(), FEATURES, "y")


def _class_of_main():
    """A regressor class as if defined in a script or notebook (module ``__main__``)."""

    class MeanRegressor:
        def fit(self, X, y):
            self.mean_ = float(np.mean(y))
            return self

        def predict(self, X):
            return np.full(len(X), self.mean_)

    MeanRegressor.__module__ = "__main__"
    MeanRegressor.__qualname__ = "MeanRegressor"
    return MeanRegressor


def test_an_estimator_class_from_main_fits_and_predicts(spark):
    # Plain pickle stores such a class by reference, which no other process
    # can resolve: every group used to fail.
    pdf = make_groups(6, n_per_group=10)
    df = spark.createDataFrame(pdf)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GroupFitWarning)
        grouped = fit_per_group(df, "store", _class_of_main()(), FEATURES, "y")
    got = collect(grouped.predict(df))
    means = pdf.groupby("store")["y"].mean()
    np.testing.assert_allclose(got["prediction"], pdf["store"].map(means), rtol=1e-15)


def test_a_key_of_another_type_is_refused_not_silently_null(spark):
    pdf = make_groups()
    pdf["store"] = pdf["store"].map({g: i for i, g in enumerate(GROUPS)})  # int keys
    model = fit_per_group(spark.createDataFrame(pdf), "store", LinearRegression(), FEATURES, "y")
    as_text = spark.createDataFrame(pdf.assign(store=pdf["store"].astype(str)))
    with pytest.raises(InvalidColumnTypeError, match=r"'store' is string here but bigint"):
        model.predict(as_text)
    from pyspark.sql import functions as F

    # Numbers of another width still find their models, by value.
    as_int = spark.createDataFrame(pdf).withColumn("store", F.col("store").cast("int"))
    assert collect(model.predict(as_int))["prediction"].notna().all()


def test_saving_a_loaded_model_over_its_own_path_keeps_it(spark, tmp_path):
    pdf = make_groups()
    df = spark.createDataFrame(pdf)
    path = str(tmp_path / "m")
    fit_per_group(df, "store", LinearRegression(), FEATURES, "y").save(path)
    before = collect(GroupedModel.load(path).predict(df))
    os.symlink(path, tmp_path / "link")

    def filtered(m: GroupedModel) -> GroupedModel:  # the public constructor, another table
        return GroupedModel(m.models.where("error IS NULL"), m.group_col, m.feature_cols, "y")

    # The same place, however it is spelled or reached: the models are read first.
    for again, spelling in [
        (lambda m: m, path + "/"),
        (lambda m: m, "file://" + path),
        (lambda m: m, str(tmp_path / "link")),
        (filtered, path),
    ]:
        loaded = again(GroupedModel.load(path))
        loaded.save(spelling, overwrite=True)
        pd.testing.assert_frame_equal(before, collect(loaded.predict(df)))
        pd.testing.assert_frame_equal(before, collect(GroupedModel.load(path).predict(df)))


def test_a_save_that_fails_leaves_the_path_as_it_was(spark, tmp_path):
    """Every model is converted before anything is written or deleted."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    pdf = make_groups()
    df = spark.createDataFrame(pdf)
    path = str(tmp_path / "m")
    good = fit_per_group(df, "store", LinearRegression(), FEATURES, "y")
    good.save(path)
    before = collect(GroupedModel.load(path).predict(df))
    # skops stores functions by name: a lambda would load nowhere, so it is refused.
    doubled = make_pipeline(FunctionTransformer(lambda X: X * 2.0), LinearRegression())
    unsavable = fit_per_group(df, "store", doubled, FEATURES, "y")
    refused = (
        r"cannot save the model of group '[a-d]': Pipeline holds [\w.<>]*<lambda>, which skops "
        r"cannot store.* fit with fit_per_group\(\.\.\., serializer='pickle'\)"
    )
    with pytest.raises(InvalidInputError, match=refused):
        unsavable.save(path, overwrite=True)
    pd.testing.assert_frame_equal(before, collect(GroupedModel.load(path).predict(df)))
    with pytest.raises(InvalidInputError, match=refused):
        unsavable.save(str(tmp_path / "fresh"))
    assert not (tmp_path / "fresh").exists()
    # A file where the folder would go, and a damaged save, are one clear error each.
    (tmp_path / "afile").write_text("x")
    with pytest.raises(PathExistsError, match=r"afile is a file, not a folder"):
        good.save(str(tmp_path / "afile" / "m"))
    shutil.rmtree(tmp_path / "m" / "models")
    (tmp_path / "m" / "models").mkdir()
    with pytest.raises(ModelFormatError, match=r"its models cannot be read .* interrupted"):
        GroupedModel.load(path)


@pytest.mark.smoke  # the save path of a loaded model (inputFiles, checkpoint) on Connect too
def test_an_overwrite_cut_short_loads_as_unfinished_and_the_model_in_hand_still_scores(
    spark, tmp_path, monkeypatch
):
    pdf = make_groups()
    df = spark.createDataFrame(pdf)
    path = str(tmp_path / "m")
    fit_per_group(df, "store", LinearRegression(), FEATURES, "y").save(path)
    loaded = GroupedModel.load(path)
    before = collect(loaded.predict(df))
    writer = type(loaded.models.write)

    def cut_short(self, *args, **kwargs):  # as a lost executor or a full disk would
        raise OSError("No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(writer, "parquet", cut_short)
        with pytest.raises(OSError, match="No space left"):
            loaded.save(path, overwrite=True)
    with pytest.raises(ModelFormatError, match=r"did not finish \(an overwrite cut short\)"):
        GroupedModel.load(path)
    pd.testing.assert_frame_equal(before, collect(loaded.predict(df)))  # held in memory
    loaded.save(path, overwrite=True)  # and saved again from it
    pd.testing.assert_frame_equal(before, collect(GroupedModel.load(path).predict(df)))
    pd.testing.assert_frame_equal(before, collect(loaded.predict(df)))
    in_path = os.path.realpath(path)
    assert all(
        os.path.realpath(f.split(":", 1)[1]).startswith(in_path) for f in loaded.models.inputFiles()
    )  # read from the new files again
    assert loaded.models.inputFiles()
    # Saved elsewhere, a loaded model keeps reading its own files.
    elsewhere = str(tmp_path / "copy")
    loaded.save(elsewhere, overwrite=True)
    assert all(in_path in os.path.realpath(f.split(":", 1)[1]) for f in loaded.models.inputFiles())
    GroupedModel.load(path).save(elsewhere, overwrite=True)  # the copy replaced: no matter
    pd.testing.assert_frame_equal(before, collect(loaded.predict(df)))


def test_models_that_refuse_zeros_score_per_group(spark):
    """The output type is inferred on the data's rows when a row of zeros fails (Box-Cox)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PowerTransformer

    pdf = make_groups()
    pdf[FEATURES] = np.exp(pdf[FEATURES])  # strictly positive, as Box-Cox needs
    df = spark.createDataFrame(pdf)
    pipe = make_pipeline(PowerTransformer(method="box-cox"), LinearRegression())
    model = fit_per_group(df, "store", pipe, FEATURES, "y")
    got = collect(model.predict(df))
    for store, part in got.groupby("store"):
        expected = model.get_model(store).predict(matrix(part))
        np.testing.assert_array_equal(part["prediction"].to_numpy(), expected)


def test_output_col_differing_only_in_case_is_refused(spark):
    pdf = make_groups()
    df = spark.createDataFrame(pdf)
    model = fit_per_group(df, "store", LinearRegression(), FEATURES, "y")
    with pytest.raises(InvalidInputError, match=r"'Prediction'"):
        model.predict(df.withColumnRenamed("y", "Prediction"))


def test_groups_whose_outputs_differ_in_shape_are_a_clear_error(spark):
    """decision_function: one value a row for two classes, one per class for three."""
    rng = np.random.default_rng(1)
    pdf = pd.DataFrame({"g": np.repeat([10, 20, 30], 20), "a": rng.uniform(1, 5, 60)})
    pdf["b"] = rng.uniform(1, 5, 60)
    three = (pdf["a"] * 3 // 4).astype(int) % 3
    pdf["c"] = np.where(pdf["g"] == 10, three, (pdf["a"] > 3).astype(int))
    df = spark.createDataFrame(pdf)
    model = fit_per_group(df, "g", LogisticRegression(), ["a", "b"], "c")
    for strategy, method in (("broadcast", "decision_function"), ("cogroup", "predict_proba")):
        with (
            pytest.raises(
                InvalidInputError,
                match=r"group \d+ of 'g' has a model with classes \[0, 1(, 2)?\], group \d+ "
                r"one with classes \[0, 1(, 2)?\]: " + method,
            ),
            translate_errors(),
        ):
            model.predict(df, method=method, strategy=strategy).collect()
    # predict needs no common classes; groups with the same classes score as usual.
    assert model.predict(df).toPandas()["prediction"].notna().all()
    two = df.where("g != 10")
    got = model.predict(two, method="predict_proba", strategy="cogroup").toPandas()
    for g, part in got.groupby("g"):
        np.testing.assert_array_equal(
            np.stack(part["prediction"].to_numpy()),
            model.get_model(g).predict_proba(matrix(part, ["a", "b"])),
        )


def test_an_output_of_another_shape_than_the_columns_type_is_refused():
    from sparklift.grouped import _check_shape

    _check_shape(np.zeros(3), "double", "predict", "a", "g")
    _check_shape(np.zeros((3, 2)), "array", "transform", "a", "g")
    with pytest.raises(InvalidInputError, match=r"group 'b': its model's transform gives 2 values"):
        _check_shape(np.zeros((3, 2)), "double", "transform", "b", "g")
    with pytest.raises(InvalidInputError, match=r"group 'c': .* gives one value a row"):
        _check_shape(np.zeros(3), "array", "transform", "c", "g")


def test_same_number_of_classes_but_other_classes_is_refused(spark):
    """Two groups with two classes each, not the same two: probabilities would mislead."""
    rng = np.random.default_rng(3)
    pdf = pd.DataFrame({"g": np.repeat(["p", "q"], 30), "a": rng.normal(size=60)})
    pdf["c"] = np.where(pdf["a"] > 0, "hi", np.where(pdf["g"] == "p", "lo", "mid"))
    df = spark.createDataFrame(pdf)
    model = fit_per_group(df, "g", LogisticRegression(), ["a"], "c")
    with pytest.raises(InvalidInputError, match=r"classes \['hi', '(lo|mid)'\]"):
        model.predict(df, method="predict_proba")


def test_cogroup_matches_keys_of_another_numeric_type(spark):
    """Keys meet by hash in a cogroup: a double or decimal key finds its bigint model."""
    from pyspark.sql import functions as F

    pdf = make_groups()
    pdf["store"] = pdf["store"].map({g: i for i, g in enumerate(GROUPS)})
    df = spark.createDataFrame(pdf)
    model = fit_per_group(df, "store", LinearRegression(), FEATURES, "y")
    expected = collect(model.predict(df)).sort_values("id")["prediction"].to_numpy()
    for key_type in ("double", "decimal(5,2)", "int"):
        cast = df.withColumn("store", F.col("store").cast(key_type))
        with warnings.catch_warnings():
            warnings.simplefilter("error", UnknownGroupWarning)
            got = collect(model.predict(cast, strategy="cogroup")).sort_values("id")
        np.testing.assert_array_equal(got["prediction"].to_numpy(), expected, err_msg=key_type)
        assert model.unknown_rows_ == 0


def test_cogroup_keeps_timestamps_in_a_session_time_zone_other_than_utc(spark):
    import datetime as dt

    pdf = make_groups()
    # Instants across Berlin's spring-forward night (aware: no local time is missing).
    start = dt.datetime(2024, 3, 30, 22, 30, tzinfo=dt.timezone.utc)
    pdf["seen"] = [start + dt.timedelta(hours=h) for h in range(len(pdf))]
    old = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "Europe/Berlin")
    try:
        df = spark.createDataFrame(pdf)
        model = fit_per_group(df, "store", LinearRegression(), FEATURES, "y")
        by_broadcast = model.predict(df).orderBy("id").collect()
        by_cogroup = model.predict(df, strategy="cogroup").orderBy("id").collect()
    finally:
        spark.conf.set("spark.sql.session.timeZone", old)
    assert by_cogroup == by_broadcast


@pytest.mark.parametrize("name", ["model", "Model", "ERROR"])
def test_a_group_column_named_like_a_models_column_is_refused(spark, name):
    df = spark.createDataFrame(make_groups().rename(columns={"store": name}))
    with pytest.raises(InvalidInputError, match=rf"group column '{name}' has the name of a column"):
        fit_per_group(df, name, LinearRegression(), FEATURES, "y")


def test_get_model_with_a_key_of_another_type_is_no_such_group(spark):
    model = fit_per_group(
        spark.createDataFrame(make_groups()), "store", LinearRegression(), FEATURES, "y"
    )
    with pytest.raises(InvalidInputError, match=r"no group 1 in 'store' \(string keys\)"):
        model.get_model(1)
    pdf = make_groups()
    pdf["store"] = pdf["store"].map({g: i for i, g in enumerate(GROUPS)})  # bigint keys 0-3
    model = fit_per_group(spark.createDataFrame(pdf), "store", LinearRegression(), FEATURES, "y")
    for key in (1.5, True, "b", "1.5"):
        with pytest.raises(InvalidInputError, match=r"no group .* \(bigint keys\)"):
            model.get_model(key)
    reference = local_fit(pdf, LinearRegression, "y")
    for key in (1, 1.0, "1"):  # the same number, however written
        np.testing.assert_array_equal(model.get_model(key).coef_, reference[1].coef_)


def test_cogroup_never_rounds_a_models_key_onto_another_group(spark):
    """Models keyed 1.0, 1.5 and 2.0 (double), rows keyed by a narrower type: no rounding."""
    from pyspark.sql import functions as F

    rng = np.random.default_rng(5)
    keys = np.repeat([1.0, 1.5, 2.0], 20)
    slope = {1.0: 1.0, 1.5: 100.0, 2.0: 5.0}
    pdf = pd.DataFrame({"k": keys, "x0": rng.normal(size=60)})
    pdf["y"] = pdf["x0"] * pdf["k"].map(slope)
    model = fit_per_group(spark.createDataFrame(pdf), "k", LinearRegression(), ["x0"], "y")
    rows = spark.createDataFrame(pd.DataFrame({"k": [1.0, 2.0], "x0": [1.0, 1.0]}))
    for key_type in ("decimal(3,0)", "int"):
        narrow = rows.withColumn("k", F.col("k").cast(key_type))
        for strategy in ("broadcast", "cogroup"):
            got = model.predict(narrow, strategy=strategy).orderBy("k").toPandas()
            np.testing.assert_allclose(got["prediction"], [1.0, 5.0], err_msg=(key_type, strategy))


def test_models_know_their_feature_names_and_columns_are_selected_by_name(spark):
    # A pipeline that picks columns by name fits per group, as on pdf[FEATURES];
    # its predictions equal a local fit on that group's rows.
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pdf = make_groups()
    df = spark.createDataFrame(pdf)
    columns = ColumnTransformer([("s", StandardScaler(), ["x0"]), ("p", "passthrough", ["x2"])])
    pipe = make_pipeline(columns, LinearRegression())
    grouped = fit_per_group(df, "store", pipe, FEATURES, "y")
    got = collect(grouped.predict(df))
    for group, part in pdf.groupby("store"):
        local = clone(pipe).fit(part[FEATURES], part["y"])
        np.testing.assert_array_equal(
            got.loc[got.store == group, "prediction"].to_numpy(), local.predict(part[FEATURES])
        )
        assert list(grouped.get_model(group).feature_names_in_) == FEATURES


def test_every_group_failing_is_an_error_at_fit(spark):
    pdf = make_groups()
    pdf["y"] = pdf["y"] + 0.5  # continuous: no classifier fits it
    df = spark.createDataFrame(pdf)
    with pytest.raises(
        FitFailedError, match=r"all 4 groups failed to fit, .*Unknown label type"
    ) as info:
        fit_per_group(df, "store", LogisticRegression(), FEATURES, "y")
    assert len(info.value.grouped_model.failed_groups()) == 4


def test_array_labels_fit_multi_output_and_other_types_are_refused(spark):
    pdf = make_groups()
    pdf["targets"] = list(np.column_stack([pdf["y"], 2 * pdf["y"] - pdf["x1"]]))
    df = spark.createDataFrame(pdf)
    grouped = fit_per_group(df, "store", LinearRegression(), FEATURES, "targets")
    got = collect(grouped.predict(df))
    for group, part in pdf.groupby("store"):
        local = LinearRegression().fit(matrix(part), np.stack(part["targets"]))
        np.testing.assert_allclose(
            np.stack(got.loc[got.store == group, "prediction"]),
            local.predict(matrix(part)),
            rtol=1e-12,
            atol=1e-12,
        )
    # Integer targets stay integers: a multi-output classifier's classes are ints.
    from sklearn.tree import DecisionTreeClassifier

    pdf["classes"] = list(np.column_stack([pdf["label"], 1 - pdf["label"]]))
    trees = fit_per_group(
        spark.createDataFrame(pdf),
        "store",
        DecisionTreeClassifier(random_state=0),
        FEATURES,
        "classes",
    )
    classes = trees.get_model("a").classes_
    assert [c.dtype.kind for c in classes] == ["i", "i"]
    from pyspark.sql import functions as F

    dated = df.withColumn("when", F.current_date())
    with pytest.raises(InvalidColumnTypeError, match=r"label column 'when' has type date"):
        fit_per_group(dated, "store", LinearRegression(), FEATURES, "when")


def test_unknown_groups_with_null_features_get_null_not_an_error(spark):
    pdf = make_groups()
    grouped = fit_per_group(spark.createDataFrame(pdf), "store", LinearRegression(), FEATURES, "y")
    new = pdf.head(6).copy()
    new.loc[new.index[:3], "store"] = "zz"  # unknown group
    new["x2"] = new["x2"].astype(object)
    new.loc[new.index[0], "x2"] = None  # a null feature in an unknown group's row
    with pytest.warns(UnknownGroupWarning, match="3 rows"):
        got = collect(grouped.predict(spark.createDataFrame(new), on_unknown="null"))
    assert got["prediction"].isna().tolist() == [True] * 3 + [False] * 3
    new.loc[new.index[4], "x2"] = None  # and one in a known group's row: still an error
    scored = grouped.predict(spark.createDataFrame(new), on_unknown="null")
    with pytest.raises(InvalidInputError, match="Feature column 'x2' has null values in 1 row"):
        collect(scored)


class FirstColumnShift:
    """Not a scikit-learn estimator: it indexes the NumPy matrix it is given."""

    def fit(self, X, y):
        self.shift_ = float(np.mean(y) - np.mean(X[:, 0]))
        return self

    def predict(self, X):
        return X[:, 0] + self.shift_


def test_matrix_or_frame_by_estimator_kind_and_kept_by_save(spark, tmp_path):
    pdf = make_groups()
    df = spark.createDataFrame(pdf)
    duck = fit_per_group(df, "store", FirstColumnShift(), FEATURES, "y")
    assert not duck.as_frame
    assert duck.failed_groups().empty
    got = collect(duck.predict(df))
    for group, part in pdf.groupby("store"):
        local = FirstColumnShift().fit(part[FEATURES].to_numpy(), part["y"].to_numpy())
        np.testing.assert_array_equal(
            got.loc[got.store == group, "prediction"], local.predict(part[FEATURES].to_numpy())
        )
    # A scikit-learn estimator gets named columns, unless asked for a matrix.
    assert fit_per_group(df, "store", LinearRegression(), FEATURES, "y").as_frame
    bare = fit_per_group(df, "store", LinearRegression(), FEATURES, "y", as_frame=False)
    assert not hasattr(bare.get_model("a"), "feature_names_in_")
    bare.save(str(tmp_path / "bare"))
    loaded = GroupedModel.load(str(tmp_path / "bare"))
    assert not loaded.as_frame
    np.testing.assert_array_equal(
        collect(loaded.predict(df))["prediction"], collect(bare.predict(df))["prediction"]
    )


def test_per_class_outputs_need_the_same_classes_only_in_the_groups_scored(spark):
    """A group with other classes is refused only when the data holds it (either strategy)."""
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(5)
    pdf = pd.DataFrame({"g": np.repeat([0, 1, 2], 30), "a": rng.normal(size=90)})
    pdf["c"] = np.where(pdf["a"] > 0, "hi", "lo")
    pdf.loc[pdf["g"] == 0, "c"] = "hi"  # group 0 saw one class only
    df = spark.createDataFrame(pdf)
    model = fit_per_group(df, "g", DecisionTreeClassifier(random_state=0), ["a"], "c")
    others = df.where("g != 0")
    for strategy in ("broadcast", "cogroup"):
        refused = pytest.raises(InvalidInputError, match=r"group 0 of 'g' has a model with classes")
        with refused, translate_errors():
            model.predict(df, method="predict_proba", strategy=strategy).collect()
        unknown = spark.createDataFrame([(7, 0.5)], "g long, a double")  # no model: null
        with pytest.warns(UnknownGroupWarning, match="1 row in groups without"):
            none = model.predict(unknown, method="predict_proba", strategy=strategy).collect()
        assert none[0]["prediction"] is None
        got = model.predict(others, method="predict_proba", strategy=strategy).toPandas()
        for g, part in got.groupby("g"):
            rows = pdf[pdf.g == g]
            local = DecisionTreeClassifier(random_state=0).fit(matrix(rows, ["a"]), rows["c"])
            expected = local.predict_proba(matrix(part, ["a"]))
            np.testing.assert_array_equal(np.stack(part["prediction"]), expected)
    with pytest.raises(InvalidInputError, match=r"group_col must be one column name"):
        fit_per_group(df, ["g", "a"], LogisticRegression(), ["a"], "c")
    from sparklift.inference import predict

    with pytest.raises(InvalidInputError, match=r"a GroupedModel: call its predict\(df\)"):
        predict(df, model, input_cols=["a"])


def test_the_fit_warning_quotes_first_lines_and_failed_groups_keeps_the_whole(spark):
    from pyspark.sql import functions as F

    df = spark.createDataFrame(make_groups(2, n_per_group=10))
    # NaN (not null) in group a: scikit-learn explains NaN in a paragraph.
    df = df.withColumn(
        "x0", F.when(F.col("store") == "a", F.lit(float("nan"))).otherwise(F.col("x0"))
    )
    with pytest.warns(GroupFitWarning) as record:
        grouped = fit_per_group(df, "store", LinearRegression(), FEATURES, "y")
    message = str(record[0].message)
    assert "'a': ValueError: Input X contains NaN." in message
    assert "\n" not in message
    assert "\n" in grouped.failed_groups()["error"][0]


def test_an_undefined_training_score_is_nan_without_a_worker_warning():
    """R² of a one-row group: NaN in train_score, and no warning on the executor's stderr."""
    import pyarrow as pa

    pdf = make_groups(4, n_per_group=10)
    pdf = pdf[(pdf.store != "a") | (pdf.index == pdf.index[pdf.store == "a"][0])]  # 'a': 1 row
    table = pa.Table.from_pandas(pdf[["store", *FEATURES, "y"]], preserve_index=False)
    table = table.combine_chunks()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = _stream(table, [table.num_rows], rows=True)  # the worker's loop, in this process
    assert rows["a"]["n_rows"] == 1
    assert rows["a"]["error"] is None
    assert np.isnan(rows["a"]["train_score"])
    assert all(np.isfinite(rows[g]["train_score"]) for g in "bcd")
    assert [str(w.message) for w in caught] == []


def test_a_table_of_this_sessions_models_needs_allow_pickle_and_says_so(spark):
    pdf = make_groups(5, n_per_group=20)
    df = spark.createDataFrame(pdf)
    grouped = fit_per_group(df, "store", LinearRegression(), FEATURES, "y")
    some = grouped.models.where("store != 'a'")
    kept = GroupedModel(some, "store", FEATURES, "y", as_frame=grouped.as_frame)
    with pytest.raises(ModelFormatError, match=r"fit_per_group's own models .* allow_pickle=True"):
        kept.predict(df)
    trusted = GroupedModel(some, "store", FEATURES, "y", as_frame=True, allow_pickle=True)
    others = df.where("store != 'a'")
    pd.testing.assert_frame_equal(
        collect(trusted.predict(others)), collect(grouped.predict(others))
    )
