"""The sparklift command: --version, info, --help, and errors as one line."""

from __future__ import annotations

import pytest

import sparklift
from sparklift.cli import build_parser, main


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"sparklift {sparklift.__version__}"


def test_info_reports_versions_and_master(capsys, monkeypatch):
    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    monkeypatch.setenv("SPARKLIFT_MASTER", "local[3]")
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for label in ("sparklift", "Python", "PySpark", "Java", "Connect"):
        assert label in out
    assert "local[3]" in out


def test_info_reports_connect(capsys, monkeypatch):
    monkeypatch.setenv("SPARK_REMOTE", "sc://example:15002")
    assert main(["info"]) == 0
    assert "sc://example:15002" in capsys.readouterr().out


def test_help_everywhere(capsys):
    parser = build_parser()
    subcommands = parser._subparsers._group_actions[0].choices  # argparse keeps them here
    for name in ["", *subcommands]:
        argv = [name, "--help"] if name else ["--help"]
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0
        assert "usage: sparklift" in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: sparklift" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["predict", "tune", "hmm"])
def test_unreadable_input_is_one_clear_line(spark, tmp_path, capsys, monkeypatch, command):
    # A file that exists but is not Parquet: Spark (or Arrow) refuses it deep
    # inside; the command says so in one line and exits 1, no traceback.
    from sklearn.linear_model import LinearRegression

    from sparklift.inference import save_model

    monkeypatch.delenv("SPARKLIFT_TRACEBACK", raising=False)
    bad = tmp_path / "broken.parquet"
    bad.write_text("this is not a parquet file\n")
    model = str(tmp_path / "model.skops")
    save_model(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), model)
    out = str(tmp_path / "out")
    argv = {
        "predict": [
            "predict", "--model", model, "--input", str(bad), "--output", out,
            "--input-cols", "x",
        ],
        "tune": [
            "tune", str(bad), "--label", "y", "--grid", "{}",
            "--estimator", "sklearn.linear_model.LinearRegression",
        ],
        "hmm": ["hmm", "fit", str(bad), "-o", out, "--n-components", "2", "--no-progress"],
    }[command]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("sparklift: error: "), err
    assert "Traceback" not in "\n".join(err)
    assert len(err) == 2
    assert "SPARKLIFT_TRACEBACK=1" in err[1]
    assert not (tmp_path / "out").exists()


def test_the_cli_leaves_pysparks_query_context_logger_usable(spark, monkeypatch, capsys):
    """main() in a notebook used to make that logger a plain Logger, which then
    failed on pyspark's keywords and hid the next analysis error behind a TypeError."""
    import logging

    from pyspark.sql import functions as F

    if spark.conf.get("spark.sql.ansi.enabled").lower() != "true":
        pytest.skip("needs ANSI mode, Spark 4's default, for a division by zero to fail")
    monkeypatch.delitem(logging.Logger.manager.loggerDict, "DataFrameQueryContextLogger", False)
    main(["info"])
    capsys.readouterr()
    with pytest.raises(Exception, match="DIVIDE_BY_ZERO"):
        spark.range(3).select(F.col("id") / F.lit(0)).collect()
