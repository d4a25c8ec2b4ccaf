"""sparklift.inference: scoring must equal the model's own output on the same rows."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from sparklift import _serialize
from sparklift._spark import translate_errors
from sparklift.errors import (
    InvalidColumnTypeError,
    InvalidInputError,
    ModelFormatError,
    NotFittedError,
    PathExistsError,
)
from sparklift.inference import (
    ModelTransformer,
    NullFeaturesWarning,
    load_model,
    predict,
    save_model,
)

N_ROWS = 300
N_FEATURES = 4
COLS = [f"x{i}" for i in range(N_FEATURES)]


def make_data(seed: int = 0, n: int = N_ROWS) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES))
    y = (X @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.normal(scale=0.5, size=n) > 0).astype(int)
    return X, y


def frame(spark, X: np.ndarray, extra: dict | None = None):
    pdf = pd.DataFrame(X, columns=COLS)
    pdf.insert(0, "id", np.arange(len(X)))
    for name, values in (extra or {}).items():
        pdf[name] = values
    # Several partitions, so batches and tasks are really exercised.
    return spark.createDataFrame(pdf).repartition(3)


def scored_pandas(df) -> pd.DataFrame:
    with translate_errors():
        return df.orderBy("id").toPandas()


def run(df) -> None:
    """An action that fails with the sparklift error (toPandas would also warn)."""
    with translate_errors():
        df.write.format("noop").mode("overwrite").save()


class FailsOnNaN:
    """Imputes NaN itself, then a later step fails for a reason of its own."""

    n_features_in_ = N_FEATURES

    def predict(self, X):
        if np.isnan(X).any():
            raise ValueError("step two failed\nsecond line")
        return np.zeros(len(X))


class ThresholdModel:
    """A model that is not scikit-learn: only ``predict``, string labels."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def predict(self, X):
        return np.where(np.asarray(X)[:, 0] > self.threshold, "high", "low")


@pytest.mark.smoke
def test_several_methods_struct_equals_sklearn(spark):
    X, y = make_data()
    model = LogisticRegression().fit(X, y)
    df = frame(spark, X)
    out = predict(
        df, model, input_cols=COLS, method=["predict", "predict_proba", "decision_function"]
    )
    fields = {f.name: f.dataType.simpleString() for f in out.schema["prediction"].dataType.fields}
    assert fields == {
        "predict": "bigint",
        "predict_proba": "array<double>",
        "decision_function": "double",
    }
    got = scored_pandas(out.select("id", "prediction.*"))
    np.testing.assert_array_equal(got["predict"].to_numpy(), model.predict(X))
    np.testing.assert_array_equal(np.stack(got["predict_proba"]), model.predict_proba(X))
    np.testing.assert_array_equal(got["decision_function"].to_numpy(), model.decision_function(X))
    # the other columns pass through unchanged
    np.testing.assert_array_equal(scored_pandas(out)[COLS].to_numpy(), X)


def test_vector_and_array_feature_columns(spark):
    from pyspark.ml.feature import VectorAssembler
    from pyspark.sql import functions as F

    X, _ = make_data(1)
    target = X @ np.array([0.3, 1.0, -1.0, 2.0]) + 0.1
    model = LinearRegression().fit(X, target)
    df = VectorAssembler(inputCols=COLS, outputCol="features").transform(frame(spark, X))
    out = predict(df, model, features_col="features")
    assert out.schema["prediction"].dataType.simpleString() == "double"
    assert out.columns == [*df.columns, "prediction"]
    np.testing.assert_array_equal(scored_pandas(out)["prediction"], model.predict(X))

    arrays = frame(spark, X).select("id", F.array(*COLS).alias("xs"))
    got = scored_pandas(predict(arrays, model, features_col="xs", output_col="yhat"))
    np.testing.assert_array_equal(got["yhat"], model.predict(X))


def test_vector_column_read_back_from_parquet(spark, tmp_path):
    # A Parquet scan is columnar, and Spark's scalar Arrow UDF cannot convert
    # a vector (UDT) column of a columnar child, even one it does not read.
    from pyspark.ml.feature import VectorAssembler

    X, _ = make_data(11)
    model = LinearRegression().fit(X, X @ np.array([0.3, 1.0, -1.0, 2.0]))
    VectorAssembler(inputCols=COLS, outputCol="features").transform(frame(spark, X)).write.parquet(
        str(tmp_path / "vectors")
    )
    df = spark.read.parquet(str(tmp_path / "vectors"))
    for kwargs in ({"features_col": "features"}, {"input_cols": COLS}):
        got = scored_pandas(predict(df, model, **kwargs))
        np.testing.assert_array_equal(got["prediction"], model.predict(X))


