"""One model per group: fit a clone of an estimator on every group, in parallel.

:func:`fit_per_group` shuffles the rows once so that each group lands in one
partition, sorted by key, and each Python worker streams through its
partition with ``mapInArrow``: a group's rows are gathered until the key
changes, a clone of the estimator is fitted on them, and they are released.
One worker holds one group at a time; a group bigger than a limit is counted
without being kept and reported. Groups spread over all executors' cores. A
group whose fit raises is recorded with its error message; the others are
unaffected. The result, a
:class:`GroupedModel`, holds a small ``models`` DataFrame (one row per group:
key, serialized model, row count, training score, fit seconds, error),
checkpointed so that later actions never refit.

:meth:`GroupedModel.predict` scores every row with its own group's model.
Small model tables (the usual case) are shipped once to each Python worker and
rows are scored where they are, batch by batch, without a shuffle; larger ones
are cogrouped with the data by key. Rows of groups without a model get null and
are counted before the job (:class:`UnknownGroupWarning`).

Models are stored with skops by default (safe to load; see
:mod:`sparklift._serialize`); ``serializer="pickle"`` is an explicit opt-in.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import itertools
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sparklift import _serialize
from sparklift._spark import (
    arrow_schema,
    col,
    encoded_errors,
    has_udt,
    map_partitions,
    positional_names,
    refuse_clashing_column,
    refusing_existing,
    task_done,
    translate_errors,
)
from sparklift.errors import (
    CountedWarning,
    FitFailedError,
    InvalidColumnTypeError,
    InvalidInputError,
    ModelFormatError,
    NotFittedError,
    ResourceLimitError,
    count_of,
    first_line,
)
from sparklift.inference import (
    _arrow_output,
    _cached_model,
    _call,
    _check_methods,
    _columns_matrix,
    _first_rows,
    _infer_kinds,
    _method_names,
    _non_finite_error,
    _numeric_check,
    _ScoreSpec,
    _spark_type,
    _to_float,
    _warn_null_rows,
    _zeros,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["GroupFitWarning", "GroupedModel", "UnknownGroupWarning", "fit_per_group"]

#: Default of ``max_rows_per_group``.
DEFAULT_MAX_ROWS_PER_GROUP = 1_000_000
#: Format version of :meth:`GroupedModel.save`.
FORMAT_VERSION = 1
#: Above this many bytes of models, ``predict(strategy="auto")`` cogroups instead of shipping.
BROADCAST_LIMIT_BYTES = 256 * 1024 * 1024

_MODEL_COLUMNS = ("model", "n_rows", "train_score", "fit_seconds", "error")


class GroupFitWarning(CountedWarning):
    """Some groups failed to fit; their error is in ``GroupedModel.models``.

    Attributes
    ----------
    count : int
        How many groups failed.
    """


class UnknownGroupWarning(CountedWarning):
    """Rows of groups without a fitted model were given a null prediction.

    Attributes
    ----------
    count : int
        How many rows.
    """


# --------------------------------------------------------------------------
# Fitting (runs in the Python workers, one call per group).
# --------------------------------------------------------------------------


def _fresh(estimator: Any) -> Any:
    try:
        from sklearn.base import clone

        return clone(estimator)
    except TypeError:  # not a scikit-learn estimator: an independent copy does
        return copy.deepcopy(estimator)


@dataclass(frozen=True)
class _FitSpec:
    payload: bytes
    digest: str
    group_col: str
    feature_cols: tuple[str, ...]
    label_col: str | None
    max_rows: int
    schema: pa.Schema
    as_frame: bool = True


def _fit_one(table: pa.Table, spec: _FitSpec) -> tuple[Any, ...]:
    """Fit a fresh clone on one group's rows: (model bytes, rows, score, seconds, error)."""
    n = table.num_rows
    data = None
    score = math.nan
    seconds = math.nan
    error = None
    try:
        # C order, as a user's own matrix usually is; BLAS rounds Fortran order differently.
        X = np.empty((n, len(spec.feature_cols)), dtype=np.float64)
        for j, name in enumerate(spec.feature_cols):
            column = table.column(name)
            if column.null_count:
                # A null is not a NaN: estimators that accept NaN would otherwise
                # learn from a value the data never held.
                raise InvalidInputError(
                    f"feature column '{name}' has {column.null_count} null values in this "
                    "group; drop or fill them first"
                )
            X[:, j] = _to_float(column)
        # Named columns, as a local fit on pdf[feature_cols] sees them: the models
        # get feature_names_in_, and estimators that select columns by name
        # (a ColumnTransformer) work. The values are the matrix's, not a copy.
        args: list[Any] = [
            pd.DataFrame(X, columns=list(spec.feature_cols), copy=False) if spec.as_frame else X
        ]
        if spec.label_col is not None:
            args.append(_label_values(table.column(spec.label_col), spec.label_col))
        model = _fresh(_cached_model(spec.digest, spec.payload))
        start = time.perf_counter()
        model.fit(*args)
        seconds = time.perf_counter() - start
        if callable(getattr(model, "score", None)):
            try:
                # An undefined score (R² of one row) is NaN in train_score; the
                # warning would only reach the executor's stderr.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    score = float(model.score(*args))
            except Exception:  # a score is a bonus; the model stands without it
                score = math.nan
        # Pickled while in memory (between our own processes, as Spark ships any
        # task result); save() writes the persistent, safe-to-load skops form:
        # skops costs several ms per forest, as much as fitting a small one.
        data = _serialize.dumps(model, "pickle")
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    return data, n, score, seconds, error


def _label_values(y: pa.ChunkedArray, name: str) -> np.ndarray:
    """A group's labels: a vector, or a 2-D array for an array column (one target per element)."""
    if y.null_count:
        raise InvalidInputError(
            f"label column '{name}' has {y.null_count} null values in this group"
        )
    if pa.types.is_list(y.type) or pa.types.is_large_list(y.type):
        lengths = pc.list_value_length(y).to_numpy(zero_copy_only=False)
        if len(lengths) and (lengths.min() != lengths.max() or lengths.min() == 0):
            raise InvalidInputError(
                f"label column '{name}' holds arrays of lengths {lengths.min()} to "
                f"{lengths.max()} in this group; a multi-output target needs one length"
            )
        values = pc.list_flatten(y)
        if values.null_count:
            raise InvalidInputError(
                f"label column '{name}' has {values.null_count} null elements in this group"
            )
        if pa.types.is_decimal(values.type):
            return _to_float(values).reshape(len(y), -1)
        # int labels stay int (a multi-output classifier's classes_), as a 1-D label does
        return values.to_numpy(zero_copy_only=False).reshape(len(y), -1)
    if pa.types.is_decimal(y.type):
        return _to_float(y)
    return y.to_numpy()


