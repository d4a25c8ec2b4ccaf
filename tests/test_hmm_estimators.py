"""pyspark.ml estimators and models: Params, fit/transform, scoring, init_model, Pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from hmmlearn import hmm

from sparklift.errors import InvalidColumnTypeError, InvalidInputError, NotFittedError
from sparklift.hmm import (
    GMMHMM,
    CategoricalHMM,
    CategoricalHMMModel,
    GaussianHMM,
    MultinomialHMM,
    PoissonHMM,
)
from sparklift.hmm.sequences import sequences_from_arrays

HMMLEARN_PAIRS = [
    (CategoricalHMM, hmm.CategoricalHMM),
    (GaussianHMM, hmm.GaussianHMM),
    (PoissonHMM, hmm.PoissonHMM),
    (MultinomialHMM, hmm.MultinomialHMM),
    (GMMHMM, hmm.GMMHMM),
]


def _reference() -> hmm.CategoricalHMM:
    ref = hmm.CategoricalHMM(n_components=3, random_state=0)
    ref.n_features = 4
    ref.startprob_ = np.array([0.6, 0.3, 0.1])
    ref.transmat_ = np.array([[0.8, 0.15, 0.05], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    ref.emissionprob_ = np.array(
        [[0.7, 0.1, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1], [0.05, 0.05, 0.2, 0.7]]
    )
    return ref


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.RandomState(3)
    lengths = rng.randint(4, 20, size=40)
    X, _ = _reference().sample(int(lengths.sum()), random_state=rng)
    return X, lengths


@pytest.fixture(scope="module")
def data(spark, arrays):
    X, lengths = arrays
    return sequences_from_arrays(spark, X, lengths, num_partitions=2)


@pytest.fixture(scope="module")
def fitted(data):
    return CategoricalHMM(n_components=3, n_iter=3, tol=0.0, random_state=0).fit(data)


def _as_hmmlearn(model) -> hmm.CategoricalHMM:
    """An hmmlearn model with the fitted parameters, built by hand (independent of interop)."""
    ref = hmm.CategoricalHMM(n_components=model.getNComponents())
    ref.n_features = model.n_features
    ref.startprob_ = model.startprob_
    ref.transmat_ = model.transmat_
    ref.emissionprob_ = model.emissionprob_
    return ref


# --------------------------------------------------------------------------- Params


@pytest.mark.parametrize(("ours", "theirs"), HMMLEARN_PAIRS)
def test_defaults_are_hmmlearn_defaults(ours, theirs):
    est, ref = ours(), theirs()
    for name, value in ref.get_params().items():
        name = "update_params" if name == "params" else name
        if not est.hasParam(name):
            assert name in ("random_state", "verbose", "n_features", "n_trials"), name
            continue
        if value is None:
            assert not est.isDefined(name), name
        elif name == "implementation":
            # Deliberate difference: sparklift's scaling kernel never underflows (it
            # falls back to log space per sequence), equals "log" to ~1e-12 and is faster.
            assert value == "log"
            assert est.getOrDefault(name) == "scaling"
        else:
            assert est.getOrDefault(name) == value, name


def test_constructor_is_keyword_only_and_checks_names():
    with pytest.raises(TypeError, match="keyword"):
        CategoricalHMM(3)
    with pytest.raises(TypeError, match="n_compnents"):
        CategoricalHMM(n_compnents=3)


def test_params_alias_and_accessors():
    est = CategoricalHMM(n_components=4, params="st", init_params="")
    assert est.getUpdateParams() == "st"
    assert est.getNComponents() == 4
    assert est.setNIter(7).getNIter() == 7
    assert "n_components" in est.explainParams()
    copy = est.copy({est.n_iter: 3})
    assert copy.getNIter() == 3
    assert est.getNIter() == 7


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"algorithm": "forward"}, r"algorithm must be one of \['viterbi', 'map'\]; got 'forward'"),
        ({"implementation": "fast"}, "implementation must be one of"),
        ({"n_components": 0}, "n_components must be an integer >= 1; got 0"),
        ({"covariance_type": "banded"}, "covariance_type must be one of"),
        ({"tol": float("nan")}, "tol must be a number"),
    ],
)
def test_invalid_values_name_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GaussianHMM(**kwargs)


def test_unfitted_model_says_so():
    model = CategoricalHMMModel()
    with pytest.raises(NotFittedError, match="not fitted"):
        _ = model.transmat_
    with pytest.raises(NotFittedError):
        _ = model.emissionprob_


# --------------------------------------------------------------------------- fit / transform / score


@pytest.mark.smoke
def test_transform_adds_typed_columns_equal_to_hmmlearn(fitted, data, arrays):
    X, lengths = arrays
    ref = _as_hmmlearn(fitted)
    out = fitted.setPosteriorsCol("posteriors").transform(data).orderBy("seq_id")
    fitted.clear(fitted.posteriors_col)
    types = dict(out.dtypes)
    assert types["log_likelihood"] == "double"
    assert types["states"] == "array<int>"
    assert types["posteriors"] == "array<array<double>>"
    rows = out.collect()
    assert len(rows) == len(lengths)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    _, ref_states = ref.decode(X, lengths)
    ref_post = ref.predict_proba(X, lengths)
    for i, row in enumerate(rows):
        seq = X[offsets[i] : offsets[i + 1]]
        assert row.log_likelihood == pytest.approx(ref.score(seq), rel=1e-9)
        assert row.states == ref_states[offsets[i] : offsets[i + 1]].tolist()
        np.testing.assert_allclose(
            row.posteriors, ref_post[offsets[i] : offsets[i + 1]], atol=1e-10
        )


def test_no_sequences_decode_to_no_rows_but_cannot_be_scored_or_fitted(fitted, data):
    """A scheduled job's empty day: transform gives no rows, typed; score and fit refuse."""
    empty = data.limit(0)
    out = fitted.transform(empty)
    assert out.collect() == []
    types = dict(out.dtypes)
    assert types["log_likelihood"] == "double"
    assert types["states"] == "array<int>"
    with pytest.raises(InvalidInputError, match="no rows"):
        fitted.score(empty)
    with pytest.raises(InvalidInputError, match="no rows"):
        CategoricalHMM(n_components=2, n_iter=1, sequence_col=fitted.getSequenceCol()).fit(empty)