def test_column_names_with_dots_and_spaces(spark):
    from pyspark.ml.feature import VectorAssembler
    from pyspark.sql import functions as F

    X, y = make_data(5)
    model = LogisticRegression().fit(X, y)
    names = ["x.0", "x 1", "x`2", "x3"]
    df = frame(spark, X).toDF("id", *names)
    for on_null in ("error", "null"):
        out = predict(
            df,
            model,
            input_cols=names,
            method=["predict", "predict_proba"],
            output_col="out.put",
            on_null=on_null,
        )
        got = scored_pandas(out.select("id", "`out.put`.*"))
        np.testing.assert_array_equal(got["predict"].to_numpy(), model.predict(X))
        np.testing.assert_array_equal(np.stack(got["predict_proba"]), model.predict_proba(X))
    vectors = VectorAssembler(inputCols=COLS, outputCol="feat.vec").transform(frame(spark, X))
    got = scored_pandas(predict(vectors, model, features_col="feat.vec"))
    np.testing.assert_array_equal(got["prediction"].to_numpy(), model.predict(X))
    # A model that refuses the row of zeros is typed on the data's first rows,
    # read by the same names.
    shifted = X - X.min() + 1.0
    logged = make_pipeline(FunctionTransformer(np.log, validate=True), LinearRegression())
    logged.fit(shifted, y)
    with np.errstate(divide="raise"), pytest.raises(FloatingPointError):
        logged.predict(np.zeros((1, N_FEATURES)))
    with np.errstate(divide="raise"):
        got = scored_pandas(predict(frame(spark, shifted).toDF("id", *names), logged, names))
    np.testing.assert_array_equal(got["prediction"].to_numpy(), logged.predict(shifted))
    # Rows holding NaN are not sampled: a NaN is the model's own error, in the job.
    nan_df = (
        spark.createDataFrame(pd.DataFrame(shifted, columns=names).assign(id=np.arange(len(X))))
        .coalesce(1)
        .withColumn("x 1", F.when(F.col("id") == 0, float("nan")).otherwise(F.col("`x 1`")))
    )
    with np.errstate(divide="raise"):
        scored = predict(nan_df, logged, names)
    with pytest.raises(InvalidInputError, match=r"refused NaN or infinite features.*'x 1' = nan"):
        run(scored)


def test_decimal_columns_are_converted_as_python_converts_them(spark):
    from decimal import Decimal

    # Arrow's decimal-to-double cast is off by one ulp for about a third of
    # these values; float(Decimal) is correctly rounded.
    rng = np.random.default_rng(6)
    rows = [
        tuple(Decimal(int(v)) / Decimal(10**6) for v in rng.integers(-(10**9), 10**9, size=2))
        for _ in range(200)
    ]
    X = np.array([[float(v) for v in row] for row in rows])
    model = LinearRegression().fit(X, X @ np.array([3.0, -1.0]) + 0.25)
    df = spark.createDataFrame(
        [(i, *row) for i, row in enumerate(rows)], "id long, a decimal(12,6), b decimal(12,6)"
    )
    got = scored_pandas(predict(df, model, input_cols=["a", "b"]))
    np.testing.assert_array_equal(got["prediction"].to_numpy(), model.predict(X))
    # The same as one array<decimal> column, with a null row given a null output.
    arrays = df.selectExpr("id", "CASE WHEN id = 3 THEN NULL ELSE array(a, b) END AS ab")
    got = scored_pandas(predict(arrays, model, features_col="ab", on_null="null"))
    keep = np.arange(len(X)) != 3
    assert np.isnan(got["prediction"][3])
    np.testing.assert_array_equal(got["prediction"].to_numpy()[keep], model.predict(X[keep]))


