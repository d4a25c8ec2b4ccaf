"""The ``sparklift`` command.

``sparklift --version``, ``sparklift info`` and the subcommands other modules
register (``hmm``, ``demo``, ``tune``, ``predict``). Each module that adds a
subcommand exposes ``register(subparsers)``, which adds its parser and sets
``func`` on it; :data:`COMMAND_MODULES` lists them. Modules are imported only
when the command line is parsed, so ``sparklift --version`` stays instant.
Commands that use Spark add ``--master``/``--driver-memory`` with
:func:`add_spark_options` and get their session from :class:`CommandSession`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import platform
import re
import sys
from collections.abc import Sequence
from typing import Any

from sparklift import __version__

#: Modules with a ``register(subparsers)`` function, in the order of ``--help``.
COMMAND_MODULES: list[str] = ["sparklift.hmm.cli", "sparklift.predict_cli", "sparklift.tuning.cli"]


def _info(args: argparse.Namespace) -> int:
    from sparklift.session import ENV_REMOTE, JavaNotFoundError, check_java, default_master

    remote = os.environ.get(ENV_REMOTE)
    try:
        import pyspark

        spark_version = pyspark.__version__
    except ImportError:
        spark_version = "not installed"
    print(f"sparklift   {__version__}")
    print(f"Python      {platform.python_version()} ({sys.executable})")
    print(f"PySpark     {spark_version}")
    if remote:
        print(f"Connect     {remote} (SPARK_REMOTE is set: sessions connect there)")
    else:
        print("Connect     not configured (set SPARK_REMOTE=sc://host:15002 to use Spark Connect)")
        print(f"Master      {default_master()}")
    try:
        java = check_java()
    except JavaNotFoundError as exc:
        print(f"Java        {exc}", file=sys.stderr)
        # Connect sessions need no local Java; local ones cannot start without it.
        return 0 if remote else 1
    print(f"Java        {java.version} ({java.executable})")
    return 0


def add_spark_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--master`` and ``--driver-memory`` (read by :class:`CommandSession`)."""
    group = parser.add_argument_group("Spark")
    group.add_argument(
        "--master",
        help="master of a new local session (default: SPARKLIFT_MASTER or local[*]); "
        "ignored when SPARK_REMOTE points at a Spark Connect server",
    )
    group.add_argument("--driver-memory", help="driver memory of a new local session, e.g. 4g")


class CommandSession:
    """get_spark() for a command; stops the session afterwards only if it started it.

    Passes on the ``--master`` and ``--driver-memory`` of
    :func:`add_spark_options` when the command has them.
    """

    def __init__(self, args: argparse.Namespace, app_name: str) -> None:
        self.args = args
        self.app_name = app_name
        self.started = False

    def __enter__(self) -> Any:
        from sparklift.session import active_session, get_spark

        self.started = active_session() is None
        spark = get_spark(
            self.app_name,
            master=getattr(self.args, "master", None),
            driver_memory=getattr(self.args, "driver_memory", None),
        )
        if self.started:
            # pyspark's own Ctrl-C handler cancels the jobs through the py4j
            # connection the main thread is blocked on: it fails ("reentrant
            # call", ~50 lines of tracebacks) and the job runs on. Python's
            # plain KeyboardInterrupt lets the command cancel them itself.
            import signal
            import threading

            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, signal.default_int_handler)
        return spark

    def __exit__(self, *exc: Any) -> None:
        if self.started:
            from sparklift.session import active_session

            session = active_session()
            if session is not None:
                session.stop()


def local_path(path: str) -> str | None:
    """The local file system path of ``path``, or None for another file system."""
    if path.startswith("file:"):
        return path[len("file:") :]
    return None if "://" in path else path


def refuse_existing_output(output: str, overwrite: bool) -> None:
    """Refuse, before Spark starts, a local ``--output`` that exists without ``--overwrite``."""
    from sparklift.errors import PathExistsError

    local = local_path(output)
    if local is not None and os.path.exists(local) and not overwrite:
        raise PathExistsError(f"{output} already exists; pass --overwrite to replace it")


def _first_missing(path: str) -> str | None:
    """The outermost directory of ``path`` that does not exist yet (``path`` itself, or a parent)."""
    path = os.path.abspath(path)
    if os.path.exists(path):
        return None
    while not os.path.exists(os.path.dirname(path)):
        path = os.path.dirname(path)
    return path


