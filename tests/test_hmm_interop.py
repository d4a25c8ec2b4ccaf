"""hmmlearn <-> sparklift conversion, checked by scoring with both libraries."""

from __future__ import annotations

import numpy as np
import pytest

from sparklift.errors import NotFittedError
from sparklift.hmm import core
from sparklift.hmm.emissions import get_family
from sparklift.hmm.interop import from_hmmlearn, hmmlearn_settings, to_hmmlearn

hmm = pytest.importorskip("hmmlearn.hmm")

LENGTHS = [4, 20, 11]


def _data(name, rng):
    n = sum(LENGTHS)
    if name == "categorical":
        return rng.randint(0, 4, size=n)
    if name in ("poisson", "multinomial"):
        X = rng.poisson(2.0, size=(n, 3))
        if name == "multinomial":
            X[:, 2] = 8 - X[:, :2].clip(0, 4).sum(axis=1)
            X[:, :2] = X[:, :2].clip(0, 4)
        return X
    return rng.randn(n, 2)


def _start(fam, X):
    base = {}
    if fam.name == "gmm":  # skip GMM's k-means: it is slow and not what is tested here
        base["means"] = X[
            np.random.RandomState(0).choice(len(X), size=(2, fam.n_mix), replace=False)
        ]
    return core.init_params(fam, 2, X, "st" + fam.letters, random_state=0, base_params=base)


CASES = [
    ("categorical", {}),
    ("gaussian", {"covariance_type": "spherical"}),
    ("gaussian", {"covariance_type": "diag"}),
    ("gaussian", {"covariance_type": "full"}),
    ("gaussian", {"covariance_type": "tied"}),
    ("poisson", {}),
    ("multinomial", {"n_trials": 8}),
    ("gmm", {"n_mix": 2, "covariance_type": "full"}),
]


@pytest.mark.parametrize(("name", "hyper"), CASES)
def test_roundtrip_through_hmmlearn(name, hyper):
    rng = np.random.RandomState(0)
    X = _data(name, rng)
    fam = get_family(name, n_features=4 if name == "categorical" else X.shape[1], **hyper)
    params = _start(fam, X)
    obj = to_hmmlearn(name, fam.get_params(), params, 2, algorithm="viterbi")
    Xh = X[:, None] if name == "categorical" else X
    off = core.lengths_to_offsets(LENGTHS)
    np.testing.assert_allclose(
        core.score(fam, params, X, off).sum(), obj.score(Xh, LENGTHS), rtol=1e-9
    )
    np.testing.assert_array_equal(core.decode(fam, params, X, off)[1], obj.predict(Xh, LENGTHS))
    back_name, back_hyper, back_params, n = from_hmmlearn(obj)
    assert (back_name, n) == (name, 2)
    for k, v in params.items():
        np.testing.assert_allclose(back_params[k], v, rtol=1e-12)
    back_fam = get_family(back_name, **back_hyper)
    if name == "gmm":  # hmmlearn broadcasts GMM priors to full arrays in place: same values
        for k, v in fam._priors(2, 2).items():
            np.testing.assert_array_equal(back_fam._priors(2, 2)[k], v)
    else:
        assert back_fam.get_params() == fam.get_params()


def test_from_fitted_hmmlearn_model():
    rng = np.random.RandomState(1)
    X = rng.randn(sum(LENGTHS), 2)
    ref = hmm.GaussianHMM(
        n_components=2, covariance_type="spherical", n_iter=3, random_state=0
    ).fit(X, LENGTHS)
    name, hyper, params, _ = from_hmmlearn(ref)
    fam = get_family(name, **hyper)
    assert params["covars"].shape == (2,)
    off = core.lengths_to_offsets(LENGTHS)
    np.testing.assert_allclose(
        core.score(fam, params, X, off).sum(), ref.score(X, LENGTHS), rtol=1e-9
    )
    settings = hmmlearn_settings(ref)
    assert settings["n_iter"] == 3
    assert settings["implementation"] == "log"


def test_clear_errors():
    with pytest.raises(NotFittedError, match="fit it or set"):
        from_hmmlearn(hmm.CategoricalHMM(n_components=2))
    with pytest.raises(TypeError, match="expected one of"):
        from_hmmlearn(object())


@pytest.mark.parametrize(("name", "hyper"), [CASES[0], CASES[3], CASES[5], CASES[7]])
def test_sample_draws_as_hmmlearn(name, hyper):
    rng = np.random.RandomState(3)
    X = _data(name, rng)
    fam = get_family(name, n_features=4 if name == "categorical" else X.shape[1], **hyper)
    params = _start(fam, X)
    obj = to_hmmlearn(name, fam.get_params(), params, 2)
    got_X, got_states = core.sample(fam, params, 25, random_state=7)
    ref_X, ref_states = obj.sample(25, random_state=7)
    np.testing.assert_array_equal(got_states, ref_states)
    np.testing.assert_allclose(got_X, ref_X, rtol=1e-12)