def test_map_decoding_equals_hmmlearn(fitted, data, arrays):
    X, lengths = arrays
    ref = _as_hmmlearn(fitted)
    model = fitted.copy().setAlgorithm("map")
    rows = model.transform(data).orderBy("seq_id").collect()
    _, ref_states = ref.decode(X, lengths, algorithm="map")
    assert np.concatenate([r.states for r in rows]).tolist() == ref_states.tolist()


def test_score_aic_bic_equal_hmmlearn(fitted, data, arrays):
    X, lengths = arrays
    ref = _as_hmmlearn(fitted)
    assert fitted.score(data) == pytest.approx(ref.score(X, lengths), rel=1e-10)
    assert fitted.aic(data) == pytest.approx(ref.aic(X, lengths), rel=1e-10)
    assert fitted.bic(data) == pytest.approx(ref.bic(X, lengths), rel=1e-10)


def test_fit_from_random_init_equals_hmmlearn(fitted, arrays):
    """Small data: the initialisation sample is all frames, so random_state gives hmmlearn's start."""
    X, lengths = arrays
    ref = hmm.CategoricalHMM(n_components=3, n_iter=3, tol=0.0, random_state=0).fit(X, lengths)
    np.testing.assert_allclose(fitted.transmat_, ref.transmat_, rtol=1e-8)
    np.testing.assert_allclose(fitted.emissionprob_, ref.emissionprob_, rtol=1e-8)
    np.testing.assert_allclose(
        list(fitted.monitor_.history), list(ref.monitor_.history), rtol=1e-10
    )


