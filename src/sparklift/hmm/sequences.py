"""Sequence columns: validating them, building them, and reading them as arrays.

A sequence data set is a DataFrame with one row per sequence and an array
column holding its frames:

=========  ===============================  ==========================================
kind       Spark type                       frames
=========  ===============================  ==========================================
``int``    ``array<int|long|short|byte>``   symbols ``0 .. n_features - 1`` (categorical)
``float``  ``array<double|float|integer>``  one number per frame (univariate Gaussian)
``vector`` ``array<array<number>>``         ``n_features`` numbers per frame (multivariate
                                            Gaussian, GMM, Poisson and multinomial counts);
                                            ``array<number>`` is read as ``n_features = 1``
=========  ===============================  ==========================================

The names used by the rest of :mod:`sparklift.hmm` (``em.py``,
``estimators.py``):

* :func:`validate_sequences` ``(df, col, kind, n_features=None, *, nonnegative=False,
  integer=False, whole=False, n_trials=None) -> SequenceSummary``: one aggregate Spark job
  of SQL expressions (no Python UDF); raises one
  :class:`~sparklift.errors.InvalidInputError` naming the column, the number
  of bad rows and an example row, or
  :class:`~sparklift.errors.InvalidColumnTypeError` for a wrong column type.
  The summary holds ``n_sequences``, ``n_frames``, ``n_features`` (inferred
  when not given: ``max symbol + 1`` for ``int``, the frame dimension for
  ``vector``, 1 for ``float``), ``min_length`` and ``max_length``.
* :func:`batch_to_arrays` ``(column, kind) -> (X, offsets)``: inside a
  partition function, turns the Arrow list column of a record batch into
  ``X`` of shape ``(n_frames, n_features)`` (hmmlearn's layout: ``int`` kind
  gives ``int64`` of shape ``(n_frames, 1)``, so ``X[:, 0]`` is the 1-d symbol
  array; the other kinds ``float64``) and ``offsets`` (``int64``, length
  ``n_sequences + 1``, starting at 0; sequence ``i`` is
  ``X[offsets[i]:offsets[i + 1]]``). No copy when the Arrow buffers already
  have the target type (``array<long>``, ``array<double>``,
  ``array<array<double>>``).
* :func:`sample_frames` ``(df, col, kind, max_frames, seed, *, n_frames=None) ->
  ndarray``: a bounded, seeded sample of frames for initialisation (k-means
  and friends) of shape ``(<= max_frames, n_features)``. When the data set
  has at most ``max_frames`` frames it is all of them, in row order, which is
  exactly what hmmlearn sees as ``X``.
* :func:`sequences_from_events` ``(df, id_col, order_col, value_cols,
  output_col="sequence") -> DataFrame``: one row per id from a long event
  table, frames ordered by ``order_col``, built in the JVM.
* :func:`sequences_from_arrays` ``(spark, X, lengths, col="sequence") ->
  DataFrame``: the same data hmmlearn takes as ``(X, lengths)``, as a
  DataFrame (for tests, examples and benchmarks; small and medium data only,
  the data go through the driver).

The public helpers are importable from this module and listed in
``__all__``::

    from sparklift.hmm.sequences import (
        sequences_from_arrays,
        sequences_from_events,
        validate_sequences,
    )
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from sparklift import _spark
from sparklift.errors import InvalidColumnTypeError, InvalidInputError, count_of

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = [
    "KINDS",
    "SequenceSummary",
    "batch_to_arrays",
    "sample_frames",
    "sequences_from_arrays",
    "sequences_from_events",
    "validate_sequences",
]

KINDS = ("int", "float", "vector")

_INTEGRAL = ("ByteType", "ShortType", "IntegerType", "LongType")
_FRACTIONAL = ("FloatType", "DoubleType")
_EXPECTED_TYPES = {
    "int": "array<int> or array<bigint> (integer symbols)",
    "float": "array<double> (one number per frame)",
    "vector": "array<array<double>> (one vector per frame) or array<double>",
}


@dataclass(frozen=True)
class SequenceSummary:
    """What :func:`validate_sequences` found in a valid sequence column.

    Attributes
    ----------
    column : str
        The column checked.
    kind : str
        ``"int"``, ``"float"`` or ``"vector"``.
    n_sequences : int
        Number of rows (sequences).
    n_frames : int
        Total number of frames over all sequences.
    n_features : int
        Number of symbols (``int``) or the frame dimension (``float``: 1).
    min_length, max_length : int
        Shortest and longest sequence, in frames.
    nested : bool
        Whether frames are arrays themselves (``array<array<...>>``).
    integral : bool
        Whether the values are stored as integers.
    checksum : str or None
        With ``checksum=True``: the sum of every row's 64-bit hash of its
        sequence, as text. It does not depend on row order or partitioning,
        and changes when any sequence does (checkpoints use it to tell data
        sets apart).
    frame_totals : tuple of int or None
        With ``frame_totals=True``: the smallest and the largest sum of one
        frame's counts (multinomial sequences).
    """

    column: str
    kind: str
    n_sequences: int
    n_frames: int
    n_features: int
    min_length: int
    max_length: int
    nested: bool
    integral: bool
    checksum: str | None = None
    frame_totals: tuple[int, int] | None = None


# ---------------------------------------------------------------------------
# column types


def _type_name(data_type: Any) -> str:
    return type(data_type).__name__


def column_layout(df: DataFrame, col: str, kind: str) -> tuple[bool, bool]:
    """``(nested, integral)`` of a sequence column, or a clear type error."""
    from pyspark.sql.types import ArrayType

    if kind not in KINDS:
        raise InvalidInputError(f"kind must be one of {list(KINDS)}; got {kind!r}")
    fields = {f.name: f for f in df.schema.fields}
    if col not in fields:
        raise InvalidInputError(
            f"Column '{col}' not found; the DataFrame has columns {sorted(fields)}"
        )
    data_type = fields[col].dataType
    found = data_type.simpleString()

    def wrong() -> InvalidColumnTypeError:
        return InvalidColumnTypeError(
            f"Column '{col}' has type {found}; expected {_EXPECTED_TYPES[kind]}"
        )

    if not isinstance(data_type, ArrayType):
        raise wrong()
    element = data_type.elementType
    nested = isinstance(element, ArrayType)
    if nested:
        if kind != "vector":
            raise wrong()
        element = element.elementType
    name = _type_name(element)
    integral = name in _INTEGRAL
    if name == "DecimalType":  # exact decimals: the kernels compute in doubles
        target = {"int": "array<int>", "float": "array<double>"}.get(
            kind, "array<array<double>>" if nested else "array<double>"
        )
        error = wrong()
        raise InvalidColumnTypeError(
            f"{error} (cast the column, e.g. F.col('{col}').cast('{target}'))"
        )
    if not integral and name not in _FRACTIONAL:
        raise wrong()
    if kind == "int" and not integral:
        raise InvalidColumnTypeError(
            f"Column '{col}' has type {found}; expected {_EXPECTED_TYPES[kind]}: "
            "symbols must be integers (cast the column, e.g. "
            f"F.col('{col}').cast('array<int>'), if the values are whole numbers)"
        )
    return nested, integral


# ---------------------------------------------------------------------------
# validation


def _not_finite(x: Column) -> Column:
    from pyspark.sql import functions as F

    return F.isnan(x) | (x == float("inf")) | (x == float("-inf"))


def _not_whole(x: Column) -> Column:
    """A finite value with a fractional part (NaN and infinities are checked apart)."""
    return ~_not_finite(x) & (x % 1 != 0)


def _raise_problems(
    df: DataFrame,
    col: str,
    n_rows: int,
    problems: list[tuple[str, Column, Column | None]],
    counts: dict[str, int],
    n_bad: int,
) -> None:
    found = [(label, cond, detail) for label, cond, detail in problems if counts[label]]
    if not found:
        return
    label, cond, detail = found[0]
    parts = "; ".join(f"{counts[lab]} with {lab}" for lab, _, _ in found)
    example = _spark.example_row(df, cond, detail)
    raise InvalidInputError(
        f"Column '{col}' has {n_bad} bad row{'s' if n_bad != 1 else ''} out of {n_rows}: "
        f"{parts}. First problem, {label}: {example}. Nothing was dropped: fix or filter "
        "these rows first."
    )


def require_dataframe(dataset: Any, col: str) -> None:
    """Refuse hmmlearn's ``(X, lengths)`` arrays (or a pandas frame) with the way to convert.

    Only array-likes are refused here (NumPy, pandas, lists): the check reads
    nothing from the dataset, so it runs before the estimator's own checks.
    """
    if not (
        dataset is None or isinstance(dataset, (list, tuple)) or hasattr(type(dataset), "__array__")
    ):
        return
    raise InvalidInputError(
        f"expected a Spark DataFrame with one sequence per row in column '{col}'; got "
        f"{type(dataset).__module__}.{type(dataset).__name__}. hmmlearn's (X, lengths) "
        "become one with sequences_from_arrays(spark, X, lengths) (from "
        "sparklift.hmm.sequences); an event table with sequences_from_events."
    )


def validate_sequences(
    df: DataFrame,
    col: str,
    kind: str,
    n_features: int | None = None,
    *,
    nonnegative: bool = False,
    integer: bool = False,
    whole: bool = False,
    n_trials: int | None = None,
    checksum: bool = False,
    frame_totals: bool = False,
    example_from: DataFrame | None = None,
    allow_empty: bool = False,
) -> SequenceSummary:
    """Check a sequence column and summarise it, in one Spark job.

    Every check is a Spark SQL expression evaluated in the JVM (no Python
    UDF); an error message comes with one small extra query for an example.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        One row per sequence.
    col : str
        The sequence column.
    kind : {"int", "float", "vector"}
        ``"int"``: categorical symbols, each in ``[0, n_features)``;
        ``"float"``: one finite number per frame; ``"vector"``: a finite vector
        of ``n_features`` numbers per frame (``array<number>`` is accepted as
        vectors of one number).
    n_features : int, optional
        Number of symbols (``int``) or frame dimension (``vector``). Inferred
        when not given.
    nonnegative : bool, default False
        Require every value to be ``>= 0`` (Poisson and multinomial counts).
    integer : bool, default False
        Require integer storage (``array<array<int>>``; multinomial counts).
    whole : bool, default False
        Require whole numbers (Poisson counts; floating-point storage is
        accepted when every value is whole).
    n_trials : int, optional
        Require each ``vector`` frame to sum to it (multinomial).
    checksum : bool, default False
        Also compute :attr:`SequenceSummary.checksum` (in the same job).
    frame_totals : bool, default False
        Also compute :attr:`SequenceSummary.frame_totals` (in the same job;
        ``vector`` sequences).
    example_from : pyspark.sql.DataFrame, optional
        Where an error's example row is taken from, when ``df`` is a
        projection of it (so that the example shows the row's ids too);
        default ``df``.
    allow_empty : bool, default False
        Accept a data set with no rows (scoring one is valid; fitting on one
        is not): the summary then counts zeros.

    Returns
    -------
    SequenceSummary

    Raises
    ------
    InvalidColumnTypeError
        When the column has the wrong Spark type.
    InvalidInputError
        When the column is missing, the data set is empty, or rows are null,
        empty, have null/negative/out-of-range symbols, NaN or infinite
        values, ragged frame dimensions or wrong multinomial totals. The
        message names the column, the number of bad rows (all problems
        counted in the same pass) and an example row.
    """
    from pyspark.sql import functions as F

    require_dataframe(df, col)
    nested, integral = column_layout(df, col, kind)
    if integer and not integral:
        raise InvalidColumnTypeError(
            f"Column '{col}' has type {df.schema[col].dataType.simpleString()}; "
            "expected integer counts (array<array<int>> or array<array<bigint>>)"
        )
    if n_features is not None and int(n_features) < 1:
        raise InvalidInputError(f"n_features must be a positive integer; got {n_features!r}")
    c = _spark.col(col)
    not_null = c.isNotNull()

    def frame_sum(v: Column) -> Column:
        """The sum of one nested frame's values (its number of trials, for counts)."""
        return F.aggregate(v, F.lit(0.0), lambda acc, x: acc + x.cast("double"))

    length = F.when(not_null, F.size(c))

    # (label, row condition, offending-value expression or None)
    problems: list[tuple[str, Column, Column | None]] = [
        ("a null sequence", c.isNull(), None),
        ("an empty sequence", not_null & (F.size(c) == 0), None),
    ]
    aggs = [
        F.count(F.lit(1)).alias("n_rows"),
        F.sum(length).cast("long").alias("n_frames"),
        F.min(length).alias("min_length"),
        F.max(length).alias("max_length"),
    ]
    if not nested:
        problems.append(("a null value", F.exists(c, lambda x: x.isNull()), None))
        if kind == "int" or nonnegative:
            what = "a negative symbol" if kind == "int" else "a negative value"
            problems.append((what, F.exists(c, lambda x: x < 0), F.filter(c, lambda x: x < 0)[0]))
        if kind == "int":
            aggs.append(F.max(F.array_max(c)).alias("max_value"))
            if n_features is not None:
                n = int(n_features)
                problems.append(
                    (
                        f"a symbol >= n_features={n}",
                        F.exists(c, lambda x: x >= n),
                        F.filter(c, lambda x: x >= n)[0],
                    )
                )
        if not integral:
            problems.append(
                (
                    "a NaN or infinite value",
                    F.exists(c, _not_finite),
                    F.filter(c, _not_finite)[0],
                )
            )
            if whole:
                problems.append(
                    (
                        "a count that is not a whole number",
                        F.exists(c, _not_whole),
                        F.filter(c, _not_whole)[0],
                    )
                )
        if n_trials is not None:
            total = int(n_trials)
            problems.append(
                (
                    f"frames whose counts do not sum to n_trials={total}",
                    F.exists(c, lambda x: x != total),
                    F.filter(c, lambda x: x != total)[0],
                )
            )
        if kind == "vector" and n_features is not None and int(n_features) != 1:
            problems.append(
                (
                    f"frames of dimension 1 (expected n_features={int(n_features)})",
                    not_null & (F.size(c) > 0),
                    None,
                )
            )
    else:
        dims = F.transform(c, lambda v: F.size(v))
        aggs.append(F.min(F.array_min(dims)).alias("min_dim"))
        aggs.append(F.max(F.array_max(dims)).alias("max_dim"))
        problems.append(("a null frame", F.exists(c, lambda v: v.isNull()), None))
        problems.append(
            (
                "a null value",
                F.exists(c, lambda v: F.exists(v, lambda x: x.isNull())),
                F.filter(c, lambda v: F.exists(v, lambda x: x.isNull()))[0],
            )
        )
        problems.append(("an empty frame", F.exists(c, lambda v: F.size(v) == 0), None))
        if n_features is not None:
            n = int(n_features)
            problems.append(
                (
                    f"frames whose dimension is not n_features={n}",
                    F.exists(c, lambda v: F.size(v) != n),
                    F.filter(c, lambda v: F.size(v) != n)[0],
                )
            )
        if nonnegative:
            problems.append(
                (
                    "a negative value",
                    F.exists(c, lambda v: F.exists(v, lambda x: x < 0)),
                    F.filter(c, lambda v: F.exists(v, lambda x: x < 0))[0],
                )
            )
        if not integral:
            problems.append(
                (
                    "a NaN or infinite value",
                    F.exists(c, lambda v: F.exists(v, _not_finite)),
                    F.filter(c, lambda v: F.exists(v, _not_finite))[0],
                )
            )
            if whole:
                problems.append(
                    (
                        "a count that is not a whole number",
                        F.exists(c, lambda v: F.exists(v, _not_whole)),
                        F.filter(c, lambda v: F.exists(v, _not_whole))[0],
                    )
                )
        if n_trials is not None:
            total = int(n_trials)
            problems.append(
                (
                    f"frames whose counts do not sum to n_trials={total}",
                    F.exists(c, lambda v: frame_sum(v) != total),
                    F.filter(c, lambda v: frame_sum(v) != total)[0],
                )
            )
    aggs += [F.count_if(cond).alias(f"p{i}") for i, (_, cond, _) in enumerate(problems)]
    any_bad = problems[0][1]
    for _, cond, _ in problems[1:]:
        any_bad = any_bad | cond
    aggs.append(F.count_if(any_bad).alias("n_bad"))
    if frame_totals:
        # A frame of one number (not nested) is its own total.
        sums = F.transform(c, frame_sum) if nested else c
        aggs.append(F.min(F.array_min(sums)).alias("min_total"))
        aggs.append(F.max(F.array_max(sums)).alias("max_total"))
    if checksum:
        # A decimal sum cannot overflow, whatever the number of rows.
        aggs.append(F.sum(F.xxhash64(c).cast("decimal(20,0)")).alias("checksum"))

    from sparklift._spark import translate_errors

    with translate_errors():
        stats = df.agg(*aggs).collect()[0].asDict()
    n_rows = int(stats["n_rows"])
    if n_rows == 0:
        if not allow_empty:
            raise InvalidInputError(f"Column '{col}' has no rows: there are no sequences to use")
        return SequenceSummary(
            column=col,
            kind=kind,
            n_sequences=0,
            n_frames=0,
            n_features=int(n_features) if n_features is not None else 0,
            min_length=0,
            max_length=0,
            nested=nested,
            integral=integral,
            checksum="0" if checksum else None,
            frame_totals=None,
        )
    counts = {label: int(stats[f"p{i}"]) for i, (label, _, _) in enumerate(problems)}
    shown = example_from if example_from is not None else df
    _raise_problems(shown, col, n_rows, problems, counts, int(stats["n_bad"]))

    if kind == "int":
        inferred = int(stats["max_value"]) + 1
        features = int(n_features) if n_features is not None else inferred
    elif nested:
        if stats["min_dim"] != stats["max_dim"]:
            # Frame dimensions differ and n_features was not given: measure
            # against the first row's first frame.
            first = df.filter(not_null & (F.size(c) > 0)).select(F.size(c[0])).limit(1)
            d = int(first.collect()[0][0])
            ragged = F.exists(c, lambda v: F.size(v) != d)
            label = f"frames whose dimension differs from the first row's ({d})"
            n_ragged = df.filter(ragged).count()
            problems = [(label, ragged, F.filter(c, lambda v: F.size(v) != d)[0])]
            _raise_problems(shown, col, n_rows, problems, {label: n_ragged}, n_ragged)
        features = int(stats["max_dim"])
    else:
        features = 1
    return SequenceSummary(
        column=col,
        kind=kind,
        n_sequences=n_rows,
        n_frames=int(stats["n_frames"]),
        n_features=features,
        min_length=int(stats["min_length"]),
        max_length=int(stats["max_length"]),
        nested=nested,
        integral=integral,
        checksum=str(stats["checksum"]) if checksum else None,
        frame_totals=(int(stats["min_total"]), int(stats["max_total"])) if frame_totals else None,
    )


# ---------------------------------------------------------------------------
# Arrow -> numpy


def _check_no_nulls(array: pa.Array, what: str) -> None:
    if array.null_count:
        raise InvalidInputError(
            f"{array.null_count} null {what} in a batch of sequences; "
            "run validate_sequences on the column first"
        )


def _list_parts(array: pa.Array, what: str) -> tuple[np.ndarray, pa.Array]:
    """Offsets (int64, from 0) and the values of a list array, respecting slices."""
    _check_no_nulls(array, what)
    offsets = array.offsets.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    values = array.flatten()  # the referenced values only, honouring the slice
    if len(offsets) and offsets[0] != 0:
        offsets = offsets - offsets[0]
    return offsets, values


def batch_to_arrays(
    column: pa.Array | pa.ChunkedArray, kind: str, dim: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Turn an Arrow list column into hmmlearn's ``(X, offsets)`` layout.

    Parameters
    ----------
    column : pyarrow.ListArray, LargeListArray or ChunkedArray of them
        The sequence column of a record batch (``batch.column(name)``).
    kind : {"int", "float", "vector"}
        As for :func:`validate_sequences`.
    dim : int, optional
        For ``kind="vector"`` stored flat (each sequence the concatenation of
        its frames, as :func:`flat_frames` makes): the frame dimension.

    Returns
    -------
    X : ndarray of shape (n_frames, n_features)
        ``int64`` for ``kind="int"`` (``n_features`` is 1: ``X[:, 0]`` is the
        symbol array), ``float64`` otherwise. C-contiguous.
    offsets : ndarray of shape (n_sequences + 1,), int64
        Sequence ``i`` is ``X[offsets[i]:offsets[i + 1]]``; ``offsets[0] == 0``.

    Raises
    ------
    InvalidInputError
        On null sequences, frames or values, or ragged frame dimensions
        (:func:`validate_sequences` reports these with counts and examples
        before any partition function runs).
    """
    if kind not in KINDS:
        raise InvalidInputError(f"kind must be one of {list(KINDS)}; got {kind!r}")
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if not pa.types.is_list(column.type) and not pa.types.is_large_list(column.type):
        raise InvalidColumnTypeError(
            f"Expected an Arrow list column of sequences; got {column.type}"
        )
    offsets, values = _list_parts(column, "sequences")
    dtype = np.int64 if kind == "int" else np.float64
    if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
        if kind != "vector":
            raise InvalidColumnTypeError(
                f"Frames are arrays ({column.type}) but kind={kind!r} expects numbers"
            )
        inner_offsets, flat = _list_parts(values, "frames")
        n_frames = len(inner_offsets) - 1
        dims = np.diff(inner_offsets)
        d = int(dims[0]) if n_frames else 0
        if n_frames and (dims != d).any():
            bad = int(np.count_nonzero(dims != d))
            raise InvalidInputError(
                f"{bad} frames in a batch have a dimension other than {d}; "
                "run validate_sequences on the column first"
            )
        _check_no_nulls(flat, "values")
        X = _to_numpy(flat, dtype).reshape(n_frames, d)
    elif dim is not None and kind == "vector":
        if (offsets % dim).any():
            raise InvalidInputError(
                f"a flat sequence's length is not a multiple of its frame dimension {dim}"
            )
        _check_no_nulls(values, "values")
        X = _to_numpy(values, dtype).reshape(-1, dim)
        offsets = offsets // dim
    else:
        _check_no_nulls(values, "values")
        X = _to_numpy(values, dtype).reshape(-1, 1)
    return X, offsets


def flat_frames(
    data: DataFrame, col: str, kind: str, n_features: int
) -> tuple[DataFrame, int | None]:
    """``col`` with each sequence's frames concatenated, when they are arrays.

    EM streams the cached sequences to Python once per iteration, and the JVM
    turns ``array<array<double>>`` into Arrow several times slower than a flat
    ``array<double>`` of the same numbers. Returns the DataFrame to iterate
    over and the ``dim`` to give :func:`batch_to_arrays` (None when the
    column is already flat). Validate first (every frame ``n_features``
    long): flattening hides ragged frames.
    """
    from pyspark.sql import functions as F

    if kind != "vector" or not column_layout(data, col, kind)[0]:
        return data, None
    return data.select(F.flatten(_spark.col(col)).alias(col)), int(n_features)


def _to_numpy(values: pa.Array, dtype: type) -> np.ndarray:
    out = values.to_numpy(zero_copy_only=False)
    return np.ascontiguousarray(out, dtype=dtype)


# ---------------------------------------------------------------------------
# sampling frames for initialisation


def sample_frames(
    df: DataFrame,
    col: str,
    kind: str,
    max_frames: int,
    seed: int,
    *,
    n_frames: int | None = None,
) -> np.ndarray:
    """A bounded, seeded sample of frames, for initialisation on the driver.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        One row per sequence (validated).
    col : str
        The sequence column.
    kind : {"int", "float", "vector"}
        As for :func:`validate_sequences`.
    max_frames : int
        Upper bound on the frames returned.
    seed : int
        Seed of Spark's row sample and of the frame subsample.
    n_frames : int, optional
        Total frames in ``df`` (``SequenceSummary.n_frames``); counted when
        not given.

    Returns
    -------
    ndarray of shape (n, n_features), n <= max_frames
        As :func:`batch_to_arrays`'s ``X``. When ``df`` holds at most
        ``max_frames`` frames, all of them in row order (exactly hmmlearn's
        ``X``); otherwise frames from a seeded sample of sequences, thinned to
        ``max_frames`` keeping their order. Deterministic for the same data,
        partitioning and seed.
    """
    from pyspark.sql import functions as F

    if max_frames < 1:
        raise InvalidInputError(f"max_frames must be >= 1; got {max_frames!r}")
    if kind not in KINDS:
        raise InvalidInputError(f"kind must be one of {list(KINDS)}; got {kind!r}")
    c = _spark.col(col)
    if n_frames is None:
        n_frames = int(df.agg(F.sum(F.size(c))).collect()[0][0] or 0)
    data = df.select(c.alias("sequence"))
    if n_frames <= max_frames:
        with _spark.translate_errors():
            table = data.toArrow()
        return batch_to_arrays(table.column("sequence"), kind)[0]
    # Frames are kept with probability `fraction` in the workers, each
    # partition with its own seeded generator; 10% headroom so the thinning
    # below almost never leaves fewer than max_frames.
    fraction = min(1.0, 1.1 * max_frames / n_frames)
    partial_fn = functools.partial(_sample_partition, kind=kind, fraction=fraction, seed=int(seed))
    parts = _spark.map_reduce(data, partial_fn, empty=[])
    parts = [x for _, x in sorted(parts, key=lambda item: item[0]) if len(x)]
    if not parts:
        raise InvalidInputError(f"Column '{col}' has no frames to sample")
    X = np.concatenate(parts)
    if len(X) > max_frames:
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(X), size=max_frames, replace=False))
        X = np.ascontiguousarray(X[keep])
    return X


def _sample_partition(
    batches: Iterator[pa.RecordBatch], *, kind: str, fraction: float, seed: int
) -> list[tuple[int, np.ndarray]] | None:
    from pyspark import TaskContext

    context = TaskContext.get()
    partition = context.partitionId() if context is not None else 0
    rng = np.random.default_rng([seed, partition])
    kept = []
    for batch in batches:
        X, _ = batch_to_arrays(batch.column(0), kind)
        mask = rng.random(len(X)) < fraction
        if mask.any():
            kept.append(np.ascontiguousarray(X[mask]))
    if not kept:
        return None
    return [(partition, np.concatenate(kept))]


# ---------------------------------------------------------------------------
# building sequence columns


def sequences_from_events(
    df: DataFrame,
    id_col: str | Sequence[str],
    order_col: str,
    value_cols: str | Sequence[str],
    output_col: str = "sequence",
) -> DataFrame:
    """Build one row per sequence from a long table of events.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        One row per event.
    id_col : str or sequence of str
        Identifies the sequence an event belongs to (a session, a user); several
        columns together for a composite id (``["user", "session"]``).
    order_col : str
        Orders events within a sequence (a timestamp, a counter). Events with
        equal order are ordered by their values, so the result is deterministic.
    value_cols : str or sequence of str
        One column: frames are its values (``array<value type>``, e.g. symbols
        for a categorical model). Several columns: frames are vectors of them,
        cast to double (``array<array<double>>``).
    output_col : str, default "sequence"
        Name of the sequence column.

    Returns
    -------
    pyspark.sql.DataFrame
        The id column(s) and ``output_col``, one row per id (lazy). Built in
        the JVM with ``groupBy`` and a sorted ``collect_list``.

    Raises
    ------
    InvalidInputError
        When a column is missing, ``output_col`` is also an id column, or ids,
        orders or values are null; the message gives the count of such events
        and an example.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import CharType, DoubleType, FloatType, StringType, VarcharType

    single = isinstance(value_cols, str)
    values = [value_cols] if isinstance(value_cols, str) else list(value_cols)
    ids = [id_col] if isinstance(id_col, str) else list(id_col)
    if not values:
        raise InvalidInputError("value_cols must name at least one column")
    if not ids:
        raise InvalidInputError("id_col must name at least one column")
    if len(set(ids)) != len(ids):
        raise InvalidInputError(f"id_col names a column more than once: {ids}")
    missing = [c for c in (*ids, order_col, *values) if c not in df.columns]
    if missing:
        raise InvalidInputError(
            f"Column(s) {missing} not found; the DataFrame has columns {df.columns}"
        )
    if output_col in ids:
        raise InvalidInputError(
            f"output_col '{output_col}' is also an id column; the result keeps the ids, so "
            "give the sequence column another name"
        )
    order_type = df.schema[order_col].dataType
    if isinstance(order_type, (StringType, VarcharType, CharType)):
        raise InvalidColumnTypeError(
            f"Order column '{order_col}' is a string, which sorts as text ('10' before '9', "
            "dates in any format but ISO 8601 out of order); cast it to what it holds first: "
            f"F.col('{order_col}').cast('long') for numbers, F.to_timestamp('{order_col}', "
            "format) for times."
        )
    checks = [(name, _spark.col(name).isNull(), "null") for name in (*ids, order_col, *values)]
    if isinstance(order_type, (FloatType, DoubleType)):  # NaN would sort after every number
        checks[len(ids)] = (order_col, _spark.null_or_nan(df, order_col), "null or NaN")
    counts = df.agg(
        *[F.count_if(cond).alias(f"n{i}") for i, (_, cond, _) in enumerate(checks)]
    ).collect()[0]
    for i, (name, cond, what) in enumerate(checks):
        if counts[i]:
            example = _spark.example_row(df, cond, None)
            raise InvalidInputError(
                f"Column '{name}' is {what} in {count_of(counts[i], 'event row')}; every "
                f"event needs an id, an order and values. {example}"
            )
    if single:
        frame = _spark.col(values[0])
    else:
        frame = F.array(*[_spark.col(v).cast("double") for v in values])
    events = F.struct(_spark.col(order_col).alias("o"), frame.alias("v"))
    grouped = df.groupBy(*map(_spark.col, ids)).agg(
        F.sort_array(F.collect_list(events)).alias("__events__")
    )
    return grouped.select(
        *map(_spark.col, ids),
        F.transform("__events__", lambda e: e["v"]).alias(output_col),
    )


def sequences_from_arrays(
    spark: SparkSession,
    X: np.ndarray,
    lengths: Sequence[int] | np.ndarray | None = None,
    col: str = "sequence",
    *,
    num_partitions: int | None = None,
) -> DataFrame:
    """Turn hmmlearn's ``(X, lengths)`` into a sequence DataFrame.

    For tests, examples and benchmarks: the data travel from the driver, so
    keep this to data that fit in the driver's memory comfortably.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
        Classic or Connect.
    X : ndarray of shape (n_frames, n_features) or (n_frames,)
        Integer arrays give ``array<bigint>`` (one column) or
        ``array<array<bigint>>``; float arrays ``array<double>`` (one column) or
        ``array<array<double>>``.
    lengths : array-like of int, optional
        Sequence lengths summing to ``n_frames``; one sequence when omitted.
    col : str, default "sequence"
        Name of the sequence column. A ``seq_id`` column (0, 1, ...) is added.
    num_partitions : int, optional
        Repartition the result (by a round-robin-free range of ``seq_id``).

    Returns
    -------
    pyspark.sql.DataFrame
    """
    X = np.asarray(X)
    if X.ndim == 2 and X.shape[1] == 1 and np.issubdtype(X.dtype, np.integer):
        X = X[:, 0]
    lengths_arr = np.asarray([len(X)] if lengths is None else lengths, dtype=np.int64)
    if lengths_arr.sum() != len(X) or (lengths_arr < 0).any():
        raise InvalidInputError(
            f"lengths must be non-negative and sum to len(X)={len(X)}; they sum to "
            f"{int(lengths_arr.sum())}"
        )
    offsets = np.concatenate([[0], np.cumsum(lengths_arr)]).astype(np.int64)
    if X.ndim == 1:
        values = pa.array(
            X.astype(np.int64) if np.issubdtype(X.dtype, np.integer) else X.astype(np.float64)
        )
    else:
        flat_type = np.int64 if np.issubdtype(X.dtype, np.integer) else np.float64
        flat = pa.array(np.ascontiguousarray(X, dtype=flat_type).ravel())
        inner = np.arange(0, X.shape[0] * X.shape[1] + 1, X.shape[1], dtype=np.int64)
        values = pa.LargeListArray.from_arrays(pa.array(inner), flat).cast(pa.list_(flat.type))
    seqs = pa.LargeListArray.from_arrays(pa.array(offsets), values).cast(pa.list_(values.type))
    table = pa.table({"seq_id": pa.array(np.arange(len(lengths_arr), dtype=np.int64)), col: seqs})
    df = spark.createDataFrame(table)
    if num_partitions is not None:
        df = df.repartitionByRange(int(num_partitions), "seq_id")
    return df
