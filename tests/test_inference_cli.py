"""``sparklift predict``: saved model + Parquet -> Parquet with predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
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