def _fit_sorted_groups(
    batches: Iterator[pa.RecordBatch], spec: _FitSpec
) -> Iterator[pa.RecordBatch]:
    """Fit every group of one partition whose rows arrive sorted by the group key.

    The partition streams through: a group's rows are gathered (across batch
    boundaries) until its key changes, fitted, and released, so a worker holds
    one group and one batch at a time. The models of the groups a batch
    completes go out as one record batch. Null keys sort first and are
    counted; a group growing past ``max_rows`` is counted to its end without
    keeping its rows, then reported.
    """
    empty = object()
    key: Any = empty
    pieces: list[pa.RecordBatch] = []
    size = 0
    null_rows = 0

    def check_nulls() -> None:
        if null_rows:
            raise InvalidInputError(
                f"group column '{spec.group_col}' is null in {count_of(null_rows, 'row')}; drop them or "
                "give them a key first"
            )

    def finish() -> tuple[Any, ...]:
        if size > spec.max_rows:
            raise ResourceLimitError(
                f"group {key!r} of '{spec.group_col}' has {size} rows, more than "
                f"max_rows_per_group={spec.max_rows}. Each group is fitted in one Python "
                "worker's memory: raise max_rows_per_group if the executors have room for it, "
                "or split or sample that group."
            )
        return (key, *_fit_one(pa.Table.from_batches(pieces), spec))

    for batch in batches:
        keys = batch.column(0)
        start = 0
        if keys.null_count:  # nulls sort first: they open the partition
            null_rows += keys.null_count
            start = keys.null_count
            if start == batch.num_rows:
                continue
        check_nulls()
        keys = keys.slice(start)
        n = len(keys)
        changes = _key_changes(keys)
        bounds = [0, *(np.flatnonzero(changes) + 1).tolist(), n]
        done = []
        for lo, hi in itertools.pairwise(bounds):
            value = keys[lo].as_py()
            if key is not empty and not _same_key(value, key):
                done.append(finish())
                pieces, size = [], 0
            key = value
            size += hi - lo
            if size <= spec.max_rows:
                pieces.append(batch.slice(start + lo, hi - lo))
            else:
                pieces = []  # counted to the end, not kept
        if done:
            yield _rows_batch(done, spec.schema)
    check_nulls()
    if key is not empty:
        yield _rows_batch([finish()], spec.schema)


def _rows_batch(rows: list[tuple[Any, ...]], schema: pa.Schema) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True))
    return pa.RecordBatch.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
    )


def _key_changes(keys: pa.Array) -> np.ndarray:
    """``changes[i]``: row ``i + 1`` starts a new key (NaN keys form one group, as in Spark)."""
    after, before = keys.slice(1), keys.slice(0, len(keys) - 1)
    changes = pc.not_equal(after, before)
    if pa.types.is_floating(keys.type):
        changes = pc.and_(changes, pc.invert(pc.and_(pc.is_nan(after), pc.is_nan(before))))
    return changes.to_numpy(zero_copy_only=False)


def _same_key(a: Any, b: Any) -> bool:
    return bool(a == b or (a != a and b != b))


#: The dict key of a NaN group key: Spark groups every NaN together, but a
#: NaN is not equal to itself, so it cannot find itself in a dict.
_NAN_KEY = ("NaN",)


def _key_list(keys: pa.Array) -> list[Any]:
    """Group keys as dict keys that match however the key was read.

    Dates and timestamps become Arrow's integers (days, or units since the
    epoch), so the time zone a Python process would render them in plays no
    part, and NaN becomes :data:`_NAN_KEY`. The models' keys and the scored
    rows' keys both go through here.
    """
    kind = keys.type
    if pa.types.is_date32(kind):
        keys = keys.cast(pa.int32())
    elif pa.types.is_temporal(kind):
        keys = keys.cast(pa.int64())
    values = keys.to_pylist()
    if pa.types.is_floating(kind):
        values = [_NAN_KEY if v is not None and v != v else v for v in values]
    return values


#: The columns of ``GroupedModel.models`` besides the group key.
MODEL_COLUMNS = ("model", "n_rows", "train_score", "fit_seconds", "error")


def _models_schema(df: DataFrame, group_col: str) -> Any:
    from pyspark.sql.types import (
        BinaryType,
        DoubleType,
        LongType,
        StringType,
        StructField,
        StructType,
    )

    return StructType(
        [
            StructField(group_col, df.schema[group_col].dataType, True),
            StructField("model", BinaryType(), True),
            StructField("n_rows", LongType(), False),
            StructField("train_score", DoubleType(), True),
            StructField("fit_seconds", DoubleType(), True),
            StructField("error", StringType(), True),
        ]
    )


