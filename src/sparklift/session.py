"""The one place that makes a SparkSession.

``get_spark()`` returns, in this order of preference:

1. the active session, when there is one (a user's own cluster or Connect
   session is never replaced);
2. a Spark Connect session when ``SPARK_REMOTE`` is set;
3. a local session on all cores with defaults that work out of the box:
   Arrow on, quiet logs, settable driver memory, and Python workers that run
   the same interpreter as the driver (so a virtualenv's pandas, numpy and
   sparklift are what the workers import).

Before a local JVM is started, Java is checked: a missing or too old Java
gives one clear :class:`JavaNotFoundError` instead of a JVM stack trace.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: Spark 4 runs on Java 17 and 21.
MIN_JAVA_VERSION = 17

#: Environment variables read by :func:`get_spark` (documented in the README).
ENV_MASTER = "SPARKLIFT_MASTER"
ENV_DRIVER_MEMORY = "SPARKLIFT_DRIVER_MEMORY"
ENV_REMOTE = "SPARK_REMOTE"
ENV_LOG_LEVEL = "SPARKLIFT_SPARK_LOG_LEVEL"

_JAVA_HINT = (
    "Spark 4 needs Java 17 or 21. Install a JDK (Debian/Ubuntu: "
    "'apt-get install openjdk-17-jre-headless'; macOS: 'brew install openjdk@17') "
    "and put its java on PATH or set JAVA_HOME."
)


class JavaNotFoundError(RuntimeError):
    """Java is missing or older than Spark needs."""


@dataclass(frozen=True)
class JavaInfo:
    """Where Java was found and which version it reports."""

    executable: str
    version: str
    major: int


def _java_executable() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = os.path.join(java_home, "bin", "java")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("java")


def _parse_java_version(text: str) -> tuple[str, int] | None:
    # `java -version` prints e.g. 'openjdk version "17.0.15" 2025-04-15' or
    # 'java version "1.8.0_381"' (old scheme: the major is the second field).
    match = re.search(r'version "([^"]+)"', text)
    if not match:
        return None
    version = match.group(1)
    parts = re.split(r"[._+-]", version)
    try:
        major = int(parts[1]) if parts[0] == "1" and len(parts) > 1 else int(parts[0])
    except ValueError:
        return None
    return version, major


def check_java() -> JavaInfo:
    """Find Java and check that it is recent enough for Spark 4.

    Returns
    -------
    JavaInfo
        The executable used and its version.

    Raises
    ------
    JavaNotFoundError
        When no Java is found (neither ``JAVA_HOME`` nor ``java`` on ``PATH``),
        when it cannot be run, or when it is older than Java 17.
    """
    java = _java_executable()
    if java is None:
        raise JavaNotFoundError(
            f"No Java found (JAVA_HOME is not set and no 'java' on PATH). {_JAVA_HINT}"
        )
    try:
        proc = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JavaNotFoundError(f"Could not run {java} -version ({exc}). {_JAVA_HINT}") from None
    parsed = _parse_java_version(proc.stderr + proc.stdout)
    if parsed is None:
        raise JavaNotFoundError(
            f"Could not read the version printed by {java} -version. {_JAVA_HINT}"
        )
    version, major = parsed
    if major < MIN_JAVA_VERSION:
        raise JavaNotFoundError(f"Java {version} at {java} is too old. {_JAVA_HINT}")
    return JavaInfo(executable=java, version=version, major=major)


def default_master() -> str:
    """The master a new local session would use (``SPARKLIFT_MASTER`` or ``local[*]``)."""
    return os.environ.get(ENV_MASTER, "local[*]")


def _pin_python_workers() -> None:
    # Without this, Spark starts workers with the first 'python3' on PATH, which
    # outside the driver's virtualenv lacks pandas/pyarrow/sparklift, and the first
    # pandas UDF dies with "No module named 'pandas'". A user's explicit choice wins.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


def active_session() -> SparkSession | None:
    """The active SparkSession (Classic or Connect), or None."""
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is not None:
        return session
    try:
        from pyspark.sql.connect.session import SparkSession as ConnectSession
    except ImportError:  # Connect's extra dependencies (grpc) are not installed.
        return None
    return ConnectSession.getActiveSession()


def _session_in_process() -> bool:
    """Whether this process has a session: active in this thread, or another thread's default."""
    from pyspark.sql import SparkSession

    kinds: list[Any] = [SparkSession]
    try:
        from pyspark.sql.connect.session import SparkSession as ConnectSession

        kinds.append(ConnectSession)
    except ImportError:  # Connect's extra dependencies (grpc) are not installed.
        pass
    for kind in kinds:
        try:
            kind.active()  # the thread's active session, else the process's default
            return True
        except Exception:  # none of that kind
            continue
    return False


def starts_local_jvm() -> bool:
    """Whether :func:`get_spark` would start a Spark JVM in this process.

    True when the process has no session (in any thread) and ``SPARK_REMOTE``
    names no remote Connect server (unset, or ``local[...]``, which starts
    one here).
    """
    if _session_in_process():
        return False
    remote = os.environ.get(ENV_REMOTE)
    return not remote or remote.startswith("local")


#: The log4j2 configuration of the local Spark sessions sparklift starts.
LOG_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "log4j2.properties")


#: A JVM option naming a log4j configuration file (log4j2 reads both spellings).
_LOG4J_OPTION = re.compile(r"-Dlog4j2?\.configuration(File)?=")
#: The files log4j2 would find in Spark's conf directory.
_LOG4J_FILES = tuple(f"log4j2{ext}" for ext in (".properties", ".xml", ".yaml", ".yml", ".json"))


