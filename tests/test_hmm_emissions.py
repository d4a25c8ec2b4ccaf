"""Each emission family's EM, init and likelihoods against hmmlearn, on seeded data."""

from __future__ import annotations

import numpy as np
import pytest

from sparklift.hmm import core
from sparklift.hmm.emissions import FAMILIES, get_family

hmm = pytest.importorskip("hmmlearn.hmm")

RTOL = 1e-6
LENGTHS = [1, 3, 12, 40, 25, 9]
N_ITER = 10


def _offsets():
    return core.lengths_to_offsets(LENGTHS)


def _gaussian_data(seed, K=3, F=2):
    rng = np.random.RandomState(seed)
    n = int(np.sum(LENGTHS))
    centers = rng.randn(K, F) * 3
    z = rng.randint(0, K, size=n)
    X = centers[z] + rng.randn(n, F)
    return X


def _ref_compact_covars(ref):
    # hmmlearn keeps spherical variances tiled to (K, F) internally (and its
    # covars_ property then returns K * F matrices); ours keep one per state.
    cv = ref._covars_
    if ref.covariance_type == "spherical" and cv.ndim == 2:
        np.testing.assert_allclose(cv, cv[:, :1] * np.ones_like(cv), rtol=1e-12)
        return cv[:, 0]
    return cv


def _gmm_start(fam, X, seed, K=2):
    """GMM starting parameters without k-means (which dominates test time)."""
    rng = np.random.RandomState(seed)
    means = X[rng.choice(len(X), size=(K, fam.n_mix), replace=False)]
    return core.init_params(fam, K, X, "stcw", random_state=seed, base_params={"means": means})


def _start(rng, K):
    return rng.dirichlet(np.ones(K)), rng.dirichlet(np.ones(K), size=K)


def _assert_fit_equal(got, mon, ref, keys):
    np.testing.assert_allclose(list(mon.history), list(ref.monitor_.history), rtol=RTOL)
    assert mon.iter == ref.monitor_.iter
    np.testing.assert_allclose(got["startprob"], ref.startprob_, rtol=RTOL, atol=1e-10)
    np.testing.assert_allclose(got["transmat"], ref.transmat_, rtol=RTOL, atol=1e-10)
    for ours, theirs in keys:
        np.testing.assert_allclose(got[ours], theirs, rtol=RTOL, atol=1e-10)


@pytest.mark.parametrize("impl", ["log", "scaling"])
@pytest.mark.parametrize("covariance_type", ["spherical", "diag", "full", "tied"])
def test_gaussian_fit_equals_hmmlearn(covariance_type, impl):
    X = _gaussian_data(10)
    K = 3
    fam = get_family("gaussian", n_features=2, covariance_type=covariance_type)
    params = core.init_params(fam, K, X, "stmc", random_state=3)
    ref = hmm.GaussianHMM(
        n_components=K,
        covariance_type=covariance_type,
        n_iter=N_ITER,
        tol=-np.inf,
        random_state=3,
        implementation=impl,
    )
    ref._init(X, LENGTHS)  # the same initial draws, checked here too
    np.testing.assert_allclose(params["means"], ref.means_, rtol=1e-12)
    np.testing.assert_allclose(params["covars"], _ref_compact_covars(ref), rtol=1e-12)
    ref.init_params = ""
    ref.fit(X, LENGTHS)
    got, mon = core.fit_arrays(
        fam, params, X, _offsets(), n_iter=N_ITER, tol=-np.inf, implementation=impl
    )
    _assert_fit_equal(got, mon, ref, [("means", ref.means_), ("covars", _ref_compact_covars(ref))])
    if covariance_type != "spherical":
        np.testing.assert_allclose(fam.public_attributes(got)["covars_"], ref.covars_, rtol=RTOL)
    lp, states = core.decode(fam, got, X, _offsets())
    ref_lp, ref_states = ref.decode(X, LENGTHS)
    np.testing.assert_array_equal(states, ref_states)
    np.testing.assert_allclose(lp.sum(), ref_lp, rtol=1e-9)
    np.testing.assert_allclose(
        core.score(fam, got, X, _offsets()).sum(), ref.score(X, LENGTHS), rtol=1e-9
    )


