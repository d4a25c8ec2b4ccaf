"""Defects a user trial of sparklift.hmm found (2026-12-01), each against hmmlearn or by hand."""

from __future__ import annotations

import copy
import logging
import re
import warnings

import numpy as np
import pytest
from hmmlearn import hmm

from sparklift.errors import InvalidInputError
from sparklift.hmm import (
    CategoricalHMM,
    CategoricalHMMModel,
    GaussianHMM,
    MultinomialHMM,
    MultinomialHMMModel,
    PoissonHMM,
    PoissonHMMModel,
)
from sparklift.hmm.sequences import sequences_from_arrays, sequences_from_events


def _hand_built_poisson() -> hmm.PoissonHMM:
    # hmmlearn's usual pattern for sampling: parameters set by hand, no fit.
    ref = hmm.PoissonHMM(n_components=2)
    ref.startprob_ = np.array([0.5, 0.5])
    ref.transmat_ = np.array([[0.9, 0.1], [0.1, 0.9]])
    ref.lambdas_ = np.array([[1.0, 10.0], [20.0, 2.0]])
    return ref


def _hand_built_multinomial() -> hmm.MultinomialHMM:
    ref = hmm.MultinomialHMM(n_components=2, n_trials=5)
    ref.startprob_ = np.array([0.6, 0.4])
    ref.transmat_ = np.array([[0.7, 0.3], [0.2, 0.8]])
    ref.emissionprob_ = np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7]])
    return ref


@pytest.mark.parametrize(
    ("build", "model_cls"),
    [(_hand_built_poisson, PoissonHMMModel), (_hand_built_multinomial, MultinomialHMMModel)],
)
def test_from_hand_built_hmmlearn_model_scores_and_samples_as_hmmlearn(spark, build, model_cls):
    ref = build()
    model = model_cls.from_hmmlearn(ref)
    n_features = ref.lambdas_.shape[1] if hasattr(ref, "lambdas_") else 3
    assert model.n_features == n_features
    # Frames drawn by hmmlearn itself, scored by both.
    X, _ = ref.sample(60, random_state=np.random.RandomState(1))
    X = X.astype(np.int64)
    df = sequences_from_arrays(spark, X, [20, 25, 15])
    np.testing.assert_allclose(model.score(df), ref.score(X, [20, 25, 15]), rtol=1e-10)
    assert np.isfinite(model.bic(df))
    # The sample has every feature, as integers the model reads back.
    sample = model.sample(4, 6, random_state=0)
    assert sample.schema["sequence"].dataType.simpleString() == "array<array<bigint>>"
    rows = sample.collect()
    assert all(len(frame) == n_features for row in rows for frame in row["sequence"])
    assert np.isfinite(model.score(sample))


def test_from_hmmlearn_refuses_n_features_that_contradict_the_parameters():
    ref = _hand_built_poisson()
    ref.n_features = 3  # lambdas_ are for 2
    with pytest.raises(InvalidInputError, match=r"n_features=3.*2 features"):
        PoissonHMMModel.from_hmmlearn(ref)


def test_poisson_refuses_counts_that_are_not_whole(spark):
    rows = [(1, [1.0, 2.0, 3.0]), (2, [1.5, 2.5, 3.0, 0.5]), (3, [4.0, 0.0])]
    df = spark.createDataFrame(rows, "id long, sequence array<double>")
    with pytest.raises(InvalidInputError) as info:
        PoissonHMM(n_components=2, random_state=0).fit(df)
    message = str(info.value)
    for part in ("'sequence'", "1 bad row out of 3", "not a whole number", "value: 1.5"):
        assert part in message
    model = PoissonHMMModel.from_hmmlearn(_hand_built_poisson())
    two = spark.createDataFrame([([[1.0, 2.5], [3.0, 4.0]],)], "sequence array<array<double>>")
    with pytest.raises(InvalidInputError, match="not a whole number"):
        model.score(two)


def test_poisson_takes_whole_doubles_as_their_counts(spark):
    X = np.random.RandomState(0).poisson(3.0, size=(40, 1))
    ints = sequences_from_arrays(spark, X.astype(np.int64), [20, 20])
    doubles = sequences_from_arrays(spark, X.astype(np.float64), [20, 20])
    a = PoissonHMM(n_components=2, n_iter=3, random_state=0).fit(ints)
    b = PoissonHMM(n_components=2, n_iter=3, random_state=0).fit(doubles)
    np.testing.assert_allclose(a.lambdas_, b.lambdas_, rtol=1e-12)


def test_multinomial_on_one_number_per_frame_warns(spark):
    df = spark.createDataFrame([([0, 1, 2, 1],), ([2, 2, 0],)], "sequence array<int>")
    with pytest.warns(UserWarning, match="use CategoricalHMM"):
        MultinomialHMM(n_components=2, n_iter=2, random_state=0).fit(df)


