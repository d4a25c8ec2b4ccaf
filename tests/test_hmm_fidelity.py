"""Fidelity: the Spark fit from the same start equals hmmlearn's fit.

For every emission family and covariance type, and for both
forward-backward implementations: the fitted parameters and every
iteration's log-likelihood agree with hmmlearn's to 1e-6 relative over 10
EM iterations, and the decoded state paths equal hmmlearn's ``decode``. The
reference is hmmlearn itself, run in the test on data the test generates. Every
case runs in local mode; with the default implementation, also in local-cluster
and Connect modes (smoke).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hmmlearn import hmm

from sparklift.hmm import GMMHMM, CategoricalHMM, GaussianHMM, MultinomialHMM, PoissonHMM
from sparklift.hmm.sequences import sequences_from_arrays

N_ITER = 10
RTOL = 1e-6


def _chain(model, n_components):
    model.startprob_ = (
        np.linspace(1.0, 2.0, n_components) / np.linspace(1.0, 2.0, n_components).sum()
    )
    transmat = np.full((n_components, n_components), 0.2 / (n_components - 1))
    np.fill_diagonal(transmat, 0.8)
    model.transmat_ = transmat
    return model


def _start_from(truth, n_components):
    """A different, valid starting point: flattened transitions, shifted emissions."""
    start = copy.deepcopy(truth)
    start.startprob_ = np.full(n_components, 1.0 / n_components)
    start.transmat_ = 0.5 * truth.transmat_ + 0.5 / n_components
    return start


def categorical():
    truth = _chain(hmm.CategoricalHMM(n_components=3), 3)
    truth.emissionprob_ = np.array(
        [[0.6, 0.2, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1], [0.1, 0.1, 0.2, 0.6]]
    )
    start = _start_from(truth, 3)
    start.emissionprob_ = 0.5 * truth.emissionprob_ + 0.125
    return truth, start, CategoricalHMM, {}


def gaussian(covariance_type):
    def make():
        K, F = 3, 2
        truth = _chain(hmm.GaussianHMM(n_components=K, covariance_type=covariance_type), K)
        truth.means_ = np.array([[0.0, 0.0], [3.0, 1.0], [-2.0, 4.0]])
        full = np.array(
            [[[1.0, 0.3], [0.3, 0.8]], [[0.5, 0.0], [0.0, 1.5]], [[1.2, -0.4], [-0.4, 0.9]]]
        )
        covars = {
            "spherical": np.array([1.0, 0.6, 1.4]),
            "diag": np.array([[1.0, 0.8], [0.5, 1.5], [1.2, 0.9]]),
            "full": full,
            "tied": full[0],
        }[covariance_type]
        truth.covars_ = covars
        start = _start_from(truth, K)
        start.means_ = truth.means_ + 0.7
        start.covars_ = covars * 1.5
        del F
        return truth, start, GaussianHMM, {"covariance_type": covariance_type}

    return make


def poisson():
    truth = _chain(hmm.PoissonHMM(n_components=2), 2)
    truth.lambdas_ = np.array([[1.0, 4.0, 0.5], [6.0, 1.0, 2.0]])
    start = _start_from(truth, 2)
    start.lambdas_ = truth.lambdas_ * 1.3 + 0.2
    return truth, start, PoissonHMM, {}


def multinomial():
    truth = _chain(hmm.MultinomialHMM(n_components=2, n_trials=5), 2)
    truth.emissionprob_ = np.array([[0.6, 0.3, 0.1], [0.1, 0.3, 0.6]])
    start = _start_from(truth, 2)
    start.emissionprob_ = 0.5 * truth.emissionprob_ + 0.5 / 3
    return truth, start, MultinomialHMM, {"n_trials": 5}


def gmm(covariance_type):
    def make():
        K, M = 2, 2
        truth = _chain(hmm.GMMHMM(n_components=K, n_mix=M, covariance_type=covariance_type), K)
        truth.weights_ = np.array([[0.3, 0.7], [0.6, 0.4]])
        truth.means_ = np.array([[[0.0, 0.0], [2.0, 2.0]], [[-3.0, 1.0], [1.0, -3.0]]])
        diag = np.array([[[1.0, 0.5], [0.7, 1.2]], [[0.8, 0.8], [1.1, 0.6]]])
        covars = {
            "diag": diag,
            "full": np.array([[np.diag(d) for d in state] for state in diag]),
            "spherical": diag[..., 0],
            "tied": np.array([np.diag(state[0]) for state in diag]),
        }[covariance_type]
        truth.covars_ = covars
        start = _start_from(truth, K)
        start.weights_ = np.full((K, M), 1.0 / M)
        start.means_ = truth.means_ + 0.5
        start.covars_ = covars * 1.4
        return truth, start, GMMHMM, {"n_mix": M, "covariance_type": covariance_type}

    return make


FAMILIES = [
    ("categorical", categorical),
    *((f"gaussian-{c}", gaussian(c)) for c in ("spherical", "diag", "full", "tied")),
    ("poisson", poisson),
    ("multinomial", multinomial),
    *((f"gmm-{c}", gmm(c)) for c in ("spherical", "diag", "full", "tied")),
]
# Every family and covariance type with both of hmmlearn's implementations in
# local mode. In every test mode (smoke), with the default implementation, one
# case per emission family and each shape of covariance parameters (full and
# tied matrices, spherical scalars): what the other modes add is the family's
# code and parameters shipped to separate workers, and the two implementations
# differ only in NumPy there (CI time).
SMOKE = {"categorical", "gaussian-full", "gaussian-tied", "poisson", "multinomial", "gmm-spherical"}
CASES = [
    pytest.param(
        make,
        implementation,
        id=f"{name}-{implementation}",
        marks=pytest.mark.smoke if implementation == "scaling" and name in SMOKE else (),
    )
    for name, make in FAMILIES
    for implementation in ("log", "scaling")
]

FITTED = {
    CategoricalHMM: ("startprob_", "transmat_", "emissionprob_"),
    GaussianHMM: ("startprob_", "transmat_", "means_", "covars_"),
    PoissonHMM: ("startprob_", "transmat_", "lambdas_"),
    MultinomialHMM: ("startprob_", "transmat_", "emissionprob_"),
    GMMHMM: ("startprob_", "transmat_", "weights_", "means_", "covars_"),
}


def _fitted(reference, name):
    value = getattr(reference, name)
    spherical = getattr(reference, "covariance_type", None) == "spherical"
    if name == "covars_" and spherical and isinstance(reference, hmm.GaussianHMM):
        # hmmlearn's spherical M-step stores one variance per state *and feature*
        # (equal values), so its covars_ property returns the wrong shape; rebuild
        # hmmlearn's documented (n_components, n_features, n_features) form.
        variances = reference._covars_[:, 0]
        value = variances[:, None, None] * np.eye(reference.n_features)[None]
    return value


def _spark_fit(spark, make, implementation):
    """hmmlearn's fit and ours from the same start on the same data."""
    truth, start, estimator_cls, extra = make()
    rng = np.random.RandomState(42)
    # Tiny on purpose (smoke budget): 6 sequences of 30 frames, N_ITER iterations.
    lengths = np.full(6, 30)
    X, _ = truth.sample(int(lengths.sum()), random_state=rng)
    df = sequences_from_arrays(spark, X, lengths, num_partitions=2)

    reference = copy.deepcopy(start)
    reference.set_params(n_iter=N_ITER, tol=0.0, init_params="", implementation=implementation)
    # hmmlearn's monitor keeps the tol/n_iter it was built with; set_params does not reach it.
    reference.monitor_ = type(reference.monitor_)(0.0, N_ITER, False)
    reference.fit(X, lengths)

    model = estimator_cls(
        n_components=start.n_components,
        n_iter=N_ITER,
        tol=0.0,
        init_params="",
        init_model=start,
        implementation=implementation,
        num_partitions=2,
        **extra,
    ).fit(df)
    rows = model.transform(df).orderBy("seq_id").collect()
    return X, lengths, reference, estimator_cls, model, rows