@pytest.mark.filterwarnings("ignore:Even though the 'emissionprob_'")
def test_init_model_supplies_parameters_not_in_init_params(fitted, data, arrays):
    X, lengths = arrays
    est = CategoricalHMM(
        n_components=3, n_iter=4, tol=0.0, random_state=7, init_params="e", init_model=fitted
    )
    model = est.fit(data)
    ref = hmm.CategoricalHMM(n_components=3, n_iter=4, tol=0.0, random_state=7, init_params="e")
    ref.startprob_ = fitted.startprob_.copy()
    ref.transmat_ = fitted.transmat_.copy()
    ref.fit(X, lengths)
    np.testing.assert_allclose(model.startprob_, ref.startprob_, rtol=1e-8, atol=1e-14)
    np.testing.assert_allclose(model.transmat_, ref.transmat_, rtol=1e-8, atol=1e-14)
    np.testing.assert_allclose(model.emissionprob_, ref.emissionprob_, rtol=1e-8, atol=1e-14)


def test_init_model_from_hmmlearn(data, arrays):
    pytest.importorskip("sparklift.hmm.interop")
    X, lengths = arrays
    start = _reference()
    model = CategoricalHMM(n_components=3, n_iter=3, tol=0.0, init_params="", init_model=start).fit(
        data
    )
    ref = _reference()
    ref.init_params, ref.n_iter, ref.tol = "", 3, 0.0
    ref.fit(X, lengths)
    np.testing.assert_allclose(model.transmat_, ref.transmat_, rtol=1e-8)
    np.testing.assert_allclose(model.emissionprob_, ref.emissionprob_, rtol=1e-8)


def test_hmmlearn_roundtrip(fitted, arrays):
    pytest.importorskip("sparklift.hmm.interop")
    X, lengths = arrays
    exported = fitted.to_hmmlearn()
    assert isinstance(exported, hmm.CategoricalHMM)
    np.testing.assert_array_equal(exported.emissionprob_, fitted.emissionprob_)
    back = CategoricalHMMModel.from_hmmlearn(exported)
    np.testing.assert_array_equal(back.transmat_, fitted.transmat_)
    assert back.score  # a usable model
    assert exported.score(X, lengths) == pytest.approx(_as_hmmlearn(fitted).score(X, lengths))


@pytest.mark.smoke
def test_pipeline_fit_and_transform(data):
    from pyspark.ml import Pipeline

    pipeline = Pipeline(stages=[CategoricalHMM(n_components=2, n_iter=2, random_state=0)])
    model = pipeline.fit(data)
    out = model.transform(data)
    assert {"log_likelihood", "states"} <= set(out.columns)
    assert out.count() == data.count()


def test_sample_draws_sequences_from_the_model(fitted, spark):
    sampled = fitted.sample(n_sequences=200, length=30, random_state=0, spark=spark)
    assert dict(sampled.dtypes) == {
        "seq_id": "bigint",
        "sequence": "array<bigint>",
        "states": "array<int>",
    }
    rows = sampled.orderBy("seq_id").collect()
    assert len(rows) == 200
    assert all(len(r.sequence) == 30 and len(r.states) == 30 for r in rows)
    again = fitted.sample(n_sequences=200, length=30, random_state=0, spark=spark)
    assert again.orderBy("seq_id").collect() == rows
    # Empirical first-state frequencies and emissions agree with the parameters.
    first = np.bincount([r.states[0] for r in rows], minlength=3) / 200
    np.testing.assert_allclose(first, fitted.startprob_, atol=0.1)
    states = np.concatenate([r.states for r in rows])
    symbols = np.concatenate([r.sequence for r in rows])
    for k in range(3):
        if (states == k).sum() > 500:
            freq = np.bincount(symbols[states == k], minlength=4) / (states == k).sum()
            np.testing.assert_allclose(freq, fitted.emissionprob_[k], atol=0.06)


