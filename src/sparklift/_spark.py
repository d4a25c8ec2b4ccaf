"""The seam: every distributed computation in sparklift goes through here.

Two shapes of work cover the library:

* :func:`map_reduce` runs a function over every partition of a DataFrame, each
  call returning a small partial result (EM sufficient statistics, metrics,
  counts), and combines the partials on the driver;
* :func:`map_partitions` maps partitions to a new DataFrame with a declared
  schema (scoring, decoding);
* :func:`map_columns` adds one column computed batch by batch from a few
  input columns: only those columns travel to Python and only the result
  comes back (scoring a model over wide rows).

All use only the DataFrame API (``mapInArrow`` and scalar Arrow UDFs), so they behave the same on Spark
Classic, a cluster and Spark Connect; there is no RDD and no SparkContext
here. Partition functions receive an iterator of ``pyarrow.RecordBatch`` and
must be pure and deterministic: Spark retries failed tasks.

A :class:`sparklift.errors.SparkliftError` raised inside a task is carried to
the driver and raised there as the same class with the same message (see
:func:`translate_errors`), not as a page of JVM and worker traceback.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import operator
import pickle
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa

from sparklift.errors import (
    TRANSPORTABLE,
    InvalidInputError,
    PathExistsError,
    SparkliftError,
    WorkerError,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType

try:  # pyspark >= 4.1
    from pyspark.sql.pandas.functions import arrow_udf as _arrow_udf
except ImportError:  # pragma: no cover - pyspark 4.0 has no scalar Arrow UDFs
    _arrow_udf = None

#: Whether :func:`map_columns` is available (pyspark 4.1 and later).
HAS_MAP_COLUMNS = _arrow_udf is not None

T = TypeVar("T")

PartitionFn = Callable[[Iterator[pa.RecordBatch]], Any]
BatchesFn = Callable[[Iterator[pa.RecordBatch]], Iterable[pa.RecordBatch]]

_ERROR_OPEN = "[sparklift-error:"
_ERROR_RE = re.compile(r"\[sparklift-error:(\w+)\](.*?)\[/sparklift-error\]", re.S)
_PARTIAL_SCHEMA = "partial binary"


def _encode_error(exc: SparkliftError) -> RuntimeError:
    # The worker's exception text reaches the driver inside Spark's own error
    # message; markers let the driver find it and raise the original class.
    return RuntimeError(f"{_ERROR_OPEN}{type(exc).__name__}]{exc}[/sparklift-error]")


#: ``len(sys.modules)`` when this Python worker last froze its long-lived objects.
_frozen_at_modules = 0


def task_done() -> None:
    """Keep this Python worker's long-lived objects out of the cyclic GC's way.

    Called by every sparklift task function when its partition is done.
    pyspark's daemon runs a full ``gc.collect()`` after every task of a reused
    worker; with scikit-learn, pandas and pyarrow imported that walks about
    150,000 objects: ~70 ms per task on a 2-core machine, about as much as
    fitting 3 small forests. Once per worker (and again only when a task
    imported new modules), this collects and then ``gc.freeze()``-s the
    survivors: modules, classes, functions and cached models, which live as
    long as the worker. Later collections skip them and take well under a
    millisecond. Frozen objects are still freed by reference counting as
    usual; only a reference cycle among them that became garbage later would
    stay until the worker exits.
    """
    global _frozen_at_modules
    if len(sys.modules) != _frozen_at_modules:
        gc.collect()
        gc.freeze()
        _frozen_at_modules = len(sys.modules)


@contextlib.contextmanager
def encoded_errors() -> Iterator[None]:
    """In a task: re-raise a :class:`SparkliftError` in the form the driver decodes.

    For task functions Spark calls directly (``applyInArrow``); the ``map_*``
    helpers here already run their functions inside it.
    """
    try:
        yield
    except SparkliftError as exc:
        raise _encode_error(exc) from None


def guard_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` run inside :func:`encoded_errors`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        with encoded_errors():
            return fn(*args, **kwargs)

    return wrapper


def decode_error(message: str) -> SparkliftError | None:
    """The sparklift error carried in a Spark error message, if there is one."""
    match = _ERROR_RE.search(message)
    if match is None:
        return None
    cls = TRANSPORTABLE.get(match.group(1), SparkliftError)
    return cls(match.group(2))


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Raise a task's :class:`SparkliftError` on the driver as itself.

    sparklift's own actions run inside this. A DataFrame sparklift returns
    is lazy, so an error found in a task (a null feature, say) surfaces in
    *your* action, as Spark's exception whose message carries
    ``[sparklift-error:InvalidInputError] ...``; wrap the action to get the
    :class:`~sparklift.errors.InvalidInputError` itself::

        with sparklift.translate_errors():
            scored.write.parquet(path)
    """
    try:
        yield
    except SparkliftError:
        raise
    except Exception as exc:
        text = str(exc)
        carried = decode_error(text) or _worker_failure(text)
        if carried is None:
            raise
        raise carried from None