@pytest.mark.parametrize(("precision", "scale"), [(12, 6), (15, 15), (18, 4), (38, 10)])
def test_decimal_conversion_equals_python_float(precision, scale):
    from decimal import Decimal

    from sparklift.inference import _to_float

    rng = np.random.default_rng(precision)
    digits = min(precision, 18)
    values = [
        Decimal(int(v)).scaleb(-scale)
        for v in rng.integers(-(10**digits) + 1, 10**digits - 1, size=3000)
    ]
    values[7] = None
    arr = pa.array(values, pa.decimal128(precision, scale))
    expected = np.array([np.nan if v is None else float(v) for v in values])
    np.testing.assert_array_equal(_to_float(arr), expected)
    np.testing.assert_array_equal(_to_float(arr.slice(5, 100)), expected[5:105])
    chunked = pa.chunked_array([arr.slice(0, 10), arr.slice(10)])
    np.testing.assert_array_equal(_to_float(chunked), expected)


def test_transform_and_score_samples_and_pipeline(spark):
    X, y = make_data(2)
    df = frame(spark, X)
    pca = PCA(n_components=2).fit(X)
    got = scored_pandas(predict(df, pca, input_cols=COLS, method="transform"))
    np.testing.assert_array_equal(np.stack(got["prediction"]), pca.transform(X))

    gmm = GaussianMixture(n_components=2, random_state=0).fit(X)
    got = scored_pandas(predict(df, gmm, input_cols=COLS, method="score_samples"))
    np.testing.assert_array_equal(got["prediction"], gmm.score_samples(X))

    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=0.5)).fit(X, y)
    got = scored_pandas(predict(df, pipe, input_cols=COLS, method="predict_proba"))
    np.testing.assert_array_equal(np.stack(got["prediction"]), pipe.predict_proba(X))


def test_label_types_follow_the_model(spark):
    X, y = make_data(3)
    df = frame(spark, X)
    labels = np.array(["no", "yes"])[y]
    clf = LogisticRegression().fit(X, labels)
    out = predict(df, clf, input_cols=COLS)
    assert out.schema["prediction"].dataType.simpleString() == "string"
    np.testing.assert_array_equal(scored_pandas(out)["prediction"], clf.predict(X))

    custom = ThresholdModel(0.2)
    out = predict(df, custom, input_cols=COLS)
    np.testing.assert_array_equal(scored_pandas(out)["prediction"], custom.predict(X))


def test_model_fitted_on_named_columns_is_scored_by_name(spark):
    X, y = make_data(4)
    model = LogisticRegression().fit(pd.DataFrame(X, columns=COLS), y)
    df = frame(spark, X)
    # input_cols omitted: the model's feature_names_in_ are used
    got = scored_pandas(predict(df, model))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "feature names" warning in the reference either
        expected = model.predict(pd.DataFrame(X, columns=COLS))
    np.testing.assert_array_equal(got["prediction"], expected)
    # given in another order, columns are matched by name
    got = scored_pandas(predict(df, model, input_cols=COLS[::-1]))
    np.testing.assert_array_equal(got["prediction"], expected)
    # other names cannot be matched: by position, and a warning says so
    renamed = df.toDF("id", "f0", "f1", "f2", "f3")
    with pytest.warns(UserWarning, match=r"fitted with feature names .* passed by position"):
        scored = predict(renamed, model, input_cols=["f0", "f1", "f2", "f3"])
    np.testing.assert_array_equal(scored_pandas(scored)["prediction"], expected)


def test_errors_before_any_job(spark):
    X, y = make_data(5, n=20)
    df = frame(spark, X, {"name": ["a"] * 20})
    model = LinearRegression().fit(X, y)
    with pytest.raises(InvalidInputError, match=r"LinearRegression has no method 'predict_proba'"):
        predict(df, model, input_cols=COLS, method="predict_proba")
    with pytest.raises(NotFittedError, match="not fitted"):
        predict(df, LogisticRegression(), input_cols=COLS)
    with pytest.raises(InvalidColumnTypeError, match=r"'name' has type string"):
        predict(df, model, input_cols=[*COLS[:3], "name"])
    with pytest.raises(InvalidInputError, match=r"\['nope'\] not in the DataFrame"):
        predict(df, model, input_cols=[*COLS[:3], "nope"])
    with pytest.raises(InvalidInputError, match="already a column"):
        predict(df, model, input_cols=COLS, output_col="x0")
    with pytest.raises(InvalidInputError, match="either input_cols or features_col"):
        predict(df, model, input_cols=COLS, features_col="x0")
    with pytest.raises(InvalidInputError, match="on_null"):
        predict(df, model, input_cols=COLS, on_null="skip")
    with pytest.raises(InvalidInputError, match="failed on a sample row"):
        predict(df, model, input_cols=COLS[:3])  # wrong number of features