def test_too_few_data_points_warns_with_hmmlearns_figures(spark, caplog):
    X = np.array([[0], [1], [2], [1], [0], [2]])
    lengths = [3, 3]
    with caplog.at_level(logging.WARNING, logger="hmmlearn.base"):
        hmm.CategoricalHMM(n_components=5, n_iter=1, random_state=0).fit(X, lengths)
    expected = re.search(r"(\d+) free scalar parameters with only (\d+) data points", caplog.text)
    assert expected, caplog.text
    df = sequences_from_arrays(spark, X, lengths)
    with pytest.warns(UserWarning, match="degenerate solution") as record:
        CategoricalHMM(n_components=5, n_iter=1, random_state=0).fit(df)
    ours = next(
        re.search(r"(\d+) free scalar parameters with only (\d+) data points", str(w.message))
        for w in record
        if "degenerate" in str(w.message)
    )
    assert ours.groups() == expected.groups()
    # Enough data: no such warning, and hmmlearn logs none either.
    X, lengths = np.tile(X, (5, 1)), [15, 15]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hmmlearn.base"):
        hmm.CategoricalHMM(n_components=2, n_iter=1, random_state=0).fit(X, lengths)
    assert "degenerate" not in caplog.text
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        CategoricalHMM(n_components=2, n_iter=1, random_state=0).fit(
            sequences_from_arrays(spark, X, lengths)
        )
    assert not [w for w in record if "degenerate" in str(w.message)]


@pytest.mark.filterwarnings("ignore:Fitting a model with")  # expected: too few frames
def test_full_covariance_state_without_frames_is_a_clear_error(spark):
    X = np.random.RandomState(0).randn(10, 2)
    df = sequences_from_arrays(spark, X, [10])
    est = GaussianHMM(n_components=4, covariance_type="full", n_iter=5, random_state=0)
    with pytest.raises(InvalidInputError, match=r"fewer n_components.*positive-definite"):
        est.fit(df)
    # The advice works: a positive-definite prior keeps every state's covariance one.
    model = est.copy().setParams(covars_prior=(0.01 * np.eye(2)).tolist()).fit(df)
    assert all(np.all(np.linalg.eigvalsh(c) > 0) for c in model.covars_)


def test_load_keeps_the_uid(tmp_path, spark):
    model = CategoricalHMMModel.from_hmmlearn(hmm_reference())
    model.save(str(tmp_path / "model"))
    assert CategoricalHMMModel.load(str(tmp_path / "model")).uid == model.uid
    est = CategoricalHMM(n_components=3)
    est.save(str(tmp_path / "est"))
    loaded = CategoricalHMM.load(str(tmp_path / "est"))
    assert loaded.uid == est.uid
    assert loaded.extractParamMap() == est.extractParamMap()


def hmm_reference() -> hmm.CategoricalHMM:
    ref = hmm.CategoricalHMM(n_components=2)
    ref.startprob_ = np.array([0.5, 0.5])
    ref.transmat_ = np.array([[0.9, 0.1], [0.2, 0.8]])
    ref.emissionprob_ = np.array([[0.7, 0.3], [0.4, 0.6]])
    return ref


def test_random_state_as_a_numpy_generator_is_a_clear_error():
    with pytest.raises(TypeError, match="random_state must be an int"):
        CategoricalHMM(n_components=2, random_state=np.random.RandomState(0))


def test_sequences_from_events_with_a_composite_id(spark):
    events = spark.createDataFrame(
        [("u1", 1, 2, 7), ("u1", 1, 1, 5), ("u1", 2, 1, 9), ("u2", 1, 1, 3)],
        "user string, session int, ts int, page int",
    )
    out = sequences_from_events(events, ["user", "session"], "ts", "page", "pages")
    assert out.columns == ["user", "session", "pages"]
    got = {(r["user"], r["session"]): r["pages"] for r in out.collect()}
    assert got == {("u1", 1): [5, 7], ("u1", 2): [9], ("u2", 1): [3]}
    with pytest.raises(InvalidInputError, match="output_col 'user' is also an id column"):
        sequences_from_events(events, ["user", "session"], "ts", "page", "user")
    with pytest.raises(InvalidInputError, match="more than once"):
        sequences_from_events(events, ["user", "user"], "ts", "page", "pages")