def fit_per_group(
    df: DataFrame,
    group_col: str,
    estimator: Any,
    feature_cols: Sequence[str],
    label_col: str | None = None,
    *,
    max_rows_per_group: int = DEFAULT_MAX_ROWS_PER_GROUP,
    order_by: str | Sequence[str] | None = None,
    serializer: str = "skops",
    partitions: int | None = None,
    as_frame: bool | None = None,
) -> GroupedModel:
    """Fit a clone of ``estimator`` on each group's rows, in parallel.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        Training rows (Classic or Connect).
    group_col : str
        The column whose values define the groups (no nulls).
    estimator : object
        An unfitted estimator with ``fit``; cloned (``sklearn.base.clone``, or
        a deep copy for other objects) for every group.
    feature_cols : list of str
        Numeric feature columns, in order.
    label_col : str, optional
        The target column for supervised estimators (no nulls).
    max_rows_per_group : int, default 1,000,000
        A group's rows are counted as they stream into its worker, which
        holds one group at a time; a bigger group is counted to its end
        without keeping its rows, then raises :class:`ResourceLimitError`
        naming it and its size. It is never fitted.
    order_by : str or list of str, optional
        Sort each group's rows by these columns before fitting. Spark gives a
        group's rows in no fixed order; estimators sensitive to row order
        (bootstrap samples, SGD) need this to be reproducible.
    serializer : {"skops", "pickle"}, default "skops"
        How :meth:`GroupedModel.save` stores the models: skops (safe to load)
        or, as an explicit opt-in, pickle. In memory, between this session's
        own processes, ``models`` holds them pickled, as Spark ships any task
        result: serialising a forest with skops costs about as much as
        fitting a small one, so it is paid once, at ``save``.
    partitions : int, optional
        Number of fitting tasks (each fits a share of the groups). Defaults to
        ``spark.sql.shuffle.partitions`` but at least 16.
    as_frame : bool, optional
        Give the estimator (and the models, at predict) a pandas DataFrame of
        the ``feature_cols``, as a local fit on ``pdf[feature_cols]`` would, or
        a NumPy matrix. Default: a DataFrame for scikit-learn estimators (the
        models get ``feature_names_in_``; a ``ColumnTransformer`` picks its
        columns by name), a matrix for other objects. A matrix is cheaper for
        tiny groups: scikit-learn checks a DataFrame's names in every call.

    Returns
    -------
    GroupedModel
        Its ``models`` DataFrame has one row per group. Groups whose fit failed
        have a null ``model`` and their error message in ``error``; a
        :class:`GroupFitWarning` says how many.

    Raises
    ------
    InvalidInputError
        Missing columns, null group keys, an estimator without ``fit``, an
        empty DataFrame.
    ResourceLimitError
        The biggest group exceeds ``max_rows_per_group``.
    FitFailedError
        Every group's fit failed (its ``grouped_model`` holds their errors).
    """
    feature_cols = _check_columns(df, group_col, feature_cols, label_col, "fit_per_group")
    if group_col.lower() in MODEL_COLUMNS:  # Spark resolves names case-insensitively
        raise InvalidInputError(
            f"group column '{group_col}' has the name of a column of GroupedModel.models "
            f"({', '.join(MODEL_COLUMNS)}); rename it first, e.g. "
            f"df.withColumnRenamed('{group_col}', '{group_col}_key')"
        )
    if not callable(getattr(estimator, "fit", None)):
        raise InvalidInputError(f"estimator {type(estimator).__name__} has no fit method")
    if label_col is None and _is_supervised(estimator):
        raise InvalidInputError(
            f"{type(estimator).__name__} is a supervised estimator: pass label_col, the "
            "column it learns to predict"
        )
    _serialize._check_serializer(serializer)
    order = (order_by,) if isinstance(order_by, str) else tuple(order_by or ())
    missing = [c for c in order if c not in df.columns]
    if missing:
        raise InvalidInputError(f"order_by column(s) {missing} not in the DataFrame")
    if int(max_rows_per_group) < 1:
        raise InvalidInputError(f"max_rows_per_group must be positive; got {max_rows_per_group}")

    models_schema = _models_schema(df, group_col)
    if as_frame is None:
        as_frame = _is_sklearn_estimator(estimator)
    payload, digest = _serialize.transport_dumps(estimator)
    spec = _FitSpec(
        payload=payload,
        digest=digest,
        group_col=group_col,
        feature_cols=tuple(feature_cols),
        label_col=label_col,
        max_rows=int(max_rows_per_group),
        schema=arrow_schema(df, models_schema),
        as_frame=bool(as_frame),
    )
    needed = list(
        dict.fromkeys([group_col, *feature_cols, *([label_col] if label_col else []), *order])
    )
    # One shuffle puts each group in one partition, sorted by key (then by
    # order_by), so a worker streams through its groups one at a time. An
    # explicit number of partitions: adaptive execution would otherwise merge
    # the (small) shuffle into one or two tasks and fit the groups one by one.
    n_parts = partitions or max(_shuffle_partitions(df), 16)
    fitted = map_partitions(
        df.select(*map(col, needed))
        .repartition(n_parts, col(group_col))
        .sortWithinPartitions(col(group_col), *map(col, order)),
        functools.partial(_fit_sorted_groups, spec=spec),
        models_schema,
    )
    try:
        with translate_errors():
            # Materialise once: every later action reads the fitted models, never refits.
            models = fitted.localCheckpoint(eager=True)
    except ResourceLimitError:
        # The task that failed first named its group; say which groups are over.
        _refuse_big_groups(df, group_col, int(max_rows_per_group))
        raise
    result = GroupedModel(
        models,
        group_col,
        list(feature_cols),
        label_col=label_col,
        serializer=serializer,
        as_frame=bool(as_frame),
    )
    result._own_models = True
    from pyspark.sql import functions as F

    with translate_errors():
        counts = models.agg(F.count(F.lit(1)).alias("groups"), F.count("error").alias("failed"))
        n_groups, n_failed = counts.first()
    if not n_groups:
        raise InvalidInputError("the DataFrame is empty: there is no group to fit")
    result._n_groups = int(n_groups)
    if n_failed:
        failed = result.failed_groups()
        # First lines only: scikit-learn's messages run to paragraphs; the
        # whole of each is in failed_groups().
        examples = "; ".join(
            f"{k!r}: {first_line(e)}" for k, e in failed.head(3).itertuples(index=False)
        )
        if n_failed == n_groups:
            error = FitFailedError(
                f"all {result.n_groups} groups failed to fit, so there is no model to use "
                f"(e.g. {examples}); every group's error is in the exception's "
                "grouped_model.failed_groups()"
            )
            error.grouped_model = result
            raise error
        warnings.warn(
            GroupFitWarning(
                f"{len(failed)} of {result.n_groups} groups failed to fit (e.g. {examples}); "
                "see GroupedModel.failed_groups()",
                len(failed),
            ),
            stacklevel=2,
        )
    return result


def _refuse_big_groups(df: DataFrame, group_col: str, max_rows: int) -> None:
    """Raise :class:`ResourceLimitError` naming every group over ``max_rows``, biggest first."""
    from pyspark.sql import functions as F

    with translate_errors():
        keyed = df.where(col(group_col).isNotNull())  # null keys are refused on their own
        sizes = keyed.groupBy(col(group_col)).agg(F.count(F.lit(1)).alias("n"))
        over = sizes.where(F.col("n") > max_rows)
        n_over = over.count()
        biggest = over.orderBy(F.col("n").desc()).limit(3).collect()
    if not n_over:
        return  # not a group's size after all: the task's own error stands
    shown = ", ".join(f"{row[0]!r} ({row[1]:,} rows)" for row in biggest)
    raise ResourceLimitError(
        f"{n_over} group(s) of '{group_col}' have more than max_rows_per_group={max_rows:,} "
        f"rows; the biggest: {shown}. Each group is fitted in one Python worker's memory: "
        "raise max_rows_per_group if the executors have room for it, or split or sample "
        "those groups."
    ) from None


def _is_sklearn_estimator(estimator: Any) -> bool:
    try:
        from sklearn.base import BaseEstimator

        return isinstance(estimator, BaseEstimator)
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        return False


def _is_supervised(estimator: Any) -> bool:
    """Whether scikit-learn knows ``estimator`` as a classifier or regressor."""
    try:
        from sklearn.base import is_classifier, is_regressor

        return bool(is_classifier(estimator) or is_regressor(estimator))
    except Exception:  # not a scikit-learn estimator: its fit decides
        return False


def _shuffle_partitions(df: DataFrame) -> int:
    try:
        return int(df.sparkSession.conf.get("spark.sql.shuffle.partitions") or 0)
    except Exception:  # a conf the session does not expose: fall back to the floor
        return 0