def _spark_conf_dir() -> str | None:
    """Spark's conf directory, found as spark-submit finds it."""
    if os.environ.get("SPARK_CONF_DIR"):
        return os.environ["SPARK_CONF_DIR"]
    home = os.environ.get("SPARK_HOME")
    if not home:
        try:
            import pyspark
        except ImportError:
            return None
        home = os.path.dirname(os.path.abspath(pyspark.__file__))
    return os.path.join(home, "conf")


def _defaults_java_options(conf_dir: str) -> str | None:
    """``spark.driver.extraJavaOptions`` from ``spark-defaults.conf``, if it sets it."""
    try:
        with open(os.path.join(conf_dir, "spark-defaults.conf"), encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    found = None
    for line in lines:  # Java properties: key, then whitespace, "=" or ":"
        match = re.match(r"\s*([^\s=:#!][^\s=:]*)\s*[=:]?\s*(.*)$", line)
        if match and match.group(1) == "spark.driver.extraJavaOptions":
            found = match.group(2).strip()
    return found


def _use_quiet_logging(settings: dict[str, Any]) -> None:
    """Point a new local driver JVM at sparklift's log4j2 configuration.

    Spark's defaults at ERROR, and without the executor's, the scheduler's and
    the writers' copies of a failed task's stack trace: the job's exception
    reports it once, on the driver. Left alone when the user configures log4j:
    a ``log4j2.*`` file in Spark's conf directory, ``LOG4J_CONFIGURATION_FILE``,
    or a ``-Dlog4j2.configurationFile`` (or ``-Dlog4j.configurationFile``) in
    the JVM options. The option is set with ``--conf``, which replaces
    ``spark-defaults.conf``'s value, so that value is kept in it.
    """
    key = "spark.driver.extraJavaOptions"
    conf_dir = _spark_conf_dir()
    options = settings.get(key)
    if options is None and conf_dir:
        options = _defaults_java_options(conf_dir)
    options = str(options or "")
    if (
        _LOG4J_OPTION.search(options)
        or _LOG4J_OPTION.search(os.environ.get("JAVA_TOOL_OPTIONS", ""))
        or os.environ.get("LOG4J_CONFIGURATION_FILE")
        or (conf_dir and any(os.path.exists(os.path.join(conf_dir, f)) for f in _LOG4J_FILES))
    ):
        return
    ours = f"-Dlog4j2.configurationFile={Path(LOG_CONFIG).as_uri()}"
    settings[key] = f"{ours} {options}".strip()


def get_spark(
    app_name: str = "sparklift",
    *,
    master: str | None = None,
    driver_memory: str | None = None,
    config: dict[str, Any] | None = None,
) -> SparkSession:
    """Return a SparkSession: the active one, a Connect one, or a new local one.

    Parameters
    ----------
    app_name : str
        Application name of a newly created session.
    master : str, optional
        Master of a new local/classic session. Defaults to ``SPARKLIFT_MASTER``
        or ``local[*]`` (all cores).
    driver_memory : str, optional
        ``spark.driver.memory`` of a new session, e.g. ``"4g"``. Defaults to
        ``SPARKLIFT_DRIVER_MEMORY`` or ``"2g"``. Only effective when this call
        starts the JVM.
    config : dict, optional
        Extra Spark configuration for a new session; overrides the defaults.

    Returns
    -------
    pyspark.sql.SparkSession
        Classic or Connect session.

    Raises
    ------
    JavaNotFoundError
        When a local JVM must be started and Java 17+ is not available.
    """
    session = active_session()
    if session is not None:
        return session

    _pin_python_workers()
    from pyspark.sql import SparkSession

    remote = os.environ.get(ENV_REMOTE)
    if remote and not remote.startswith("local"):
        # A remote server owns its configuration; only the user's settings go there.
        builder = SparkSession.builder.remote(remote).appName(app_name)
        for key, value in (config or {}).items():
            builder = builder.config(key, value)
        return builder.getOrCreate()

    # Local Spark, either Classic or a Connect server started in this process
    # (SPARK_REMOTE=local[...]): both start a JVM here and get the same defaults.
    check_java()
    settings: dict[str, Any] = {
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
        "spark.driver.memory": driver_memory or os.environ.get(ENV_DRIVER_MEMORY, "2g"),
        "spark.ui.showConsoleProgress": "false",
        "spark.ui.enabled": "false",
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        # Small local data does not need 200 shuffle partitions.
        "spark.sql.shuffle.partitions": str(max(2, 2 * (os.cpu_count() or 1))),
        "spark.sql.session.timeZone": "UTC",
    }
    if os.environ.get(ENV_LOG_LEVEL):
        settings["spark.log.level"] = os.environ[ENV_LOG_LEVEL]
    settings.update(config or {})
    _use_quiet_logging(settings)
    if remote:
        builder = SparkSession.builder.remote(remote).appName(app_name)
    else:
        builder = SparkSession.builder.master(master or default_master()).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    if not remote:
        return builder.getOrCreate()
    with warnings.catch_warnings():
        # The local Connect server takes every setting at start-up; pyspark then
        # re-applies them to the Connect session and warns for each static one.
        warnings.filterwarnings("ignore", message=".*(not supported|Cannot modify).*")
        return builder.getOrCreate()