# --------------------------------------------------------------------------- bad input


def test_bad_symbols_give_one_clear_error(spark):
    df = spark.createDataFrame([([0, 1, 2],), ([1, -1],), (None,)], "sequence array<bigint>")
    with pytest.raises(InvalidInputError, match="sequence"):
        CategoricalHMM(n_components=2, n_iter=1).fit(df)


@pytest.mark.smoke
def test_any_column_names_fit_transform_and_score(data, arrays):
    """Input and output columns named with dots, backticks and spaces give hmmlearn's results."""
    X, lengths = arrays
    odd = data.toDF("id.x`y", "s`e q.r")
    names = {"states_col": "st.a`b", "loglik_col": "l l", "posteriors_col": "p.o`s"}
    est = CategoricalHMM(n_components=3, n_iter=3, tol=0.0, random_state=0, **names)
    model = est.setParams(sequence_col="s`e q.r").fit(odd)
    ref = hmm.CategoricalHMM(n_components=3, n_iter=3, tol=0.0, random_state=0).fit(X, lengths)
    np.testing.assert_allclose(model.emissionprob_, ref.emissionprob_, rtol=1e-8)
    assert model.score(odd) == pytest.approx(ref.score(X, lengths), rel=1e-10)
    out = model.transform(odd)
    assert out.columns == ["id.x`y", "s`e q.r", "l l", "st.a`b", "p.o`s"]
    rows = sorted(out.collect(), key=lambda r: r[0])
    _, ref_states = ref.decode(X, lengths)
    assert np.concatenate([r[3] for r in rows]).tolist() == ref_states.tolist()
    np.testing.assert_allclose(
        np.concatenate([r[4] for r in rows]), ref.predict_proba(X, lengths), atol=1e-10
    )


def test_wrong_column_type_is_named(spark):
    df = spark.createDataFrame([("abc",)], "sequence string")
    with pytest.raises(InvalidColumnTypeError, match="sequence"):
        CategoricalHMM(n_components=2).fit(df)


def test_transform_refuses_to_overwrite_columns(fitted, data):
    with pytest.raises(InvalidInputError, match="already exist"):
        fitted.copy().setStatesCol("seq_id").transform(data)