def _check_columns(
    df: DataFrame,
    group_col: str,
    feature_cols: Sequence[str],
    label_col: str | None,
    caller: str,
) -> list[str]:
    if not isinstance(group_col, str):
        raise InvalidInputError(
            f"group_col must be one column name; got {group_col!r}. Combine several key "
            "columns into one first, e.g. df.withColumn('group', F.concat_ws('|', *cols))"
        )
    if isinstance(feature_cols, str):
        raise InvalidInputError(
            f"feature_cols must be a list of column names; got {feature_cols!r}"
        )
    feature_cols = list(feature_cols)
    if not feature_cols:
        raise InvalidInputError("feature_cols is empty")
    wanted = [group_col, *feature_cols, *([label_col] if label_col else [])]
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise InvalidInputError(
            f"column(s) {missing} not in the DataFrame; its columns are {df.columns}"
        )
    key_type = df.schema[group_col].dataType
    if key_type.typeName() in ("struct", "array", "map") or has_udt(key_type):
        raise InvalidColumnTypeError(
            f"group column '{group_col}' has type {key_type.simpleString()}; group keys must "
            "be single values (strings, numbers, booleans, binary, dates, timestamps). "
            "Combine several key columns into one with F.concat_ws or a hash."
        )
    for name in feature_cols:
        _numeric_check(df, name, caller)
    if label_col is not None:
        _label_check(df, label_col)
    return feature_cols


def _label_check(df: DataFrame, name: str) -> None:
    """A label is a number, a string or a boolean; or an array of numbers (multi-output)."""
    from pyspark.sql.types import ArrayType, BooleanType, NumericType, StringType

    dtype = df.schema[name].dataType
    single = (NumericType, BooleanType, StringType)
    if isinstance(dtype, single) or (
        isinstance(dtype, ArrayType) and isinstance(dtype.elementType, NumericType)
    ):
        return
    raise InvalidColumnTypeError(
        f"label column '{name}' has type {dtype.simpleString()}; labels must be numbers, "
        "strings or booleans, or an array of numbers for a multi-output target"
    )


# --------------------------------------------------------------------------
# Scoring (runs in the Python workers).
# --------------------------------------------------------------------------


#: Methods whose output columns stand for the model's classes, in ``classes_`` order.
PER_CLASS_METHODS = ("predict_proba", "predict_log_proba", "decision_function")


def _classes(model: Any) -> tuple[Any, ...] | None:
    """A classifier's ``classes_`` as a comparable tuple (one per output), else None."""
    classes = getattr(model, "classes_", None)
    if classes is None:
        return None
    if isinstance(classes, list):  # one array per output (multi-output)
        return tuple(tuple(np.asarray(c).tolist()) for c in classes)
    return tuple(np.asarray(classes).tolist())


@dataclass(frozen=True)
class _GroupSpec:
    group_col: str
    score: _ScoreSpec
    #: The classes every group's model must have, when a method's output is per class.
    classes: tuple[Any, ...] | None = None
    classes_of: Any = None  # the group the classes were read from


def _score_grouped_batches(
    batches: Iterator[pa.RecordBatch], *, payload: bytes, digest: str, spec: _GroupSpec
) -> Iterator[pa.RecordBatch]:
    yield from _score_groups(batches, _cached_model(digest, payload), spec)


def _with_model(batch: pa.RecordBatch, models: dict[Any, Any], group_col: str) -> np.ndarray:
    """Which rows of ``batch`` belong to a group with a model (null keys: none)."""
    encoded = batch.column(group_col).dictionary_encode()
    has = [models.get(key) is not None for key in _key_list(encoded.dictionary)]
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    return np.array([*has, False])[codes]  # code -1 (a null key) picks the appended False


def _scored(
    model: Any, method: str, rows: Any, score: Any, explain: Callable[..., Any]
) -> np.ndarray | None:
    """One group's ``method`` output for its ``rows``; ``explain`` words a NaN refusal."""
    if not len(rows):
        return None
    try:
        return _call(model, method, rows, score)
    except InvalidInputError as exc:
        better = explain(exc, method)
        if better is None:
            raise
        raise better from None


def _refused_non_finite(
    exc: InvalidInputError,
    method: str,
    *,
    X: np.ndarray,
    order: np.ndarray,
    original: pa.RecordBatch,
    models: dict[Any, Any],
    spec: _GroupSpec,
    null_mask: np.ndarray | None,
) -> InvalidInputError | None:
    """The NaN error over the batch's rows that have a model, in the input's row order."""
    scored = _with_model(original, models, spec.group_col)
    X_in = np.empty_like(X)
    X_in[order] = X  # the rows were sorted by group
    if null_mask is not None:
        scored[order[null_mask]] = False
    return _non_finite_error(X_in, scored, original, spec.score, method, exc)


def _score_groups(
    batches: Iterator[pa.RecordBatch], models: dict[Any, Any], spec: _GroupSpec
) -> Iterator[pa.RecordBatch]:
    score = spec.score
    for batch in batches:
        if batch.num_rows == 0:
            continue
        encoded = batch.column(spec.group_col).dictionary_encode()  # NaNs as one key
        codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        uniques = _key_list(encoded.dictionary)
        # Rows of one group made contiguous: one model call per group and batch.
        order = np.argsort(codes, kind="stable")
        original, batch = batch, batch.take(pa.array(order))
        codes = codes[order]
        # Rows of unknown or failed groups get a null prediction whatever their
        # features hold: a null feature is an error only in rows that have a model.
        X, null_mask = _columns_matrix(batch, replace(score, on_null="null"), batches)
        if score.on_null == "error" and null_mask is not None:
            known = _with_model(batch, models, spec.group_col)
            if (null_mask & known).any():  # raises, naming the column, counting such rows
                rest = (b.filter(pa.array(_with_model(b, models, spec.group_col))) for b in batches)
                _columns_matrix(batch.filter(pa.array(known)), score, rest)
        explain = functools.partial(
            _refused_non_finite,
            X=X,
            order=order,
            original=original,
            models=models,
            spec=spec,
            null_mask=null_mask,
        )
        bounds = np.flatnonzero(np.diff(codes)) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [len(codes)]])
        pieces: list[list[pa.Array]] = [[] for _ in score.methods]
        masks: list[np.ndarray] = []
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            code = codes[start]
            model = models.get(uniques[code]) if code >= 0 else None
            if model is not None and spec.classes is not None:
                _check_classes(model, uniques[code], spec)
            n = end - start
            mask = np.ones(n, dtype=bool) if model is None else np.zeros(n, dtype=bool)
            if null_mask is not None:
                mask |= null_mask[start:end]
            masks.append(mask)
            rows = X[start:end][~mask]
            if score.feature_names is not None:
                rows = pd.DataFrame(rows, columns=list(score.feature_names), copy=False)
            for i, (method, kind) in enumerate(zip(score.methods, score.kinds, strict=True)):
                out = _scored(model, method, rows, score, explain)
                _check_shape(out, kind, method, uniques[code], spec.group_col)
                pieces[i].append(_arrow_output(out, kind, n, mask if mask.any() else None))
        columns = [pa.concat_arrays(p) for p in pieces]
        if score.as_struct:
            row_mask = np.concatenate(masks)
            output = pa.StructArray.from_arrays(
                columns,
                names=list(score.methods),
                mask=pa.array(row_mask) if row_mask.any() else None,
            )
        else:
            output = columns[0]
        yield pa.RecordBatch.from_arrays(
            [*batch.columns, output], names=[*batch.schema.names, score.output_col]
        )