def test_what_cannot_be_scored_row_by_row_is_refused_with_the_call_that_works(spark):
    from pyspark.ml.feature import VectorAssembler
    from pyspark.sql import functions as F

    X, y = make_data(6, n=20)
    df = frame(spark, X)
    model = LogisticRegression().fit(X, y)
    with pytest.raises(InvalidInputError, match=r"df must be a Spark DataFrame; got pandas"):
        predict(pd.DataFrame(X, columns=COLS), model, input_cols=COLS)
    with pytest.raises(InvalidInputError, match=r"the class LogisticRegression, not a fitted"):
        predict(df, LogisticRegression, input_cols=COLS)
    with pytest.raises(InvalidInputError, match=r"a Spark ML stage: call its transform\(df\)"):
        predict(df, VectorAssembler(inputCols=COLS, outputCol="v"), input_cols=COLS)
    with pytest.raises(InvalidInputError, match=r"given by name \(strings\); got Column"):
        predict(df, model, input_cols=[F.col(c) for c in COLS])
    hmm = pytest.importorskip("hmmlearn.hmm")
    sticky = hmm.GaussianHMM(n_components=2).fit(X[:, :1])

    class Mine(hmm.GaussianHMM):
        pass

    # hmmlearn decodes X as one sequence: row by row, a batch would be taken for one.
    for hidden in (sticky, Mine(n_components=2), make_pipeline(StandardScaler(), sticky)):
        with pytest.raises(InvalidInputError, match=r"GaussianHMMModel\.from_hmmlearn\(model"):
            predict(df, hidden, input_cols=COLS[:1])


def test_functions_skops_cannot_find_by_name_are_refused_at_save(tmp_path):
    X, y = make_data(7, n=40)

    def doubled(X):  # defined inside a function: skops would store '...doubled' by name
        return X * 2.0

    model = make_pipeline(FunctionTransformer(doubled), LinearRegression()).fit(X, y)
    with pytest.raises(
        InvalidInputError, match=r"holds [\w.]*<locals>\.doubled, which skops cannot store"
    ):
        save_model(model, str(tmp_path / "m.skops"))
    assert not (tmp_path / "m.skops").exists()
    # Found after a large array too (pickled out of band: a PickleBuffer).
    big = np.zeros((200, 100))
    after_array = make_pipeline(
        FunctionTransformer(np.log1p, kw_args={"unused": big}), FunctionTransformer(doubled)
    )
    with pytest.raises(InvalidInputError, match=r"<locals>\.doubled"):
        save_model(after_array, str(tmp_path / "big.skops"))
    save_model(model, str(tmp_path / "m.pkl"), serializer="pickle")  # by value
    loaded = load_model(str(tmp_path / "m.pkl"), allow_pickle=True)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_null_features_error_or_null(spark):
    from pyspark.sql import functions as F

    X, y = make_data(6, n=60)
    model = LogisticRegression().fit(X, y)
    x2 = X[:, 2].copy().astype(object)
    bad = [5, 17, 40]
    x2[bad] = None
    pdf = pd.DataFrame(X, columns=COLS)
    pdf["x2"] = pd.array(x2, dtype="Float64")
    pdf.insert(0, "id", np.arange(len(X)))
    df = spark.createDataFrame(pdf).coalesce(1)

    with pytest.raises(
        InvalidInputError, match=r"'x2' has null values in 3 rows .*row 5 .*x2=None"
    ) as refused:
        run(predict(df, model, input_cols=COLS))
    # The message's own query finds the rows, which the batch's row number cannot.
    query = re.search(r"(df\.where\(.*\)) lists them all", str(refused.value)).group(1)
    listed = eval(query, {"df": df, "F": F})  # our own message's code
    assert sorted(r["id"] for r in listed.collect()) == bad

    with pytest.warns(NullFeaturesWarning, match="3 rows with a null feature") as record:
        out = predict(
            df, model, input_cols=COLS, on_null="null", method=["predict", "predict_proba"]
        )
    assert record[0].message.count == 3
    got = scored_pandas(out)
    is_null = got["prediction"].isna().to_numpy()
    np.testing.assert_array_equal(np.flatnonzero(is_null), bad)
    ok = ~is_null
    np.testing.assert_array_equal(
        [p["predict"] for p in got["prediction"][ok]], model.predict(X[ok])
    )


