"""``sparklift tune``: results equal scikit-learn's GridSearchCV on the same Parquet data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import sklearn.model_selection as skms
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from sparklift.cli import main


@pytest.fixture
def parquet(tmp_path):
    X, y = make_classification(n_samples=200, n_features=4, random_state=2)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(target=y)
    path = tmp_path / "data.parquet"
    frame.to_parquet(path)
    return path, X, y


def _tune_args(path, *extra, grid='{"C": [0.1, 1.0]}'):
    return [
        "tune",
        str(path),
        "--label",
        "target",
        "--estimator",
        "sklearn.linear_model.LogisticRegression",
        "--grid",
        grid,
        *extra,
    ]


def test_tune_writes_scikit_learns_results(spark, parquet, tmp_path):
    path, X, y = parquet
    out = tmp_path / "results.json"
    # replaced with --overwrite, and only then; through a link, keeping its mode
    real = tmp_path / "real.json"
    real.write_text("an earlier run's results")
    real.chmod(0o600)
    out.symlink_to(real)
    code = main(
        _tune_args(
            path,
            "--overwrite",
            "--estimator-params",
            '{"max_iter": 300}',
            "--cv",
            "3",
            "--scoring",
            "accuracy",
            "--output",
            str(out),
            # Ignored in a process with a session: the command uses that one, and
            # leaves it running.
            "--master",
            "local[1]",
            grid='{"C": [0.01, 1.0]}',
        )
    )
    assert code == 0
    assert spark.range(3).count() == 3
    assert out.is_symlink()
    assert real.stat().st_mode & 0o777 == 0o600
    assert not [p.name for p in tmp_path.iterdir() if "partial" in p.name]
    result = json.loads(out.read_text())
    ref = skms.GridSearchCV(
        LogisticRegression(max_iter=300), {"C": [0.01, 1.0]}, cv=3, scoring="accuracy"
    ).fit(X, y)
    assert result["best_params"] == ref.best_params_
    assert result["best_score"] == ref.best_score_
    np.testing.assert_array_equal(
        result["cv_results"]["mean_test_score"], ref.cv_results_["mean_test_score"]
    )


def test_tune_reports_bad_arguments_clearly(spark, parquet, capsys):
    path, _, _ = parquet
    base = ["tune", str(path), "--estimator", "sklearn.linear_model.LogisticRegression"]
    assert main([*base, "--label", "nope", "--grid", "{}"]) == 1
    assert "--label column 'nope' is not in" in capsys.readouterr().err
    assert main([*base, "--label", "target", "--grid", "{C: 1}"]) == 1
    assert "--grid is not valid JSON" in capsys.readouterr().err


@pytest.fixture
def no_search(monkeypatch):
    """Fail the test if a search starts: bad arguments must be refused before it."""
    from sparklift.tuning.search import GridSearchCV

    def fit(self, *args, **kwargs):
        raise AssertionError("the search ran; the arguments should have been refused first")

    monkeypatch.setattr(GridSearchCV, "fit", fit)
    monkeypatch.delenv("SPARKLIFT_TRACEBACK", raising=False)


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("sparklift: error: "), err
    return err[0]


@pytest.mark.parametrize(
    ("extra", "grid", "message"),
    [
        ((), '{"C": [1.0], "nope": [1, 2]}', "--grid parameter(s) ['nope'] are not parameters of"),
        ((), '{"C": 1.0}', "--grid is not a scikit-learn parameter grid"),
        ((), '["C"]', "--grid is not a scikit-learn parameter grid"),
        (("--scoring", "acurracy"), None, "--scoring 'acurracy' is not a scikit-learn scorer"),
        (("--cv", "1"), None, "--cv must be 2 or more; got 1"),
        (("--cv", "0"), None, "--cv must be 2 or more; got 0"),
        (("--cv", "201"), None, "--cv 201 cannot split the data"),
        (("--estimator-params", "[1, 2]"), None, "--estimator-params must be a JSON object"),
        (("--estimator-params", "{max_iter: 5}"), None, "--estimator-params is not valid JSON"),
        (("--estimator-params", '{"max_iter": "abc"}'), None, "'max_iter' parameter of"),
        (("--features", "a,b,target"), None, "--features names the --label column 'target'"),
        (("--features", "a,b,a"), None, "--features names ['a'] more than once"),
    ],
)
def test_bad_search_arguments_are_one_line_before_the_search(
    parquet, capsys, no_search, extra, grid, message
):
    path, _, _ = parquet
    args = _tune_args(path, *extra) if grid is None else _tune_args(path, *extra, grid=grid)
    assert main(args) == 1
    assert message in _one_error_line(capsys)


def test_estimator_params_of_an_estimator_without_declared_rules_are_passed_on():
    """hmmlearn and users' own estimators declare no _parameter_constraints."""
    from sparklift.tuning.cli import _estimator

    model = _estimator("hmmlearn.hmm.GaussianHMM", '{"n_components": 3}')
    assert model.n_components == 3


