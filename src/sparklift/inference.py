"""Score any fitted single-machine model over a Spark DataFrame.

:func:`predict` adds a column with the output of a model's ``predict``,
``predict_proba``, ``decision_function``, ``transform`` or ``score_samples``
(several at once give a struct column) to a DataFrame. The model is any object
with that interface: a scikit-learn estimator or pipeline, a sparklift model,
your own class. :class:`ModelTransformer` is the same as a pyspark.ml stage,
so a scikit-learn model can sit in a Spark ``Pipeline`` and be saved with it.

How it runs: the model is cloudpickled once on the driver and its bytes travel
inside the partition function; each Python worker unpickles it once and keeps
it in a small cache keyed by the bytes' hash (as pyspark's
``predict_batch_udf`` does), so every later batch and task on that worker
reuses it. Each Arrow record batch becomes one float64 matrix (no per-row
Python), the model scores it, and the result goes back as Arrow, typed from a
call of the model on a sample row made on the driver before any Spark job.

Scoring is a scalar iterator Arrow UDF (pyspark >= 4.1): only the feature
columns travel to Python and only the output comes back, where ``mapInArrow``
(:func:`sparklift._spark.map_partitions`, still used on pyspark 4.0) carries
every column both ways; on 20 features that difference is what keeps
:func:`predict` level with a hand-written pandas UDF. Both are DataFrame API
only, so scoring works on Spark Classic, a cluster and Spark Connect.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import dataclasses
import functools
import math
import operator
import os
import re
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCols, HasOutputCol
from pyspark.ml.util import (
    DefaultParamsReader,
    DefaultParamsWriter,
    MLReadable,
    MLReader,
    MLWritable,
    MLWriter,
)

from sparklift import _serialize
from sparklift._ml import InstanceWriter
from sparklift._spark import (
    HAS_MAP_COLUMNS,
    col,
    has_udt,
    map_columns,
    map_partitions,
    null_or_nan,
    quoted_name,
    refuse_clashing_column,
)
from sparklift.errors import (
    CountedWarning,
    InvalidColumnTypeError,
    InvalidInputError,
    ModelFormatError,
    NotFittedError,
    SparkliftError,
    count_of,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import DataType

__all__ = [
    "SUPPORTED_METHODS",
    "ModelTransformer",
    "NullFeaturesWarning",
    "load_model",
    "predict",
    "save_model",
]

#: Methods :func:`predict` is designed for (any other callable attribute also works).
SUPPORTED_METHODS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
    "transform",
    "score_samples",
)
ON_NULL = ("error", "null")

# Temporary column holding a vector column converted to an array in the JVM.
_TMP_FEATURES = "__sparklift_features__"


class NullFeaturesWarning(CountedWarning):
    """Rows with null features were given a null prediction (``on_null="null"``).

    Attributes
    ----------
    count : int
        How many rows.
    """


# --------------------------------------------------------------------------
# Worker side: per-worker model cache, Arrow -> NumPy -> model -> Arrow.
# --------------------------------------------------------------------------

_CACHE_SIZE = 4
_MODEL_CACHE: collections.OrderedDict[str, Any] = collections.OrderedDict()
_CACHE_LOCK = threading.Lock()


def _cached_model(
    key: str, payload: bytes, loader: Callable[[bytes], Any] = _serialize.transport_loads
) -> Any:
    """The model for ``key`` (a hash of ``payload``), loaded at most once per Python worker."""
    with _CACHE_LOCK:
        model = _MODEL_CACHE.get(key)
        if model is not None:
            _MODEL_CACHE.move_to_end(key)
            return model
    model = loader(payload)
    with _CACHE_LOCK:
        _MODEL_CACHE[key] = model
        while len(_MODEL_CACHE) > _CACHE_SIZE:
            _MODEL_CACHE.popitem(last=False)
    return model


@dataclass(frozen=True)
class _ScoreSpec:
    """Everything a scoring task needs besides the model (small and picklable)."""

    model_name: str
    input_cols: tuple[str, ...] | None
    array_col: str | None  # the batch column holding one feature array per row
    feature_label: str  # the user's name of the features, for messages
    n_features: int
    feature_names: tuple[str, ...] | None  # pass a pandas DataFrame with these columns
    methods: tuple[str, ...]
    kinds: tuple[str, ...]  # one of _KINDS per method
    as_struct: bool
    on_null: str
    drop_cols: tuple[str, ...]
    output_col: str
    example_cols: tuple[str, ...]  # shown to identify a bad row in messages


_KINDS = ("double", "long", "boolean", "string", "array")


def _example(batch: pa.RecordBatch, row: int, spec: _ScoreSpec) -> str:
    # Other columns identify the row best (an id); without them, its features.
    columns = spec.example_cols or tuple(batch.schema.names[:4])
    shown = {c: batch.column(c)[row].as_py() for c in columns}
    where = f"row {row} of a batch"
    return f"{where} ({', '.join(f'{k}={v!r}' for k, v in shown.items())})" if shown else where


def _count_rest(batches: Iterator[pa.RecordBatch], count_fn: Any) -> int:
    # Errors name how many rows are affected: finish counting this partition.
    return sum(count_fn(batch) for batch in batches)


def _column_nulls(batch: pa.RecordBatch, name: str) -> int:
    return batch.column(name).null_count


def _array_nulls(batch: pa.RecordBatch, name: str) -> int:
    return int(np.count_nonzero(_array_null_mask(batch.column(name))))


def _array_null_mask(arr: pa.Array) -> np.ndarray:
    mask = np.zeros(len(arr), dtype=bool)
    if arr.null_count:
        mask |= arr.is_null().to_numpy(zero_copy_only=False)
    values = arr.flatten()
    if values.null_count:
        parents = pc.list_parent_indices(arr).to_numpy(zero_copy_only=False)
        mask[parents[values.is_null().to_numpy(zero_copy_only=False)]] = True
    return mask


def _decimal_to_float(arr: pa.Array) -> np.ndarray:
    """Decimals as float64, correctly rounded (as Python's ``float(Decimal)``).

    Arrow's own decimal cast is not (1 ulp off for about a third of values).
    Up to 15 digits the unscaled integer and 10**scale are exact in float64,
    so one IEEE division rounds correctly; beyond, Python converts each value.
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    kind = arr.type
    if pa.types.is_decimal128(kind) and kind.precision <= 15 and kind.scale <= 22:
        # The low 64 bits of each little-endian decimal128 hold the value.
        words = np.frombuffer(arr.buffers()[1], dtype=np.int64)
        unscaled = words[2 * arr.offset : 2 * (arr.offset + len(arr)) : 2]
        out = unscaled.astype(np.float64) / 10.0**kind.scale
        if arr.null_count:
            out[arr.is_null().to_numpy(zero_copy_only=False)] = math.nan
        return out
    return np.array([math.nan if v is None else float(v) for v in arr.to_pylist()])


def _to_float(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A numeric Arrow column as float64 NumPy (nulls as NaN; callers mask them)."""
    if pa.types.is_decimal(arr.type):
        return _decimal_to_float(arr)
    if not pa.types.is_floating(arr.type) and not pa.types.is_integer(arr.type):
        arr = pc.cast(arr, pa.float64())
    # float32 or integer values become float64 here (a no-op for float64), so
    # a model sees the same matrix whatever the column type and null pattern.
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)


def _columns_matrix(
    batch: pa.RecordBatch, spec: _ScoreSpec, rest: Iterator[pa.RecordBatch]
) -> tuple[np.ndarray, np.ndarray | None]:
    assert spec.input_cols is not None
    n = batch.num_rows
    # C order, as users' own matrices are: BLAS kernels round differently on
    # Fortran-ordered input, and scores must equal the model's own bit for bit.
    X = np.empty((n, spec.n_features), dtype=np.float64)
    mask = None
    for j, name in enumerate(spec.input_cols):
        arr = batch.column(name)
        if arr.null_count:
            if spec.on_null == "error":
                first = int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])
                count = arr.null_count + _count_rest(
                    rest, functools.partial(_column_nulls, name=name)
                )
                quoted = name if re.fullmatch(r"\w+", name) else quoted_name(name)
                raise InvalidInputError(
                    f"Feature column '{name}' has null values in {count_of(count, 'row')} of one "
                    f"partition (the first at {_example(batch, first, spec)}). Drop or fill "
                    f"them first (df.na.drop(subset=[...]) or df.na.fill(...)), or pass "
                    f"on_null='null' to give those rows a null prediction. "
                    f"df.where(F.col({quoted!r}).isNull()) lists them all."
                )
            col_mask = arr.is_null().to_numpy(zero_copy_only=False)
            mask = col_mask if mask is None else (mask | col_mask)
            arr = arr.fill_null(False if pa.types.is_boolean(arr.type) else 0)
        X[:, j] = _to_float(arr)
    return X, mask


def _array_matrix(
    batch: pa.RecordBatch, spec: _ScoreSpec, rest: Iterator[pa.RecordBatch]
) -> tuple[np.ndarray, np.ndarray | None]:
    assert spec.array_col is not None
    arr = batch.column(spec.array_col)
    n, k = batch.num_rows, spec.n_features
    mask = None
    if arr.null_count or arr.flatten().null_count:
        mask = _array_null_mask(arr)
        if spec.on_null == "error":
            first = int(np.flatnonzero(mask)[0])
            count = int(np.count_nonzero(mask)) + _count_rest(
                rest, functools.partial(_array_nulls, name=spec.array_col)
            )
            raise InvalidInputError(
                f"Feature column '{spec.feature_label}' is null or contains nulls in {count} "
                f"rows of one partition (the first at {_example(batch, first, spec)}). Drop "
                f"or fill them first, or pass on_null='null' to give those rows a null "
                f"prediction."
            )
    lengths = pc.list_value_length(arr).fill_null(k).to_numpy(zero_copy_only=False)
    wrong = np.flatnonzero(lengths != k)
    if wrong.size:
        raise InvalidInputError(
            f"Feature column '{spec.feature_label}' must hold {k} values per row (the "
            f"model's number of features); {wrong.size} rows of a batch do not (the first at "
            f"{_example(batch, int(wrong[0]), spec)} has {int(lengths[wrong[0]])})."
        )
    if mask is None:
        X = _to_float(arr.flatten()).reshape(n, k)
    else:
        # Null rows become k zeros so that the matrix keeps its shape; they are masked.
        if pa.types.is_decimal(arr.type.value_type):  # converted exactly, as above
            values = pa.array(_decimal_to_float(arr.values), pa.float64())
            floats = pa.ListArray.from_arrays(arr.offsets, values, mask=arr.is_null())
        else:
            floats = arr.cast(pa.list_(pa.float64()))
        filled = pc.if_else(pa.array(mask), pa.scalar([0.0] * k, pa.list_(pa.float64())), floats)
        X = _to_float(filled.flatten().fill_null(0.0)).reshape(n, k)
    return X, mask


def _non_finite_rows(batch: pa.RecordBatch, spec: _ScoreSpec) -> np.ndarray:
    """Per row of ``batch``: NaN or an infinity in a feature, and no null in any.

    Rows with a null feature are ``on_null``'s (an error, or a null output
    without calling the model), so they are not counted here.
    """
    bad = np.zeros(batch.num_rows, dtype=bool)
    if spec.input_cols is not None:
        null = np.zeros(batch.num_rows, dtype=bool)
        for name in spec.input_cols:
            arr = batch.column(name)
            bad |= _non_finite_values(arr)
            if arr.null_count:
                null |= arr.is_null().to_numpy(zero_copy_only=False)
        return bad & ~null
    assert spec.array_col is not None
    arr = batch.column(spec.array_col)
    parents = pc.list_parent_indices(arr).to_numpy(zero_copy_only=False)
    bad[parents[_non_finite_values(arr.flatten())]] = True
    return bad & ~_array_null_mask(arr)


def _non_finite_values(arr: pa.Array) -> np.ndarray:
    if not (pa.types.is_floating(arr.type) or pa.types.is_decimal(arr.type)):
        return np.zeros(len(arr), dtype=bool)  # integers and booleans are always finite
    bad = ~np.isfinite(_to_float(arr))
    if arr.null_count:  # nulls are on_null's business, not NaN
        bad &= ~arr.is_null().to_numpy(zero_copy_only=False)
    return bad


#: A model's error about NaN or infinite input (scikit-learn: "Input X contains NaN.",
#: "... contains infinity or a value too large ...").
_ABOUT_NON_FINITE = re.compile(r"\bnan\b|infinit|finite", re.IGNORECASE)


def _non_finite_error(
    X: np.ndarray,
    scored: np.ndarray,
    batch: pa.RecordBatch,
    spec: _ScoreSpec,
    method: str,
    failure: InvalidInputError,
    rest: Iterator[pa.RecordBatch] | None = None,
) -> InvalidInputError | None:
    """The model refused a batch for NaN or an infinity in it: an error naming where.

    ``X`` is the batch's float matrix and ``scored`` the rows the model was
    given. Models that accept NaN (HistGradientBoosting) never get here; for
    the rest the model's own message ("Input X contains NaN") names neither
    the column nor a row. ``rest`` (the partition's remaining batches) is
    counted too when given. None when the model's error is not about such
    values, or every value it was given was finite: its own error stands.
    """
    cause = failure.__context__  # the model's own exception (raised "from None")
    if cause is None or not _ABOUT_NON_FINITE.search(str(cause)):
        return None
    bad = ~np.isfinite(X) & scored[:, None]
    rows = np.flatnonzero(bad.any(axis=1))
    if not rows.size:
        return None
    first = int(rows[0])
    j = int(np.flatnonzero(bad[first])[0])
    count = int(rows.size)
    if rest is not None:
        count += _count_rest(rest, lambda b: int(np.count_nonzero(_non_finite_rows(b, spec))))
    if spec.input_cols is not None:
        column = f"column '{spec.input_cols[j]}'"
    else:
        column = f"column '{spec.feature_label}' (at index {j})"
    return InvalidInputError(
        f"{spec.model_name}.{method} refused NaN or infinite features, found in "
        f"{count_of(count, 'row')} of {'one partition' if rest is not None else 'a batch'}: "
        f"the first in {column} = {X[first, j]} at {_example(batch, first, spec)}. "
        f"The model said: {type(cause).__name__}: {str(cause).splitlines()[0]} Drop or "
        f"replace them first (df.na.drop and df.na.fill treat NaN as missing; infinities "
        f"need a filter), or use a model that accepts NaN (such as HistGradientBoosting)."
    )


def _call(model: Any, method: str, X: Any, spec: _ScoreSpec) -> np.ndarray:
    try:
        out = getattr(model, method)(X)
    except SparkliftError:
        raise
    except Exception as exc:
        raise InvalidInputError(
            f"{spec.model_name}.{method} failed on a batch of {len(X)} rows: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    return _as_array(out)


def _as_array(out: Any) -> np.ndarray:
    if hasattr(out, "toarray"):  # scipy.sparse output (e.g. OneHotEncoder.transform)
        out = out.toarray()
    elif hasattr(out, "to_numpy"):  # pandas output (set_output(transform="pandas"))
        out = out.to_numpy()
    return np.asarray(out)


def _output_array(out: Any, model: Any, method: str) -> np.ndarray:
    """A sample output as an array, or a clear error for outputs no column can hold."""
    try:
        return _as_array(out)
    except ValueError:  # a list of arrays of different shapes
        shapes = [np.shape(o) for o in out] if isinstance(out, list | tuple) else "?"
        raise InvalidColumnTypeError(
            f"{_model_name(model)}.{method} returns a list of arrays of different shapes "
            f"({shapes}; e.g. a multi-output classifier's predict_proba with a different "
            "number of classes per output), which no one column type holds; score each "
            "output with its own estimator (model.estimators_[i])"
        ) from None


def _arrow_output(
    values: np.ndarray | None, kind: str, n: int, mask: np.ndarray | None
) -> pa.Array:
    """One output column of ``n`` rows; rows where ``mask`` is True are null."""
    if mask is not None and values is not None:
        full = np.zeros((n, *values.shape[1:]), dtype=values.dtype)
        full[~mask] = values
        values = full
    elif values is None:  # every row was masked
        values = np.zeros((n, 0) if kind == "array" else n)
    arrow_mask = mask  # pa.array() takes the NumPy mask itself
    if kind == "array":
        values = np.ascontiguousarray(values, dtype=np.float64)
        width = values.shape[1] if values.ndim == 2 else 1
        offsets = pa.array(np.arange(n + 1, dtype=np.int32) * np.int32(width))
        return pa.ListArray.from_arrays(
            offsets, pa.array(values.reshape(-1)), mask=None if mask is None else pa.array(mask)
        )
    if kind == "double":
        return pa.array(values.astype(np.float64, copy=False), mask=arrow_mask)
    if kind == "long":
        return pa.array(values.astype(np.int64, copy=False), mask=arrow_mask)
    if kind == "boolean":
        return pa.array(values.astype(bool, copy=False), mask=arrow_mask)
    strings = [None if v is None else str(v) for v in values.tolist()]
    return pa.array(strings, type=pa.string(), mask=arrow_mask)


def _score_batches(
    batches: Iterator[pa.RecordBatch], *, payload: bytes, key: str, spec: _ScoreSpec
) -> Iterator[pa.RecordBatch]:
    model = _cached_model(key, payload)
    to_matrix = _columns_matrix if spec.input_cols is not None else _array_matrix
    frame = None
    if spec.feature_names is not None:
        import pandas as pd

        frame = functools.partial(pd.DataFrame, columns=list(spec.feature_names), copy=False)
    for batch in batches:
        n = batch.num_rows
        if n == 0:
            continue
        X, mask = to_matrix(batch, spec, batches)
        if mask is not None and mask.all():
            results: list[np.ndarray | None] = [None] * len(spec.methods)
        else:
            Xm = X if mask is None else X[~mask]
            Xin = Xm if frame is None else frame(Xm)
            results = []
            with warnings.catch_warnings():
                # Fitted with feature names, scored with a matrix of the same columns.
                warnings.filterwarnings("ignore", message="X does not have valid feature names")
                for method in spec.methods:
                    try:
                        out = _call(model, method, Xin, spec)
                    except InvalidInputError as exc:
                        scored = np.ones(n, dtype=bool) if mask is None else ~mask
                        better = _non_finite_error(X, scored, batch, spec, method, exc, batches)
                        if better is None:
                            raise
                        raise better from None
                    if len(out) != len(Xm):
                        raise InvalidInputError(
                            f"{spec.model_name}.{method} returned {len(out)} rows for "
                            f"{len(Xm)} input rows"
                        )
                    results.append(out)
        columns = [
            _arrow_output(out, kind, n, mask) for out, kind in zip(results, spec.kinds, strict=True)
        ]
        if spec.as_struct:
            arrow_mask = None if mask is None else pa.array(mask)
            output = pa.StructArray.from_arrays(columns, names=list(spec.methods), mask=arrow_mask)
        else:
            output = columns[0]
        keep = [name for name in batch.schema.names if name not in spec.drop_cols]
        yield pa.RecordBatch.from_arrays(
            [batch.column(name) for name in keep] + [output], names=[*keep, spec.output_col]
        )


# --------------------------------------------------------------------------
# Driver side: validation, output types, the plan.
# --------------------------------------------------------------------------


def _model_name(model: Any) -> str:
    return type(model).__name__


def _hmmlearn_class(model: Any) -> type | None:
    """The hmmlearn class ``model`` is (or derives from), or its Pipeline's last step; else None.

    The first hmmlearn class in the MRO: ``GaussianHMM`` for a user's subclass of it.
    """
    final = getattr(model, "_final_estimator", None)  # scikit-learn's Pipeline
    for candidate in (model, final):
        for cls in type(candidate).__mro__ if candidate is not None else ():
            if cls.__module__.split(".")[0] == "hmmlearn":
                return cls
    return None


def _refuse_misplaced(df: Any, model: Any) -> None:
    """Refuse, with the call that works, data or models :func:`predict` cannot score row by row."""
    from pyspark.ml import Transformer as SparkTransformer

    if not (hasattr(df, "schema") and hasattr(df, "sparkSession")):
        raise InvalidInputError(
            f"df must be a Spark DataFrame; got {type(df).__module__}.{type(df).__name__}. "
            "Make one with spark.createDataFrame(...), or call the model directly on data "
            "that is already in this process"
        )
    name = _model_name(model)
    if isinstance(model, type):
        raise InvalidInputError(
            f"model is the class {model.__name__}, not a fitted model: fit an instance "
            f"first (e.g. {model.__name__}().fit(X, y)) and pass that"
        )
    hmmlearn = _hmmlearn_class(model)
    if hmmlearn is not None:
        from sparklift import hmm

        family = hmmlearn.__name__
        convert = (
            f"Convert it with sparklift.hmm.{family}Model.from_hmmlearn(model) and call "
            ".transform(df) on a DataFrame with one sequence per row (see docs/hmm.md)"
            if f"{family}Model" in hmm.__all__
            else f"sparklift.hmm has no counterpart of {family} yet (see docs/hmm.md)"
        )
        raise InvalidInputError(
            f"{name} is or ends in an hmmlearn {family}, which decodes a whole sequence at a "
            "time: scored row by row, each batch of rows would be taken as one sequence, and "
            f"the result would depend on the partitioning. {convert}"
        )
    if isinstance(model, SparkTransformer):
        raise InvalidInputError(
            f"{name} is a Spark ML stage: call its transform(df) (predict is for "
            "single-machine models such as scikit-learn's)"
        )
    if type(model).__name__ == "GroupedModel" and hasattr(model, "group_col"):
        raise InvalidInputError(
            "model is a GroupedModel: call its predict(df), which scores each row with the "
            "model of its own group"
        )


def _method_names(method: str | Sequence[str]) -> tuple[str, ...]:
    """``method`` as a tuple of names: one name, or several."""
    return (method,) if isinstance(method, str) else tuple(method)


def _check_methods(model: Any, method: str | Sequence[str]) -> tuple[str, ...]:
    methods = _method_names(method)
    if not methods:
        raise InvalidInputError("method must name at least one method, e.g. 'predict'")
    if len(set(methods)) != len(methods):
        raise InvalidInputError(f"method lists a method twice: {list(methods)}")
    for name in methods:
        if not isinstance(name, str) or not callable(getattr(model, name, None)):
            available = [m for m in SUPPORTED_METHODS if callable(getattr(model, m, None))]
            raise InvalidInputError(
                f"{_model_name(model)} has no method {name!r}; it offers {available or 'none of'} "
                f"{'' if available else list(SUPPORTED_METHODS)}".rstrip()
            )
    return methods


def _kind_of(result: np.ndarray, model: Any, method: str) -> str:
    if result.ndim == 2:
        if result.dtype.kind not in "fiub":
            raise InvalidColumnTypeError(
                f"{_model_name(model)}.{method} returns a 2-D array of {result.dtype}; only "
                "numeric 2-D outputs are supported (as array<double>)"
            )
        return "array"
    if result.ndim != 1:
        raise InvalidColumnTypeError(
            f"{_model_name(model)}.{method} returns a {result.ndim}-D array; expected 1-D or 2-D"
        )
    kind = result.dtype.kind
    if kind == "f":
        return "double"
    if kind in "iu":
        return "long"
    if kind == "b":
        return "boolean"
    if kind in "USO":
        return "string"
    raise InvalidColumnTypeError(
        f"{_model_name(model)}.{method} returns values of dtype {result.dtype}, which "
        "sparklift cannot map to a Spark type"
    )


def _spark_type(kind: str) -> DataType:
    from pyspark.sql.types import ArrayType, BooleanType, DoubleType, LongType, StringType

    return {
        "double": DoubleType(),
        "long": LongType(),
        "boolean": BooleanType(),
        "string": StringType(),
        "array": ArrayType(DoubleType(), containsNull=False),
    }[kind]


def _infer_kinds(model: Any, methods: tuple[str, ...], samples: list[Any]) -> tuple[str, ...]:
    """Output kind of each method, from calling the model on sample rows."""
    last_error: Exception | None = None
    for sample in samples:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                raw = [getattr(model, m)(sample()) for m in methods]
        except Exception as exc:
            if type(exc).__name__ == "NotFittedError":
                raise NotFittedError(
                    f"This {_model_name(model)} is not fitted yet: fit it before scoring ({exc})"
                ) from None
            last_error = exc
            continue
        outputs = [_output_array(out, model, m) for out, m in zip(raw, methods, strict=True)]
        return tuple(_kind_of(out, model, m) for out, m in zip(outputs, methods, strict=True))
    raise InvalidInputError(
        f"{_model_name(model)}.{'/'.join(methods)} failed on a sample row before scoring "
        f"({type(last_error).__name__}: {last_error}); check that the input columns are the "
        "features the model was fitted on"
    )


def _numeric_check(df: DataFrame, name: str, caller: str = "predict") -> None:
    """Refuse a feature column that is not numeric (or boolean), naming the caller's need."""
    from pyspark.sql.types import BooleanType, NumericType

    dtype = df.schema[name].dataType
    if not isinstance(dtype, NumericType | BooleanType):
        way_out = (
            "(or one vector/array column in features_col)"
            if caller == "predict"
            else "(encode strings as numbers first, e.g. with a StringIndexer)"
        )
        raise InvalidColumnTypeError(
            f"Feature column '{name}' has type {dtype.simpleString()}; {caller} needs numeric "
            f"columns {way_out}"
        )


def _resolve_inputs(
    df: DataFrame,
    model: Any,
    input_cols: Sequence[str] | None,
    features_col: str | None,
) -> tuple[list[str] | None, str | None]:
    if input_cols is not None and features_col is not None:
        raise InvalidInputError("give either input_cols or features_col, not both")
    if input_cols is None and features_col is None:
        names = getattr(model, "feature_names_in_", None)
        if names is None:
            raise InvalidInputError(
                "give input_cols (numeric columns, in the order the model was fitted on) or "
                "features_col (one vector or array column)"
            )
        input_cols = [str(n) for n in names]
    if isinstance(input_cols, str):
        raise InvalidInputError(f"input_cols must be a list of column names; got {input_cols!r}")
    wanted = list(input_cols) if input_cols is not None else [features_col]
    others = [c for c in wanted if not isinstance(c, str)]
    if others:
        raise InvalidInputError(
            f"columns must be given by name (strings); got {type(others[0]).__name__} {others[0]!r}"
        )
    columns = set(df.columns)
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise InvalidInputError(
            f"Feature column(s) {missing} not in the DataFrame; its columns are {df.columns}"
        )
    if input_cols is not None:
        if not input_cols:
            raise InvalidInputError("input_cols is empty")
        repeated = sorted(c for c, n in collections.Counter(input_cols).items() if n > 1)
        if repeated:
            raise InvalidInputError(f"input_cols names {repeated} more than once")
        for name in input_cols:
            _numeric_check(df, name)
        return list(input_cols), None
    return None, features_col


def _features_column(df: DataFrame, features_col: str) -> tuple[DataFrame, str]:
    """The DataFrame with ``features_col`` as an array column, and that column's name."""
    from pyspark.ml.linalg import VectorUDT
    from pyspark.sql.types import ArrayType, BooleanType, NumericType

    dtype = df.schema[features_col].dataType
    if isinstance(dtype, VectorUDT):
        from pyspark.ml.functions import vector_to_array

        return df.withColumn(_TMP_FEATURES, vector_to_array(col(features_col))), _TMP_FEATURES
    if isinstance(dtype, ArrayType) and isinstance(dtype.elementType, NumericType | BooleanType):
        return df, features_col
    raise InvalidColumnTypeError(
        f"Feature column '{features_col}' has type {dtype.simpleString()}; features_col must "
        "be a pyspark.ml vector or an array of numbers"
    )


def _n_features(model: Any, df: DataFrame, array_col: str, label: str) -> int:
    n = getattr(model, "n_features_in_", None)
    if n is not None:
        return int(n)
    from pyspark.sql import functions as F

    row = df.select(F.size(col(array_col))).where(col(array_col).isNotNull()).first()
    if row is None:
        raise InvalidInputError(f"Feature column '{label}' has no non-null row to score")
    return int(row[0])


def _zeros(n_features: int, names: tuple[str, ...] | None) -> Any:
    X = np.zeros((1, n_features))
    if names is None:
        return X
    import pandas as pd

    return pd.DataFrame(X, columns=list(names))


def _first_rows(df: DataFrame, cols: list[str], names: tuple[str, ...] | None) -> Any:
    # Rows without null or NaN (as dropna(), which would resolve the names again,
    # unquoted: 'a.b' as field b of a): a NaN is the model's own error to give.
    missing = functools.reduce(operator.or_, [null_or_nan(df, c) for c in cols])
    rows = df.select(*map(col, cols)).where(~missing).limit(2).collect()
    if not rows:
        raise InvalidInputError(
            "the DataFrame has no row without a null or NaN feature to sample from"
        )
    if len(cols) == 1 and isinstance(rows[0][0], list | tuple):
        X = np.array([r[0] for r in rows], dtype=np.float64)
    else:
        X = np.array([list(r) for r in rows], dtype=np.float64)
    if names is None:
        return X
    import pandas as pd

    return pd.DataFrame(X, columns=list(names))


def _null_rows_count(df: DataFrame, input_cols: list[str] | None, array_col: str | None) -> int:
    from pyspark.sql import functions as F

    if input_cols is not None:
        condition = functools.reduce(lambda a, b: a | b, [col(c).isNull() for c in input_cols])
    else:
        condition = col(array_col).isNull() | F.exists(col(array_col), lambda x: x.isNull())
    return int(df.where(condition).count())


def _warn_null_rows(
    df: DataFrame, input_cols: list[str] | None, array_col: str | None, output_col: str
) -> None:
    """Count the rows ``on_null="null"`` gives a null output, and warn with the count.

    The warning points at the caller of the public function that called this.
    """
    count = _null_rows_count(df, input_cols, array_col)
    if count:
        warnings.warn(
            NullFeaturesWarning(
                f"{count_of(count, 'row')} with a null feature: their '{output_col}' is null", count
            ),
            stacklevel=3,
        )


def predict(
    df: DataFrame,
    model: Any,
    input_cols: Sequence[str] | None = None,
    features_col: str | None = None,
    output_col: str = "prediction",
    method: str | Sequence[str] = "predict",
    *,
    on_null: str = "error",
) -> DataFrame:
    """Add a column with a fitted model's output for every row.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        The rows to score (Classic or Connect).
    model : object
        Any fitted model with the requested method(s): a scikit-learn estimator
        or pipeline, a sparklift model, or your own class.
    input_cols : list of str, optional
        Numeric columns forming the feature matrix, in the order the model was
        fitted on. When neither this nor ``features_col`` is given, the model's
        ``feature_names_in_`` are used.
    features_col : str, optional
        One column holding all features: a pyspark.ml vector (converted to an
        array in the JVM) or an array of numbers.
    output_col : str, default "prediction"
        Name of the added column; must not exist yet.
    method : str or list of str, default "predict"
        ``"predict"``, ``"predict_proba"``, ``"predict_log_proba"``,
        ``"decision_function"``, ``"transform"``, ``"score_samples"`` (or any
        other method taking an ``(n_samples, n_features)`` matrix). Several
        give a struct column with one field per method.
    on_null : {"error", "null"}, default "error"
        Rows with a null feature: ``"error"`` fails the job with one message
        naming the column, the number of such rows in the failing partition and
        an example row; ``"null"`` gives them a null output, counts them first
        (one extra Spark job) and reports the count in a
        :class:`NullFeaturesWarning`. NaN is not null: it is passed to the
        model, which decides; if the model refuses it, the error names the
        column, the count and an example row.

    Returns
    -------
    pyspark.sql.DataFrame
        ``df`` with ``output_col`` added (lazy). Its type follows the model:
        double for real outputs, bigint for integer labels, string for string
        labels, boolean for booleans, array<double> for 2-D outputs
        (probabilities, decision values of several classes, transforms), and a
        struct of those for several methods.

    Raises
    ------
    InvalidInputError
        Before any Spark job: a missing method, missing or conflicting columns,
        an existing ``output_col``, a model that fails on a sample row. During
        the job: null features (``on_null="error"``), feature arrays of the
        wrong length, the model raising on a batch.
    InvalidColumnTypeError
        Non-numeric feature columns, or a model output with no Spark type.
    NotFittedError
        The model is not fitted.

    Examples
    --------
    >>> scored = predict(df, clf, input_cols=["x1", "x2"], method=["predict", "predict_proba"])
    >>> scored.select("prediction.predict", "prediction.predict_proba").show()
    """
    from pyspark.sql.types import StructField, StructType

    _refuse_misplaced(df, model)
    methods = _check_methods(model, method)
    if on_null not in ON_NULL:
        raise InvalidInputError(f"on_null must be one of {list(ON_NULL)}; got {on_null!r}")
    if not isinstance(output_col, str) or not output_col:
        raise InvalidInputError(f"output_col must be a non-empty string; got {output_col!r}")
    refuse_clashing_column(df, output_col)
    input_cols, features_col = _resolve_inputs(df, model, input_cols, features_col)

    feature_names: tuple[str, ...] | None = None
    fitted_names = getattr(model, "feature_names_in_", None)
    if input_cols is not None:
        if fitted_names is not None and set(map(str, fitted_names)) == set(input_cols):
            # Fitted on a pandas DataFrame: score with the same column names and order.
            input_cols = [str(n) for n in fitted_names]
            feature_names = tuple(input_cols)
        elif fitted_names is not None:
            # As scikit-learn warns for an unnamed matrix: names cannot be
            # matched, so the columns go in by position; say so, and how.
            warnings.warn(
                f"{type(model).__name__} was fitted with feature names "
                f"{[str(n) for n in fitted_names]} but input_cols are {list(input_cols)}; "
                "the columns are passed by position, in the order of input_cols. Rename "
                "the columns to the fitted names to have them matched by name.",
                UserWarning,
                stacklevel=2,
            )
        n_features = len(input_cols)
        scored_df, array_col, drop = df, None, ()
        sample_cols = input_cols
    else:
        assert features_col is not None
        scored_df, array_col = _features_column(df, features_col)
        drop = (array_col,) if array_col == _TMP_FEATURES else ()
        n_features = _n_features(model, scored_df, array_col, features_col)
        sample_cols = [array_col]

    samples = [
        functools.partial(_zeros, n_features, feature_names),
        functools.partial(_first_rows, scored_df, sample_cols, feature_names),
    ]
    kinds = _infer_kinds(model, methods, samples)

    if on_null == "null":
        _warn_null_rows(scored_df, input_cols, array_col, output_col)

    example_cols = tuple(
        c for c in df.columns if c not in (input_cols or []) and c != features_col
    )[:3]
    spec = _ScoreSpec(
        model_name=_model_name(model),
        input_cols=tuple(input_cols) if input_cols is not None else None,
        array_col=array_col,
        feature_label=features_col or "",
        n_features=n_features,
        feature_names=feature_names,
        methods=methods,
        kinds=kinds,
        as_struct=len(methods) > 1,
        on_null=on_null,
        drop_cols=drop,
        output_col=output_col,
        example_cols=example_cols,
    )
    if spec.as_struct:
        out_type: DataType = StructType(
            [StructField(m, _spark_type(k), True) for m, k in zip(methods, kinds, strict=True)]
        )
    else:
        out_type = _spark_type(kinds[0])
    schema = StructType(
        [f for f in scored_df.schema.fields if f.name not in drop]
        + [StructField(output_col, out_type, True)]
    )
    payload, key = _serialize.transport_dumps(model)
    # Every column through Python and back: on pyspark < 4.1, and when the
    # frame holds a user-defined type (a pyspark.ml vector). Spark's scalar
    # Arrow UDF converts a columnar child (a Parquet scan) to Arrow column by
    # column and has no converter for UDTs (UNSUPPORTED_DATATYPE), even for a
    # vector column the UDF does not read; mapInArrow handles them.
    if not HAS_MAP_COLUMNS or has_udt(df.schema):
        fn = functools.partial(_score_batches, payload=payload, key=key, spec=spec)
        return map_partitions(scored_df, fn, schema)
    return _with_arrow_udf(df, spec, out_type, payload, key, features_col)


def _with_arrow_udf(
    df: DataFrame,
    spec: _ScoreSpec,
    out_type: DataType,
    payload: bytes,
    key: str,
    features_col: str | None,
) -> DataFrame:
    """``df`` with the output column computed by a scalar Arrow UDF.

    Only the feature columns travel to Python and only the output comes back
    (``mapInArrow`` would carry every column both ways): on 20 features this
    is what keeps scoring level with a hand-written pandas UDF.
    """
    from pyspark.sql.pandas.types import to_arrow_type

    if spec.input_cols is not None:
        names = list(spec.input_cols)
        args = [col(c) for c in names]
    else:
        assert spec.array_col is not None
        assert features_col is not None
        names = [spec.array_col]
        if spec.array_col == _TMP_FEATURES:
            from pyspark.ml.functions import vector_to_array

            args = [vector_to_array(col(features_col))]
        else:
            args = [col(features_col)]
    udf_spec = dataclasses.replace(spec, example_cols=(), drop_cols=tuple(names))
    score = functools.partial(
        _score_arrays,
        names=tuple(names),
        payload=payload,
        key=key,
        spec=udf_spec,
        arrow_type=to_arrow_type(out_type),
    )
    return map_columns(df, spec.output_col, score, args, out_type)


def _score_arrays(
    items: Iterator[Any],
    *,
    names: tuple[str, ...],
    payload: bytes,
    key: str,
    spec: _ScoreSpec,
    arrow_type: pa.DataType,
) -> Iterator[pa.Array]:
    def batches() -> Iterator[pa.RecordBatch]:
        for item in items:
            arrays = list(item) if isinstance(item, tuple | list) else [item]
            yield pa.RecordBatch.from_arrays(arrays, names=list(names))

    for batch in _score_batches(batches(), payload=payload, key=key, spec=spec):
        yield batch.column(0).cast(arrow_type)


def save_model(model: Any, path: str, serializer: str = "skops") -> None:
    """Save a fitted model to a local file for ``sparklift predict`` (skops by default).

    See :func:`sparklift._serialize.dumps`.
    """
    _serialize.save(model, path, serializer)


def load_model(path: str, *, trusted: Sequence[str] = (), allow_pickle: bool = False) -> Any:
    """Load a model written by :func:`save_model` (see :func:`sparklift._serialize.loads`)."""
    return _serialize.load(path, trusted=trusted, allow_pickle=allow_pickle)


# --------------------------------------------------------------------------
# The pyspark.ml stage.
# --------------------------------------------------------------------------


def _to_method_list(value: Any) -> list[str]:
    from pyspark.ml.param import TypeConverters

    if isinstance(value, str):
        return [value]
    return TypeConverters.toListString(value)


class ModelTransformer(Transformer, HasInputCols, HasOutputCol, MLReadable, MLWritable):
    """A fitted single-machine model as a pyspark.ml Transformer.

    :meth:`transform` is :func:`predict` with the stage's params, so the stage
    can sit in a ``pyspark.ml.Pipeline`` (before or after Spark's own stages)
    and be saved and loaded with it, on Spark Classic and Spark Connect.

    Parameters
    ----------
    model : object
        The fitted model (anything :func:`predict` accepts).
    inputCols : list of str, optional
        Numeric feature columns; or give ``featuresCol``.
    featuresCol : str, optional
        One vector or array column holding all features.
    outputCol : str, default "prediction"
    method : str or list of str, default "predict"
        Method(s) to call; several give a struct column.
    onNull : {"error", "null"}, default "error"
        See :func:`predict`.
    serializer : {"skops", "pickle"}, default "skops"
        How :meth:`save` stores the model: skops (safe to load) or, as an
        explicit opt-in, pickle (loading it needs
        ``ModelTransformer.read().trust(allow_pickle=True).load(path)``).

    Notes
    -----
    Saved as ``path/metadata`` (pyspark.ml's JSON params) and ``path/model``
    (Parquet, one row: the model in sparklift's envelope, see
    :mod:`sparklift._serialize`). Everything is written with the DataFrame API,
    so it works on Spark Connect; ``write().overwrite()`` replaces an existing
    stage directory without the JVM helper pyspark uses (which Connect lacks),
    but a ``Pipeline``'s own ``overwrite()`` still needs Spark Classic: under
    Connect, save pipelines to a new path.

    Examples
    --------
    >>> stage = ModelTransformer(model=clf, inputCols=["x1", "x2"], method="predict_proba")
    >>> PipelineModel(stages=[stage]).write().save("/tmp/pipe")
    """

    featuresCol: Param[str] = Param(
        Params._dummy(),
        "featuresCol",
        "one vector or array column holding all features (instead of inputCols)",
        typeConverter=TypeConverters.toString,
    )
    method: Param[list[str]] = Param(
        Params._dummy(),
        "method",
        "model method(s) to call: predict, predict_proba, decision_function, transform, ...",
        typeConverter=_to_method_list,
    )
    onNull: Param[str] = Param(
        Params._dummy(),
        "onNull",
        "rows with a null feature: 'error' or 'null'",
        typeConverter=TypeConverters.toString,
    )
    serializer: Param[str] = Param(
        Params._dummy(),
        "serializer",
        "how save() stores the model: 'skops' (safe) or 'pickle' (opt-in)",
        typeConverter=TypeConverters.toString,
    )

    @keyword_only
    def __init__(
        self,
        *,
        model: Any = None,
        inputCols: list[str] | None = None,
        featuresCol: str | None = None,
        outputCol: str = "prediction",
        method: str | list[str] = "predict",
        onNull: str = "error",
        serializer: str = "skops",
    ) -> None:
        super().__init__()
        self._setDefault(
            outputCol="prediction", method=["predict"], onNull="error", serializer="skops"
        )
        kwargs = dict(self._input_kwargs)
        self.model = kwargs.pop("model", None)
        self._set(**kwargs)

    @keyword_only
    def setParams(
        self,
        *,
        inputCols: list[str] | None = None,
        featuresCol: str | None = None,
        outputCol: str = "prediction",
        method: str | list[str] = "predict",
        onNull: str = "error",
        serializer: str = "skops",
    ) -> ModelTransformer:
        """Set the stage's params (keyword arguments only)."""
        return self._set(**self._input_kwargs)

    def setModel(self, model: Any) -> ModelTransformer:
        """Replace the model this stage applies."""
        self.model = model
        return self

    def getModel(self) -> Any:
        """The model this stage applies."""
        return self.model

    def _transform(self, dataset: DataFrame) -> DataFrame:
        if self.model is None:
            raise NotFittedError("This ModelTransformer has no model: pass model=... or setModel()")
        return predict(
            dataset,
            self.model,
            input_cols=self.getOrDefault(self.inputCols)
            if self.isDefined(self.inputCols)
            else None,
            features_col=self.getOrDefault(self.featuresCol)
            if self.isDefined(self.featuresCol)
            else None,
            output_col=self.getOutputCol(),
            method=self.getOrDefault(self.method),
            on_null=self.getOrDefault(self.onNull),
        )

    def write(self) -> MLWriter:
        """A writer saving params and model with the DataFrame API (works on Connect)."""
        return _ModelTransformerWriter(self)

    @classmethod
    def read(cls) -> _ModelTransformerReader:
        """A reader; ``read().trust(types, allow_pickle=...)`` widens what it may load."""
        return _ModelTransformerReader(cls)

    @staticmethod
    @contextlib.contextmanager
    def trusting(types: Sequence[str] = (), *, allow_pickle: bool = False) -> Iterator[None]:
        """Widen what every ModelTransformer loaded inside the block may load.

        For stages loaded by someone else's reader, such as
        ``PipelineModel.load``, which gives no way to pass ``trust``. It holds
        for loads in this thread (a context variable), and nested blocks add
        to the outer one::

            with ModelTransformer.trusting(["mypkg.MyScaler"], allow_pickle=True):
                pipeline = PipelineModel.load(path)

        Parameters
        ----------
        types : list of str
            Extra types skops may load (fully qualified names).
        allow_pickle : bool, default False
            Whether a model saved with ``serializer="pickle"`` may be loaded:
            only for files you trust, as unpickling runs code.
        """
        outer_types, outer_pickle = _TRUST.get()  # nested blocks add to the outer one
        token = _TRUST.set(((*outer_types, *types), outer_pickle or bool(allow_pickle)))
        try:
            yield
        finally:
            _TRUST.reset(token)


#: What ``ModelTransformer.trusting`` adds to every load in its block.
_TRUST: contextvars.ContextVar[tuple[tuple[str, ...], bool]] = contextvars.ContextVar(
    "sparklift_model_transformer_trust", default=((), False)
)


class _ModelTransformerWriter(InstanceWriter):
    def saveImpl(self, path: str) -> None:
        instance = self.instance
        if instance.model is None:
            raise NotFittedError("This ModelTransformer has no model to save")
        spark = self.sparkSession
        mode = "overwrite" if self.shouldOverwrite else "error"
        metadata = DefaultParamsWriter._get_metadata_to_save(
            instance, spark, extraMetadata={"sparkliftFormatVersion": _serialize.FORMAT_VERSION}
        )
        data = _serialize.dumps(instance.model, instance.getOrDefault(instance.serializer))
        spark.createDataFrame([(metadata,)], schema="value string").coalesce(1).write.mode(
            mode
        ).text(os.path.join(path, "metadata"))
        spark.createDataFrame([(bytearray(data),)], schema="model binary").coalesce(1).write.mode(
            mode
        ).parquet(os.path.join(path, "model"))


class _ModelTransformerReader(MLReader["ModelTransformer"]):
    def __init__(self, cls: type[ModelTransformer]) -> None:
        super().__init__()
        self.cls = cls
        self._trusted: tuple[str, ...] = ()
        self._allow_pickle = False

    def trust(
        self, types: Sequence[str] = (), *, allow_pickle: bool = False
    ) -> _ModelTransformerReader:
        """Extra types skops may load, and whether a pickled model may be loaded."""
        self._trusted = tuple(types)
        self._allow_pickle = allow_pickle
        return self

    def load(self, path: str) -> ModelTransformer:
        spark = self.sparkSession
        metadata = DefaultParamsReader.loadMetadata(path, spark)
        if metadata.get("sparkliftFormatVersion") != _serialize.FORMAT_VERSION:
            raise ModelFormatError(
                f"{path} is not a ModelTransformer saved by this version of sparklift "
                f"(format version {metadata.get('sparkliftFormatVersion')!r})"
            )
        instance = self.cls()
        instance._resetUid(metadata["uid"])
        DefaultParamsReader.getAndSetParams(instance, metadata)
        row = spark.read.parquet(os.path.join(path, "model")).first()
        if row is None:
            raise ModelFormatError(f"{path}/model holds no model")
        types, allow_pickle = _TRUST.get()
        try:
            instance.model = _serialize.loads(
                bytes(row[0]),
                trusted=(*self._trusted, *types),
                allow_pickle=self._allow_pickle or allow_pickle,
            )
        except ModelFormatError as exc:
            if "allow_pickle" not in str(exc) and "trusted=" not in str(exc):
                raise
            raise ModelFormatError(
                f"{exc}. For a saved ModelTransformer that is "
                "ModelTransformer.read().trust([types], allow_pickle=...).load(path); "
                "for one inside a saved Pipeline, load the Pipeline within "
                "`with ModelTransformer.trusting([types], allow_pickle=...):`"
            ) from None
        return instance