def test_wrong_array_length_and_failing_model(spark):
    from pyspark.sql import functions as F

    X, y = make_data(7, n=30)
    model = LogisticRegression().fit(X, y)
    df = frame(spark, X).select(
        "id",
        F.when(F.col("id") == 7, F.array("x0", "x1")).otherwise(F.array(*COLS)).alias("xs"),
    )
    with pytest.raises(InvalidInputError, match=r"'xs' must hold 4 values.*1 rows.* has 2"):
        run(predict(df, model, features_col="xs"))

    # NaN or an infinity the model refuses: the column, the count and an example
    # (before: only the model's own message).
    inf = (
        frame(spark, X)
        .withColumn("x1", F.when(F.col("id").isin(3, 5), float("nan")).otherwise(F.col("x1")))
        .withColumn("x2", F.when(F.col("id") == 9, float("inf")).otherwise(F.col("x2")))
        .coalesce(1)
    )
    said = r"The model said: ValueError: Input X contains (NaN|infinity)"
    with pytest.raises(
        InvalidInputError,
        match=r"^LogisticRegression.predict refused NaN or infinite features, found in 3 rows "
        r"of one partition: the first in column 'x[12]' = (nan|inf) at row \d+ of a batch "
        r"\(x0=.*\)\. " + said,
    ):
        run(predict(inf, model, input_cols=COLS))
    as_array = inf.select("id", F.array(*COLS).alias("xs"))
    with pytest.raises(
        InvalidInputError,
        match=r"found in 3 rows of one partition: the first in column 'xs' \(at index [12]\) "
        r"= (nan|inf) at row \d+ of a batch \(xs=\[.*\]\)\. " + said,
    ):
        run(predict(as_array, model, features_col="xs"))
    # A model whose failure is not about NaN keeps its own error, every line of it.
    with pytest.raises(
        InvalidInputError,
        match=r"^FailsOnNaN.predict failed on a batch of \d+ rows: ValueError: step two "
        r"failed\nsecond line$",
    ):
        run(predict(inf, FailsOnNaN(), input_cols=COLS))
    # A model that accepts NaN scores those rows (HistGradientBoosting).
    from sklearn.ensemble import HistGradientBoostingClassifier

    hgb = HistGradientBoostingClassifier(max_iter=5).fit(X, y)
    got = scored_pandas(predict(inf, hgb, input_cols=COLS))
    Xi = got[COLS].to_numpy()
    assert np.isnan(Xi).sum() == 2
    np.testing.assert_array_equal(got["prediction"].to_numpy(), hgb.predict(Xi))


def test_nan_error_counts_rows_the_model_gets_across_batches():
    """Batches of one partition, on the worker (no Spark): rows a null masks are not
    counted, and "the first" is the first row, whichever its column."""
    import pyarrow as pa

    from sparklift import inference

    X, y = make_data(3, n=30)
    model = LogisticRegression().fit(X[:, :2], y)
    inference._MODEL_CACHE["nan-test"] = model
    spec = inference._ScoreSpec(
        model_name="LogisticRegression",
        input_cols=("x1", "x2"),
        array_col=None,
        feature_label="",
        n_features=2,
        feature_names=None,
        methods=("predict",),
        kinds=("long",),
        as_struct=False,
        on_null="null",
        drop_cols=(),
        output_col="prediction",
        example_cols=("id",),
    )
    nan, inf = float("nan"), float("inf")

    def batch(ids, x1, x2):
        arrays = [pa.array(ids), pa.array(x1, pa.float64()), pa.array(x2, pa.float64())]
        return pa.RecordBatch.from_arrays(arrays, names=["id", "x1", "x2"])

    batches = [
        batch([0, 1, 2], [0.0, nan, 1.0], [inf, 0.0, None]),  # row 2: x2 null, masked
        batch([3, 4, 5], [nan, nan, 2.0], [None, 1.0, -inf]),  # row 3 masked: 2 counted
    ]
    with pytest.raises(
        InvalidInputError,
        match=r"found in 4 rows of one partition: the first in column 'x2' = inf at row 0 "
        r"of a batch \(id=0\)\. The model said: ValueError: Input X contains ",
    ):
        list(inference._score_batches(iter(batches), payload=b"", key="nan-test", spec=spec))


