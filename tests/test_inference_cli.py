"""``sparklift predict``: saved model + Parquet -> Parquet with predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from sparklift.cli import main
from sparklift.inference import save_model


def test_predict_command_round_trip(spark, tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] - X[:, 2] > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    model_path = str(tmp_path / "model.skops")
    save_model(model, model_path)
    pdf = pd.DataFrame(X, columns=["a", "b", "c"])
    pdf.insert(0, "id", np.arange(len(X)))
    spark.createDataFrame(pdf).write.parquet(str(tmp_path / "in"))

    out = str(tmp_path / "out")
    argv = ["predict", "--model", model_path, "--input", str(tmp_path / "in"), "--output", out]
    code = main([*argv, "--input-cols", "a,b,c", "--method", "predict,predict_proba"])
    assert code == 0
    assert "prediction" in capsys.readouterr().err
    got = spark.read.parquet(out).select("id", "prediction.*").toPandas().sort_values("id")
    np.testing.assert_array_equal(got["predict"], model.predict(X))
    np.testing.assert_array_equal(np.stack(got["predict_proba"]), model.predict_proba(X))

    # an existing output is not replaced without --overwrite; errors are one line
    assert main([*argv, "--input-cols", "a,b,c"]) == 1
    assert main([*argv, "--input-cols", "a,b,nope", "--overwrite"]) == 1
    assert "['nope'] not in the DataFrame" in capsys.readouterr().err
    pickled = str(tmp_path / "model.pkl")
    save_model(model, pickled, serializer="pickle")
    argv[2] = pickled
    assert main([*argv, "--input-cols", "a,b,c", "--overwrite"]) == 1
    assert "allow_pickle" in capsys.readouterr().err
    assert main([*argv, "--input-cols", "a,b,c", "--overwrite", "--allow-pickle"]) == 0


def test_overwrite_in_place_replaces_the_output_it_reads(spark, tmp_path, capsys):
    # --overwrite of a local output writes beside it and swaps on success: the
    # input may be the output itself (Spark's own overwrite refuses that, as it
    # deletes the old files before reading them).
    rng = np.random.default_rng(2)
    X = rng.normal(size=(30, 2))
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    save_model(model, str(tmp_path / "model.skops"))
    data = str(tmp_path / "data")
    pd.DataFrame(X, columns=["a", "b"]).to_parquet(tmp_path / "first.parquet")
    argv = ["predict", "--model", str(tmp_path / "model.skops"), "--input-cols", "a,b"]
    assert main([*argv, "--input", str(tmp_path / "first.parquet"), "--output", data]) == 0
    again = [*argv, "--input", data, "--output", data, "--output-col", "again", "--overwrite"]
    assert main(again) == 0, capsys.readouterr().err
    got = spark.read.parquet(data).toPandas()
    assert list(got.columns) == ["a", "b", "prediction", "again"]
    assert len(got) == len(X)
    np.testing.assert_array_equal(got["again"], model.predict(got[["a", "b"]].to_numpy()))
    np.testing.assert_array_equal(got["prediction"], got["again"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "first.parquet", "model.skops"]


def _failing_job(tmp_path):
    """Arguments of a predict run whose job fails in a task (a null feature)."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 2))
    model_path = str(tmp_path / "model.skops")
    save_model(LogisticRegression().fit(X, (X[:, 0] > 0).astype(int)), model_path)
    pdf = pd.DataFrame(X, columns=["a", "b"])
    pdf.loc[5, "b"] = None  # found by a task, not before the job
    pdf.to_parquet(tmp_path / "in.parquet")
    argv = ["predict", "--model", model_path, "--input", str(tmp_path / "in.parquet")]
    return [*argv, "--output", str(tmp_path / "out"), "--input-cols", "a,b"]


@pytest.mark.slow  # CI time: `make test-all` runs it
def test_a_failing_job_leaves_no_output_behind(spark, tmp_path, capsys):
    argv = _failing_job(tmp_path)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Feature column 'b' has null values in 1 row" in err
    assert "or pass --on-null null" in err  # the command line's spelling
    # The failed write left nothing behind, so the next run is not refused.
    assert not (tmp_path / "out").exists()
    assert main([*argv, "--on-null", "null"]) == 0
    err = capsys.readouterr().err
    assert "sparklift: warning: 1 row with a null feature" in err
    assert "NullFeaturesWarning" not in err
    assert "scored = predict(" not in err
    got = spark.read.parquet(str(tmp_path / "out")).toPandas()
    assert got["prediction"].isna().sum() == 1
    # A nested new path leaves no empty parents; a failed --overwrite keeps the
    # old output as it was, and leaves nothing beside it.
    nested = str(tmp_path / "new" / "sub" / "out")
    assert main([*argv[:-3], nested, *argv[-2:]]) == 1
    assert not (tmp_path / "new").exists()
    assert main([*argv, "--overwrite"]) == 1
    assert "Feature column 'b' has null values in 1 row" in capsys.readouterr().err
    kept = spark.read.parquet(str(tmp_path / "out")).toPandas()
    pd.testing.assert_frame_equal(kept, got)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "model.skops", "out"]


