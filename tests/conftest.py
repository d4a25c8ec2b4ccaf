"""Shared test fixtures: one SparkSession for the whole run.

``SPARKLIFT_TEST_MODE`` picks where the Spark tests run:

* ``local`` (default): ``local[2,2]``, two threads, a failed task retried once;
* ``local-cluster``: ``local-cluster[2,1,1024]``, two executor JVMs with their
  own Python workers, which catches closures that only work in one process;
* ``connect``: a local Spark Connect server, reached through the Connect client.

Tests marked ``smoke`` run in all three modes; ``make test`` runs the rest in
``local`` mode only.
"""

from __future__ import annotations

import os

import pytest

MODE = os.environ.get("SPARKLIFT_TEST_MODE", "local")
MASTERS = {
    "local": "local[2,2]",
    "local-cluster": "local-cluster[2,1,1024]",
    "connect": "local[2,2]",
}
TEST_CONFIG = {
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
}

# Functions defined in test modules are pickled by reference; the Python
# workers must be able to import those modules (top-level, rootdir-relative).
_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (_TESTS_DIR, os.environ.get("PYTHONPATH")) if p
)

if MODE not in MASTERS:
    raise pytest.UsageError(f"SPARKLIFT_TEST_MODE must be one of {sorted(MASTERS)}; got {MODE!r}")


@pytest.fixture(scope="session")
def spark_mode() -> str:
    """The test mode: ``local``, ``local-cluster`` or ``connect``."""
    return MODE


@pytest.fixture(scope="session")
def spark():
    """The one SparkSession of the test run, in the mode the environment asks for."""
    from sparklift.session import get_spark

    # The machine's hostname may resolve to an address other tests cannot reach.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    if MODE == "connect":
        os.environ["SPARK_REMOTE"] = MASTERS[MODE]
        session = get_spark("sparklift-tests", config=TEST_CONFIG)
    else:
        os.environ.pop("SPARK_REMOTE", None)
        session = get_spark("sparklift-tests", master=MASTERS[MODE], config=TEST_CONFIG)
    yield session
    session.stop()