@pytest.mark.smoke
def test_transformer_in_pipeline_save_and_load(spark, tmp_path):
    from pyspark.ml import Pipeline, PipelineModel
    from pyspark.ml.feature import VectorAssembler

    X, y = make_data(8)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    df = frame(spark, X)
    stage = ModelTransformer(
        model=model, featuresCol="features", method=["predict", "predict_proba"]
    )
    pipeline = Pipeline(stages=[VectorAssembler(inputCols=COLS, outputCol="features"), stage])
    fitted = pipeline.fit(df)
    path = str(tmp_path / "pipeline")
    fitted.write().save(path)
    fitted.write().overwrite().save(path)  # the Pipeline's own overwrite, Connect too
    loaded = PipelineModel.load(path)
    assert isinstance(loaded.stages[1], ModelTransformer)
    assert loaded.stages[1].getOrDefault("method") == ["predict", "predict_proba"]
    got = scored_pandas(loaded.transform(df).select("id", "prediction.*"))
    np.testing.assert_array_equal(got["predict"], model.predict(X))
    np.testing.assert_array_equal(np.stack(got["predict_proba"]), model.predict_proba(X))


def test_transformer_overwrite_and_pickle_opt_in(spark, tmp_path):
    X, _ = make_data(9, n=50)
    model = ThresholdModel(0.0)
    stage = ModelTransformer(model=model, inputCols=COLS, serializer="pickle")
    path = str(tmp_path / "stage")
    stage.write().save(path)
    with pytest.raises(PathExistsError, match=r"already exists; use \.write\(\)\.overwrite"):
        stage.write().save(path)
    stage.write().overwrite().save(path)
    with pytest.raises(ModelFormatError, match=r"allow_pickle.*read\(\)\.trust\("):
        ModelTransformer.load(path)
    loaded = ModelTransformer.read().trust(allow_pickle=True).load(path)
    got = scored_pandas(loaded.transform(frame(spark, X)))
    np.testing.assert_array_equal(got["prediction"], model.predict(X))
    with pytest.raises(NotFittedError):
        ModelTransformer(inputCols=COLS).transform(frame(spark, X))


def test_a_pickled_stage_inside_a_saved_pipeline_loads_within_trusting(spark, tmp_path):
    """PipelineModel.load has no trust argument: ModelTransformer.trusting supplies it."""
    from pyspark.ml import PipelineModel

    X, _ = make_data(9, n=50)
    model = ThresholdModel(0.0)
    stage = ModelTransformer(model=model, inputCols=COLS, serializer="pickle")
    path = str(tmp_path / "pipeline")
    PipelineModel(stages=[stage]).save(path)
    with pytest.raises(ModelFormatError, match=r"ModelTransformer\.trusting\("):
        PipelineModel.load(path)
    with ModelTransformer.trusting(allow_pickle=True):
        loaded = PipelineModel.load(path)
    got = scored_pandas(loaded.transform(frame(spark, X)))
    np.testing.assert_array_equal(got["prediction"], model.predict(X))
    # The trust ends with the block.
    with pytest.raises(ModelFormatError, match=r"allow_pickle"):
        PipelineModel.load(path)
    # Nested blocks add to the outer one.
    from sparklift.inference import _TRUST

    with ModelTransformer.trusting(["mypkg.A"]), ModelTransformer.trusting(allow_pickle=True):
        assert _TRUST.get() == (("mypkg.A",), True)
    assert _TRUST.get() == ((), False)


def test_a_class_from_main_cannot_be_loaded_elsewhere_and_says_why(tmp_path):
    class Constant:
        def predict(self, X):
            return np.zeros(len(X))

    Constant.__module__, Constant.__qualname__ = "__main__", "Constant"
    path = str(tmp_path / "m.skops")
    save_model(Constant(), path)
    with pytest.raises(ModelFormatError, match=r"cannot import.*__main__\.Constant.*importable"):
        load_model(path, trusted=["__main__.Constant"])