def test_gaussian_default_initialisation_equals_hmmlearn(spark):
    """k-means means and data covariance from the frames, seeded as hmmlearn seeds them."""
    rng = np.random.RandomState(11)
    lengths = rng.randint(10, 30, size=25)
    X = np.concatenate([rng.normal(loc=3.0 * (i % 2), size=(n, 2)) for i, n in enumerate(lengths)])
    df = sequences_from_arrays(spark, X, lengths, num_partitions=2)
    model = GaussianHMM(n_components=2, n_iter=4, tol=0.0, random_state=0).fit(df)
    ref = hmm.GaussianHMM(n_components=2, n_iter=4, tol=0.0, random_state=0).fit(X, lengths)
    np.testing.assert_allclose(model.means_, ref.means_, rtol=1e-6)
    np.testing.assert_allclose(model.covars_, ref.covars_, rtol=1e-6)
    np.testing.assert_allclose(model.transmat_, ref.transmat_, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(list(model.monitor_.history), list(ref.monitor_.history), rtol=1e-9)


# ------------------------------------------------------------- init_model checks (review)


def test_init_model_overwritten_parameters_warn_like_hmmlearn(fitted, data, caplog):
    # hmmlearn logs one "will be overwritten" line per attribute set before fit that
    # init_params re-initialises; sparklift warns with the same wording.
    ref = hmm.CategoricalHMM(n_components=3, n_iter=1, random_state=0)
    ref.startprob_ = fitted.startprob_.copy()
    ref.transmat_ = fitted.transmat_.copy()
    ref.emissionprob_ = fitted.emissionprob_.copy()
    X = np.array([[0], [1], [2], [3]])
    with caplog.at_level("WARNING", logger="hmmlearn.base"):
        ref.fit(X)
    expected = sorted(
        r.getMessage() for r in caplog.records if "will be overwritten" in r.getMessage()
    )
    assert len(expected) == 3
    with pytest.warns(UserWarning, match="will be overwritten") as record:
        CategoricalHMM(n_components=3, n_iter=1, init_model=fitted).fit(data)
    ours = sorted(str(w.message) for w in record if "will be overwritten" in str(w.message))
    assert len(ours) == 3
    for mine, theirs in zip(ours, expected, strict=True):
        assert mine.startswith(theirs)


def test_init_model_n_components_mismatch_is_named_before_spark(fitted):
    class NoSpark:
        def __getattr__(self, name):
            raise AssertionError("a Spark job ran")

    est = CategoricalHMM(n_components=4, init_params="", init_model=fitted)
    with pytest.raises(InvalidInputError, match="init_model"):
        est.fit(NoSpark())


def test_init_model_n_features_mismatch_is_named(fitted, data):
    est = CategoricalHMM(n_components=3, n_features=6, init_params="", init_model=fitted)
    with pytest.raises(InvalidInputError, match="init_model"):
        est.fit(data)


def test_gaussian_init_model_dimension_must_match_data(spark):
    ref = hmm.GaussianHMM(n_components=2, init_params="")
    ref.startprob_ = np.array([0.5, 0.5])
    ref.transmat_ = np.array([[0.9, 0.1], [0.1, 0.9]])
    ref.means_ = np.zeros((2, 3))
    ref.covars_ = np.ones((2, 3))
    ref.n_features = 3
    rows = [([[0.0, 1.0], [1.0, 0.5]],), ([[2.0, 1.0]],)]
    df = spark.createDataFrame(rows, "sequence array<array<double>>")
    with pytest.raises(InvalidInputError, match="n_features=3"):
        GaussianHMM(n_components=2, init_params="", init_model=ref).fit(df)


def test_from_hmmlearn_rejects_inconsistent_parameters():
    ref = _reference()
    ref.startprob_ = np.array([0.5, 0.5])  # 2 states, transmat has 3
    with pytest.raises(InvalidInputError, match="inconsistent parameters"):
        CategoricalHMMModel.from_hmmlearn(ref)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"startprob_prior": [1.0, 2.0]}, "startprob_prior"),
        ({"transmat_prior": [1.0] * 4}, "transmat_prior"),
    ],
)
def test_prior_shapes_are_checked(kwargs, name):
    class NoSpark:
        def __getattr__(self, attr):
            raise AssertionError("a Spark job ran")

    est = CategoricalHMM(n_components=3, n_features=4, **kwargs)
    with pytest.raises(InvalidInputError, match=name):
        est.fit(NoSpark())


# ------------------------------------------------------------------------- multinomial


def test_multinomial_infers_constant_n_trials_like_hmmlearn(spark):
    rng = np.random.RandomState(0)
    X = rng.multinomial(5, [0.2, 0.3, 0.5], size=30)
    lengths = np.array([10, 12, 8])
    df = sequences_from_arrays(spark, X, lengths, num_partitions=1)
    model = MultinomialHMM(n_components=2, n_iter=3, tol=0.0, random_state=1).fit(df)
    ref = hmm.MultinomialHMM(n_components=2, n_trials=5, n_iter=3, tol=0.0, random_state=1)
    ref.fit(X, lengths)
    np.testing.assert_allclose(model.emissionprob_, ref.emissionprob_, rtol=1e-8)