def _swap_in(staging: str, local: str) -> None:
    """Move the output written in ``staging`` to ``local``, replacing what was there.

    Two renames on one file system; the old output is deleted only once the new
    one is in place. If the second rename fails the old output is put back (or,
    failing that, the error says where it is).
    """
    import shutil

    previous = os.path.join(staging, "previous")
    os.rename(local, previous)
    try:
        os.rename(os.path.join(staging, "output"), local)
    except OSError as exc:
        try:
            os.rename(previous, local)
        except OSError:
            raise OSError(
                f"could not replace {local} ({exc}); the previous output is in {previous}"
            ) from exc
        raise
    shutil.rmtree(staging, ignore_errors=True)


def _on_this_machine(df: Any) -> bool:
    """Whether a path without a scheme names this machine's file system for ``df``'s session.

    True for a local master (classic) with no other default file system, and
    for a Spark Connect server started on this machine.
    """
    from sparklift._spark import is_connect

    if is_connect(df):
        remote = os.environ.get("SPARK_REMOTE", "")
        return (
            remote.startswith("local")
            or re.match(r"sc://(localhost|127\.0\.0\.1)\b", remote) is not None
        )
    conf = df.sparkSession.conf
    master = conf.get("spark.master", "") or ""
    default_fs = conf.get("spark.hadoop.fs.defaultFS", None) or "file:"
    return master.startswith("local") and default_fs.startswith("file:")


def write_parquet_output(df: Any, output: str, overwrite: bool) -> None:
    """Write a command's result ``df`` as Parquet to ``output``.

    On this machine's file system (a local session's paths) a failed job
    leaves nothing behind (not even the parent folders it created), and
    ``overwrite`` writes beside the old output (a hidden
    ``.NAME.sparklift-*`` folder) and swaps it in only once the job has
    succeeded: a failed or interrupted run keeps the old output, and the
    input may be the output itself. Elsewhere (``hdfs://``, ``s3a://``, a
    cluster's default file system) Spark's own overwrite runs, which deletes
    the old output before the job.
    """
    import shutil
    import tempfile

    from sparklift._spark import refusing_existing, translate_errors

    local = local_path(output) if _on_this_machine(df) else None
    created = None if local is None else _first_missing(local)
    staging = None
    target = output
    if overwrite and local is not None and created is None:
        parent, name = os.path.split(os.path.abspath(local))
        staging = tempfile.mkdtemp(prefix=f".{name}.sparklift-", dir=parent)
        target = ("file:" if output.startswith("file:") else "") + staging + "/output"
    try:
        with refusing_existing(output, "pass --overwrite"), translate_errors():
            df.write.mode("overwrite" if overwrite and staging is None else "error").parquet(target)
        if staging is not None and local is not None:
            _swap_in(staging, local)
    except BaseException as exc:
        # A failed (or interrupted) job leaves the folder it started (empty, or
        # with Spark's _temporary), which would refuse the next run.
        leftover = staging or created
        if leftover is not None and os.path.exists(leftover):
            if staging is not None and os.path.exists(os.path.join(staging, "previous")):
                raise  # _swap_in could not put the old output back: it says where it is
            if isinstance(exc, Exception):
                shutil.rmtree(leftover, ignore_errors=True)
            else:  # Ctrl-C: the job's tasks may still be writing into it
                _remove_once_quiet(df, leftover)
        raise