def test_unknown_estimator_parameter_is_named(parquet, capsys, no_search):
    path, _, _ = parquet
    assert main(_tune_args(path, "--estimator-params", '{"max_iters": 5}')) == 1
    line = _one_error_line(capsys)
    assert "'max_iters'" in line
    assert "LogisticRegression" in line


def test_string_feature_column_is_refused(tmp_path, capsys, no_search):
    frame = pd.DataFrame(
        {"a": [0.1, 0.2, 0.3, 0.4], "colour": ["red", "blue", "red", "green"], "target": [0, 1] * 2}
    )
    path = tmp_path / "strings.parquet"
    frame.to_parquet(path)
    assert main(_tune_args(path, "--cv", "2")) == 1
    line = _one_error_line(capsys)
    assert "feature column 'colour' is not numeric" in line
    assert "'red'" in line


@pytest.mark.parametrize("where", ["missing-dir", "is-a-dir"])
def test_unusable_output_is_refused_before_the_search(parquet, tmp_path, capsys, no_search, where):
    path, _, _ = parquet
    output = tmp_path / "no-such-dir" / "r.json" if where == "missing-dir" else tmp_path
    assert main(_tune_args(path, "--output", str(output))) == 1
    line = _one_error_line(capsys)
    assert f"--output {str(output)!r}" in line


def test_an_existing_output_is_kept_without_overwrite(parquet, tmp_path, capsys, no_search):
    path, _, _ = parquet
    kept = tmp_path / "earlier.json"
    kept.write_text('{"best_params": "earlier results"}')
    assert main(_tune_args(path, "--output", str(kept))) == 1
    line = _one_error_line(capsys)
    assert f"{kept} already exists; pass --overwrite to replace it" in line
    assert kept.read_text() == '{"best_params": "earlier results"}'


def test_progress_goes_to_stderr_and_stdout_stays_json(spark, parquet, capsys):
    path, X, y = parquet
    assert main(_tune_args(path, "--cv", "2", "--progress")) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)  # nothing but the results on stdout
    ref = skms.GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2).fit(X, y)
    assert result["best_score"] == ref.best_score_
    assert "Fitting 2 folds for each of 2 candidates" in captured.err


def test_a_grid_where_every_fit_fails_is_one_line(spark, parquet, capsys):
    import warnings

    path, _, _ = parquet
    grid = '{"C": [0.1, 1.0], "penalty": ["l1"]}'  # lbfgs cannot fit an l1 penalty
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(_tune_args(path, "--cv", "2", grid=grid)) == 1
    line = _one_error_line(capsys)
    assert "All the 4 fits failed" in line
    assert "ValueError: Solver lbfgs supports only" in line


def test_error_score_raise_stops_at_the_first_failure_in_one_line(spark, parquet, capsys):
    path, _, _ = parquet
    grid = '{"C": [1.0, -1.0]}'  # C must be positive
    assert main(_tune_args(path, "--cv", "2", "--error-score", "raise", grid=grid)) == 1
    line = _one_error_line(capsys)
    assert "--error-score raise stops the search" in line
    assert "InvalidParameterError: The 'C' parameter of LogisticRegression" in line


def test_error_score_scores_failing_candidates_as_scikit_learn_does(spark, parquet, tmp_path):
    import warnings

    from sklearn.exceptions import FitFailedWarning

    path, X, y = parquet
    out = tmp_path / "results.json"
    grid = '{"C": [0.1, 1.0], "penalty": ["l2", "l1"]}'  # lbfgs cannot fit l1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(
            _tune_args(path, "--cv", "2", "--error-score", "-1", "--output", str(out), grid=grid)
        )
    assert code == 0
    result = json.loads(out.read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitFailedWarning)
        ref = skms.GridSearchCV(LogisticRegression(), json.loads(grid), cv=2, error_score=-1.0).fit(
            X, y
        )
    np.testing.assert_array_equal(
        result["cv_results"]["mean_test_score"], ref.cv_results_["mean_test_score"]
    )
    assert -1.0 in result["cv_results"]["mean_test_score"]
    assert result["best_params"] == ref.best_params_


def test_traceback_setting_shows_sparklifts_own_errors_whole(parquet, no_search, monkeypatch):
    """SPARKLIFT_TRACEBACK=1 raises every error, sparklift's own included, not one line."""
    from sparklift.errors import SparkliftError

    path, _, _ = parquet
    monkeypatch.setenv("SPARKLIFT_TRACEBACK", "1")
    with pytest.raises(SparkliftError, match="--cv must be 2 or more; got 1"):
        main(_tune_args(path, "--cv", "1"))