def test_multinomial_varying_totals_fit_like_hmmlearn(spark):
    """n_trials unset: each frame's own total is its trials, as hmmlearn's n_trials=None."""
    X = np.array([[1, 2], [0, 2], [3, 0], [2, 2], [0, 1]])
    lengths = [3, 2]
    df = sequences_from_arrays(spark, X, lengths, num_partitions=2)
    model = MultinomialHMM(n_components=2, n_iter=3, tol=0.0, random_state=0).fit(df)
    ref = hmm.MultinomialHMM(n_components=2, n_iter=3, tol=0.0, random_state=0).fit(X, lengths)
    np.testing.assert_allclose(model.emissionprob_, ref.emissionprob_, rtol=1e-8)
    np.testing.assert_allclose(list(model.monitor_.history), list(ref.monitor_.history), rtol=1e-10)
    assert model.score(df) == pytest.approx(ref.score(X, lengths), rel=1e-10)
    # Sampling needs one number of trials, in hmmlearn too.
    with pytest.raises(ValueError, match="a single n_trials"):
        ref.sample(3)
    with pytest.raises(ValueError, match="a single n_trials"):
        model.sample(3)


@pytest.mark.filterwarnings("ignore:Fitting a model with")  # tiny data, on purpose
def test_multinomial_rejects_fractional_counts_in_fit_and_scoring(spark):
    frac = spark.createDataFrame([([[1.5, 1.5]],)], "sequence array<array<double>>")
    with pytest.raises(InvalidColumnTypeError, match="integer"):
        MultinomialHMM(n_components=2, n_trials=3).fit(frac)
    counts = sequences_from_arrays(spark, np.array([[1, 2], [3, 0]]), [2])
    model = MultinomialHMM(n_components=2, n_iter=1, random_state=0).fit(counts)
    for score in (model.score, lambda df: model.transform(df).collect()):
        with pytest.raises(InvalidColumnTypeError, match="integer"):
            score(frac)


@pytest.mark.filterwarnings("ignore:Column .events. has one number per frame")
def test_multinomial_with_one_count_per_frame_is_checked_like_hmmlearn(spark):
    """array<int>: a frame of one count, its own total (hmmlearn's X of one column)."""
    X = np.array([[1], [2], [0], [2], [2]])
    df = spark.createDataFrame([([1, 2, 0],), ([2, 2],)], "events array<int>")
    model = MultinomialHMM(n_components=2, sequence_col="events", n_iter=2, random_state=0)
    ref = hmm.MultinomialHMM(n_components=2, n_iter=2, random_state=0).fit(X, [3, 2])
    np.testing.assert_allclose(model.fit(df).emissionprob_, ref.emissionprob_)
    # With n_trials=3 these counts are wrong: refused, as hmmlearn refuses them.
    with pytest.raises(ValueError, match="add up to the number of trials"):
        hmm.MultinomialHMM(n_components=2, n_trials=3).fit(X, [3, 2])
    with pytest.raises(InvalidInputError, match=r"'events'.*do not sum to n_trials=3"):
        model.copy({model.n_trials: 3}).fit(df)


@pytest.mark.filterwarnings("ignore:Fitting a model with")  # tiny data, on purpose
def test_a_state_without_transitions_out_is_refused_at_its_iteration(spark):
    """Length-1 sequences: no transition is ever expected, transmat_ rows would be zero."""
    df = sequences_from_arrays(spark, np.array([[0], [1], [1]]), [1, 1, 1])
    with pytest.raises(InvalidInputError, match=r"EM iteration 1: no transition out of state"):
        CategoricalHMM(n_components=2, n_iter=5, random_state=0).fit(df)


def test_fit_error_example_shows_the_rows_other_columns(spark):
    """fit validates only the sequence column, but the example row carries the ids."""
    df = spark.createDataFrame(
        [(1, [0, 1, 1]), (1734, [3, 2, 9]), (5, [2, 0])], "user_id long, sequence array<int>"
    )
    with pytest.raises(InvalidInputError, match=r"user_id=1734, sequence=\[3, 2, 9\]"):
        CategoricalHMM(n_components=2, n_features=4).fit(df)


def test_fit_names_a_missing_sequence_column(data):
    with pytest.raises(InvalidInputError, match="Column 'nope' not found"):
        CategoricalHMM(n_components=2, sequence_col="nope").fit(data)