def _to_skops_batches(
    batches: Iterator[pa.RecordBatch],
    *,
    group_col: str,
    trusted: tuple[str, ...],
    allow_pickle: bool,
    paths: tuple[str, ...] = (),
) -> Iterator[pa.RecordBatch]:
    load = functools.partial(_serialize.loads, trusted=trusted, allow_pickle=allow_pickle)
    for batch in batches:
        blobs = batch.column("model").to_pylist()
        keys = batch.column(group_col).to_pylist()
        converted = []
        for key, blob in zip(keys, blobs, strict=True):
            if blob is None or _serialize.read_header(blob)[0]["serializer"] == "skops":
                converted.append(blob)
                continue
            model = _serialize.using_driver_paths(paths, functools.partial(load, blob))
            try:
                converted.append(_serialize.dumps(model, "skops"))
            except InvalidInputError as exc:
                advice = str(exc).replace(
                    "pass serializer='pickle'", "fit with fit_per_group(..., serializer='pickle')"
                )
                raise InvalidInputError(
                    f"cannot save the model of group {key!r}: {advice}"
                ) from None
        index = batch.schema.get_field_index("model")
        yield batch.set_column(index, "model", pa.array(converted, type=pa.binary()))


def _cogroup_arrow(
    data: pa.Table,
    models: pa.Table,
    *,
    spec: _GroupSpec,
    schema: pa.Schema,
    trusted: tuple[str, ...],
    allow_pickle: bool,
    paths: tuple[str, ...] = (),
) -> pa.Table:
    if data.num_rows == 0:
        return schema.empty_table()
    found: dict[Any, Any] = {}
    if models.num_rows and models.column("model")[0].is_valid:
        blob = models.column("model")[0].as_py()
        load = functools.partial(_serialize.loads, trusted=trusted, allow_pickle=allow_pickle)
        model = _cached_model(
            hashlib.sha256(blob).hexdigest(),
            blob,
            loader=lambda data: _serialize.using_driver_paths(paths, lambda: load(data)),
        )
        found[_key_list(models.column(spec.group_col).slice(0, 1).combine_chunks())[0]] = model
    batches = list(_score_groups(iter(data.to_batches()), found, spec))
    if not batches:
        return schema.empty_table()
    # applyInArrow wants Spark's spelling of list types (element names, nullability).
    return pa.Table.from_batches(batches).cast(schema)


# --------------------------------------------------------------------------
# The model.
# --------------------------------------------------------------------------


def _check_classes(model: Any, key: Any, spec: _GroupSpec) -> None:
    """Refuse a group whose classifier knows other classes than the one the output was typed from.

    Its probabilities (or decision values) would sit at positions that mean
    other classes in other rows, or make arrays of another length.
    """
    theirs = _classes(model)
    if theirs == spec.classes:
        return
    methods = ", ".join(m for m in spec.score.methods if m in PER_CLASS_METHODS)
    raise InvalidInputError(
        f"group {key!r} of '{spec.group_col}' has a model with classes {list(theirs or ())}, "
        f"group {spec.classes_of!r} one with classes {list(spec.classes)}: {methods} would "
        "put different classes at the same array positions in different rows. Fit every "
        "group on the same set of labels, score such groups separately (filter on "
        f"'{spec.group_col}'), or use method='predict'."
    )


def _check_shape(out: np.ndarray | None, kind: str, method: str, key: Any, group_col: str) -> None:
    """Refuse a group whose model's output has another shape than the column's type.

    The type is inferred from one group's model; another group's may differ
    (a model of the user's whose output is one value a row for some groups
    and several for others). Classifiers with other classes are refused
    before this, by :func:`_check_classes`.
    """
    if out is None or (kind == "array") == (np.ndim(out) == 2):
        return
    shape = "one value a row" if np.ndim(out) == 1 else f"{np.shape(out)[1]} values a row"
    expected = "an array a row" if kind == "array" else "one value a row"
    raise InvalidInputError(
        f"group {key!r}: its model's {method} gives {shape}, but the output column was "
        f"typed from another group's model ({expected}); groups' models differ. Score "
        f"such groups separately (filter on '{group_col}')."
    )


def _places(files: Sequence[str]) -> set[str]:
    """The folders holding ``files`` (Spark's qualified paths), local ones with links resolved."""
    places = set()
    for name in files:
        folder = name.rsplit("/", 1)[0]
        if folder.startswith("file:"):
            folder = os.path.realpath("/" + folder[len("file:") :].lstrip("/"))
        places.add(folder)
    return places