@pytest.mark.filterwarnings("ignore:Fitting a model with")  # expected: too few frames
def test_full_covariance_breakdown_mid_fit_is_a_clear_error_where_hmmlearn_fails(spark):
    # A state left with almost no frames gets a covariance that is not positive-definite
    # even with hmmlearn's min_covar retry: hmmlearn's next E-step raises ValueError.
    # sparklift used to raise it inside a Spark task; now it refuses on the driver, at
    # the same iteration, from the same starting parameters.
    rng = np.random.RandomState(16)
    n, nf, k = rng.randint(8, 40), rng.randint(2, 4), rng.randint(3, 7)
    X = rng.randn(n, nf) * rng.choice([1e-3, 1, 1e3])
    start = hmm.GaussianHMM(n_components=k, covariance_type="full", random_state=16)
    start._init(X)
    ref = copy.deepcopy(start).set_params(n_iter=30, init_params="")
    with pytest.raises(ValueError, match="positive-definite"):
        ref.fit(X)
    failed_after = ref.monitor_.iter  # M-steps hmmlearn completed before its E-step failed

    df = sequences_from_arrays(spark, X, [n])
    est = GaussianHMM(
        n_components=k, covariance_type="full", n_iter=30, init_params="", init_model=start
    )
    with pytest.raises(
        InvalidInputError,
        match=rf"EM iteration {failed_after} ended .*positive-definite covars_prior",
    ):
        est.fit(df)
    # The advice works: a positive-definite prior keeps every covariance usable.
    model = est.copy().setParams(covars_prior=(0.01 * np.eye(nf)).tolist()).fit(df)
    assert all(np.all(np.linalg.eigvalsh(c) > 0) for c in model.covars_)


# --------------------------------------------- second trial (2026-12-02): porting hmmlearn code


def _two_regimes(seed: int = 0) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(0, 1, (90, 1)), rng.normal(4, 1, (90, 1))])
    return X, [60, 60, 60]


def test_hand_set_attributes_are_refused_with_the_way_that_works(spark):
    """hmmlearn users assign startprob_, means_... Here they were silently ignored."""
    from sparklift.hmm import GaussianHMMModel

    est = GaussianHMM(n_components=2)
    with pytest.raises(
        AttributeError,
        match=r"does not read hand-set attributes such as "
        r"transmat_: set them on an hmmlearn\.hmm\.GaussianHMM and pass it as "
        r"init_model=",
    ):
        est.transmat_ = np.eye(2)
    assert "transmat_" not in vars(est)
    X, _ = _two_regimes()
    model = GaussianHMMModel.from_hmmlearn(hmm.GaussianHMM(2, n_iter=2, random_state=0).fit(X))
    before = model.means_.copy()
    for name in ("means_", "transmat_"):  # a family attribute and a property alike
        with pytest.raises(AttributeError, match=rf"GaussianHMMModel\.{name} is read-only"):
            setattr(model, name, np.zeros_like(getattr(model, name)))
    np.testing.assert_array_equal(model.means_, before)
    est.setNIter(3)  # Params and private attributes are untouched
    assert est.getNIter() == 3
    est.note_ = "mine"  # names that are not hmmlearn's fitted attributes are the user's
    assert est.note_ == "mine"


@pytest.mark.parametrize(
    ("init_params", "attributes"),
    [
        ("stc", {"means_": np.array([[0.0], [4.0]])}),
        (
            "mc",
            {"startprob_": np.array([0.5, 0.5]), "transmat_": np.array([[0.9, 0.1], [0.1, 0.9]])},
        ),
    ],
)
def test_init_model_with_some_attributes_set_fits_as_hmmlearn(
    spark, tmp_path, init_params, attributes
):
    """hmmlearn initialises what init_params names or what is missing; the rest is kept."""
    X, lengths = _two_regimes()

    def prepared() -> hmm.GaussianHMM:
        obj = hmm.GaussianHMM(2, init_params=init_params, n_iter=4, random_state=1)
        for name, value in attributes.items():
            setattr(obj, name, value.copy())
        return obj

    ref = prepared().fit(X, lengths)
    est = GaussianHMM(n_components=2, init_params=init_params, n_iter=4, random_state=1)
    est.setInitModel(prepared())
    # Saved and loaded (alone), the estimator fits the same.
    path = str(tmp_path / "est")
    est.save(path)
    loaded = GaussianHMM.load(path)
    kept = loaded.getInitModel()
    assert sorted(n for n in attributes if hasattr(kept, n)) == sorted(attributes)
    df = sequences_from_arrays(spark, X, lengths)
    for got in (est.fit(df), loaded.fit(df)):
        for name in ("startprob_", "transmat_", "means_", "covars_"):
            np.testing.assert_allclose(
                getattr(got, name), getattr(ref, name), rtol=1e-9, atol=1e-12
            )