def _worker_failure(text: str) -> WorkerError | None:
    """One clear error for a Python worker that could not run a task at all, else None."""
    if re.search(r"No module named '?sparklift\b", text):
        return WorkerError(
            "Spark's Python workers cannot import sparklift: they run another Python than "
            f"this process ({sys.executable}). Sessions started by sparklift.get_spark() "
            "use this one; for a session of your own, set the environment variable "
            f"PYSPARK_PYTHON={sys.executable} before it starts (on a cluster, install "
            "sparklift where the executors run)"
        )
    found = re.search(r"Python worker exited unexpectedly \(crashed\)[:.]?(.*)", text, re.S)
    if found is None:
        return None
    # What Spark says after it (a faulthandler traceback of the crash, or
    # advice to turn one on), up to its own Java frames.
    said: list[str] = []
    for line in found.group(1).splitlines():
        if re.match(r"\s*(at [\w$.]+\(|Caused by:|Driver stacktrace:)", line):
            break
        if line.strip():
            said.append(line.rstrip())
    if said:
        said[0] = said[0].lstrip()
    detail = ("\n" + "\n".join(said[:20])) if said else ""
    return WorkerError(
        "a Spark Python worker died while running a sparklift task: a crash in native "
        "code, os._exit or sys.exit in the code it ran, or the operating system killing "
        "it for lack of memory (an out-of-memory kill shows in the kernel log, dmesg). "
        f"Spark's message: Python worker exited unexpectedly (crashed){detail}"
    )


@contextlib.contextmanager
def refusing_existing(path: str, how: str) -> Iterator[None]:
    """Turn Spark's PATH_ALREADY_EXISTS (which names an inner path and a write
    mode) into one error naming ``path`` and ``how`` to replace it."""
    try:
        yield
    except Exception as exc:
        text = str(exc)
        if "PATH_ALREADY_EXISTS" in text:
            raise PathExistsError(f"{path} already exists; {how} to replace it") from None
        # A file where a folder has to go: Hadoop's ParentNotDirectoryException.
        found = re.search(r"Parent path is not a directory: (\S+)", text)
        if found is None:
            raise
        raise PathExistsError(
            f"cannot write {path}: {found.group(1)} is a file, not a folder; choose another path"
        ) from None


def _named(batches: Iterator[pa.RecordBatch], names: list[str] | None) -> Iterator[pa.RecordBatch]:
    """The batches under their real names again (see :func:`positional_names`)."""
    if not names:
        return batches
    return (pa.RecordBatch.from_arrays(b.columns, names=names) for b in batches)


def _run_partition(fn: PartitionFn, names: list[str] | None = None) -> BatchesFn:
    guarded = guard_errors(fn)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        partial = guarded(_named(batches, names))
        task_done()
        if partial is None:
            return
        payload = pickle.dumps(partial, protocol=pickle.HIGHEST_PROTOCOL)
        yield pa.RecordBatch.from_arrays([pa.array([payload], type=pa.binary())], names=["partial"])

    return run


