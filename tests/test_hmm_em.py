"""The distributed EM loop: checkpoint/resume, task retries, restarts, progress."""

from __future__ import annotations

import os

import numpy as np
import pytest

from sparklift.errors import InvalidInputError
from sparklift.hmm import CategoricalHMM, core, em
from sparklift.hmm.emissions import CategoricalEmissions
from sparklift.hmm.estimators import _restart_seeds
from sparklift.hmm.sequences import sequences_from_arrays


def _categorical_data(seed: int = 0, n_sequences: int = 60):
    """Sequences drawn from a known 3-state, 4-symbol process (numpy only)."""
    rng = np.random.RandomState(seed)
    startprob = np.array([0.6, 0.3, 0.1])
    transmat = np.array([[0.8, 0.15, 0.05], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    emission = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1], [0.05, 0.05, 0.2, 0.7]])
    lengths = rng.randint(5, 25, size=n_sequences)
    symbols = []
    for length in lengths:
        state = rng.choice(3, p=startprob)
        for _ in range(length):
            symbols.append(rng.choice(4, p=emission[state]))
            state = rng.choice(3, p=transmat[state])
    return np.array(symbols)[:, None], lengths


@pytest.fixture(scope="module")
def data(spark):
    X, lengths = _categorical_data()
    return sequences_from_arrays(spark, X, lengths, num_partitions=2)