def _remove_once_quiet(df: Any, path: str, seconds: float = 10.0) -> None:
    """Cancel the session's jobs, then remove ``path`` until it stays gone.

    An interrupted write's tasks keep writing for a moment after the driver
    stops waiting (even once cancelled), and recreate the folder a single
    ``rmtree`` removed.
    """
    import contextlib
    import shutil
    import time

    # (If the session is going away too, its tasks end with it.)
    with contextlib.suppress(Exception):
        df.sparkSession.interruptAll()
    deadline = time.monotonic() + seconds
    quiet_since = None
    while time.monotonic() < deadline:
        if os.path.exists(path):
            shutil.rmtree(path, ignore_errors=True)
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= 2.0:
            return
        time.sleep(0.1)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="sparklift",
        description="Single-machine machine learning lifted onto Apache Spark.",
    )
    parser.add_argument("--version", action="version", version=f"sparklift {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    info = subparsers.add_parser(
        "info",
        help="show Python, Spark and Java versions and where sessions would run",
        description="Show Python, Spark and Java versions, the master a local session "
        "would use and whether Spark Connect is configured. Exits 1 when Java is "
        "missing and no Connect server is configured.",
    )
    info.set_defaults(func=_info)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sparklift`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    from sparklift.session import ENV_LOG_LEVEL

    # A failed task is logged by Spark at ERROR with its JVM stack (200 lines);
    # the CLI reports it once, in one line, itself (with the worker's own
    # error, see _short_message). Only for this call: a notebook calling
    # main() keeps its later sessions' logs.
    # pyspark's own Python logger writes an analysis error's query context as
    # one long JSON line with the JVM stack; it is quietened the same way.
    # Made as pyspark makes it: a plain Logger under that name would later be
    # handed to pyspark, whose extra keywords it refuses ("Logger._log() got an
    # unexpected keyword argument 'file'"), hiding the error being logged.
    try:
        from pyspark.logger import PySparkLogger

        context_log = PySparkLogger.getLogger("DataFrameQueryContextLogger")
    except ImportError:  # pragma: no cover - pyspark < 4
        context_log = logging.getLogger("DataFrameQueryContextLogger")
    saved = os.environ.get(ENV_LOG_LEVEL)
    saved_level = context_log.level
    py4j_log = logging.getLogger("py4j")
    saved_py4j_level = py4j_log.level
    if saved is None:
        os.environ[ENV_LOG_LEVEL] = "ERROR" if os.environ.get("SPARKLIFT_TRACEBACK") else "FATAL"
    quiet = not os.environ.get("SPARKLIFT_TRACEBACK")
    if quiet:
        context_log.setLevel(logging.CRITICAL)
        # py4j logs the tracebacks of a broken call (a Ctrl-C, the JVM going
        # away), on its own loggers and on the root logger itself, 12-40
        # lines, before the command's own one line ("sparklift: interrupted",
        # or the error).
        py4j_log.setLevel(logging.CRITICAL)
        logging.getLogger().addFilter(_drop_py4j_root_records)
    try:
        return _run(args)
    finally:
        logging.getLogger().removeFilter(_drop_py4j_root_records)
        py4j_log.setLevel(saved_py4j_level)
        context_log.setLevel(saved_level)
        if saved is None:
            os.environ.pop(ENV_LOG_LEVEL, None)


def _drop_py4j_root_records(record: logging.LogRecord) -> bool:
    """A root-logger filter: False for what py4j's own code logs on the root logger."""
    return not (record.name == "root" and f"{os.sep}py4j{os.sep}" in record.pathname)


def _run(args: argparse.Namespace) -> int:
    from sparklift.errors import SparkliftError
    from sparklift.session import JavaNotFoundError

    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if os.environ.get("SPARKLIFT_TRACEBACK"):
            raise
        print("sparklift: interrupted", file=sys.stderr)
        return 130
    except (SparkliftError, JavaNotFoundError, FileNotFoundError) as exc:
        if os.environ.get("SPARKLIFT_TRACEBACK"):
            raise
        print(f"sparklift: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        # Spark or Arrow refusing the user's data (a file that is not Parquet, a
        # path Spark cannot read, a write conflict) is an input error, not a
        # crash: one line, exit status 1. SPARKLIFT_TRACEBACK=1 shows it all.
        if os.environ.get("SPARKLIFT_TRACEBACK") or not _is_data_error(exc):
            raise
        print(f"sparklift: error: {_short_message(exc)}", file=sys.stderr)
        print("(set SPARKLIFT_TRACEBACK=1 for the full traceback)", file=sys.stderr)
        return 1


def _is_data_error(exc: BaseException) -> bool:
    """Whether ``exc`` came from Spark, py4j or Arrow handling the data (not from a bug)."""
    kinds: list[type] = [OSError]
    for module, name in (
        ("pyspark.errors", "PySparkException"),
        ("py4j.protocol", "Py4JJavaError"),
        ("pyarrow", "ArrowException"),
    ):
        try:
            kinds.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):  # pragma: no cover - optional layers
            continue
    return isinstance(exc, tuple(kinds))


#: A traceback's closing line, such as ``ValueError: could not convert ...``.
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception)\b: ")


def _short_message(exc: BaseException, limit: int = 500) -> str:
    """The first meaningful line of an error, without the JVM's stack trace."""
    java = getattr(exc, "java_exception", None)
    text = str(java) if java is not None else str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # py4j's own first line ("An error occurred while calling o42.parquet.") says nothing.
    lines = [line for line in lines if not line.startswith("An error occurred while calling")]
    message = lines[0].lstrip(": ") if lines else type(exc).__name__
    # A Python worker's error: its first line only says that there was one;
    # the cause is the traceback's last exception line.
    raised = [line for line in lines if EXCEPTION_LINE.match(line)]
    if raised and "Traceback (most recent call last)" in text:
        message = f"{message.rstrip(': ')}: {raised[-1]}"
    if len(message) > limit:
        message = message[: limit - 3] + "..."
    return f"{type(exc).__name__}: {message}"


if __name__ == "__main__":
    raise SystemExit(main())