def test_save_model_round_trip(tmp_path):
    X, y = make_data(10, n=50)
    model = LogisticRegression().fit(X, y)
    path = str(tmp_path / "m.skops")
    save_model(model, path)
    np.testing.assert_array_equal(load_model(path).predict_proba(X), model.predict_proba(X))
    bad = tmp_path / "bad"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelFormatError, match="not a sparklift model"):
        load_model(str(bad))


def test_skops_loads_only_trusted_types():
    model = ThresholdModel(0.5)
    data = _serialize.dumps(model)  # skops
    with pytest.raises(ModelFormatError, match=r"not trusted: \['test_inference.ThresholdModel'\]"):
        _serialize.loads(data)
    loaded = _serialize.loads(data, trusted=["test_inference.ThresholdModel"])
    X = np.array([[0.0], [1.0]])
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    newer = data.replace(b'"format_version":1', b'"format_version":9', 1)
    with pytest.raises(ModelFormatError, match="format version 9"):
        _serialize.loads(newer)
    with pytest.raises(InvalidInputError, match="serializer must be one of"):
        _serialize.dumps(model, serializer="joblib")


def test_float32_and_int_arrays_reach_the_model_as_float64(spark):
    """A features_col of array<float> is scored as float64, with or without nulls in the batch."""
    rng = np.random.default_rng(4)
    X32 = rng.normal(size=(50, 3)).astype(np.float32)
    scaler = StandardScaler().fit(X32.astype(np.float64) * 1.1)
    rows = [(i, [float(v) for v in x]) for i, x in enumerate(X32)]
    df = spark.createDataFrame(rows, "id long, v array<float>").coalesce(1)
    with_null = df.union(spark.createDataFrame([(99, None)], "id long, v array<float>")).coalesce(1)
    expected = scaler.transform(X32.astype(np.float64))
    for frame in (df, with_null):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = predict(frame, scaler, features_col="v", method="transform", on_null="null")
            got = out.where("id < 99").orderBy("id").toPandas()["prediction"]
        np.testing.assert_array_equal(np.array(got.tolist()), expected)


def test_null_in_a_boolean_feature_gives_a_null_prediction(spark):
    X = np.array([[1.0, 1.0], [0.0, 2.0], [1.0, 3.0], [0.0, 5.0]])
    model = LinearRegression().fit(X, [1.0, 2.0, 3.0, 4.0])
    df = spark.createDataFrame(
        [(0, True, 1.0), (1, None, 2.0), (2, False, 3.0)], "id long, f boolean, g double"
    )
    with pytest.warns(NullFeaturesWarning):
        out = predict(df, model, input_cols=["f", "g"], on_null="null")
    got = out.orderBy("id").toPandas()["prediction"].tolist()
    assert got[1] is None or np.isnan(got[1])
    assert got[0] == model.predict([[1.0, 1.0]])[0]
    assert got[2] == model.predict([[0.0, 3.0]])[0]


def test_output_col_case_and_repeated_input_cols_are_refused(spark):
    from pyspark.sql import functions as F

    X, y = make_data(n=20)
    model = LinearRegression().fit(X, y)
    cols = [f"x{i}" for i in range(X.shape[1])]
    df = spark.createDataFrame(pd.DataFrame(X, columns=cols)).withColumn("Prediction", F.lit(1.0))
    with pytest.raises(InvalidInputError, match=r"'Prediction'"):
        predict(df, model, input_cols=cols)
    with pytest.raises(InvalidInputError, match=r"\['x0'\] more than once"):
        predict(df, model, input_cols=[*cols[:-1], "x0"], output_col="scored")


def test_outputs_of_different_shapes_are_named_as_such(spark):
    """A multi-output classifier with 2 and 3 classes: predict_proba has no one column type."""
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    Y = np.c_[(X[:, 0] > 0).astype(int), np.digitize(X[:, 1], [-0.5, 0.5])]
    model = DecisionTreeClassifier(random_state=0).fit(X, Y)
    df = spark.createDataFrame([tuple(map(float, r)) for r in X], "a double, b double")
    with pytest.raises(InvalidColumnTypeError, match=r"list of arrays of different shapes"):
        predict(df, model, input_cols=["a", "b"], method="predict_proba")


def test_without_skops_saving_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "skops.io", None)  # as if skops were not installed
    with pytest.raises(ImportError, match=r"pip install 'sparklift\[skops\]'"):
        _serialize.dumps(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), "skops")