def test_gaussian_priors_univariate():
    rng = np.random.RandomState(11)
    X = _gaussian_data(11, F=1)
    sp, tm = _start(rng, 2)
    hyper = {"means_prior": 0.5, "means_weight": 2.0, "covars_prior": 0.3, "covars_weight": 3.0}
    fam = get_family("gaussian", n_features=1, covariance_type="diag", **hyper)
    params = {
        "startprob": sp,
        "transmat": tm,
        "means": np.array([[-1.0], [1.0]]),
        "covars": np.ones((2, 1)),
    }
    ref = hmm.GaussianHMM(n_components=2, n_iter=N_ITER, tol=-np.inf, init_params="", **hyper)
    ref.startprob_, ref.transmat_, ref.means_, ref.covars_ = (
        sp,
        tm,
        params["means"],
        params["covars"],
    )
    ref.fit(X, LENGTHS)
    got, mon = core.fit_arrays(fam, params, X[:, 0], _offsets(), n_iter=N_ITER, tol=-np.inf)
    _assert_fit_equal(got, mon, ref, [("means", ref.means_)])
    np.testing.assert_allclose(fam.public_attributes(got)["covars_"], ref.covars_, rtol=RTOL)


@pytest.mark.parametrize("covariance_type", ["spherical", "diag", "full"])
def test_gaussian_state_without_responsibility_keeps_finite_params(covariance_type):
    X = _gaussian_data(12)
    fam = get_family("gaussian", n_features=2, covariance_type=covariance_type)
    params = core.init_params(fam, 3, X, "stmc", random_state=0)
    # state 2 is unreachable: no responsibility at all
    params["startprob"] = np.array([0.5, 0.5, 0.0])
    params["transmat"] = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.3, 0.3, 0.4]])
    got, _ = core.fit_arrays(fam, params, X, _offsets(), n_iter=3, tol=-np.inf)
    for v in got.values():
        assert np.all(np.isfinite(v))
    np.testing.assert_array_equal(got["means"][2], params["means"][2])
    np.testing.assert_array_equal(got["covars"][2], params["covars"][2])


@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_constant_feature_as_hmmlearn_and_finite(covariance_type):
    # a constant feature: the covariance prior keeps it positive, exactly as in hmmlearn
    X = _gaussian_data(13)
    X[:, 1] = 4.0
    fam = get_family("gaussian", n_features=2, covariance_type=covariance_type)
    params = core.init_params(fam, 2, X, "stmc", random_state=0)
    ref = hmm.GaussianHMM(
        n_components=2, covariance_type=covariance_type, n_iter=5, tol=-np.inf, init_params=""
    )
    ref.startprob_, ref.transmat_, ref.means_ = (
        params["startprob"],
        params["transmat"],
        params["means"],
    )
    ref.covars_ = params["covars"]
    ref.fit(X, LENGTHS)
    got, mon = core.fit_arrays(fam, params, X, _offsets(), n_iter=5, tol=-np.inf)
    assert all(np.all(np.isfinite(v)) for v in got.values())
    _assert_fit_equal(got, mon, ref, [("means", ref.means_), ("covars", ref._covars_)])


def test_poisson_degenerate_data():
    from sparklift.errors import InvalidInputError

    fam = get_family("poisson", n_features=2)
    with pytest.raises(InvalidInputError, match="zero mean or zero variance"):
        core.init_params(fam, 2, np.full((10, 2), 3), "stl", random_state=0)
    # a state with no responsibility keeps its rates instead of 0/0
    X = _counts_data(22, F=2)
    params = {
        "startprob": np.array([1.0, 0.0]),
        "transmat": np.array([[1.0, 0.0], [0.5, 0.5]]),
        "lambdas": np.array([[2.0, 3.0], [5.0, 5.0]]),
    }
    got, _ = core.fit_arrays(fam, params, X, _offsets(), n_iter=3, tol=-np.inf)
    np.testing.assert_array_equal(got["lambdas"][1], [5.0, 5.0])
    assert np.all(np.isfinite(got["lambdas"]))


def test_families_registry():
    assert set(FAMILIES) >= {"categorical", "gaussian"}
    for name, cls in FAMILIES.items():
        assert cls.name == name
    with pytest.raises(ValueError, match="unknown emission family"):
        get_family("nope")
    with pytest.raises(ValueError, match="covariance_type"):
        get_family("gaussian", covariance_type="banana")


def _counts_data(seed, F=3):
    rng = np.random.RandomState(seed)
    n = int(np.sum(LENGTHS))
    rates = np.array([[1.0, 5.0, 0.5], [6.0, 1.0, 3.0]])[:, :F]
    z = rng.randint(0, 2, size=n)
    return rng.poisson(rates[z])