class GroupedModel:
    """One fitted model per group, as returned by :func:`fit_per_group`.

    Parameters
    ----------
    models : pyspark.sql.DataFrame
        One row per group: the group key (named ``group_col``), ``model``
        (bytes in sparklift's envelope, see :mod:`sparklift._serialize`),
        ``n_rows``, ``train_score`` (the estimator's own ``score`` on its
        training rows, NaN when it has none), ``fit_seconds`` and ``error``
        (null unless the group's fit failed).
    group_col : str
    feature_cols : list of str
    label_col : str, optional
    serializer : str, default "skops"
    trusted : list of str, optional
        Extra types skops may load (see :func:`sparklift._serialize.loads`).
    allow_pickle : bool, default False
        Allow loading models stored with pickle. A table made from
        :func:`fit_per_group`'s own ``models`` in this session (filtered, say)
        needs it: those models travel as pickles until :meth:`save`.
    as_frame : bool, default False
        Whether the models were fitted on a pandas DataFrame of the feature
        columns (see :func:`fit_per_group`); they are scored the same way.

    Attributes
    ----------
    unknown_rows_ : int or None
        After :meth:`predict`: how many rows had a group without a model.
    """

    def __init__(
        self,
        models: DataFrame,
        group_col: str,
        feature_cols: Sequence[str],
        label_col: str | None = None,
        *,
        serializer: str = "skops",
        trusted: Sequence[str] = (),
        allow_pickle: bool = False,
        as_frame: bool = False,
    ) -> None:
        missing = [c for c in (group_col, *_MODEL_COLUMNS) if c not in models.columns]
        if missing:
            raise ModelFormatError(f"models DataFrame lacks column(s) {missing}")
        self.models = models
        self.group_col = group_col
        self.feature_cols = list(feature_cols)
        self.label_col = label_col
        self.serializer = serializer
        self.trusted = tuple(trusted)
        self.allow_pickle = allow_pickle
        self.as_frame = as_frame
        self.unknown_rows_: int | None = None
        self._loaded: dict[Any, Any] | None = None
        # True when fit_per_group made the models in this session: their
        # in-memory pickles are our own, never read from storage.
        self._own_models = False
        self._stored = False  # set by load: the models came from a save
        self._n_groups: int | None = None

    def __repr__(self) -> str:
        return (
            f"GroupedModel(group_col={self.group_col!r}, feature_cols={self.feature_cols!r}, "
            f"label_col={self.label_col!r})"
        )

    @property
    def n_groups(self) -> int:
        """Number of groups (fitted or failed)."""
        if self._n_groups is None:
            self._n_groups = int(self.models.count())
        return self._n_groups

    def summary(self) -> pd.DataFrame:
        """Everything but the model bytes, as pandas (one row per group, by key)."""
        with translate_errors():
            return self.models.drop("model").orderBy(col(self.group_col)).toPandas()

    def failed_groups(self) -> pd.DataFrame:
        """Key and error message of the groups whose fit failed (pandas, by key)."""
        from pyspark.sql import functions as F

        rows = (
            self.models.where(F.col("error").isNotNull())
            .select(col(self.group_col), "error")
            .orderBy(col(self.group_col))
        )
        with translate_errors():
            return rows.toPandas()

    @property
    def _pickle_ok(self) -> bool:
        return self.allow_pickle or self._own_models

    def _load(self, blob: bytes | bytearray) -> Any:
        try:
            return _serialize.loads(bytes(blob), trusted=self.trusted, allow_pickle=self._pickle_ok)
        except ModelFormatError as exc:
            if self._pickle_ok or self._stored or "stored with pickle" not in str(exc):
                raise
            raise ModelFormatError(
                f"{exc}. A table taken from fit_per_group's own models in this session "
                "holds its pickles until save(): GroupedModel(..., allow_pickle=True) is "
                "safe for those"
            ) from None

    def get_model(self, key: Any) -> Any:
        """The fitted model of one group.

        Raises
        ------
        InvalidInputError
            No such group, or its fit failed (the message carries its error).
        """
        from pyspark.sql import functions as F
        from pyspark.sql.types import BooleanType, StringType

        key_type = self.models.schema[self.group_col].dataType
        text_keys = isinstance(key_type, StringType)
        row = None
        if isinstance(key, str) and not text_keys:
            # Text for another type: '7' finds 7, 'b' nothing (no ANSI cast error).
            wanted = F.lit(key).try_cast(key_type)
        elif text_keys != isinstance(key, str) or (
            isinstance(key, bool) != isinstance(key_type, BooleanType)
        ):
            wanted = None  # 1 is no string key, True no number
        else:
            wanted = F.lit(key)  # numbers compare by value, as Spark widens them
        if wanted is not None:
            with translate_errors():
                row = self.models.where(col(self.group_col).eqNullSafe(wanted)).first()
        if row is None:
            raise InvalidInputError(
                f"no group {key!r} in '{self.group_col}' ({key_type.simpleString()} keys)"
            )
        if row["model"] is None:
            raise InvalidInputError(f"group {key!r} has no model: its fit failed ({row['error']})")
        return self._load(row["model"])

    def _all_models(self) -> dict[Any, Any]:
        if self._loaded is None:
            with translate_errors():
                # As Arrow, the form the scoring tasks read the keys in.
                table = self._fitted().select(col(self.group_col), "model").toArrow()
            keys = _key_list(table.column(0).combine_chunks())
            blobs = table.column(1).to_pylist()
            self._loaded = {key: self._load(blob) for key, blob in zip(keys, blobs, strict=True)}
        if not self._loaded:
            raise NotFittedError("no group has a fitted model (every fit failed)")
        return self._loaded

    def _fitted(self) -> DataFrame:
        """The rows of ``models`` with a model (groups whose fit did not fail)."""
        from pyspark.sql import functions as F

        return self.models.where(F.col("model").isNotNull())

    def _models_in(self, df: DataFrame, models: DataFrame) -> DataFrame:
        """The rows of ``models`` whose group ``df`` holds (numbers match by value, as in a join)."""
        return models.join(df.select(col(self.group_col)).distinct(), self.group_col, "left_semi")

    def _keys_in(self, df: DataFrame) -> list[Any]:
        """The fitted groups ``df`` holds, as :func:`_key_list` keys (a job over ``df``)."""

        with translate_errors():
            table = self._models_in(df, self._fitted()).select(col(self.group_col)).toArrow()
        return _key_list(table.column(0).combine_chunks())

    def _model_bytes(self) -> int:
        from pyspark.sql import functions as F

        with translate_errors():
            total = self.models.select(F.sum(F.length("model"))).first()[0]
        return int(total or 0)

    def _check_key_type(self, df: DataFrame) -> None:
        """Refuse group keys of another kind than the models' (a string '1' is not 1).

        Numbers of different types match by value (an int key finds a long
        one), as they do in Spark's join; anything else must be the same type.
        """
        from pyspark.sql.types import NumericType

        ours = self.models.schema[self.group_col].dataType
        theirs = df.schema[self.group_col].dataType
        if ours == theirs or (isinstance(ours, NumericType) and isinstance(theirs, NumericType)):
            return
        raise InvalidColumnTypeError(
            f"group column '{self.group_col}' is {theirs.simpleString()} here but "
            f"{ours.simpleString()} in the models: no row would find its model. Cast it "
            f"first, e.g. df.withColumn('{self.group_col}', "
            f"F.col('{self.group_col}').cast('{ours.simpleString()}'))"
        )

    def _count_unknown(self, df: DataFrame, on_unknown: str, output_col: str) -> None:
        from pyspark.sql import functions as F

        known = self._fitted().select(col(self.group_col))
        unknown = df.join(F.broadcast(known), on=self.group_col, how="left_anti")
        with translate_errors():
            count = int(unknown.count())
            examples = (
                [r[0] for r in unknown.select(col(self.group_col)).distinct().limit(3).collect()]
                if count
                else []
            )
        self.unknown_rows_ = count
        if not count:
            return
        message = (
            f"{count_of(count, 'row')} in groups without a fitted model (unknown or failed, e.g. "
            f"{examples})"
        )
        if on_unknown == "error":
            raise InvalidInputError(message + "; filter them out or pass on_unknown='null'")
        warnings.warn(
            UnknownGroupWarning(f"{message}; their '{output_col}' is null", count), stacklevel=3
        )

    def predict(
        self,
        df: DataFrame,
        output_col: str = "prediction",
        method: str | Sequence[str] = "predict",
        *,
        on_null: str = "error",
        on_unknown: str = "null",
        strategy: str = "auto",
    ) -> DataFrame:
        """Score every row with the model of its own group.

        Parameters
        ----------
        df : pyspark.sql.DataFrame
            Rows with the group column and the feature columns.
        output_col : str, default "prediction"
        method : str or list of str, default "predict"
            As in :func:`sparklift.inference.predict`.
        on_null : {"error", "null"}, default "error"
            Rows with a null feature (see :func:`sparklift.inference.predict`).
        on_unknown : {"null", "error"}, default "null"
            Rows whose group has no model (unknown, or its fit failed) are
            counted before the job (stored in ``unknown_rows_``); ``"null"``
            gives them a null output and warns with the count
            (:class:`UnknownGroupWarning`), ``"error"`` raises.
        strategy : {"auto", "broadcast", "cogroup"}, default "auto"
            ``"broadcast"`` ships all models to every Python worker once and
            scores rows where they are (no shuffle); ``"cogroup"`` brings each
            group's rows and model together by key (a shuffle of the data), for
            model tables too big to ship. ``"auto"`` broadcasts up to
            :data:`BROADCAST_LIMIT_BYTES` of models.

        Returns
        -------
        pyspark.sql.DataFrame
            ``df`` with ``output_col`` added (row order not preserved).
        """
        from pyspark.sql.types import StructField, StructType

        if on_unknown not in ("null", "error"):
            raise InvalidInputError(f"on_unknown must be 'null' or 'error'; got {on_unknown!r}")
        if on_null not in ("null", "error"):
            raise InvalidInputError(f"on_null must be 'null' or 'error'; got {on_null!r}")
        if strategy not in ("auto", "broadcast", "cogroup"):
            raise InvalidInputError(
                f"strategy must be 'auto', 'broadcast' or 'cogroup'; got {strategy!r}"
            )
        refuse_clashing_column(df, output_col)
        _check_columns(df, self.group_col, self.feature_cols, None, "GroupedModel.predict")
        self._check_key_type(df)
        if strategy == "auto":
            strategy = "broadcast" if self._model_bytes() <= BROADCAST_LIMIT_BYTES else "cogroup"

        per_class = any(m in PER_CLASS_METHODS for m in _method_names(method))
        # With a per-class method every group scored must know the same classes;
        # groups the data does not hold are not scored, so they do not count.
        check_keys: list[Any] | None = None
        if strategy == "broadcast":
            models = self._all_models()
            sample_key = next(iter(models))
            check_keys = list(models)
            if per_class and len({_classes(m) for m in models.values()}) > 1:
                present = set(self._keys_in(df))
                check_keys = [k for k in models if k in present]
                sample_key = check_keys[0] if check_keys else sample_key
            sample_model = models[sample_key]
        else:
            fitted = self._fitted()
            # The data's groups first, so that the classes are one they hold.
            candidates = [self._models_in(df, fitted), fitted] if per_class else [fitted]
            row = None
            with translate_errors():
                for table in candidates:
                    row = table.select(col(self.group_col), "model").first()
                    if row is not None:
                        break
            if row is None:
                raise NotFittedError("no group has a fitted model (every fit failed)")
            sample_key, sample_model = row[0], self._load(row[1])
        methods = _check_methods(sample_model, method)
        # The models get their rows as they were fitted: named, or a bare matrix.
        names = tuple(self.feature_cols) if self.as_frame else None
        # A row of zeros first (no Spark job), then the data's first rows, for
        # models that refuse zeros (a log or Box-Cox transform).
        kinds = _infer_kinds(
            sample_model,
            methods,
            [
                functools.partial(_zeros, len(self.feature_cols), names),
                functools.partial(_first_rows, df, list(self.feature_cols), names),
            ],
        )
        self._count_unknown(df, on_unknown, output_col)
        if on_null == "null":
            _warn_null_rows(df, list(self.feature_cols), None, output_col)

        score = _ScoreSpec(
            model_name=type(sample_model).__name__,
            input_cols=tuple(self.feature_cols),
            array_col=None,
            feature_label="",
            n_features=len(self.feature_cols),
            feature_names=names,
            methods=methods,
            kinds=kinds,
            as_struct=len(methods) > 1,
            on_null=on_null,
            drop_cols=(),
            output_col=output_col,
            example_cols=(self.group_col,),
        )
        spec = _GroupSpec(
            group_col=self.group_col,
            score=score,
            classes=_classes(sample_model) if per_class else None,
            classes_of=sample_key,
        )
        if check_keys is not None and spec.classes is not None:
            for key in check_keys:  # all here already: refuse before the job
                _check_classes(models[key], key, spec)
            spec = replace(spec, classes=None)  # checked: the scoring tasks need not again
        if score.as_struct:
            out_type: Any = StructType(
                [StructField(m, _spark_type(k), True) for m, k in zip(methods, kinds, strict=True)]
            )
        else:
            out_type = _spark_type(kinds[0])
        schema = StructType([*df.schema.fields, StructField(output_col, out_type, True)])
        if strategy == "broadcast":
            payload, digest = _serialize.transport_dumps(models)
            fn = functools.partial(
                _score_grouped_batches, payload=payload, digest=digest, spec=spec
            )
            return map_partitions(df, fn, schema)
        return self._predict_cogroup(df, spec, schema)

    def _predict_cogroup(self, df: DataFrame, spec: _GroupSpec, schema: Any) -> DataFrame:
        from pyspark.sql.pandas.types import to_arrow_schema

        score = functools.partial(
            _cogroup_arrow,
            spec=spec,
            # Spark hands a cogroup's Arrow UDF timestamps in UTC, and wants them
            # back so (mapInArrow uses the session time zone: see arrow_schema).
            schema=to_arrow_schema(schema, timezone="UTC"),
            trusted=self.trusted,
            allow_pickle=self._pickle_ok,
            paths=_serialize.driver_paths(),
        )

        # Keys meet by hash in a cogroup, so both sides must be of one type:
        # the models' keys take the data's (numbers of other types are let
        # through by _check_key_type; a key the type cannot hold matches no row).
        from pyspark.sql import functions as F

        key_type = df.schema[self.group_col].dataType
        own_type = self.models.schema[self.group_col].dataType
        model_key = col(self.group_col)
        if own_type != key_type:
            # Only keys the data's type holds exactly: a narrower type would
            # round 1.5 to 2 and give group 2's rows group 1.5's model.
            cast = model_key.try_cast(key_type)
            model_key = F.when(cast.try_cast(own_type) == model_key, cast)
        models = self.models.select(model_key.alias(self.group_col), "model")
        data, data_names = positional_names(df)
        models, model_names = positional_names(models)
        key = data.columns[df.columns.index(self.group_col)]

        def fn(data: pa.Table, models: pa.Table) -> pa.Table:
            if data_names:
                data = data.rename_columns(data_names)
            if model_names:
                models = models.rename_columns(model_names)
            with encoded_errors():
                out = score(data, models)
            task_done()  # called per group here; cheap once the worker has frozen
            return out

        grouped = data.groupBy(col(key)).cogroup(models.groupBy(col(models.columns[0])))
        return grouped.applyInArrow(fn, schema)

    # ------------------------------------------------------------------ persistence

    def write(self) -> _GroupedModelWriter:
        """pyspark.ml's spelling of :meth:`save`: ``model.write().overwrite().save(path)``."""
        return _GroupedModelWriter(self)

    def save(self, path: str, *, overwrite: bool = False) -> None:
        """Save as ``path/models`` (Parquet) and ``path/metadata`` (JSON).

        Written with the DataFrame API, so any Spark filesystem (and Connect)
        works. The model bytes are stored as they are (skops unless the models
        were fitted with ``serializer="pickle"``).

        Every model is converted (and, for a loaded model, read) before
        anything is written or deleted: a model skops cannot store fails the
        save with ``path`` as it was, and an overwrite of the place the models
        were loaded from (however it is spelled, and also through a filtered
        table) cannot delete them before they are read. The metadata is
        written last.

        Raises
        ------
        PathExistsError
            ``path`` exists (without ``overwrite``), or a file stands where
            its folders would go.
        InvalidInputError
            A model that skops cannot store (name the group; fit with
            ``serializer="pickle"`` to store pickles).
        """
        spark = self.models.sparkSession
        mode = "overwrite" if overwrite else "error"
        models = self.models
        if self.serializer == "skops":
            convert = functools.partial(
                _to_skops_batches,
                group_col=self.group_col,
                trusted=self.trusted,
                allow_pickle=self._pickle_ok,
                paths=_serialize.driver_paths(),
            )
            models = map_partitions(models, convert, models.schema)
        # Models not made by fit_per_group in this session are read lazily from
        # storage, maybe from the very files an overwrite deletes (a path has
        # many spellings, and a table may be filtered or joined): hold them first.
        from_storage = overwrite and not self._own_models
        original = self.models
        if models is not self.models or from_storage:
            with translate_errors():
                sources = _places(original.inputFiles()) if from_storage else set()
                models = models.localCheckpoint(eager=True)
        if from_storage:
            self.models = models  # this object stays usable if the write fails
        settings = {
            "class": "sparklift.grouped.GroupedModel",
            "format_version": FORMAT_VERSION,
            "group_col": self.group_col,
            "feature_cols": self.feature_cols,
            "label_col": self.label_col,
            "serializer": self.serializer,
            "as_frame": self.as_frame,
        }

        def write_metadata(**extra: Any) -> None:
            text = json.dumps({**settings, **extra})
            spark.createDataFrame([(text,)], schema="value string").coalesce(1).write.mode(
                mode
            ).text(os.path.join(path, "metadata"))

        models_path = os.path.join(path, "models")
        with refusing_existing(path, "pass overwrite=True"), translate_errors():
            if overwrite:
                # Spark's overwrite deletes the old models before writing the new
                # ones: until the metadata is rewritten last, a load of a save
                # cut short says so instead of pairing old metadata and new models.
                write_metadata(complete=False)
            models.write.mode(mode).parquet(models_path)
            write_metadata()
        if from_storage:
            # Read from files again, not from the checkpoint (which lives only as
            # long as the executors holding it): the untouched originals when the
            # models came from files elsewhere, else the new save's.
            with translate_errors():
                written = spark.read.parquet(models_path)
                elsewhere = sources and not sources & _places(written.inputFiles())
            self.models = original if elsewhere else written

    @classmethod
    def load(
        cls,
        path: str,
        *,
        spark: SparkSession | None = None,
        trusted: Sequence[str] = (),
        allow_pickle: bool = False,
    ) -> GroupedModel:
        """Load a model written by :meth:`save`.

        Parameters
        ----------
        path : str
        spark : SparkSession, optional
            Defaults to :func:`sparklift.session.get_spark`.
        trusted, allow_pickle
            As in :func:`sparklift._serialize.loads`, applied when models are used.

        Raises
        ------
        ModelFormatError
            Not a saved GroupedModel, or from another format version.
        """
        if spark is None:
            from sparklift.session import get_spark

            spark = get_spark()
        try:
            row = spark.read.text(os.path.join(path, "metadata")).first()
            meta = json.loads(row[0]) if row is not None else None
        except Exception as exc:
            raise ModelFormatError(
                f"{path} is not a saved GroupedModel ({type(exc).__name__})"
            ) from None
        if not isinstance(meta, dict) or meta.get("class") != "sparklift.grouped.GroupedModel":
            raise ModelFormatError(f"{path} is not a saved GroupedModel")
        if meta.get("complete") is False:
            raise ModelFormatError(
                f"{path} holds a GroupedModel save that did not finish (an overwrite cut "
                "short): its models may be incomplete; save the model again"
            )
        if meta.get("format_version") != FORMAT_VERSION:
            raise ModelFormatError(
                f"{path} has GroupedModel format version {meta.get('format_version')!r}; this "
                f"version of sparklift reads version {FORMAT_VERSION}"
            )
        try:
            # .columns makes Spark Connect read the schema now, as Classic does.
            models = spark.read.parquet(os.path.join(path, "models"))
            models.columns  # noqa: B018
        except Exception as exc:
            raise ModelFormatError(
                f"{path} holds a GroupedModel's metadata but its models cannot be read "
                f"({type(exc).__name__}: {first_line(exc)[:300]}); the save may have been "
                "interrupted"
            ) from None
        loaded = cls(
            models,
            meta["group_col"],
            meta["feature_cols"],
            label_col=meta.get("label_col"),
            serializer=meta.get("serializer", "skops"),
            trusted=trusted,
            allow_pickle=allow_pickle,
            as_frame=bool(meta.get("as_frame", False)),  # saved before it existed: a matrix
        )
        loaded._stored = True
        return loaded


class _GroupedModelWriter:
    """What :meth:`GroupedModel.write` returns: ``overwrite()``, then ``save(path)``."""

    def __init__(self, model: GroupedModel) -> None:
        self._model = model
        self._overwrite = False

    def overwrite(self) -> _GroupedModelWriter:
        """Replace an existing save at the path (see :meth:`GroupedModel.save`)."""
        self._overwrite = True
        return self

    def save(self, path: str) -> None:
        """:meth:`GroupedModel.save` with the overwrite asked for."""
        self._model.save(path, overwrite=self._overwrite)