@pytest.mark.slow  # starts a second JVM
def test_a_failing_job_is_one_line_in_a_fresh_process(tmp_path):
    import os
    import subprocess
    import sys

    # As a user runs it: Spark's own ERROR log of the failed task (its JVM
    # stack, some 200 lines) is not printed; sparklift's one line is.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SPARK_REMOTE", "SPARK_LOCAL_REMOTE", "SPARK_CONNECT_", "SPARKLIFT_"))
    }
    env["SPARKLIFT_MASTER"] = "local[1]"
    run = subprocess.run(
        [sys.executable, "-m", "sparklift", *_failing_job(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert run.returncode == 1
    assert "sparklift: error: Feature column 'b' has null values in 1 row" in run.stderr
    assert "PythonException" not in run.stderr
    assert "at org.apache" not in run.stderr


class TextOnRealData:
    """Predicts numbers on the all-zero probe row, text on real rows: fails in a task."""

    def predict(self, X):
        X = np.asarray(X)
        return np.zeros(len(X)) if not X.any() else np.array(["oops"] * len(X), dtype=object)


def test_a_plain_worker_error_names_its_cause(spark, tmp_path, capsys):
    import os

    from sparklift.session import ENV_LOG_LEVEL

    model_path = str(tmp_path / "model.pkl")
    save_model(TextOnRealData(), model_path, serializer="pickle")
    pd.DataFrame({"a": np.arange(1.0, 6.0)}).to_parquet(tmp_path / "in.parquet")
    argv = ["predict", "--model", model_path, "--allow-pickle", "--input-cols", "a"]
    argv += ["--input", str(tmp_path / "in.parquet"), "--output", str(tmp_path / "out")]
    before = os.environ.get(ENV_LOG_LEVEL)
    assert main(argv) == 1
    err = capsys.readouterr().err
    # Not only "An exception was thrown from the Python worker": its cause too.
    assert "PythonException" in err
    assert "ValueError: could not convert string to float: 'oops'" in err
    # The CLI's quiet Spark log level was for that call only.
    assert os.environ.get(ENV_LOG_LEVEL) == before


def _no_spark(monkeypatch):
    """Make any attempt to start (or get) a Spark session fail the test."""
    import sparklift.session

    def no_spark(*args, **kwargs):
        raise AssertionError("a Spark session was asked for before the arguments were checked")

    monkeypatch.setattr(sparklift.session, "get_spark", no_spark)


def _model_without_names(tmp_path):
    X = np.random.default_rng(2).normal(size=(30, 2))
    model_path = str(tmp_path / "model.skops")
    save_model(LogisticRegression().fit(X, (X[:, 0] > 0).astype(int)), model_path)
    return model_path


def test_an_existing_output_is_refused_before_spark_starts(tmp_path, capsys, monkeypatch):
    _no_spark(monkeypatch)
    out = tmp_path / "out"
    out.mkdir()
    argv = ["predict", "--model", _model_without_names(tmp_path), "--input-cols", "a,b"]
    argv += ["--input", str(tmp_path / "in.parquet"), "--output", str(out)]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"sparklift: error: {out} already exists; pass --overwrite to replace it"


def test_missing_input_columns_name_the_command_line_options(tmp_path, capsys, monkeypatch):
    _no_spark(monkeypatch)
    argv = ["predict", "--model", _model_without_names(tmp_path)]
    argv += ["--input", str(tmp_path / "in.parquet"), "--output", str(tmp_path / "out")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("sparklift: error: ")
    assert "--input-cols" in err
    assert "--features-col" in err
    assert " input_cols" not in err
    assert " features_col" not in err


def test_predict_takes_the_spark_options():
    from sparklift.cli import build_parser

    args = build_parser().parse_args(
        ["predict", "--model", "m", "--input", "i", "--output", "o", "--master", "local[1]"]
    )
    assert args.master == "local[1]"
    assert args.driver_memory is None


def test_a_failed_swap_keeps_the_old_output(tmp_path, monkeypatch):
    import os

    from sparklift import cli

    old, staging = tmp_path / "out", tmp_path / ".out.sparklift-x"
    (old).mkdir()
    (old / "part-0").write_text("old")
    (staging / "output").mkdir(parents=True)
    real_rename = os.rename

    def rename(src, dst):
        if str(src).endswith("output"):  # the new output cannot move in (a mount point)
            raise OSError(16, "Device or resource busy")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="busy"):
        cli._swap_in(str(staging), str(old))
    assert (old / "part-0").read_text() == "old"


class SleepsInTasks:
    """Answers the driver's one-row probe at once; sleeps in a task, as a long job does."""

    def predict(self, X):
        import time

        if len(X) > 1:
            time.sleep(300)
        return np.zeros(len(X))


@pytest.mark.slow  # starts a second JVM
def test_ctrl_c_keeps_the_old_output_and_leaves_nothing_beside_it(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    save_model(SleepsInTasks(), str(tmp_path / "model.pkl"), serializer="pickle")
    pd.DataFrame({"a": np.arange(1000.0)}).to_parquet(tmp_path / "in.parquet")
    old = tmp_path / "out"
    old.mkdir()
    pd.DataFrame({"kept": [1.0, 2.0]}).to_parquet(old / "part-0.parquet")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SPARK_REMOTE", "SPARK_LOCAL_REMOTE", "SPARK_CONNECT_", "SPARKLIFT_"))
    }
    env["SPARKLIFT_MASTER"] = "local[1]"
    args = ["predict", "--model", "model.pkl", "--allow-pickle", "--input", "in.parquet"]
    args += ["--output", "out", "--input-cols", "a", "--overwrite"]
    child = subprocess.Popen(
        [sys.executable, "-m", "sparklift", *args],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not [p for p in os.listdir(tmp_path) if p.startswith(".out.sparklift-")]:
            assert child.poll() is None, child.stderr.read()
            assert time.monotonic() < deadline, "the job never started writing"
            time.sleep(0.2)
        time.sleep(3)  # the task is in the model's predict
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 130, err
    assert err.strip().endswith("sparklift: interrupted"), err
    assert "reentrant call" not in err
    assert "Traceback" not in err, err
    assert sorted(os.listdir(tmp_path)) == ["in.parquet", "model.pkl", "out"]
    assert os.listdir(old) == ["part-0.parquet"]
    assert pd.read_parquet(old / "part-0.parquet")["kept"].tolist() == [1.0, 2.0]


def test_predict_command_scores_a_grouped_model_folder(spark, tmp_path, capsys):
    from sklearn.linear_model import LinearRegression

    from sparklift.grouped import fit_per_group

    rng = np.random.default_rng(4)
    pdf = pd.DataFrame({"g": np.repeat(["p", "q"], 30), "a": rng.normal(size=60)})
    pdf["y"] = np.where(pdf["g"] == "p", 2.0, -3.0) * pdf["a"] + rng.normal(size=60)
    folder = str(tmp_path / "grouped")
    fit_per_group(spark.createDataFrame(pdf), "g", LinearRegression(), ["a"], "y").save(folder)
    new = pd.DataFrame({"g": ["p", "q", "zz"], "a": [0.5, -1.0, 2.0]})
    new.to_parquet(tmp_path / "new.parquet")
    argv = ["predict", "--model", folder, "--input", str(tmp_path / "new.parquet")]
    assert main([*argv, "--output", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "sparklift: warning: 1 row in groups without a fitted model" in err
    got = spark.read.parquet(str(tmp_path / "out")).toPandas().set_index("g")
    for g in ("p", "q"):  # each row with its own group's model, fitted here by hand
        rows = pdf[pdf["g"] == g]
        local = LinearRegression().fit(rows[["a"]], rows["y"])
        assert got.loc[g, "prediction"] == local.predict(new[new["g"] == g][["a"]])[0]
    assert pd.isna(got.loc["zz", "prediction"])
    out2 = ["--output", str(tmp_path / "out2")]
    assert main([*argv, *out2, "--on-unknown", "error"]) == 1
    assert "--on-unknown null" in capsys.readouterr().err
    assert main([*argv, *out2, "--input-cols", "a"]) == 1
    assert "drop --input-cols" in capsys.readouterr().err
    argv[2] = str(tmp_path)  # a folder that is no GroupedModel
    assert main([*argv, *out2]) == 1
    assert "is a folder: --model takes a file" in capsys.readouterr().err
