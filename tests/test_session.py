"""sparklift.session: Java checks, session reuse, Python workers in a virtualenv."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sparklift.session import (
    LOG_CONFIG,
    JavaNotFoundError,
    _parse_java_version,
    _use_quiet_logging,
    check_java,
    get_spark,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('openjdk version "17.0.15" 2025-04-15', ("17.0.15", 17)),
        ('java version "21" 2023-09-19 LTS', ("21", 21)),
        ('java version "1.8.0_381"', ("1.8.0_381", 8)),
        ('openjdk version "11.0.2" 2019-01-15', ("11.0.2", 11)),
        ("no version here", None),
    ],
)
def test_parse_java_version(text, expected):
    assert _parse_java_version(text) == expected


def _fake_java(tmp_path, version_line):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    java = bin_dir / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(0o755)
    return tmp_path


def test_check_java_rejects_old_java(tmp_path, monkeypatch):
    home = _fake_java(tmp_path, 'java version "1.8.0_381"')
    monkeypatch.setenv("JAVA_HOME", str(home))
    with pytest.raises(JavaNotFoundError, match=r"1\.8\.0_381 .* too old.*Java 17"):
        check_java()


def test_check_java_accepts_java_home(tmp_path, monkeypatch):
    home = _fake_java(tmp_path, 'openjdk version "21.0.1" 2023-10-17')
    monkeypatch.setenv("JAVA_HOME", str(home))
    info = check_java()
    assert (info.major, info.executable) == (21, str(home / "bin" / "java"))


def test_check_java_missing(monkeypatch, tmp_path):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(JavaNotFoundError, match=r"No Java found.*install"):
        check_java()


def _env_without_java() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"JAVA_HOME", "SPARK_REMOTE"}}
    env["PATH"] = os.path.dirname(sys.executable)  # the venv's bin: sparklift, no java
    return env


def test_cli_info_without_java_fails_with_one_line():
    proc = subprocess.run(
        [sys.executable, "-m", "sparklift", "info"],
        env=_env_without_java(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    java_lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(java_lines) == 1, proc.stderr
    assert "No Java found" in java_lines[0]
    assert "openjdk-17" in java_lines[0]
    assert "Traceback" not in proc.stderr


def test_get_spark_without_java_raises_before_jvm():
    code = "from sparklift import get_spark\nget_spark()"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=_env_without_java(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    assert "JavaNotFoundError: No Java found" in proc.stderr
    assert "py4j" not in proc.stderr.lower()


@pytest.mark.smoke
def test_get_spark_returns_the_active_session(spark):
    assert get_spark() is spark


@pytest.mark.smoke
def test_arrow_is_on(spark, spark_mode):
    if spark_mode == "connect":
        pytest.skip("Connect always transfers with Arrow")
    assert spark.conf.get("spark.sql.execution.arrow.pyspark.enabled") == "true"


@pytest.mark.slow
@pytest.mark.smoke
def test_fresh_process_pandas_udf_uses_the_driver_interpreter(tmp_path, spark_mode):
    """A new user's first pandas UDF in a virtualenv must find pandas in the workers.

    The child process has no PYSPARK_PYTHON and a PATH whose first python is the
    system one (which has no pandas); only get_spark()'s pinning of the worker
    interpreter makes the UDF work. The same process then fails a task and a
    Spark ML fit: the errors reach the driver, and the console gets no copies
    of their traces.
    """
    if spark_mode != "local":
        pytest.skip("starts its own local JVM; one mode is enough")
    script = tmp_path / "first_udf.py"
    script.write_text(
        textwrap.dedent(
            """
            import pandas as pd
            from pyspark.sql.functions import pandas_udf
            from sparklift import get_spark

            spark = get_spark(master="local[1]")

            @pandas_udf("string")
            def where(s: pd.Series) -> pd.Series:
                import sys
                import pandas
                return pd.Series([sys.executable] * len(s))

            print("WORKER", spark.range(3).select(where("id")).first()[0])

            @pandas_udf("double")
            def boom(s: pd.Series) -> pd.Series:
                raise ValueError("a bad value")

            try:
                spark.range(3).select(boom("id")).write.format("noop").mode("overwrite").save()
            except Exception as exc:
                print("FAILED", "a bad value" in str(exc))

            from pyspark.ml.feature import VectorAssembler
            from pyspark.ml.regression import LinearRegression

            rows = spark.createDataFrame([(1.0, 1.0), (None, 2.0)], "x double, label double")
            rows = VectorAssembler(inputCols=["x"], outputCol="features").transform(rows)
            try:
                LinearRegression().fit(rows)
            except Exception as exc:
                print("ML FAILED", "Encountered null" in str(exc))
            spark.stop()
            """
        )
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            (
                "PYSPARK_",
                "SPARK_REMOTE",
                "SPARK_LOCAL_REMOTE",
                "SPARK_CONNECT_",
                "SPARK_CONF_DIR",
                "LOG4J_",
            )
        )
    }
    env["PATH"] = "/usr/bin:/bin:" + env.get("PATH", "")
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    proc = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    worker = next(line for line in proc.stdout.splitlines() if line.startswith("WORKER"))
    assert os.path.realpath(worker.split(maxsplit=1)[1]) == os.path.realpath(sys.executable)
    assert "FAILED True" in proc.stdout
    assert "ML FAILED True" in proc.stdout
    # Spark's defaults would log the failed task's trace three times (~100 lines),
    # Spark ML the failed fit's once more, and announce its log level.
    markers = ("Exception in task", "TaskSetManager", "Aborting", "Instrumentation")
    for marker in (*markers, "Setting default log level"):
        assert marker not in proc.stderr, proc.stderr[-3000:]
    assert "a bad value" not in proc.stderr, proc.stderr[-3000:]


def test_quiet_logging_unless_the_user_configures_log4j(tmp_path, monkeypatch):
    for name in ("SPARK_CONF_DIR", "SPARK_HOME", "LOG4J_CONFIGURATION_FILE", "JAVA_TOOL_OPTIONS"):
        monkeypatch.delenv(name, raising=False)
    conf = tmp_path / "conf"
    conf.mkdir()
    monkeypatch.setenv("SPARK_CONF_DIR", str(conf))
    ours = f"-Dlog4j2.configurationFile={Path(LOG_CONFIG).as_uri()}"
    assert Path(LOG_CONFIG).is_file()

    def quiet(settings: dict) -> dict:
        _use_quiet_logging(settings)
        return settings

    assert quiet({}) == {"spark.driver.extraJavaOptions": ours}
    # Other JVM options are kept: the caller's, or else spark-defaults.conf's,
    # which the --conf this sets would otherwise replace.
    assert quiet({"spark.driver.extraJavaOptions": "-Xss4m"}) == {
        "spark.driver.extraJavaOptions": f"{ours} -Xss4m"
    }
    (conf / "spark-defaults.conf").write_text(
        "# site settings\nspark.driver.extraJavaOptions   -Dsite=1 -Xss8m\nspark.ui.enabled false\n"
    )
    assert quiet({}) == {"spark.driver.extraJavaOptions": f"{ours} -Dsite=1 -Xss8m"}
    # The user's own log4j configuration wins, however it is given.
    for option in ("-Dlog4j2.configurationFile=/etc/a.xml", "-Dlog4j.configurationFile=/etc/b"):
        assert quiet({"spark.driver.extraJavaOptions": option}) == {
            "spark.driver.extraJavaOptions": option
        }
    (conf / "spark-defaults.conf").write_text(
        "spark.driver.extraJavaOptions=-Dlog4j.configurationFile=/etc/c.properties\n"
    )
    assert quiet({}) == {}
    (conf / "spark-defaults.conf").unlink()
    monkeypatch.setenv("LOG4J_CONFIGURATION_FILE", "/etc/d.json")
    assert quiet({}) == {}
    monkeypatch.delenv("LOG4J_CONFIGURATION_FILE")
    (conf / "log4j2.xml").write_text("<Configuration/>\n")
    assert quiet({}) == {}