@pytest.mark.parametrize("impl", ["log", "scaling"])
def test_poisson_fit_equals_hmmlearn(impl):
    X = _counts_data(20)
    fam = get_family("poisson", n_features=3, lambdas_prior=0.5, lambdas_weight=0.1)
    params = core.init_params(fam, 2, X, "stl", random_state=5)
    ref = hmm.PoissonHMM(
        n_components=2,
        n_iter=N_ITER,
        tol=-np.inf,
        random_state=5,
        implementation=impl,
        lambdas_prior=0.5,
        lambdas_weight=0.1,
    )
    ref._init(X, LENGTHS)
    np.testing.assert_array_equal(params["lambdas"], ref.lambdas_)
    np.testing.assert_array_equal(params["transmat"], ref.transmat_)
    ref.init_params = ""
    ref.fit(X, LENGTHS)
    got, mon = core.fit_arrays(
        fam, params, X, _offsets(), n_iter=N_ITER, tol=-np.inf, implementation=impl
    )
    _assert_fit_equal(got, mon, ref, [("lambdas", ref.lambdas_)])
    np.testing.assert_array_equal(core.decode(fam, got, X, _offsets())[1], ref.predict(X, LENGTHS))


def test_poisson_univariate_int_frames():
    X = _counts_data(21, F=1)
    fam = get_family("poisson", n_features=1)
    assert fam.input_kind == "int"
    params = core.init_params(fam, 2, X[:, 0], "stl", random_state=1)
    ref = hmm.PoissonHMM(n_components=2, n_iter=N_ITER, tol=-np.inf, init_params="")
    ref.startprob_, ref.transmat_, ref.lambdas_ = (
        params["startprob"],
        params["transmat"],
        params["lambdas"],
    )
    ref.fit(X, LENGTHS)
    got, mon = core.fit_arrays(fam, params, X[:, 0], _offsets(), n_iter=N_ITER, tol=-np.inf)
    _assert_fit_equal(got, mon, ref, [("lambdas", ref.lambdas_)])


@pytest.mark.parametrize("impl", ["log", "scaling"])
def test_multinomial_fit_equals_hmmlearn(impl):
    rng = np.random.RandomState(30)
    n = int(np.sum(LENGTHS))
    probs = np.array([[0.7, 0.2, 0.1, 0.0], [0.1, 0.1, 0.4, 0.4]])
    z = rng.randint(0, 2, size=n)
    X = np.array([rng.multinomial(6, probs[k]) for k in z])
    fam = get_family("multinomial", n_features=4, n_trials=6)
    fam.check_frames(X)
    params = core.init_params(fam, 2, X, "ste", random_state=2)
    ref = hmm.MultinomialHMM(
        n_components=2, n_trials=6, n_iter=N_ITER, tol=-np.inf, random_state=2, implementation=impl
    )
    ref._init(X, LENGTHS)
    np.testing.assert_array_equal(params["emissionprob"], ref.emissionprob_)
    ref.init_params = ""
    ref.fit(X, LENGTHS)
    got, mon = core.fit_arrays(
        fam, params, X, _offsets(), n_iter=N_ITER, tol=-np.inf, implementation=impl
    )
    _assert_fit_equal(got, mon, ref, [("emissionprob", ref.emissionprob_)])
    np.testing.assert_allclose(
        core.score(fam, got, X, _offsets()).sum(), ref.score(X, LENGTHS), rtol=1e-9
    )


def test_multinomial_rejects_wrong_trial_counts():
    from sparklift.errors import InvalidInputError

    fam = get_family("multinomial", n_features=3, n_trials=4)
    with pytest.raises(InvalidInputError, match="n_trials=4"):
        fam.check_frames(np.array([[1, 1, 2], [1, 1, 1]]))


@pytest.mark.parametrize(
    ("covariance_type", "impl"),
    [("spherical", "log"), ("diag", "scaling"), ("full", "log"), ("tied", "scaling")],
)
def test_gmm_fit_equals_hmmlearn(covariance_type, impl):
    X = _gaussian_data(40, K=4)
    fam = get_family("gmm", n_features=2, n_mix=2, covariance_type=covariance_type)
    kmeans_init = covariance_type in ("spherical", "full")  # k-means init checked on two types
    params = (
        core.init_params(fam, 2, X, "stmcw", random_state=4)
        if kmeans_init
        else _gmm_start(fam, X, 4)
    )
    ref = hmm.GMMHMM(
        n_components=2,
        n_mix=2,
        covariance_type=covariance_type,
        n_iter=N_ITER,
        tol=-np.inf,
        random_state=4,
        implementation=impl,
    )
    if kmeans_init:
        ref._init(X, LENGTHS)
        np.testing.assert_allclose(params["means"], ref.means_, rtol=1e-12)
        np.testing.assert_allclose(params["covars"], ref.covars_, rtol=1e-12)
    else:
        ref.startprob_, ref.transmat_ = params["startprob"], params["transmat"]
        ref.weights_, ref.means_, ref.covars_ = params["weights"], params["means"], params["covars"]
    ref.init_params = ""
    ref.fit(X, LENGTHS)
    got, mon = core.fit_arrays(
        fam, params, X, _offsets(), n_iter=N_ITER, tol=-np.inf, implementation=impl
    )
    _assert_fit_equal(
        got, mon, ref, [("weights", ref.weights_), ("means", ref.means_), ("covars", ref.covars_)]
    )


