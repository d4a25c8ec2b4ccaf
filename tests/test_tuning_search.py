"""sparklift.tuning searches against scikit-learn's own, on the same data and splits."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import sklearn.model_selection as skms
from scipy.stats import loguniform
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GroupKFold, KFold, TimeSeriesSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from sparklift.errors import SparkliftError, TaskError, WorkerError
from sparklift.tuning import (
    GridSearchCV,
    HalvingGridSearchCV,
    HalvingRandomSearchCV,
    RandomizedSearchCV,
)
from sparklift.tuning._data import load_store, pack_calls, run_payload, unpack_outcome
from sparklift.tuning._executor import TASKS_PER_SLOT, job_bounds, task_slots


def assert_same_results(ours, ref):
    """cv_results_ equal key by key (times excepted), and the best candidate too."""
    timing = ("mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time")
    assert set(ours.cv_results_) == set(ref.cv_results_)
    for key, expected in ref.cv_results_.items():
        if key in timing:
            continue
        got = ours.cv_results_[key]
        if key == "params":
            assert got == expected
        elif np.asarray(expected).dtype.kind in "fiu":
            np.testing.assert_array_equal(got, expected, err_msg=key)
        else:
            assert list(got) == list(expected), key
    for attr in ("best_params_", "best_index_", "best_score_", "n_splits_", "multimetric_"):
        if hasattr(ref, attr):
            assert getattr(ours, attr) == getattr(ref, attr), attr


@pytest.fixture(scope="module")
def classification():
    return make_classification(n_samples=300, n_features=8, n_informative=4, random_state=0)


@pytest.mark.smoke
def test_grid_search_equals_scikit_learn_multimetric(spark, classification):
    X, y = classification
    kwargs = {
        "param_grid": {"C": [0.01, 0.1, 1.0], "fit_intercept": [True, False]},
        "scoring": ["accuracy", "roc_auc"],
        "refit": "roc_auc",
        "cv": KFold(4, shuffle=True, random_state=1),
        "return_train_score": True,
    }
    ours = GridSearchCV(LogisticRegression(max_iter=500), **kwargs).fit(X, y)
    ref = skms.GridSearchCV(LogisticRegression(max_iter=500), **kwargs).fit(X, y)
    assert_same_results(ours, ref)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    assert ours.spark_transfer_.n_fits == 6 * 4


def test_randomized_search_draws_the_same_candidates(spark, capsys):
    X, y = make_regression(n_samples=200, n_features=5, noise=5.0, random_state=3)
    kwargs = {
        "param_distributions": {"alpha": loguniform(1e-3, 1e2), "fit_intercept": [True, False]},
        "n_iter": 7,
        "random_state": 42,
        "cv": TimeSeriesSplit(n_splits=3, gap=2),
        "scoring": "neg_mean_squared_error",
    }
    ours = RandomizedSearchCV(Ridge(), verbose=1, **kwargs).fit(X, y)
    # verbose > 0 shows the progress bar of finished fits, up to all 21.
    err = capsys.readouterr().err
    assert "RandomizedSearchCV fits" in err
    assert "21/21" in err
    ref = skms.RandomizedSearchCV(Ridge(), verbose=1, **kwargs).fit(X, y)
    assert_same_results(ours, ref)


def test_tqdm_disable_hides_the_bar_and_bad_parameters_start_no_spark(
    spark, classification, capsys, monkeypatch
):
    X, y = classification
    monkeypatch.setenv("TQDM_DISABLE", "1")
    GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2, verbose=1).fit(X, y)
    assert "GridSearchCV fits" not in capsys.readouterr().err

    def no_spark(*args, **kwargs):
        raise AssertionError("a session was asked for before the parameters were checked")

    monkeypatch.setattr("sparklift.session.get_spark", no_spark)
    for ours, ref in [(GridSearchCV, skms.GridSearchCV), (HalvingGridSearchCV, None)]:
        with pytest.raises(ValueError, match="'cv' parameter") as got:
            ours(LogisticRegression(), {"C": [1.0]}, cv=1).fit(X, y)
        if ref is not None:
            with pytest.raises(ValueError) as expected:
                ref(LogisticRegression(), {"C": [1.0]}, cv=1).fit(X, y)
            assert str(got.value) == str(expected.value)


def test_group_splitter_pipeline_and_sample_weight(spark, classification):
    X, y = classification
    groups = np.arange(len(y)) % 7
    weights = np.random.default_rng(5).uniform(0.5, 2.0, size=len(y))
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    kwargs = {"param_grid": {"logisticregression__C": [0.05, 0.5, 5.0]}, "cv": GroupKFold(3)}
    ours = GridSearchCV(pipe, **kwargs).fit(
        X, y, groups=groups, logisticregression__sample_weight=weights
    )
    ref = skms.GridSearchCV(pipe, **kwargs).fit(
        X, y, groups=groups, logisticregression__sample_weight=weights
    )
    assert_same_results(ours, ref)


@pytest.mark.parametrize(
    ("ours_cls", "ref_cls", "space"),
    [
        (
            HalvingGridSearchCV,
            skms.HalvingGridSearchCV,
            {"param_grid": {"max_depth": [1, 2, 3, 4, 6, 8], "min_samples_leaf": [1, 5]}},
        ),
        (
            HalvingRandomSearchCV,
            skms.HalvingRandomSearchCV,
            {
                "param_distributions": {
                    "max_depth": list(range(1, 9)),
                    "min_samples_leaf": [1, 2, 5, 10],
                },
                "n_candidates": 9,
            },
        ),
    ],
    ids=["grid", "random"],
)
def test_halving_search_equals_scikit_learn(spark, classification, ours_cls, ref_cls, space):
    X, y = classification
    kwargs = {**space, "factor": 3, "cv": 3, "random_state": 0}
    ours = ours_cls(DecisionTreeClassifier(random_state=0), **kwargs).fit(X, y)
    ref = ref_cls(DecisionTreeClassifier(random_state=0), **kwargs).fit(X, y)
    assert_same_results(ours, ref)
    assert ours.n_iterations_ == ref.n_iterations_ > 1
    assert ours.spark_transfer_.n_rounds == ref.n_iterations_


class FailingClassifier(ClassifierMixin, BaseEstimator):
    """Fails to fit when ``fail`` is set; otherwise predicts the majority class."""

    def __init__(self, fail=False):
        self.fail = fail

    def fit(self, X, y):
        if self.fail:
            raise ArithmeticError("this candidate cannot be fitted")
        self.classes_, counts = np.unique(y, return_counts=True)
        self.majority_ = self.classes_[np.argmax(counts)]
        return self

    def predict(self, X):
        return np.full(len(X), self.majority_)


@pytest.mark.smoke
def test_failing_candidate_is_recorded_with_error_score(spark, classification):
    X, y = classification
    grid = {"fail": [False, True]}
    with pytest.warns(FitFailedWarning, match="this candidate cannot be fitted") as record:
        ours = GridSearchCV(FailingClassifier(), grid, cv=3, error_score=-1.0).fit(X, y)
    # scikit-learn's warning carries the failing fit's traceback.
    assert any("ArithmeticError" in str(w.message) for w in record)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitFailedWarning)
        ref = skms.GridSearchCV(FailingClassifier(), grid, cv=3, error_score=-1.0).fit(X, y)
    assert_same_results(ours, ref)
    np.testing.assert_array_equal(ours.cv_results_["split0_test_score"], [ref.best_score_, -1.0])


def test_error_score_raise_raises_the_users_exception(spark, classification):
    X, y = classification
    search = GridSearchCV(FailingClassifier(), {"fail": [True]}, cv=2, error_score="raise")
    with pytest.raises(ArithmeticError, match="this candidate cannot be fitted"):
        search.fit(X, y)


class ExitsInFit(FailingClassifier):
    """Ends its process in fit, as a crash in native code or an out-of-memory kill would."""

    def fit(self, X, y):
        if self.fail:
            import os

            os._exit(3)
        return super().fit(X, y)


def test_a_worker_that_dies_is_one_clear_error_and_the_session_goes_on(spark, classification):
    X, y = classification
    search = GridSearchCV(ExitsInFit(), {"fail": [False, True]}, cv=2)
    with pytest.raises(WorkerError, match=r"a Spark Python worker died .* out-of-memory"):
        search.fit(X, y)
    search.set_params(param_grid={"fail": [False]}).fit(X, y)  # the next search runs
    assert search.best_params_ == {"fail": False}


def test_a_crashed_workers_own_lines_are_kept_and_the_java_frames_dropped():
    from sparklift._spark import translate_errors

    spark_text = (
        "Job aborted due to stage failure: ... org.apache.spark.SparkException: Python worker "
        "exited unexpectedly (crashed): Fatal Python error: Segmentation fault\n\nCurrent "
        'thread 0x00007f (most recent call first):\n  File "/work/model.py", line 13 in '
        "predict\n\tat org.apache.spark.api.python.BasePythonRunner$ReaderIterator."
        "read(PythonRunner.scala:612)\n\tat scala.collection.Iterator.foreach(Iterator.scala:943)"
    )
    with pytest.raises(WorkerError) as got, translate_errors():
        raise RuntimeError(spark_text)
    message = str(got.value)
    assert message.endswith(
        "(crashed)\nFatal Python error: Segmentation fault\nCurrent thread 0x00007f (most "
        'recent call first):\n  File "/work/model.py", line 13 in predict'
    )
    assert "scala" not in message


def test_workers_without_sparklift_are_one_clear_error():
    import sys

    from sparklift._spark import translate_errors

    # Spark's wording when a worker's Python lacks the package (a session of the
    # user's own whose PYSPARK_PYTHON is another interpreter).
    spark_text = (
        "An exception was thrown from the Python worker. Please see the stack trace below.\n"
        "Traceback (most recent call last):\n  ...\nModuleNotFoundError: No module named "
        "'sparklift'"
    )
    with pytest.raises(WorkerError, match=r"cannot import sparklift") as got, translate_errors():
        raise RuntimeError(spark_text)
    assert f"PYSPARK_PYTHON={sys.executable}" in str(got.value)


class FailsToScore(FailingClassifier):
    """Fits, but its predict raises: scikit-learn records error_score and warns."""

    def fit(self, X, y):
        self.classes_, counts = np.unique(y, return_counts=True)
        self.majority_ = self.classes_[np.argmax(counts)]
        return self

    def predict(self, X):
        if self.fail:
            raise RuntimeError("cannot predict")
        return super().predict(X)


def _driver_warnings(search_cls, estimator, grid, X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search_cls(estimator, grid, cv=2).fit(X, y)
    return sorted((w.category.__name__, str(w.message).splitlines()[0]) for w in caught)


def test_warnings_in_the_fits_reach_the_caller_as_in_scikit_learn(spark, classification):
    """The fits' own warnings (scoring failures, non-convergence) are warned on the driver."""
    X, y = classification
    cases = [
        (FailsToScore(), {"fail": [False, True]}),
        (LogisticRegression(max_iter=1), {"C": [1.0, 10.0]}),
    ]
    for estimator, grid in cases:
        ours = _driver_warnings(GridSearchCV, estimator, grid, X, y)
        ref = _driver_warnings(skms.GridSearchCV, estimator, grid, X, y)
        assert ours == ref
        assert any("Scoring failed" in m or "converge" in m for _, m in ours)