@pytest.fixture(scope="module")
def fits(request, spark):
    """Every selected case, fitted concurrently (one thread each).

    The data are tiny, so a fit is bound by per-job latency (scheduling, the
    driver's M-step, Connect round trips), not by the two cores: running the
    cases side by side keeps the smoke run short. Each test checks its own.
    """
    from concurrent.futures import ThreadPoolExecutor

    selected = [
        item.callspec.id
        for item in request.session.items
        if item.module is request.module and hasattr(item, "callspec")
    ]
    by_id = {case.id: case.values for case in CASES}
    pool = ThreadPoolExecutor(max_workers=4)
    futures = {
        case_id: pool.submit(_spark_fit, spark, *by_id[case_id])
        for case_id in selected
        if case_id in by_id
    }
    yield futures
    pool.shutdown(wait=True)


@pytest.mark.parametrize(("make", "implementation"), CASES)
def test_spark_fit_equals_hmmlearn(fits, request, make, implementation):
    X, lengths, reference, estimator_cls, model, rows = fits[request.node.callspec.id].result()

    assert len(model.monitor_.history) == len(reference.monitor_.history) == N_ITER
    np.testing.assert_allclose(
        list(model.monitor_.history), list(reference.monitor_.history), rtol=RTOL
    )
    for name in FITTED[estimator_cls]:
        np.testing.assert_allclose(
            getattr(model, name), _fitted(reference, name), rtol=RTOL, atol=1e-10, err_msg=name
        )

    _, states = reference.decode(X, lengths)
    assert np.concatenate([r.states for r in rows]).tolist() == states.tolist()