def test_to_hmmlearn_keeps_priors_and_seed_and_never_exports_hmmlearns_scaling(spark):
    """sparklift's "scaling" gives hmmlearn's "log" results; hmmlearn's own can underflow."""
    X, lengths = _two_regimes()
    df = sequences_from_arrays(spark, X, lengths)
    model = GaussianHMM(
        n_components=2, n_iter=3, startprob_prior=3.0, transmat_prior=2.0, random_state=0
    ).fit(df)
    assert model.getImplementation() == "scaling"
    exported = model.to_hmmlearn()
    assert exported.implementation == "log"
    assert (exported.startprob_prior, exported.transmat_prior) == (3.0, 2.0)
    assert exported.random_state == 0
    np.testing.assert_allclose(exported.score(X, lengths), model.score(df), rtol=1e-9)
    assert model.to_hmmlearn(implementation="scaling").implementation == "scaling"


def test_arrays_instead_of_a_dataframe_say_how_to_convert(spark):
    X, lengths = _two_regimes()
    est = GaussianHMM(n_components=2)
    hint = r"got numpy\.ndarray\. hmmlearn's \(X, lengths\) become one with sequences_from_arrays"
    for call in (lambda: est.fit(X, lengths), lambda: est.fit(X)):
        with pytest.raises(InvalidInputError, match=hint):
            call()
    model = est.setNIter(1).fit(sequences_from_arrays(spark, X, lengths))
    with pytest.raises(InvalidInputError, match=hint):
        model.score(X)


def test_estimators_and_models_pickle(spark):
    """joblib and MLflow pickle models: the Param converters were closures before."""
    import pickle

    X, lengths = _two_regimes()
    df = sequences_from_arrays(spark, X, lengths)
    est = pickle.loads(pickle.dumps(GaussianHMM(n_components=2, n_iter=3, random_state=0)))
    assert (est.getNIter(), est.getRandomState()) == (3, 0)
    with pytest.raises(ValueError, match="n_iter must be an integer >= 1"):
        est.setNIter(0)  # converters still check after the round trip
    model = est.fit(df)
    again = pickle.loads(pickle.dumps(model))
    assert again.uid == model.uid
    np.testing.assert_array_equal(again.means_, model.means_)
    assert again.score(df) == model.score(df)


def test_sequences_from_events_refuses_string_and_nan_orders(spark):
    """A string order sorts as text ('10' before '9'); NaN sorts after every number."""
    from sparklift.errors import InvalidColumnTypeError

    rows = [("a", "9", 0), ("a", "10", 1), ("a", "100", 2)]
    events = spark.createDataFrame(rows, "id string, ts string, v int")
    with pytest.raises(
        InvalidColumnTypeError, match=r"Order column 'ts' is a string.*cast\('long'\)"
    ):
        sequences_from_events(events, "id", "ts", "v")
    from pyspark.sql import functions as F

    numeric = events.withColumn("ts", F.col("ts").cast("long"))
    got = sequences_from_events(numeric, "id", "ts", "v").collect()
    assert [list(r.sequence) for r in got] == [[0, 1, 2]]  # 9, 10, 100
    nan = numeric.withColumn("ts", F.when(F.col("v") == 1, float("nan")).otherwise(F.col("ts")))
    with pytest.raises(InvalidInputError, match=r"Column 'ts' is null or NaN in 1 event row\b"):
        sequences_from_events(nan, "id", "ts", "v")


@pytest.mark.filterwarnings("ignore:Fitting a model with")  # hmmlearn's own, expected
def test_ids_used_as_symbols_warn_and_huge_ones_are_refused(spark):
    """Symbols are inferred as 0..max: raw ids make n_features huge and mostly unseen."""
    from sparklift.errors import ResourceLimitError

    df = spark.createDataFrame([([3, 17, 1950, 3, 17],), ([17, 1950, 3],)], "sequence array<int>")
    est = CategoricalHMM(n_components=2, n_iter=1, random_state=0)
    for params in (None, {est.n_iter: 2}):  # attributed to the caller's fit() either way
        with pytest.warns(
            UserWarning,
            match=r"symbols up to 1,950, so each state would have "
            r"n_features=1,951 .*more than the 8 frames.*StringIndexer",
        ) as seen:
            est.fit(df, params)
        assert seen[0].filename == __file__
    # A small vocabulary on a few frames is test data, not ids: no warning.
    small = spark.createDataFrame([([0, 5, 9],)], "sequence array<int>")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message="Fitting a model with")
        est.fit(small)
    ids = spark.createDataFrame([([3, 2_000_000_000],)], "sequence array<int>")
    with pytest.raises(ResourceLimitError, match=r"would take 29\.8 GiB on the driver"):
        CategoricalHMM(n_components=2, n_iter=1).fit(ids)
    # A vocabulary declared by the user is theirs to size: no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message="Fitting a model with")
        CategoricalHMM(n_components=2, n_iter=1, n_features=1951, random_state=0).fit(df)