def _assert_same_model(a, b, rtol=1e-10):
    np.testing.assert_allclose(a.startprob_, b.startprob_, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(a.transmat_, b.transmat_, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(a.emissionprob_, b.emissionprob_, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(list(a.monitor_.history), list(b.monitor_.history), rtol=rtol)


@pytest.mark.smoke
def test_interrupted_fit_resumes_from_checkpoint(data, tmp_path, monkeypatch):
    from hmmlearn import hmm

    settings = {"n_components": 3, "tol": 0.0, "random_state": 1, "num_partitions": 2}
    # The uninterrupted fit is hmmlearn's (sparklift's own equals it: test_hmm_fidelity).
    X, lengths = _categorical_data()
    uninterrupted = hmm.CategoricalHMM(n_components=3, n_iter=3, tol=0.0, random_state=1)
    uninterrupted.fit(X, lengths)

    checkpoint_dir = str(tmp_path / "ckpt")
    # "Killed" after 1 iteration: a fit limited to 1 iteration leaves its checkpoint.
    CategoricalHMM(n_iter=1, checkpoint_dir=checkpoint_dir, **settings).fit(data)
    assert os.path.exists(os.path.join(checkpoint_dir, "checkpoint.json"))

    calls = []
    real = em.expected_statistics
    monkeypatch.setattr(em, "expected_statistics", lambda *a, **k: calls.append(1) or real(*a, **k))
    resumed = CategoricalHMM(n_iter=3, checkpoint_dir=checkpoint_dir, **settings).fit(data)
    assert len(calls) == 2, "the resumed fit must run only the 2 remaining iterations"
    assert resumed.monitor_.iter == 3
    _assert_same_model(resumed, uninterrupted, rtol=1e-9)


def test_finished_checkpoint_is_returned_without_iterating(data, tmp_path, monkeypatch):
    settings = {
        "n_components": 2,
        "n_iter": 2,
        "tol": 0.0,
        "random_state": 0,
        "checkpoint_dir": str(tmp_path),
    }
    first = CategoricalHMM(**settings).fit(data)
    calls = []
    real = em.expected_statistics
    monkeypatch.setattr(em, "expected_statistics", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = CategoricalHMM(**settings).fit(data)
    assert calls == []
    _assert_same_model(first, again)


def test_checkpoint_of_another_fit_is_refused(data, tmp_path):
    checkpoint_dir = str(tmp_path / "ckpt")
    CategoricalHMM(n_components=2, n_iter=1, random_state=0, checkpoint_dir=checkpoint_dir).fit(
        data
    )
    with pytest.raises(InvalidInputError, match="different fit"):
        CategoricalHMM(n_components=3, n_iter=2, random_state=0, checkpoint_dir=checkpoint_dir).fit(
            data
        )


def test_checkpoint_of_other_data_of_the_same_shape_is_refused(spark, tmp_path):
    """Same settings, same sequence lengths, other symbols: not the same fit."""
    X, lengths = _categorical_data()
    other = X.copy()
    other[::7] = (other[::7] + 1) % 4  # every seventh symbol changed
    settings = {"n_components": 3, "random_state": 0, "checkpoint_dir": str(tmp_path / "c")}
    CategoricalHMM(n_iter=1, **settings).fit(sequences_from_arrays(spark, X, lengths))
    with pytest.raises(InvalidInputError, match="different fit"):
        CategoricalHMM(n_iter=2, **settings).fit(sequences_from_arrays(spark, other, lengths))
    # The same data in other partitions is the same data: it resumes.
    same = sequences_from_arrays(spark, X, lengths, num_partitions=3)
    CategoricalHMM(n_iter=2, **settings).fit(same)


class FlakyCategorical(CategoricalEmissions):
    """Fails the first E-step batch it sees anywhere (a marker file records it), then works."""

    def __init__(self, marker: str, **kwargs):
        super().__init__(**kwargs)
        self.marker = marker

    def prepare(self, X):
        if not os.path.exists(self.marker):
            with open(self.marker, "w") as fh:
                fh.write("failed once")
            raise RuntimeError("injected task failure")
        return super().prepare(X)


@pytest.mark.smoke
def test_task_failing_once_is_retried_with_identical_parameters(data, tmp_path):
    X, _lengths = _categorical_data()
    start = core.init_params(CategoricalEmissions(n_features=4), 3, X, "ste", 0)
    cached = data.select("sequence").cache()
    settings = {
        "n_iter": 1,
        "tol": 0.0,
        "implementation": "log",
        "fit_params": "ste",
        "startprob_prior": 1.0,
        "transmat_prior": 1.0,
    }
    try:
        clean, _ = em.run_em(
            cached, "sequence", "int", CategoricalEmissions(n_features=4), start, **settings
        )
        marker = str(tmp_path / "failed-once")
        flaky = FlakyCategorical(marker, n_features=4)
        retried, _ = em.run_em(cached, "sequence", "int", flaky, start, **settings)
    finally:
        cached.unpersist()
    assert os.path.exists(marker), "the failure was not injected"
    for key in clean:
        np.testing.assert_array_equal(retried[key], clean[key])


def test_n_init_keeps_the_best_restart(data):
    settings = {"n_components": 3, "n_iter": 2, "tol": 0.0, "num_partitions": 2}
    best = CategoricalHMM(n_init=2, random_state=5, **settings).fit(data)
    singles = [
        CategoricalHMM(random_state=seed, **settings).fit(data) for seed in _restart_seeds(5, 2)
    ]
    finals = [m.monitor_.history[-1] for m in singles]
    assert finals[0] != finals[1]
    _assert_same_model(best, singles[int(np.argmax(finals))])


def test_progress_bar_on_request_only(data, capsys):
    CategoricalHMM(n_components=2, n_iter=1, random_state=0, progress=True).fit(data)
    assert "log_likelihood" in capsys.readouterr().err
    CategoricalHMM(n_components=2, n_iter=1, random_state=0, progress=False).fit(data)
    assert "log_likelihood" not in capsys.readouterr().err


def test_no_sequences_is_a_clear_error(spark):
    empty = spark.createDataFrame([], "sequence array<bigint>")
    with pytest.raises(InvalidInputError, match="sequence"):
        CategoricalHMM(n_components=2, n_features=3, n_iter=2).fit(empty)


@pytest.mark.slow  # two fits; the bounded sample is also covered by test_hmm_sequences
def test_initialisation_from_a_bounded_sample(data):
    """More frames than init_sample_size: a seeded sample of the cached data initialises."""
    settings = {"n_components": 3, "n_iter": 1, "random_state": 0, "init_sample_size": 50}
    first = CategoricalHMM(**settings).fit(data)
    again = CategoricalHMM(**settings).fit(data)
    assert first.emissionprob_.shape == (3, 4)
    assert np.isfinite(first.monitor_.history[-1])
    np.testing.assert_allclose(first.transmat_, again.transmat_)


# ------------------------------------------------------------------------ review fixes


def test_resume_with_fewer_iterations_than_saved_is_refused(data, tmp_path):
    settings = {"n_components": 2, "tol": 0.0, "random_state": 0, "checkpoint_dir": str(tmp_path)}
    CategoricalHMM(n_iter=3, **settings).fit(data)
    with pytest.raises(ValueError, match=r"already holds 3 iterations, more than n_iter=2"):
        CategoricalHMM(n_iter=2, **settings).fit(data)


def test_tol_minus_inf_runs_every_iteration_like_hmmlearn(data):
    from hmmlearn import hmm

    X, lengths = _categorical_data()
    ref = hmm.CategoricalHMM(n_components=2, n_iter=4, tol=-np.inf, random_state=0)
    ref.fit(X, lengths)
    model = CategoricalHMM(n_components=2, n_iter=4, tol=float("-inf"), random_state=0).fit(data)
    assert model.monitor_.iter == ref.monitor_.iter == 4
    np.testing.assert_allclose(list(model.monitor_.history), list(ref.monitor_.history), rtol=1e-8)


@pytest.mark.parametrize("letters", [{"params": "stx"}, {"init_params": "stm"}])
def test_letters_a_family_does_not_use_are_refused(letters):
    class NoSpark:
        def __getattr__(self, name):
            raise AssertionError("a Spark job ran")

    with pytest.raises(InvalidInputError, match="allowed letters: 'ste'"):
        CategoricalHMM(n_components=2, **letters).fit(NoSpark())


def test_verbose_report_lines_stand_alone_beside_the_bar(data, capsys):
    import re

    CategoricalHMM(n_components=2, n_iter=2, random_state=0, progress=True, verbose=True).fit(data)
    segments = re.split(r"[\r\n]", capsys.readouterr().err)
    # hmmlearn's report format: iteration, log-likelihood, delta, each on its own line.
    report = re.compile(r"^\s+[12]\s+-\d+\.\d{8}\s+(\+nan|[+-]\d+\.\d{8})$")
    assert sum(bool(report.match(s)) for s in segments) == 2, segments


def test_categorical_initialisation_draws_no_sample(data, monkeypatch):
    # hmmlearn initialises emissionprob_ with random numbers: no frame is needed.
    from sparklift.hmm import estimators

    def no_sample(*args, **kwargs):
        raise AssertionError("a sample was drawn")

    monkeypatch.setattr(estimators, "sample_frames", no_sample)
    model = CategoricalHMM(n_components=2, n_iter=1, random_state=0).fit(data)
    assert model.emissionprob_.shape == (2, 4)