def map_reduce(
    df: DataFrame,
    partition_fn: PartitionFn,
    *,
    combine: Callable[[T, T], T] = operator.add,
    empty: T | None = None,
) -> T | None:
    """Run ``partition_fn`` on every partition and combine the partial results.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        The data; select only the columns the function needs first.
    partition_fn : callable
        ``partition_fn(batches)`` gets an iterator of ``pyarrow.RecordBatch``
        (possibly empty) and returns a small picklable partial result, or
        ``None`` for "nothing here". Build it from module-level functions and
        local values: it is pickled into the Spark plan.
    combine : callable, default ``operator.add``
        Associative combination of two partials, run on the driver.
    empty : object, optional
        Returned when every partition returned ``None``.

    Returns
    -------
    object
        The combined partial, or ``empty``.

    Notes
    -----
    One Spark job per call; only the partials travel to the driver.
    """
    df, names = positional_names(df)
    out = df.mapInArrow(_run_partition(partition_fn, names), _PARTIAL_SCHEMA)
    with translate_errors():
        rows = out.collect()
    partials = [pickle.loads(row[0]) for row in rows]
    if not partials:
        return empty
    return functools.reduce(combine, partials)


def positional_names(df: DataFrame) -> tuple[DataFrame, list[str] | None]:
    """``df`` with columns named by position if any name has a dot or a backtick.

    pyspark's ``mapInArrow`` and ``applyInArrow`` look their input columns up
    by unquoted name, which fails for a column named ``a.b``. Such inputs
    travel under positional names; the worker gives the Arrow data its own
    names back (the second value, None when nothing was renamed).
    """
    names = list(df.columns)
    if not any("." in name or "`" in name for name in names):
        return df, None
    return df.toDF(*(f"_sparklift_{i}" for i in range(len(names)))), names


def map_partitions(
    df: DataFrame,
    batches_fn: BatchesFn,
    schema: StructType | str,
) -> DataFrame:
    """Map every partition to new record batches with a declared schema.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        The input.
    batches_fn : callable
        ``batches_fn(batches)`` gets an iterator of ``pyarrow.RecordBatch`` and
        yields record batches matching ``schema``.
    schema : StructType or DDL string
        The output schema.

    Returns
    -------
    pyspark.sql.DataFrame
        Lazy: errors surface at the first action. Actions sparklift runs
        itself are wrapped in :func:`translate_errors`; a user's own action
        still shows the sparklift error's message in Spark's error text.
    """

    df, names = positional_names(df)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        # batches_fn is usually a generator: errors surface while iterating it.
        with encoded_errors():
            yield from batches_fn(_named(batches, names))
        task_done()

    return df.mapInArrow(run, schema)


def map_columns(
    df: DataFrame,
    output_col: str,
    arrays_fn: Callable[[Iterator[Any]], Iterable[pa.Array]],
    inputs: list[Column],
    return_type: DataType,
) -> DataFrame:
    """Add ``output_col``, computed batch by batch from a few input columns.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        The input; every column is kept.
    output_col : str
        The column to add (or replace).
    arrays_fn : callable
        ``arrays_fn(items)`` gets an iterator over batches, each a
        ``pyarrow.Array`` when there is one input or a tuple of them when
        there are several, and yields one ``pyarrow.Array`` of the same
        length per batch. Build it from module-level functions and locals.
    inputs : list of Column
        The input expressions, evaluated in the JVM.
    return_type : DataType
        Spark type of the output column.

    Returns
    -------
    pyspark.sql.DataFrame
        Lazy, as :func:`map_partitions`.

    Notes
    -----
    Unlike :func:`map_partitions`, which carries every column to Python and
    back, only ``inputs`` go to Python and only the output returns: on wide
    rows this is what keeps scoring level with a hand-written pandas UDF.
    Needs pyspark 4.1+ (:data:`HAS_MAP_COLUMNS`).
    """
    if _arrow_udf is None:  # pragma: no cover - pyspark 4.0
        raise RuntimeError("map_columns needs pyspark 4.1 or later (scalar Arrow UDFs)")
    from pyspark.sql.pandas.functions import ArrowUDFType

    def run(items: Iterator[Any]) -> Iterator[pa.Array]:
        with encoded_errors():
            yield from arrays_fn(items)
        task_done()

    with warnings.catch_warnings():
        # pyspark prefers type hints to the explicit UDF type; ours are
        # postponed annotations it cannot read.
        warnings.simplefilter("ignore", UserWarning)
        udf = _arrow_udf(run, return_type, ArrowUDFType.SCALAR_ITER)
    return df.withColumn(output_col, udf(*inputs))


