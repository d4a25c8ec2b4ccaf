"""Saving and loading models and estimators: JSON + NPZ, format version, clear errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hmmlearn import hmm

from sparklift.errors import InvalidInputError, ModelFormatError, PathExistsError
from sparklift.hmm import (
    CategoricalHMM,
    CategoricalHMMModel,
    GaussianHMM,
    GaussianHMMModel,
)
from sparklift.hmm.persistence import FORMAT_VERSION
from sparklift.hmm.sequences import sequences_from_arrays


@pytest.fixture(scope="module")
def data(spark):
    rng = np.random.RandomState(0)
    lengths = rng.randint(5, 15, size=20)
    X = rng.randint(0, 3, size=int(lengths.sum()))[:, None]
    return sequences_from_arrays(spark, X, lengths, num_partitions=2)


@pytest.fixture(scope="module")
def model(data):
    return CategoricalHMM(
        n_components=2, n_iter=3, random_state=0, states_col="path", algorithm="map"
    ).fit(data)


def _gaussian_model() -> GaussianHMMModel:
    ref = hmm.GaussianHMM(n_components=2, covariance_type="full")
    ref.startprob_ = np.array([0.4, 0.6])
    ref.transmat_ = np.array([[0.9, 0.1], [0.3, 0.7]])
    ref.means_ = np.array([[0.0, 1.0], [2.0, -1.0]])
    ref.covars_ = np.array([[[1.0, 0.2], [0.2, 0.5]], [[2.0, 0.0], [0.0, 1.0]]])
    return GaussianHMMModel.from_hmmlearn(ref)


@pytest.mark.smoke
def test_model_roundtrip_keeps_parameters_params_and_monitor(model, data, tmp_path):
    path = str(tmp_path / "model")
    model.save(path)
    assert sorted(os.listdir(path)) == ["arrays.npz", "metadata", "sparklift.json"]
    loaded = CategoricalHMMModel.load(path)
    for name in ("startprob_", "transmat_", "emissionprob_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    assert loaded.n_features == model.n_features
    assert loaded.getStatesCol() == "path"
    assert loaded.getAlgorithm() == "map"
    assert list(loaded.monitor_.history) == list(model.monitor_.history)
    assert loaded.monitor_.converged == model.monitor_.converged
    # Two Spark jobs may add the partitions' partial sums in another order.
    assert loaded.score(data) == pytest.approx(model.score(data), rel=1e-12)


def test_gaussian_full_roundtrip(tmp_path):
    original = _gaussian_model()
    path = str(tmp_path / "g")
    original.save(path)
    loaded = GaussianHMMModel.load(path)
    np.testing.assert_array_equal(loaded.covars_, original.covars_)
    np.testing.assert_array_equal(loaded.means_, original.means_)
    assert loaded.getCovarianceType() == "full"


def test_save_refuses_to_overwrite_unless_asked(model, tmp_path):
    path = str(tmp_path / "model")
    model.save(path)
    # One class for every sparklift save: a FileExistsError and an InvalidInputError.
    with pytest.raises(PathExistsError, match="overwrite") as info:
        model.save(path)
    assert isinstance(info.value, FileExistsError)
    assert isinstance(info.value, InvalidInputError)
    model.write().overwrite().save(path)
    assert CategoricalHMMModel.read().load(path).n_features == model.n_features


def test_no_pickle_in_saved_files(model, tmp_path):
    path = str(tmp_path / "model")
    model.save(path)
    with np.load(os.path.join(path, "arrays.npz"), allow_pickle=False) as npz:
        assert set(npz.files) == {"startprob", "transmat", "emissionprob"}
    document = json.loads(Path(path, "sparklift.json").read_text())
    assert document["format_version"] == FORMAT_VERSION
    assert document["class"].endswith("CategoricalHMMModel")


def _saved(model, tmp_path) -> str:
    path = str(tmp_path / "model")
    model.save(path)
    return path


def _edit_json(path, **changes):
    meta = os.path.join(path, "sparklift.json")
    document = json.loads(Path(meta).read_text())
    document.update(changes)
    with open(meta, "w") as fh:
        json.dump(document, fh)


def test_newer_format_is_refused_with_a_clear_message(model, tmp_path):
    path = _saved(model, tmp_path)
    _edit_json(path, format_version=FORMAT_VERSION + 1)
    with pytest.raises(ModelFormatError, match="newer sparklift"):
        CategoricalHMMModel.load(path)


def test_damaged_json_is_refused(model, tmp_path):
    path = _saved(model, tmp_path)
    with open(os.path.join(path, "sparklift.json"), "w") as fh:
        fh.write('{"format": "sparklift.hmm", "format_ver')
    with pytest.raises(ModelFormatError, match="damaged"):
        CategoricalHMMModel.load(path)


def test_damaged_arrays_are_refused(model, tmp_path):
    path = _saved(model, tmp_path)
    with open(os.path.join(path, "arrays.npz"), "wb") as fh:
        fh.write(b"PK\x03\x04 not really a zip")
    with pytest.raises(ModelFormatError, match="damaged"):
        CategoricalHMMModel.load(path)


def test_missing_array_is_refused(model, tmp_path):
    path = _saved(model, tmp_path)
    np.savez(os.path.join(path, "arrays.npz"), startprob=model.startprob_)
    with pytest.raises(ModelFormatError, match="is missing"):
        CategoricalHMMModel.load(path)


def test_not_a_model_directory(tmp_path):
    with pytest.raises(ModelFormatError, match="does not exist"):
        CategoricalHMMModel.load(str(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFormatError, match="not a sparklift model"):
        CategoricalHMMModel.load(str(tmp_path / "empty"))


def test_loading_with_the_wrong_class_names_the_right_one(tmp_path):
    path = str(tmp_path / "g")
    _gaussian_model().save(path)
    with pytest.raises(ModelFormatError, match="GaussianHMMModel"):
        CategoricalHMMModel.load(path)


def test_estimator_roundtrip_with_init_model(model, tmp_path):
    est = CategoricalHMM(n_components=2, n_iter=7, tol=0.5, params="st", init_model=model)
    path = str(tmp_path / "est")
    est.save(path)
    loaded = CategoricalHMM.load(path)
    assert loaded.getNIter() == 7
    assert loaded.getTol() == 0.5
    assert loaded.getUpdateParams() == "st"
    np.testing.assert_array_equal(loaded.getInitModel().transmat_, model.transmat_)
    assert GaussianHMM.load  # every estimator class is MLReadable


@pytest.mark.smoke
def test_pipeline_model_save_and_load(data, tmp_path, spark_mode):
    if spark_mode == "connect":
        pytest.skip("pyspark's PipelineModel persistence needs a SparkContext (Spark Classic)")
    from pyspark.ml import Pipeline, PipelineModel

    fitted = Pipeline(stages=[CategoricalHMM(n_components=2, n_iter=2, random_state=0)]).fit(data)
    path = str(tmp_path / "pipeline")
    fitted.save(path)
    loaded = PipelineModel.load(path)
    stage = loaded.stages[0]
    assert isinstance(stage, CategoricalHMMModel)
    np.testing.assert_array_equal(stage.transmat_, fitted.stages[0].transmat_)


# ------------------------------------------------------------------------ review fixes


def _tied_gaussian_ref() -> hmm.GaussianHMM:
    ref = hmm.GaussianHMM(n_components=2, covariance_type="tied", min_covar=1e-2)
    ref.startprob_ = np.array([0.4, 0.6])
    ref.transmat_ = np.array([[0.9, 0.1], [0.3, 0.7]])
    ref.means_ = np.array([[0.0, 1.0], [2.0, -1.0]])
    ref.covars_ = np.array([[1.0, 0.2], [0.2, 0.5]])
    ref.n_features = 2
    return ref


def test_file_uri_paths_are_local_absolute_paths(tmp_path):
    model = _gaussian_model()
    for uri in (f"file:{tmp_path}/a", f"file://{tmp_path}/b"):
        model.save(uri)
        loaded = GaussianHMMModel.load(uri)
        np.testing.assert_array_equal(loaded.covars_, model.covars_)
    assert (tmp_path / "a" / "sparklift.json").exists()
    assert (tmp_path / "b" / "sparklift.json").exists()


def test_overwrite_keeps_the_old_model_when_the_save_fails(tmp_path, monkeypatch):
    from sparklift.hmm import persistence

    path = str(tmp_path / "m")
    old = _gaussian_model()
    old.save(path)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(persistence, "_encode_arrays", broken)
    with pytest.raises(OSError, match="disk full"):
        old.write().overwrite().save(path)
    monkeypatch.undo()
    np.testing.assert_array_equal(GaussianHMMModel.load(path).means_, old.means_)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary left behind
    new = GaussianHMMModel.from_hmmlearn(_tied_gaussian_ref())
    new.write().overwrite().save(path)
    np.testing.assert_array_equal(GaussianHMMModel.load(path).means_, new.means_)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_unknown_param_in_a_saved_file_is_skipped_with_a_warning(tmp_path):
    path = tmp_path / "m"
    _gaussian_model().save(str(path))
    document = json.loads((path / "sparklift.json").read_text())
    document["params"]["param_from_the_future"] = 3
    (path / "sparklift.json").write_text(json.dumps(document))
    with pytest.warns(UserWarning, match="param_from_the_future"):
        loaded = GaussianHMMModel.load(str(path))
    assert loaded.getCovarianceType() == "full"


def test_estimator_roundtrip_keeps_init_model_hyperparameters(tmp_path):
    ref = _tied_gaussian_ref()
    est = GaussianHMM(n_components=2, covariance_type="tied", init_params="", init_model=ref)
    path = str(tmp_path / "est")
    est.save(path)
    init = GaussianHMM.load(path).getInitModel()
    assert init.getCovarianceType() == "tied" or init._hyper["covariance_type"] == "tied"
    assert init._hyper["min_covar"] == 1e-2
    np.testing.assert_allclose(init.covars_, ref.covars_)


def test_damaged_estimator_file_is_a_model_format_error(tmp_path):
    path = tmp_path / "est"
    CategoricalHMM(n_components=2, init_model=_categorical_ref()).save(str(path))
    (path / "arrays.npz").write_bytes(b"not an npz")
    with pytest.raises(ModelFormatError):
        CategoricalHMM.load(str(path))


def _categorical_ref() -> hmm.CategoricalHMM:
    ref = hmm.CategoricalHMM(n_components=2)
    ref.n_features = 3
    ref.startprob_ = np.array([0.5, 0.5])
    ref.transmat_ = np.array([[0.9, 0.1], [0.2, 0.8]])
    ref.emissionprob_ = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    return ref