def test_verbose_lines_of_the_fits_are_printed_on_the_driver(spark, classification, capsys):
    X, y = classification
    grid = {"C": [0.1, 1.0]}
    GridSearchCV(LogisticRegression(), grid, cv=2, verbose=3).fit(X, y)
    ours = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[CV")]
    skms.GridSearchCV(LogisticRegression(), grid, cv=2, verbose=3).fit(X, y)
    ref = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[CV")]
    assert len(ours) == len(ref) == 4
    # The same lines, times excepted.
    assert [line.split("total time")[0] for line in ours] == [
        line.split("total time")[0] for line in ref
    ]


@pytest.mark.smoke
def test_nested_search_runs_its_inner_fits_in_the_task(spark, classification):
    """A sparklift search as the estimator of another: the inner one has no Spark in a task."""
    X, y = classification
    inner = {"param_grid": {"C": [0.01, 1.0]}, "cv": 2}
    outer = {"param_grid": {"cv": [2, 3]}, "cv": 2}
    ours = GridSearchCV(GridSearchCV(LogisticRegression(), **inner), **outer).fit(X, y)
    ref = skms.GridSearchCV(skms.GridSearchCV(LogisticRegression(), **inner), **outer).fit(X, y)
    assert_same_results(ours, ref)
    assert ours.spark_transfer_.n_fits == 4
    # The best inner search is refitted on the driver, with Spark.
    assert ours.best_estimator_.spark_transfer_.n_fits == 2 * ours.best_params_["cv"]


def test_search_in_joblib_workers_fits_there_without_starting_a_spark(spark, classification):
    """cross_validate(search, n_jobs=2): joblib's worker processes have no Spark session.

    The search fits in each worker as scikit-learn's would, rather than
    starting a local Spark (a JVM) in every worker, off the user's session.
    """
    from sklearn.model_selection import cross_validate

    X, y = classification
    grid = {"C": [0.01, 1.0]}
    ours = cross_validate(
        GridSearchCV(LogisticRegression(), grid, cv=2), X, y, cv=2, n_jobs=2, return_estimator=True
    )
    ref = cross_validate(skms.GridSearchCV(LogisticRegression(), grid, cv=2), X, y, cv=2)
    np.testing.assert_array_equal(ours["test_score"], ref["test_score"])
    assert [e.spark_transfer_.n_fits for e in ours["estimator"]] == [0, 0]


def test_search_in_a_worker_process_warns_and_fits_there(spark, classification, monkeypatch):
    """The worker case seen from inside: a child process where get_spark would start a JVM."""
    import multiprocessing

    import sparklift.session
    from sparklift.tuning import SearchInWorkerWarning

    X, y = classification
    grid = {"C": [0.01, 1.0]}
    ref = skms.GridSearchCV(LogisticRegression(), grid, cv=2).fit(X, y)
    monkeypatch.setattr(multiprocessing, "parent_process", lambda: object())
    monkeypatch.setattr(sparklift.session, "starts_local_jvm", lambda: True)
    process = multiprocessing.current_process()
    monkeypatch.setattr(process, "name", "LokyProcess-1")
    with pytest.warns(SearchInWorkerWarning, match=r"worker process .* n_jobs=1"):
        ours = GridSearchCV(LogisticRegression(), grid, cv=2).fit(X, y)
    assert_same_results(ours, ref)
    assert ours.spark_transfer_.n_fits == 0
    # A program's own child process (multiprocessing.Process) is not a pool
    # worker: its search goes to Spark, as the program asked (here, the
    # test's session; get_spark would start one).
    monkeypatch.setattr(process, "name", "Process-1")
    with warnings.catch_warnings():
        warnings.simplefilter("error", SearchInWorkerWarning)
        ours = GridSearchCV(LogisticRegression(), grid, cv=2).fit(X, y)
    assert ours.spark_transfer_.n_fits == 4


def test_starts_local_jvm_only_without_a_session_or_a_remote_server(spark, monkeypatch):
    import sparklift.session as session

    assert session.starts_local_jvm() is False  # the test session is active
    # Another thread sees no active session of its own, but the process has one.
    import threading

    seen = []
    thread = threading.Thread(target=lambda: seen.append(session.starts_local_jvm()))
    thread.start()
    thread.join()
    assert seen == [False]
    monkeypatch.setattr(session, "_session_in_process", lambda: False)
    for remote, starts in [(None, True), ("local[2]", True), ("sc://spark.example:15002", False)]:
        if remote is None:
            monkeypatch.delenv("SPARK_REMOTE", raising=False)
        else:
            monkeypatch.setenv("SPARK_REMOTE", remote)
        assert session.starts_local_jvm() is starts, remote


def test_refit_of_a_scikit_learn_search_estimator_stays_scikit_learns(spark, classification):
    """Only the search's own fits go to Spark: an inner scikit-learn search's refit does not."""
    X, y = classification
    inner = skms.GridSearchCV(LogisticRegression(), {"C": [0.01, 0.1, 1.0]}, cv=2)
    ours = GridSearchCV(inner, {"cv": [2, 3]}, cv=2).fit(X, y)
    ref = skms.GridSearchCV(inner, {"cv": [2, 3]}, cv=2).fit(X, y)
    assert_same_results(ours, ref)
    assert (ours.spark_transfer_.n_fits, ours.spark_transfer_.n_rounds) == (4, 1)


class CustomInitError(Exception):
    """An exception pickle cannot rebuild: its __init__ needs two arguments."""

    def __init__(self, code, detail):
        super().__init__(f"code {code}: {detail}")


class RaisesCustomInitError(FailingClassifier):
    def fit(self, X, y):
        raise CustomInitError(7, "the solver gave up")


def test_an_exception_that_cannot_be_rebuilt_comes_back_with_its_name(spark, classification):
    X, y = classification
    search = GridSearchCV(RaisesCustomInitError(), {"fail": [True]}, cv=2, error_score="raise")
    with pytest.raises(TaskError, match="CustomInitError: code 7: the solver gave up") as info:
        search.fit(X, y)
    assert info.value.type_name.endswith("CustomInitError")
    # The user's own traceback, not that of the failed attempt to rebuild it.
    last = info.value.remote_traceback.strip().splitlines()[-1]
    assert last.endswith("CustomInitError: code 7: the solver gave up")
    assert "_rebuildable" not in info.value.remote_traceback


def test_pandas_inputs_and_a_generator_cv_equal_scikit_learn(spark, classification):
    pd = pytest.importorskip("pandas")
    X, y = classification
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    target = pd.Series(y, name="label")
    grid = {"C": [0.1, 1.0]}
    ours = GridSearchCV(LogisticRegression(), grid, cv=3).fit(frame, target)
    ref = skms.GridSearchCV(LogisticRegression(), grid, cv=3).fit(frame, target)
    assert_same_results(ours, ref)
    assert list(ours.feature_names_in_) == list(frame.columns)
    # scikit-learn accepts a generator of (train, test) pairs for cv; the
    # search object holding it is not shipped to the workers.
    ours = GridSearchCV(LogisticRegression(), grid, cv=KFold(3).split(X)).fit(frame, target)
    ref = skms.GridSearchCV(LogisticRegression(), grid, cv=KFold(3).split(X)).fit(frame, target)
    assert_same_results(ours, ref)


def test_sparse_X_equals_scikit_learn(spark, classification):
    sparse = pytest.importorskip("scipy.sparse")
    X, y = classification
    X = sparse.csr_matrix(np.where(np.abs(X) > 1.0, X, 0.0))
    grid = {"C": [0.1, 1.0]}
    ours = GridSearchCV(LogisticRegression(), grid, cv=3).fit(X, y)
    ref = skms.GridSearchCV(LogisticRegression(), grid, cv=3).fit(X, y)
    assert_same_results(ours, ref)


def test_bytes_shipped_do_not_grow_with_the_number_of_fits(spark):
    X, y = make_classification(n_samples=2000, n_features=10, random_state=0)
    small = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=5).fit(X, y)
    big = GridSearchCV(LogisticRegression(), {"C": list(np.logspace(-2, 2, 24))}, cv=5).fit(X, y)
    s, b = small.spark_transfer_, big.spark_transfer_
    assert (s.n_fits, b.n_fits) == (10, 120)
    # X and y (160 kB) are in the shared store once, whatever the number of fits...
    assert X.nbytes < s.shared_bytes < 2 * X.nbytes
    assert X.nbytes < b.shared_bytes < 2 * X.nbytes
    # ... and each fit's own pickle is a small fraction of them.
    assert b.task_bytes / b.n_fits < X.nbytes / 20
    # ... and does not grow with the number of fits in the search.
    assert b.task_bytes / b.n_fits < 1.2 * s.task_bytes / s.n_fits

    # What the Python workers received, measured in the tasks: the store once
    # per Spark task (a few tasks per slot, not one per fit), and each fit's
    # own pickle once, in the list of its task's calls (a few bytes each),
    # with the driver's import path once per task.
    from sparklift._serialize import driver_paths

    per_task = 32 + len(pickle.dumps(driver_paths(), protocol=pickle.HIGHEST_PROTOCOL))
    slots = task_slots(spark)
    for t in (s, b):
        n_tasks = min(TASKS_PER_SLOT * slots, t.n_fits)
        assert t.n_spark_tasks == n_tasks
        assert t.n_spark_jobs == len(job_bounds(n_tasks))
        calls = t.worker_bytes - n_tasks * t.shared_bytes
        assert t.task_bytes < calls < t.task_bytes + 8 * t.n_fits + per_task * n_tasks
        # Each executor got the store and all the calls once per Spark job.
        assert t.broadcast_bytes == t.n_spark_jobs * (t.shared_bytes + calls)
        # Each worker unpickles the store once and then reuses it.
        assert 1 <= t.store_unpickles <= n_tasks
    assert b.n_spark_tasks < b.n_fits
    assert b.store_unpickles < b.n_spark_tasks
    # 12x the fits: each task received about as much as before (the store
    # and its own few fits), so the total grows with the tasks, not the fits.
    per_task_s = s.worker_bytes / s.n_spark_tasks
    assert b.worker_bytes / b.n_spark_tasks < 1.1 * per_task_s
    # Shipping the data with every fit (joblibspark's way) would deliver X to
    # the workers 120 times; here the store went to 16 tasks (4 slots x 4).
    assert b.worker_bytes < 0.3 * b.n_fits * X.nbytes


def test_plain_scikit_learn_search_is_untouched(classification):
    # Importing sparklift.tuning must not change scikit-learn's own searches.
    X, y = classification
    ref = skms.GridSearchCV(LogisticRegression(), {"C": [1.0]}, cv=2, n_jobs=1).fit(X, y)
    assert not hasattr(ref, "spark_transfer_")


def test_search_is_a_scikit_learn_estimator(classification):
    search = GridSearchCV(LogisticRegression(), {"C": [1.0, 2.0]}, cv=3)
    params = search.get_params()
    assert params["cv"] == 3
    assert set(skms.GridSearchCV(LogisticRegression(), {}).get_params()) == set(params)
    from sklearn.base import clone

    assert clone(search).param_grid == {"C": [1.0, 2.0]}


# --- packing, without Spark ---------------------------------------------------


def _add(a, b, *, scale):
    return (a.sum() + b) * scale


def test_pack_calls_stores_shared_data_once():
    data = np.arange(10_000, dtype=float)
    calls = [(_add, (data, i), {"scale": 2}) for i in range(50)]
    packed = pack_calls(calls)
    assert data.nbytes < packed.shared_bytes < data.nbytes + 2_000
    assert packed.task_bytes < 50 * 200
    store = pickle.loads(packed.shared)
    results = [unpack_outcome(run_payload(p, store)) for p in packed.payloads]
    assert results == [(data.sum() + i) * 2 for i in range(50)]


def test_worker_cache_reuses_the_store():
    packed = pack_calls([(_add, (np.ones(500), 1), {"scale": 1})])
    first = load_store(packed.key, packed.shared)
    assert load_store(packed.key, b"not read on a hit") is first


def test_exceptions_come_back_as_themselves():
    packed = pack_calls([(_add, (np.ones(3), "x"), {"scale": 1})])
    store = pickle.loads(packed.shared)
    with pytest.raises(TypeError) as info:
        unpack_outcome(run_payload(packed.payloads[0], store))
    assert "Raised in a Spark task" in "".join(getattr(info.value, "__notes__", []))


def _raise_unrebuildable():
    raise CustomInitError(3, "no")


def test_an_unrebuildable_exception_is_replaced_by_a_task_error():
    packed = pack_calls([(_raise_unrebuildable, (), {})])
    blob = run_payload(packed.payloads[0], pickle.loads(packed.shared))
    with pytest.raises(TaskError, match="CustomInitError: code 3: no") as info:
        unpack_outcome(blob)
    # It survives pickling itself, as errors crossing processes must.
    again = pickle.loads(pickle.dumps(info.value))
    assert (again.type_name, again.message) == (info.value.type_name, "code 3: no")


def test_unpicklable_search_data_is_a_clear_error():
    import threading

    with pytest.raises(SparkliftError, match="cannot be pickled to send them to Spark"):
        pack_calls([(_add, (np.ones(3), threading.Lock()), {"scale": 1})] * 2)


@pytest.mark.parametrize(
    ("n_calls", "expected"),
    [
        (0, []),
        (3, [(0, 1), (1, 2), (2, 3)]),
        (20, [(i, i + 3) for i in range(0, 18, 3)] + [(18, 20)]),
    ],
)
def test_job_bounds_cover_every_call_once(n_calls, expected):
    assert job_bounds(n_calls, max_jobs=8) == expected


def test_a_payload_the_worker_cannot_unpickle_is_a_clear_error():
    packed = pack_calls([(_add, (np.ones(3), 1), {"scale": 1})])
    store = pickle.loads(packed.shared)
    with pytest.raises(SparkliftError, match="could not unpickle the search's data"):
        unpack_outcome(run_payload(b"not a pickle", store))
