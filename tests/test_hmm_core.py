"""core.fit_arrays / decode / score against hmmlearn itself, on seeded data."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from sparklift.errors import InvalidInputError
from sparklift.hmm import core
from sparklift.hmm.emissions import CategoricalEmissions

hmm = pytest.importorskip("hmmlearn.hmm")

RTOL = 1e-6
LENGTHS = [1, 2, 7, 30, 55, 13]


def _categorical_data(seed=0, K=3, F=5, lengths=LENGTHS):
    rng = np.random.RandomState(seed)
    n = int(np.sum(lengths))
    X = rng.randint(0, F, size=n)
    X[:F] = np.arange(F)  # every symbol present
    sp = rng.dirichlet(np.ones(K))
    tm = rng.dirichlet(np.ones(K), size=K)
    ep = rng.dirichlet(np.ones(F), size=K)
    return X, {"startprob": sp, "transmat": tm, "emissionprob": ep}


def _hmmlearn_categorical(p, impl, n_iter=12, **kw):
    ref = hmm.CategoricalHMM(
        n_components=p["startprob"].shape[0],
        n_iter=n_iter,
        tol=-np.inf,
        init_params="",
        implementation=impl,
        **kw,
    )
    ref.startprob_ = p["startprob"].copy()
    ref.transmat_ = p["transmat"].copy()
    ref.emissionprob_ = p["emissionprob"].copy()
    return ref


@pytest.mark.smoke
@pytest.mark.parametrize("impl", ["log", "scaling"])
def test_categorical_fit_equals_hmmlearn(impl):
    X, params = _categorical_data()
    fam = CategoricalEmissions(n_features=5)
    off = core.lengths_to_offsets(LENGTHS)
    ref = _hmmlearn_categorical(params, impl).fit(X[:, None], LENGTHS)
    got, mon = core.fit_arrays(fam, params, X, off, n_iter=12, tol=-np.inf, implementation=impl)
    assert mon.iter == ref.monitor_.iter == 12
    np.testing.assert_allclose(list(mon.history), list(ref.monitor_.history), rtol=RTOL)
    np.testing.assert_allclose(got["startprob"], ref.startprob_, rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(got["transmat"], ref.transmat_, rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(got["emissionprob"], ref.emissionprob_, rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("fit_params", ["ste", "te"])
def test_categorical_priors_and_partial_params(fit_params):
    X, params = _categorical_data(seed=1)
    fam = CategoricalEmissions(n_features=5, emissionprob_prior=1.5)
    off = core.lengths_to_offsets(LENGTHS)
    sp_prior = np.array([2.0, 1.0, 3.0])
    ref = _hmmlearn_categorical(
        params,
        "log",
        params=fit_params,
        startprob_prior=sp_prior,
        transmat_prior=1.2,
        emissionprob_prior=1.5,
    ).fit(X[:, None], LENGTHS)
    got, mon = core.fit_arrays(
        fam,
        params,
        X,
        off,
        n_iter=12,
        tol=-np.inf,
        fit_params=fit_params,
        startprob_prior=sp_prior,
        transmat_prior=1.2,
    )
    np.testing.assert_allclose(list(mon.history), list(ref.monitor_.history), rtol=RTOL)
    np.testing.assert_allclose(got["startprob"], ref.startprob_, rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(got["transmat"], ref.transmat_, rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(got["emissionprob"], ref.emissionprob_, rtol=RTOL, atol=1e-12)


def test_stats_are_additive_across_batches():
    X, params = _categorical_data(seed=2)
    fam = CategoricalEmissions(n_features=5)
    off = core.lengths_to_offsets(LENGTHS)
    whole = core.e_step(fam, params, X, off, "scaling")
    cut = 3  # split after the third sequence, as two partitions would
    a = core.e_step(fam, params, X[: off[cut]], off[: cut + 1], "scaling")
    b = core.e_step(fam, params, X[off[cut] :], off[cut:] - off[cut], "scaling")
    total = a + b
    assert total.nobs == whole.nobs == len(LENGTHS)
    assert total.n_frames == whole.n_frames == X.size
    np.testing.assert_allclose(total.logprob, whole.logprob, rtol=1e-12)
    np.testing.assert_allclose(total.trans, whole.trans, rtol=1e-12)
    np.testing.assert_allclose(total.emission["obs"], whole.emission["obs"], rtol=1e-12)
    assert sum([a, None, b]).nobs == total.nobs
    # Arrow-style offsets of a slice, with the whole child array or just the slice
    for frames in (X, X[off[cut] :]):
        c = core.e_step(fam, params, frames, off[cut:], "scaling")
        np.testing.assert_allclose(c.emission["obs"], b.emission["obs"], rtol=1e-12)
    back = core.Stats.from_arrays(total.to_arrays())
    np.testing.assert_array_equal(back.emission["obs"], total.emission["obs"])
    assert back.nobs == total.nobs


@pytest.mark.parametrize("algorithm", ["viterbi", "map"])
def test_decode_and_score_equal_hmmlearn(algorithm):
    X, params = _categorical_data(seed=3, K=4, F=6)
    fam = CategoricalEmissions(n_features=6)
    off = core.lengths_to_offsets(LENGTHS)
    ref = _hmmlearn_categorical(params, "log")
    ref.n_features = 6
    lp, states = core.decode(fam, params, X, off, algorithm=algorithm)
    ref_lp, ref_states = ref.decode(X[:, None], LENGTHS, algorithm=algorithm)
    np.testing.assert_array_equal(states, ref_states)
    np.testing.assert_allclose(lp.sum(), ref_lp, rtol=1e-9)
    np.testing.assert_allclose(
        core.score(fam, params, X, off).sum(), ref.score(X[:, None], LENGTHS), rtol=1e-9
    )
    _, post = core.posteriors(fam, params, X, off)
    np.testing.assert_allclose(post, ref.predict_proba(X[:, None], LENGTHS), rtol=1e-9, atol=1e-12)


def test_viterbi_ties_broken_as_hmmlearn():
    # symmetric model: every path is tied; hmmlearn's C++ picks specific states
    K = 3
    params = {
        "startprob": np.full(K, 1 / K),
        "transmat": np.full((K, K), 1 / K),
        "emissionprob": np.full((K, 2), 0.5),
    }
    X = np.array([0, 1, 1, 0, 1])
    ref = _hmmlearn_categorical(params, "log")
    ref.n_features = 2
    _, states = core.decode(
        CategoricalEmissions(n_features=2), params, X, core.lengths_to_offsets([5])
    )
    np.testing.assert_array_equal(states, ref.decode(X[:, None])[1])


def test_init_params_draws_as_hmmlearn():
    X, _ = _categorical_data(seed=4)
    fam = CategoricalEmissions(n_features=5)
    got = core.init_params(fam, 3, X, "ste", random_state=7)
    ref = hmm.CategoricalHMM(n_components=3, random_state=7, n_iter=0)
    ref._init(X[:, None], LENGTHS)
    np.testing.assert_array_equal(got["startprob"], ref.startprob_)
    np.testing.assert_array_equal(got["transmat"], ref.transmat_)
    np.testing.assert_array_equal(got["emissionprob"], ref.emissionprob_)
    # letters not in init_params come from base_params
    kept = core.init_params(
        fam, 3, X, "st", random_state=7, base_params={"emissionprob": got["emissionprob"]}
    )
    np.testing.assert_array_equal(kept["emissionprob"], got["emissionprob"])


def test_monitor_semantics_and_warning(caplog):
    mon = core.ConvergenceMonitor(tol=0.5, n_iter=10, verbose=False)
    mon.report(-10.0)
    assert not mon.converged
    with caplog.at_level(logging.WARNING, logger="sparklift.hmm"):
        mon.report(-11.0)
    assert "Model is not converging" in caplog.text
    assert mon.converged  # -1 < tol
    assert list(mon.history) == [-10.0, -11.0]
    assert mon.iter == 2
    assert core.ConvergenceMonitor.from_dict(mon.to_dict()).history == mon.history


def test_unused_state_never_nan():
    # state 2 can never be entered nor start: hmmlearn leaves a zero row
    X, params = _categorical_data(seed=5)
    params["startprob"] = np.array([0.5, 0.5, 0.0])
    params["transmat"] = np.array([[0.5, 0.5, 0.0], [0.3, 0.7, 0.0], [0.2, 0.3, 0.5]])
    fam = CategoricalEmissions(n_features=5)
    off = core.lengths_to_offsets(LENGTHS)
    got, _ = core.fit_arrays(fam, params, X, off, n_iter=5, tol=-np.inf, implementation="scaling")
    for v in got.values():
        assert np.all(np.isfinite(v))
    ref = _hmmlearn_categorical(params, "scaling", n_iter=5).fit(X[:, None], LENGTHS)
    np.testing.assert_allclose(got["transmat"], ref.transmat_, rtol=RTOL, atol=1e-12)


def test_impossible_sequence_is_a_clear_error():
    X, params = _categorical_data(seed=6)
    params["emissionprob"][:, 4] = 0.0
    params["emissionprob"] /= params["emissionprob"].sum(axis=1, keepdims=True)
    off = core.lengths_to_offsets(LENGTHS)
    with pytest.raises(InvalidInputError, match="zero likelihood"):
        core.e_step(CategoricalEmissions(n_features=5), params, X, off, "log")


def test_symbols_out_of_range_are_a_clear_error():
    X, params = _categorical_data(seed=7)
    off = core.lengths_to_offsets(LENGTHS)
    fam = CategoricalEmissions(n_features=5)
    for bad in (-1, 5):
        Y = X.copy()
        Y[3] = bad
        with pytest.raises(InvalidInputError, match=r"1 symbols are outside \[0, n_features=5\)"):
            core.e_step(fam, params, Y, off)
        with pytest.raises(InvalidInputError, match="outside"):
            core.decode(fam, params, Y, off)
        with pytest.raises(InvalidInputError, match="outside"):
            fam.check_frames(Y)


def test_check_params_names_the_bad_parameter():
    _, params = _categorical_data(seed=8)
    fam = CategoricalEmissions(n_features=5)
    core.check_params(fam, params)
    cases = [
        ({"startprob": params["startprob"] * 2}, "startprob"),
        ({"transmat": np.eye(2)}, "transmat"),
        ({"emissionprob": params["emissionprob"][:, :4]}, "emissionprob"),
        ({"emissionprob": params["emissionprob"] * np.nan}, "emissionprob"),
    ]
    for change, name in cases:
        with pytest.raises(ValueError, match=name):
            core.check_params(fam, {**params, **change})
    with pytest.raises(ValueError, match="'emissionprob' is missing"):
        core.check_params(fam, {"startprob": params["startprob"], "transmat": params["transmat"]})
    with pytest.raises(ValueError, match="implementation"):
        core.e_step(fam, params, np.zeros(3, dtype=int), core.lengths_to_offsets([3]), "fast")
    with pytest.raises(ValueError, match="algorithm"):
        core.decode(fam, params, np.zeros(3, dtype=int), core.lengths_to_offsets([3]), "best")