def is_connect(spark_or_df: SparkSession | DataFrame) -> bool:
    """Whether a session or DataFrame belongs to Spark Connect."""
    return type(spark_or_df).__module__.startswith("pyspark.sql.connect")


def session_of(df: DataFrame) -> SparkSession:
    """The session a DataFrame belongs to (Classic or Connect)."""
    return df.sparkSession


def has_udt(data_type: DataType) -> bool:
    """Whether a Spark type is, or holds, a user-defined type (a pyspark.ml vector)."""
    return '"type":"udt"' in data_type.json()


def refuse_clashing_column(df: DataFrame, name: str) -> None:
    """Refuse a new output column ``name`` that an existing column of ``df`` would clash with.

    Spark resolves names without regard to case (``spark.sql.caseSensitive``
    is off by default): a new ``prediction`` next to a ``Prediction`` either
    replaces it or makes every later reference ambiguous.
    """
    existing = next((c for c in df.columns if c.lower() == name.lower()), None)
    if existing is not None:
        raise InvalidInputError(
            f"output_col {name!r} is already a column of the DataFrame ({existing!r}; Spark "
            "compares names without regard to case); choose another name"
        )


def col(name: str) -> Column:
    """The column named ``name`` exactly, even with dots, spaces or backticks in it.

    ``F.col("a.b")`` reads field ``b`` of a struct ``a``; a user's column may
    simply be called ``a.b``.
    """
    from pyspark.sql import functions as F

    return F.col(quoted_name(name))


def quoted_name(name: str) -> str:
    """``name`` in backticks, its own backticks doubled: Spark's literal spelling of it."""
    return "`" + name.replace("`", "``") + "`"


def null_or_nan(df: DataFrame, name: str) -> Column:
    """A condition true where column ``name`` is null, or NaN in a floating-point column."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, FloatType

    missing = col(name).isNull()
    if isinstance(df.schema[name].dataType, (DoubleType, FloatType)):
        missing = missing | F.isnan(col(name))
    return missing


def arrow_schema(df: DataFrame, schema: StructType) -> pa.Schema:
    """The Arrow form of a Spark schema, timestamps in ``df``'s session time zone."""
    from pyspark.sql.pandas.types import to_arrow_schema

    try:
        zone = df.sparkSession.conf.get("spark.sql.session.timeZone")
    except Exception:  # a conf the session does not expose
        zone = None
    return to_arrow_schema(schema, timezone=zone or "UTC")


def preview(value: Any, limit: int = 8) -> str:
    """A short repr for an error message: lists cut at ``limit`` items, text at 60 characters."""
    if isinstance(value, (list, tuple)):
        items = [preview(v, limit) for v in value[:limit]]
        more = f", ... ({len(value)} items)" if len(value) > limit else ""
        return "[" + ", ".join(items) + more + "]"
    if isinstance(value, float):
        return repr(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def example_row(df: DataFrame, condition: Column, detail: Column | None = None) -> str:
    """``example row: {a=1, b=None, ...}``: the first row meeting ``condition`` (first six columns).

    With ``detail``, the value of that expression on the row is shown after it
    (the offending value). "" when no row meets the condition.
    """
    columns = df.columns
    select = [col(c) for c in columns]
    if detail is not None:
        select.append(detail.alias("__sparklift_detail__"))
    rows = df.filter(condition).select(*select).limit(1).collect()
    if not rows:
        return ""
    row = rows[0]
    shown = ", ".join(f"{c}={preview(row[i])}" for i, c in enumerate(columns[:6]))
    if len(columns) > 6:
        shown += ", ..."
    text = f"example row: {{{shown}}}"
    if detail is not None and row[len(columns)] is not None:
        text += f" (offending value: {preview(row[len(columns)])})"
    return text