def test_gmm_means_prior_counted_once_across_batches():
    X = _gaussian_data(41, K=4)
    fam = get_family("gmm", n_features=2, n_mix=2, means_prior=1.0, means_weight=2.0)
    params = _gmm_start(fam, X, 0)
    off = _offsets()
    whole = core.e_step(fam, params, X, off)
    cut = 3
    parts = core.e_step(fam, params, X[: off[cut]], off[: cut + 1]) + core.e_step(
        fam, params, X[off[cut] :], off[cut:] - off[cut]
    )
    a = core.m_step(fam, params, whole)
    b = core.m_step(fam, params, parts)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-10)
    ref = hmm.GMMHMM(
        n_components=2,
        n_mix=2,
        n_iter=1,
        tol=-np.inf,
        init_params="",
        means_prior=1.0,
        means_weight=2.0,
    )
    ref.startprob_, ref.transmat_ = params["startprob"], params["transmat"]
    ref.weights_, ref.means_, ref.covars_ = params["weights"], params["means"], params["covars"]
    ref.fit(X, LENGTHS)
    np.testing.assert_allclose(b["means"], ref.means_, rtol=RTOL)


@pytest.mark.parametrize("name", ["categorical", "gaussian", "poisson", "multinomial", "gmm"])
def test_n_fit_scalars_and_public_roundtrip(name):
    fam = get_family(name, n_features=3, **({"n_trials": 5} if name == "multinomial" else {}))
    X = {
        "categorical": np.arange(30) % 3,
        "gaussian": _gaussian_data(50, F=3),
        "poisson": _counts_data(50),
        "multinomial": np.tile([[1, 2, 2], [4, 0, 1]], (30, 1)),
        "gmm": _gaussian_data(50, F=3),
    }[name]
    if name == "gmm":
        params = _gmm_start(fam, X, 0)
    else:
        params = core.init_params(fam, 2, X, "st" + fam.letters, random_state=0)
    core.check_params(fam, params)
    back = fam.params_from_public(fam.public_attributes(params))
    for k in fam.param_keys():
        np.testing.assert_allclose(back[k], params[k])
    counts = fam.n_fit_scalars(2, 3)
    assert set(counts) == set("st" + fam.letters)
    rng = np.random.RandomState(0)
    frames = fam.sample_frames(params, np.array([0, 1, 1, 0]), rng)
    assert len(frames) == 4
    assert np.all(np.isfinite(fam.log_likelihood(params, frames)))


@pytest.mark.parametrize(
    ("name", "fit_params"), [("gaussian", "tm"), ("gaussian", "sm"), ("gmm", "tw"), ("gmm", "smc")]
)
def test_partial_params_equal_hmmlearn(name, fit_params):
    X = _gaussian_data(60, K=4)
    hyper = {"n_mix": 2} if name == "gmm" else {}
    fam = get_family(name, n_features=2, covariance_type="full", **hyper)
    if name == "gmm":
        params = _gmm_start(fam, X, 1)
    else:
        params = core.init_params(fam, 2, X, "st" + fam.letters, random_state=1)
    cls = hmm.GMMHMM if name == "gmm" else hmm.GaussianHMM
    from sparklift.hmm.interop import to_hmmlearn

    ref = to_hmmlearn(
        name, fam.get_params(), params, 2, n_iter=N_ITER, tol=-np.inf, params=fit_params
    )
    assert isinstance(ref, cls)
    ref.fit(X, LENGTHS)
    got, mon = core.fit_arrays(
        fam, params, X, _offsets(), n_iter=N_ITER, tol=-np.inf, fit_params=fit_params
    )
    keys = [(k, getattr(ref, k + "_")) for k in fam.param_keys() if k != "covars"]
    keys.append(("covars", ref._covars_ if name == "gaussian" else ref.covars_))
    _assert_fit_equal(got, mon, ref, keys)


def test_covariances_without_means_are_finite():
    # hmmlearn gathers occupation counts only when 'm' is fitted, so with
    # params="sc" its full covariances divide by zero; ours stay finite
    X = _gaussian_data(61)
    fam = get_family("gaussian", n_features=2, covariance_type="full")
    params = core.init_params(fam, 2, X, "stmc", random_state=1)
    got, _ = core.fit_arrays(fam, params, X, _offsets(), n_iter=3, tol=-np.inf, fit_params="sc")
    np.testing.assert_array_equal(got["means"], params["means"])
    assert np.all(np.isfinite(got["covars"]))
    assert np.all(np.linalg.eigvalsh(got["covars"]) > 0)
