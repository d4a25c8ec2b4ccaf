"""Time-series cross-validation for Spark ML, with folds run in parallel.

:class:`TimeSeriesCrossValidator` is a pyspark.ml Estimator shaped like
``pyspark.ml.tuning.CrossValidator`` (``estimator``, ``estimatorParamMaps``,
``evaluator``, ``parallelism``, ``seed``, ``collectSubModels``) that splits on
a time column instead of at random.

Folds
-----
Time is counted in *time points*: the distinct values of ``timeCol`` in
increasing order (days for daily data, hours for hourly data), so the column
may be a number, a date, a timestamp (with or without time zone) or a string,
and every window holds whole points.

* ``numFolds`` folds (default 3): the validation windows are the last
  ``numFolds * horizon`` points, ``horizon`` points each, oldest first;
* or explicit ``cutoffs``: fold *i* trains on points at or before
  ``cutoffs[i]`` and validates on the ``horizon`` points after the gap;
* ``gap`` points between the end of training and the start of validation are
  left out of both (for features that look back, or delayed labels);
* ``windowType="expanding"`` trains on everything before the gap;
  ``"sliding"`` on the last ``trainWindow`` points only;
* with ``seriesIdCols``, points are counted per series, back from each series'
  own last point, so a panel of series of different lengths is split fairly
  (``numFolds`` only).

Parallelism
-----------
Spark's ``CrossValidator`` parallelises parameter maps within a fold and runs
folds one after another. Here every (fold, parameter map) pair is one unit of
work, and up to ``parallelism`` of them run at once as Spark jobs from driver
threads (the way pyspark's ``CrossValidator`` parallelises, so it works on
Spark Connect too). The rows the folds use are cached once for the whole
search and every fold's windows are range filters on the time column over
that cache: one copy of the data in memory however many folds there are
(expanding training windows overlap almost entirely), the source read once
for all the fits (and once before, to find the time points), no per-fold
caching job, and each fit's query plan no deeper than the
user's own. The cache keeps the source's partitions: the fits see the data
laid out as a loop over the source would (estimators that sample per
partition, such as random forests, give the same models). On small data,
fewer partitions make every fit's Spark jobs cheaper (see docs/tuning.md).

After the search, ``bestModel`` is refitted on the whole dataset with the best
parameter map, as ``CrossValidator`` does; when the folds' windows together
span all the data (no ``trainWindow`` or cut-off leaves rows out) the whole
dataset is what was cached, and the refit reads it from the cache.
"""

from __future__ import annotations

import datetime as _dt
import decimal as _decimal
import itertools
import json
import math
import re
import warnings
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pyspark import inheritable_thread_target, keyword_only
from pyspark.ml import Estimator, Model
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasCollectSubModels, HasParallelism

# pyspark's own CrossValidator and TrainValidationSplit share these Params
# (estimator, estimatorParamMaps, evaluator, seed); reusing them keeps our
# validator interchangeable with theirs.
from pyspark.ml.tuning import _ValidatorParams
from pyspark.ml.util import MLReadable, MLReader, MLWritable, MLWriter

from sparklift import _spark
from sparklift._ml import InstanceWriter
from sparklift._spark import col
from sparklift.errors import (
    InvalidColumnTypeError,
    InvalidInputError,
    ModelFormatError,
    ResourceLimitError,
    count_of,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["TimeSeriesCrossValidator", "TimeSeriesCrossValidatorModel"]

#: Collecting more distinct time points than this to the driver is refused.
MAX_TIME_POINTS = 1_000_000

FORMAT_VERSION = 1
_INDEX = "__sparklift_time_index"
_COUNT = "__sparklift_time_rows"
_KEY = "__sparklift_time_key"
_SHOWN = "__sparklift_time_shown"
_BAD_LABELS = "__sparklift_bad_labels"
#: A timestamp boundary as ISO 8601 in the session time zone, with its offset
#: (``xxxxx``: ``+05:30``, or ``+00:17:30`` for an offset with seconds).
_TIMESTAMP_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSSSSxxxxx"


class SingleClassWarning(UserWarning):
    """A fold's window holds a single class of the label (fitted and scored all the same)."""


@dataclass(frozen=True)
class _Fold:
    """Inclusive time-point index ranges of one fold."""

    train: tuple[int, int]
    validation: tuple[int, int]


@dataclass(frozen=True)
class _Split:
    """What :meth:`TimeSeriesCrossValidator._indexed` found.

    ``frame`` holds the rows some fold uses, and ``in_span`` maps a fold's
    inclusive time-point span to a Column selecting its rows from ``frame``.
    ``whole``: ``frame`` holds every row of the dataset (with the series
    index added, when there is one), so the best map can be refitted on it.
    """

    frame: DataFrame
    folds: list[_Fold]
    bounds: list[dict]
    in_span: Any
    whole: bool


class _TimeSeriesCVParams(_ValidatorParams, HasParallelism, HasCollectSubModels):
    timeCol: Param[str] = Param(
        Params._dummy(),
        "timeCol",
        "column to split on: number, date, timestamp, timestamp_ntz or string",
        typeConverter=TypeConverters.toString,
    )
    numFolds: Param[int] = Param(
        Params._dummy(),
        "numFolds",
        "number of folds (validation windows at the end of the data); >= 1",
        typeConverter=TypeConverters.toInt,
    )
    cutoffs: Param[list] = Param(
        Params._dummy(),
        "cutoffs",
        "explicit last training time of each fold (overrides numFolds)",
        typeConverter=lambda value: _to_cutoff_list(value),
    )
    horizon: Param[int] = Param(
        Params._dummy(),
        "horizon",
        "time points in each validation window; >= 1",
        typeConverter=TypeConverters.toInt,
    )
    gap: Param[int] = Param(
        Params._dummy(),
        "gap",
        "time points left out between training and validation; >= 0",
        typeConverter=TypeConverters.toInt,
    )
    windowType: Param[str] = Param(
        Params._dummy(),
        "windowType",
        "'expanding' (train on all earlier points) or 'sliding' (the last trainWindow)",
        typeConverter=TypeConverters.toString,
    )
    trainWindow: Param[int] = Param(
        Params._dummy(),
        "trainWindow",
        "time points of training data per fold with windowType='sliding'",
        typeConverter=TypeConverters.toInt,
    )
    seriesIdCols: Param[list[str]] = Param(
        Params._dummy(),
        "seriesIdCols",
        "columns identifying a series; points are then counted per series",
        typeConverter=TypeConverters.toListString,
    )

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._setDefault(
            numFolds=3,
            horizon=1,
            gap=0,
            windowType="expanding",
            parallelism=1,
            collectSubModels=False,
            seriesIdCols=[],
        )

    def getTimeCol(self) -> str:
        """The time column."""
        return self.getOrDefault(self.timeCol)

    def getNumFolds(self) -> int:
        """The number of folds."""
        return self.getOrDefault(self.numFolds)

    def getCutoffs(self) -> list | None:
        """The explicit cut-offs, or None."""
        return self.getOrDefault(self.cutoffs) if self.isDefined(self.cutoffs) else None

    def getHorizon(self) -> int:
        """Time points per validation window."""
        return self.getOrDefault(self.horizon)

    def getGap(self) -> int:
        """Time points between training and validation."""
        return self.getOrDefault(self.gap)

    def getWindowType(self) -> str:
        """``'expanding'`` or ``'sliding'``."""
        return self.getOrDefault(self.windowType)

    def getTrainWindow(self) -> int | None:
        """Training points per fold of a sliding window, or None."""
        return self.getOrDefault(self.trainWindow) if self.isDefined(self.trainWindow) else None

    def getSeriesIdCols(self) -> list[str]:
        """The series id columns (empty: one series)."""
        return self.getOrDefault(self.seriesIdCols)


def _to_cutoff_list(value: Any) -> list | None:
    """``cutoffs`` as a plain list: one value, a list, a NumPy array or a pandas index."""
    if value is None:
        return None
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        return [value]  # one cut-off (a date, a number, an ISO string)
    items = value.tolist() if hasattr(value, "tolist") else list(value)
    # pandas Timestamps and NumPy datetimes become Python datetimes, which the
    # column's own type is compared with.
    return [v.to_pydatetime() if hasattr(v, "to_pydatetime") else v for v in items]


def _json_value(value: Any) -> Any:
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, _decimal.Decimal):  # exact, as JSON numbers would not be
        return format(value, "f")  # "0.00000005", where str() gives "5E-8"
    if isinstance(value, np.generic):
        return value.item()
    return value


def build_folds(
    n_points: int,
    *,
    num_folds: int,
    horizon: int,
    gap: int,
    window_type: str,
    train_window: int | None,
    cutoff_indices: Sequence[int] | None = None,
) -> list[_Fold]:
    """Fold windows as inclusive index ranges into ``n_points`` time points.

    Parameters
    ----------
    n_points : int
        Distinct time points (or, per series, points back from the end).
    num_folds, horizon, gap, window_type, train_window
        As the Params of the same names.
    cutoff_indices : sequence of int, optional
        Index of each fold's last training point (from ``cutoffs``).

    Returns
    -------
    list of _Fold

    Raises
    ------
    InvalidInputError
        When a window would be empty or run past the data.
    """
    if cutoff_indices is None:
        val_starts = [n_points - (num_folds - i) * horizon for i in range(num_folds)]
    else:
        val_starts = [end + 1 + gap for end in cutoff_indices]
    folds = []
    for i, v in enumerate(val_starts):
        train_end = v - gap - 1
        train_start = 0 if window_type == "expanding" else max(0, train_end - train_window + 1)
        val_end = v + horizon - 1
        if train_end < 0 or train_end < train_start:
            raise InvalidInputError(
                f"fold {i}: the training window is empty ({n_points} time points; "
                f"numFolds={num_folds}, horizon={horizon}, gap={gap} need at least "
                f"{num_folds * horizon + gap + 1}). Use fewer folds, a shorter horizon or gap."
            )
        if val_end >= n_points:
            raise InvalidInputError(
                f"fold {i}: the validation window (time points {v}..{val_end}) runs past the "
                f"last of the {n_points} time points; use an earlier cutoff or a shorter horizon."
            )
        folds.append(_Fold(train=(train_start, train_end), validation=(v, val_end)))
    return folds


def _time_key(time_col: str, data_type: Any) -> tuple[Any, Any]:
    """An exact key for each time value, and the literal that filters on it.

    Numbers come back to Python and go to Spark again unchanged. Times would
    not: Python sees a timestamp as local wall-clock time, and in the hour a
    clock is set back two instants share one; a Python date goes back to
    Spark through the old Julian/Gregorian calendar (shifting days before
    1582-10-15, failing before year 1000). So a timestamp travels as
    microseconds since the epoch, a date as days since the epoch and a
    timestamp without time zone as its own text, each rebuilt in Spark.
    Strings (with Spark's binary collation) travel as their bytes: a value
    that is not valid UTF-8 would come back to Python with a replacement
    character, matching no row.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import DateType, TimestampNTZType, TimestampType

    column = col(time_col)
    if _is_binary_string(data_type):
        return column.cast("binary"), lambda key: F.lit(key).cast("string")
    if isinstance(data_type, DateType):
        return F.unix_date(column), lambda key: F.date_from_unix_date(F.lit(key))
    if isinstance(data_type, TimestampNTZType):
        return column.cast("string"), lambda key: F.lit(key).cast("timestamp_ntz")
    if isinstance(data_type, TimestampType):
        return F.unix_micros(column), lambda key: F.timestamp_micros(F.lit(key))
    return column, F.lit


def _utf8_bytes(cutoff: Any, i: int, time_col: str) -> Any:
    """A text cut-off as the bytes it is compared by; anything else unchanged.

    Lone surrogates written by Python's ``surrogateescape`` stand for the
    bytes they escape, so a cut-off can name a value that is not UTF-8.
    """
    if not isinstance(cutoff, str):
        return cutoff
    try:
        return cutoff.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise InvalidInputError(
            f"cutoffs[{i}] = {cutoff!r} holds a lone surrogate that stands for no byte; give "
            f"'{time_col}' cut-offs as text or as bytes."
        ) from None


def _is_binary_string(data_type: Any) -> bool:
    """A string type compared byte by byte (Spark's default collation)."""
    from pyspark.sql.types import StringType

    return isinstance(data_type, StringType) and getattr(data_type, "collation", None) in (
        None,
        "UTF8_BINARY",
    )


def _refuse_empty(time_col: str, n_points: int) -> None:
    """Raise for data without rows (null times were refused before): no window to build."""
    if n_points == 0:
        raise InvalidInputError(
            f"The DataFrame has no rows (timeCol '{time_col}'): there is nothing to cross-validate."
        )


def _in_time_order(points: DataFrame, data_type: Any) -> list[Any]:
    """The rows of ``points`` (one per time value: value, key, ...) collected in time order.

    Spark's order, nulls first and NaN last, sorted on the driver: a Spark
    ``orderBy`` would cost a sampling job and a second shuffle for what is
    one small list. Timestamps, dates and strings sort by their exact key
    (see :func:`_time_key`; a string's bytes, in Spark's binary order),
    numbers by their value; a string column with a collation other than
    Spark's binary one keeps Spark's own ordering.
    """
    from pyspark.sql.types import DateType, StringType, TimestampType

    if isinstance(data_type, StringType) and not _is_binary_string(data_type):
        return points.orderBy(col(points.columns[0])).collect()
    by_key = isinstance(data_type, (DateType, TimestampType)) or _is_binary_string(data_type)

    def order(row: Any) -> tuple[int, Any]:
        value = row[1] if by_key else row[0]
        if value is None:
            return (0, 0)
        if isinstance(value, float) and math.isnan(value):
            return (2, 0)
        return (1, value)

    return sorted(points.collect(), key=order)


#: Dates written day or month first with the year last ("03/11/2024"):
#: text order is not time order.
_DAY_OR_MONTH_FIRST = re.compile(r"\s*\d{1,2}[/.\-]\d{1,2}[/.\-]\d{4}\s*")


def _refuse_text_out_of_time_order(times: list[Any], time_col: str) -> None:
    """Refuse a string time column whose text order is not the order its values mean.

    ``times`` are in text order. Strings are ordered byte by byte (ISO dates
    sort right), so numbers of different lengths ('2' after '10', even among
    other text) and dates written day or month first would put the future in
    a fold's training window.
    """
    texts = [str(t) for t in times]
    numbers: list[tuple[str, float]] = []
    for text in texts:
        try:
            numbers.append((text, float(text)))
        except ValueError:
            continue
    for (a, x), (b, y) in itertools.pairwise(numbers):
        if x > y:
            whole = all(v.is_integer() for _, v in numbers)
            raise InvalidColumnTypeError(
                f"timeCol '{time_col}' is a string column of numbers, which are ordered as "
                f"text: {a!r} before {b!r}, so folds would train on later periods. Cast it "
                f"first: df.withColumn('{time_col}', F.col('{time_col}').cast("
                f"'{'long' if whole else 'double'}'))"
            )
    if texts and all(_DAY_OR_MONTH_FIRST.fullmatch(t) for t in texts):
        raise InvalidColumnTypeError(
            f"timeCol '{time_col}' is a string column of dates written day or month first "
            f"(such as {texts[0]!r}), which are ordered as text, not in time. Parse them "
            f"first: df.withColumn('{time_col}', F.to_date('{time_col}', 'MM/dd/yyyy')) "
            "(with the pattern the data uses)"
        )


def _shown_time(text: str) -> str:
    """A timestamp formatted with :data:`_TIMESTAMP_FORMAT`, as ``isoformat()`` would write it.

    That is, without the fraction when it is zero: ``2026-11-01T01:00:00-05:00``.
    """
    return re.sub(r"\.0{6}(?=[+-])", "", text)


def _check_time_type(time_col: str, data_type: Any) -> None:
    """Refuse a ``timeCol`` whose values are no points in time (a vector, a struct, a flag)."""
    from pyspark.sql.types import (
        BooleanType,
        DateType,
        NumericType,
        StringType,
        TimestampNTZType,
        TimestampType,
    )

    accepted = (NumericType, DateType, TimestampType, TimestampNTZType, StringType)
    if isinstance(data_type, BooleanType) or not isinstance(data_type, accepted):
        raise InvalidColumnTypeError(
            f"timeCol '{time_col}' has type {data_type.simpleString()}; it must be a "
            "number, date, timestamp, timestamp_ntz or string column."
        )


def _cutoff_indices(
    cutoffs: Sequence[Any],
    times: list[Any],
    time_col: str,
    keys: tuple[list[Any], list[Any]] | None = None,
) -> list[int]:
    """Index of the last time point at or before each cut-off.

    ``keys``, when given, is (the time points' keys, the cut-offs' keys), in
    the same order as the times; they are searched instead of the values
    (timestamps: Python's local times are not in order across a clock
    change).
    """
    indices = []
    for i, cutoff in enumerate(cutoffs):
        if keys is not None:
            points, value = keys[0], keys[1][i]
        else:
            points, value = times, cutoff
            if isinstance(value, str) and isinstance(times[0], _dt.date):
                value = _parse_iso(value, type(times[0]), f"cutoffs[{i}]", time_col, times[0])
            elif _is_naive_datetime(value) and type(times[0]) is _dt.date:
                # A pandas DatetimeIndex of days on a date column: a date d starts at
                # its midnight, so d <= cutoff exactly when d <= cutoff.date().
                value = value.date()
        try:
            position = int(np.searchsorted(np.array(points, dtype=object), value, "right"))
        except TypeError:
            raise InvalidInputError(
                f"cutoffs[{i}] = {cutoff!r} cannot be compared with '{time_col}' values "
                f"such as {times[0]!r}; give cut-offs of the same type."
            ) from None
        if position == 0:
            raise InvalidInputError(
                f"fold {i}: the training window is empty: cutoff {cutoff!r} is before "
                f"the first time {times[0]!r} in '{time_col}'."
            )
        if position - 1 in indices:
            j = indices.index(position - 1)
            raise InvalidInputError(
                f"cutoffs[{j}] = {cutoffs[j]!r} and cutoffs[{i}] = {cutoff!r} both end "
                f"training at {times[position - 1]!r} in '{time_col}': the two folds would "
                "be the same one, counted twice in avgMetrics. Give each cut-off once."
            )
        indices.append(position - 1)
    return indices


def _as_in_data(dataset: DataFrame, names: Sequence[str]) -> list[str]:
    """``names`` as the columns of ``dataset`` spell them, where they differ only in case.

    Spark resolves column names case-insensitively unless
    ``spark.sql.caseSensitive`` is set: ``timeCol="Day"`` names a column
    ``day`` there, and the validator's own lookups use ``day``. (Spark ML's
    stages check their own columns case-sensitively; labels are left to them.)
    """
    try:
        sensitive = dataset.sparkSession.conf.get("spark.sql.caseSensitive", "false")
    except Exception:  # a conf the session does not expose: Spark's default
        sensitive = "false"
    if str(sensitive).lower() == "true":
        return list(names)
    out = []
    for name in names:
        matches = [c for c in dataset.columns if c.lower() == name.lower()]
        out.append(matches[0] if name not in dataset.columns and len(matches) == 1 else name)
    return out


def _is_naive_datetime(value: Any) -> bool:
    return isinstance(value, _dt.datetime) and value.tzinfo is None


def _parse_iso(text: str, kind: type, name: str, time_col: str, example: Any) -> Any:
    """``text`` as a ``datetime.date`` or ``datetime.datetime``, or a clear error."""
    try:
        return kind.fromisoformat(text)
    except ValueError:
        if kind is _dt.date:  # a naive datetime's text (a saved pd.date_range cut-off)
            try:
                moment = _dt.datetime.fromisoformat(text)
            except ValueError:
                moment = None
            if moment is not None and moment.tzinfo is None:
                return moment.date()  # a day starts at its midnight: as _cutoff_indices
        what = "datetime" if kind is _dt.datetime else "date"
        raise InvalidInputError(
            f"{name} = {text!r} is not an ISO 8601 {what} (such as {example.isoformat()!r}), "
            f"which the values of '{time_col}' are."
        ) from None


#: Params through which a Pipeline stage adds columns.
_OUTPUT_PARAMS = ("outputCol", "outputCols", "predictionCol", "probabilityCol", "rawPredictionCol")
_INPUT_PARAMS = (
    "inputCol",
    "inputCols",
    "featuresCol",
    "labelCol",
    "weightCol",
    "offsetCol",
    "censorCol",
    "userCol",
    "itemCol",
    "ratingCol",
)
# An error of a Spark ML stage about a missing value ("Encountered null while
# assembling a row...", "StringIndexer encountered NULL value..."), not
# Spark's ANSI hints ("use try_divide to ... return NULL instead").
_ABOUT_MISSING = re.compile(r"\b(null|nan)\b", re.IGNORECASE)
_NULL_HINT = re.compile(r"return NULL instead|\btry_\w+", re.IGNORECASE)
_JAVA_PREFIX = re.compile(r"(?:[\w$]+\.)+[\w$]*(?:Exception|Error):\s*")


def _about_missing(text: str) -> bool:
    return bool(_ABOUT_MISSING.search(_NULL_HINT.sub("", text)))


def _read_columns(estimator: Any, columns: Sequence[str]) -> list[tuple[str, str]]:
    """(column, stage class) for the columns of the data that ``estimator``'s stages read.

    By the stages' usual input Params; a name in backticks is unquoted, and
    matched exactly or else case-insensitively, as Spark resolves it. Left
    out: the inputs of stages that take nulls (an ``Imputer``, a
    ``handleInvalid`` other than "error"), and columns an earlier stage makes.
    """
    lowered = {c.lower(): c for c in columns}
    found: list[tuple[str, str]] = []
    for stage in _stages_by_uid(estimator).values():
        kind = type(stage).__name__
        if kind == "Imputer" or (
            stage.hasParam("handleInvalid") and stage.getOrDefault("handleInvalid") != "error"
        ):
            continue
        for name in _INPUT_PARAMS:
            if not (stage.hasParam(name) and stage.isDefined(name)):
                continue
            value = stage.getOrDefault(name)
            for given in value if isinstance(value, list) else [value]:
                given = str(given)
                if len(given) > 1 and given[0] == given[-1] == "`":
                    given = given[1:-1].replace("``", "`")
                column = given if given in columns else lowered.get(given.lower())
                if column is not None and column not in [c for c, _ in found]:
                    found.append((column, kind))
    return found


def _spark_reason(message: str) -> str:
    """The innermost sentence of a Spark error that is about a null or NaN, without class names."""
    for line in reversed(message.splitlines()):
        line = line.strip()
        if line.startswith("at ") or not _about_missing(line):
            continue
        line = _JAVA_PREFIX.split(line)[-1]
        sentence = re.match(r".*?\.(?=\s|$)", line)
        return (sentence.group(0) if sentence else line)[:300]
    return ""


def _may_produce(estimator: Any, column: str) -> bool:
    """Whether a stage of the Pipeline ``estimator`` may add ``column`` to the data.

    True where a stage names it as an output, or where a stage has none of
    the usual output Params (an ``SQLTransformer``, a custom stage) and so
    may add anything.
    """
    from pyspark.ml import Pipeline

    if not isinstance(estimator, Pipeline):
        return False
    for stage in estimator.getStages():
        if isinstance(stage, Pipeline):
            if _may_produce(stage, column):
                return True
            continue
        declared = [name for name in _OUTPUT_PARAMS if stage.hasParam(name)]
        if not declared:
            return True
        for name in declared:
            value = stage.getOrDefault(name) if stage.isDefined(name) else None
            if column == value or (isinstance(value, list) and column in value):
                return True
    return False


def _timestamp_cutoff_keys(spark: Any, cutoffs: Sequence[Any], time_col: str) -> list[int]:
    """Microseconds since the epoch of each cut-off, as Spark reads it.

    A datetime goes in as ``F.lit`` does (naive: local time; aware: exact), a
    string is cast in the session time zone, as a SQL literal would be (with
    ``try_cast``: an unreadable string is an error naming it, in ANSI mode too).
    """
    from pyspark.sql import functions as F

    columns = []
    for i, cutoff in enumerate(cutoffs):
        if isinstance(cutoff, str):
            value = F.lit(cutoff).try_cast("timestamp")
        elif isinstance(cutoff, _dt.datetime):
            value = F.lit(cutoff)
        else:
            raise InvalidInputError(
                f"cutoffs[{i}] = {cutoff!r} cannot be compared with timestamp column "
                f"'{time_col}'; give datetimes or ISO strings."
            )
        columns.append(F.unix_micros(value).alias(f"c{i}"))
    row = spark.range(1).select(*columns).first()
    keys = list(row)
    for i, key in enumerate(keys):
        if key is None:
            raise InvalidInputError(
                f"cutoffs[{i}] = {cutoffs[i]!r} is not a timestamp Spark can read "
                "(an ISO 8601 string such as '2024-01-31 12:00:00', or a datetime)."
            )
    return keys


class TimeSeriesCrossValidator(Estimator, _TimeSeriesCVParams, MLReadable, MLWritable):
    """Cross-validation over time windows, folds and parameter maps in parallel.

    Parameters
    ----------
    estimator : pyspark.ml.Estimator
        The estimator or Pipeline to tune.
    estimatorParamMaps : list of ParamMap
        Parameter maps to try (e.g. from ``ParamGridBuilder``).
    evaluator : pyspark.ml.evaluation.Evaluator
        Metric to select with; ``isLargerBetter()`` decides the direction.
    timeCol : str
        Time column: number, date, timestamp, timestamp_ntz or string (another
        type raises InvalidColumnTypeError); nulls are rejected.
    numFolds : int, default 3
        Validation windows at the end of the data, ``horizon`` points each.
    cutoffs : list, optional
        Explicit last training time of each fold (overrides ``numFolds``).
    horizon : int, default 1
        Time points per validation window.
    gap : int, default 0
        Time points left out between training and validation.
    windowType : {"expanding", "sliding"}, default "expanding"
    trainWindow : int, optional
        Training points per fold; required with ``windowType="sliding"``.
    seriesIdCols : list of str, optional
        Series id columns: points are counted back from each series' own end.
    parallelism : int, default 1
        (fold, parameter map) pairs evaluated at once.
    collectSubModels : bool, default False
        Keep every fold's fitted models in ``subModels`` ([fold][paramMap]).
    seed : int, optional
        Kept for ``CrossValidator`` compatibility; splitting is not random.

    Examples
    --------
    >>> cv = TimeSeriesCrossValidator(estimator=lr, estimatorParamMaps=grid,
    ...     evaluator=RegressionEvaluator(), timeCol="day", numFolds=4, horizon=7,
    ...     parallelism=4)  # doctest: +SKIP
    >>> model = cv.fit(df); model.avgMetrics, model.foldBoundaries  # doctest: +SKIP
    """

    @keyword_only
    def __init__(
        self,
        *,
        estimator: Estimator | None = None,
        estimatorParamMaps: list | None = None,
        evaluator: Any = None,
        timeCol: str | None = None,
        numFolds: int = 3,
        cutoffs: list | None = None,
        horizon: int = 1,
        gap: int = 0,
        windowType: str = "expanding",
        trainWindow: int | None = None,
        seriesIdCols: list[str] | None = None,
        parallelism: int = 1,
        collectSubModels: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        kwargs = {k: v for k, v in self._input_kwargs.items() if v is not None}
        self._set(**kwargs)

    @keyword_only
    def setParams(self, **kwargs: Any) -> TimeSeriesCrossValidator:
        """Set any of the constructor's parameters."""
        return self._set(**{k: v for k, v in kwargs.items() if v is not None})

    # --- validation -----------------------------------------------------

    def _check_params(self, dataset: DataFrame) -> None:
        for name in ("estimator", "estimatorParamMaps", "evaluator", "timeCol"):
            if not self.isDefined(getattr(self, name)):
                raise InvalidInputError(f"TimeSeriesCrossValidator needs {name}; it is not set.")
        if not self.getEstimatorParamMaps():
            raise InvalidInputError("estimatorParamMaps is empty: give at least one ParamMap.")
        window = self.getWindowType()
        if window not in ("expanding", "sliding"):
            raise InvalidInputError(f"windowType must be 'expanding' or 'sliding'; got {window!r}.")
        if window == "sliding" and (self.getTrainWindow() or 0) < 1:
            raise InvalidInputError("windowType='sliding' needs trainWindow >= 1 time points.")
        for name, low in (("numFolds", 1), ("horizon", 1), ("gap", 0), ("parallelism", 1)):
            value = self.getOrDefault(getattr(self, name))
            if value < low:
                raise InvalidInputError(f"{name} must be >= {low}; got {value}.")
        schema = dataset.schema
        columns = [self.getTimeCol(), *self.getSeriesIdCols()]
        missing = [c for c in columns if c not in schema.names]
        if missing:
            raise InvalidInputError(
                f"column(s) {missing} not in the dataset; its columns are {schema.names}."
            )
        _check_time_type(self.getTimeCol(), schema[self.getTimeCol()].dataType)
        self._check_label(schema.names)
        if self.getCutoffs() is not None and not self.getCutoffs():
            raise InvalidInputError("cutoffs is empty: give at least one cut-off time.")
        if self.getSeriesIdCols() and self.getCutoffs() is not None:
            raise InvalidInputError(
                "seriesIdCols counts time points back from each series' end, which needs "
                "numFolds; cutoffs are global times. Use one or the other."
            )

    def _check_label(self, columns: list[str]) -> None:
        """The evaluator's label must be in the data, or made by the Pipeline."""
        evaluator = self.getEvaluator()
        if not callable(getattr(evaluator, "getLabelCol", None)):
            return  # e.g. a ClusteringEvaluator
        label = evaluator.getLabelCol()
        if label in columns or _may_produce(self.getEstimator(), label):
            return
        raise InvalidInputError(
            f"the {type(evaluator).__name__}'s labelCol '{label}' is not in the dataset; "
            f"its columns are {columns}."
        )

    def _refuse_null_times(self, dataset: DataFrame, count: int | None = None) -> None:
        """Raise when ``timeCol`` has nulls (or NaN, for a floating-point column).

        ``count`` when the caller already knows it.
        """
        from pyspark.sql.types import DoubleType, FloatType

        time_col = self.getTimeCol()
        # NaN is no point in time; Spark would sort it after every number.
        missing = _spark.null_or_nan(dataset, time_col)
        floating = isinstance(dataset.schema[time_col].dataType, (DoubleType, FloatType))
        what = "null or NaN" if floating else "null"
        bad = dataset.where(missing)
        if count is None:
            count = bad.count()
        if count:
            example = bad.first()
            raise InvalidInputError(
                f"timeCol '{time_col}' has {count_of(count, what + ' row')}, for example "
                f"{example.asDict() if example is not None else None}. Drop or fill them first."
            )

    # --- folds ------------------------------------------------------------

    def _indexed(self, dataset: DataFrame) -> _Split:
        """The frame to cache, the folds, their boundaries and the window
        predicate (see :class:`_Split`)."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F
        from pyspark.sql.types import StringType, TimestampType

        time_col = self.getTimeCol()
        common = {
            "num_folds": self.getNumFolds(),
            "horizon": self.getHorizon(),
            "gap": self.getGap(),
            "window_type": self.getWindowType(),
            "train_window": self.getTrainWindow(),
        }
        series = self.getSeriesIdCols()
        if series:
            self._refuse_null_times(dataset)
            if isinstance(dataset.schema[time_col].dataType, StringType):
                # Ranked in text order below: check that order means time first
                # (on up to 10,000 of the values: enough to show a misorder).
                values = dataset.select(col(time_col)).distinct().limit(10_000)
                _refuse_text_out_of_time_order(
                    sorted(str(r[0]) for r in values.collect() if r[0] is not None), time_col
                )
            # Points back from each series' end: 0 is its last point.
            back = Window.partitionBy(*map(col, series)).orderBy(col(time_col).desc())
            indexed = dataset.withColumn(_INDEX, F.dense_rank().over(back) - 1)
            # One job: the longest series, the rows Spark ML would refuse with
            # the first (in time) of them, and rows without a series id.
            bad = self._bad_label(dataset)
            no_series = F.lit(False)
            for name in series:
                no_series = no_series | col(name).isNull()
            longest, n_bad, first_bad, n_no_series = indexed.agg(
                F.max(_INDEX),
                F.count(F.when(bad, F.lit(1))),
                F.min(F.when(bad, col(time_col))),
                F.count(F.when(no_series, F.lit(1))),
            ).first()
            if n_no_series:
                example = dataset.where(no_series).first()
                raise InvalidInputError(
                    f"seriesIdCols {list(series)} are null in {count_of(int(n_no_series), 'row')}, "
                    f"for example {example.asDict() if example is not None else None}: they "
                    "would form one more series of their own. Drop or fill them first."
                )
            self._refuse_bad_labels([int(n_bad)], [first_bad])
            n_points = 0 if longest is None else int(longest) + 1
            _refuse_empty(time_col, n_points)
            # Index windows are built forward; flip them to count back.
            folds = build_folds(n_points, **common)
            flipped = [
                _Fold(
                    train=(n_points - 1 - f.train[1], n_points - 1 - f.train[0]),
                    validation=(n_points - 1 - f.validation[1], n_points - 1 - f.validation[0]),
                )
                for f in folds
            ]
            bounds = [
                {
                    "trainPointsBack": [f.train[0], f.train[1]],
                    "validationPointsBack": [f.validation[0], f.validation[1]],
                }
                for f in flipped
            ]

            def by_index(span: tuple[int, int]) -> Any:
                return F.col(_INDEX).between(span[0], span[1])

            return _Split(indexed, flipped, bounds, by_index, True)

        # One job collects the distinct times in order, with their row counts
        # (null times sort first) and an exact key to filter on (see _time_key).
        # Windows are then plain range filters on the time column: no index
        # column joined onto every row, so each fit's query plan stays as
        # shallow as the user's own (a joined, cached index made every Spark ML
        # job of every fit slower to plan, about 20% of a small fit).
        # A timestamp is shown as Spark formats it in the session time zone,
        # with the offset: Python would show its own local time, without one.
        time_type = dataset.schema[time_col].dataType
        key, literal = _time_key(time_col, time_type)
        is_timestamp = isinstance(time_type, TimestampType)
        # A string's bytes stand for its value too: a value that is not valid
        # UTF-8 cannot be collected as text (Spark Connect's Arrow refuses it).
        as_bytes = _is_binary_string(time_type)
        value = key if as_bytes else col(time_col)
        shown = F.date_format(col(time_col), _TIMESTAMP_FORMAT) if is_timestamp else F.lit(None)
        # ... and, in the same job, the rows whose label Spark ML would refuse.
        bad_label = self._bad_label(dataset)
        points = (
            dataset.groupBy(col(time_col))
            .agg(
                F.count(F.lit(1)).alias(_COUNT),
                F.count(F.when(bad_label, F.lit(1))).alias(_BAD_LABELS),
            )
            .select(value, key.alias(_KEY), _COUNT, shown.alias(_SHOWN), _BAD_LABELS)
        )
        # Not capped with a limit: Spark collects a limit in rounds, one job
        # each, on every fit (0.2-0.4 s each in a review's measurement); the
        # count is checked once the times are on the driver.
        rows = _in_time_order(points, time_type)
        missing = 0
        if rows and rows[0][0] is None:  # nulls sort first
            missing += rows.pop(0)[2]
        if rows and isinstance(rows[-1][0], float) and math.isnan(rows[-1][0]):  # NaN last
            missing += rows.pop()[2]
        if missing:
            self._refuse_null_times(dataset, missing)
        # Timestamps are searched and filtered by their keys, so only their
        # shown form is needed from here on.
        if is_timestamp:
            times = [_shown_time(row[3]) for row in rows]
        elif as_bytes:  # shown as text, with U+FFFD where the bytes are not UTF-8
            times = [bytes(row[0]).decode("utf-8", "replace") for row in rows]
        else:
            times = [row[0] for row in rows]
        keys = [row[1] for row in rows]
        if isinstance(time_type, StringType):
            _refuse_text_out_of_time_order(times, time_col)
        # Every row counts: the best map is refitted on all of the data.
        self._refuse_bad_labels([row[4] for row in rows], times)
        n_points = len(times)
        _refuse_empty(time_col, n_points)
        if n_points > MAX_TIME_POINTS:
            raise ResourceLimitError(
                f"timeCol '{time_col}' has {n_points} distinct values, more than the "
                f"{MAX_TIME_POINTS} the validator takes; truncate it to a coarser unit first "
                "(e.g. F.date_trunc)."
            )
        cutoff_indices = None
        cutoffs = self.getCutoffs()
        if cutoffs is not None:
            search = None
            if is_timestamp:
                search = (keys, _timestamp_cutoff_keys(dataset.sparkSession, cutoffs, time_col))
            elif as_bytes:
                # Searched among the points' bytes, in the order they were sorted in.
                search = (keys, [_utf8_bytes(c, i, time_col) for i, c in enumerate(cutoffs)])
            cutoff_indices = _cutoff_indices(cutoffs, times, time_col, search)
        folds = build_folds(n_points, cutoff_indices=cutoff_indices, **common)
        bounds = [
            {
                "trainStart": _json_value(times[f.train[0]]),
                "trainEnd": _json_value(times[f.train[1]]),
                "validationStart": _json_value(times[f.validation[0]]),
                "validationEnd": _json_value(times[f.validation[1]]),
            }
            for f in folds
        ]

        def by_time(span: tuple[int, int]) -> Any:
            return col(time_col).between(literal(keys[span[0]]), literal(keys[span[1]]))

        # Only the rows some fold uses are cached (a sliding window or a
        # cut-off leaves earlier or later rows out). When the folds span every
        # point, every row: null times were refused above, so "not null" keeps
        # them all by construction (a plan of its own, so that the user's own
        # cache of the dataset is neither reused nor unpersisted with ours).
        first = min(f.train[0] for f in folds)
        last = max(f.validation[1] for f in folds)
        if first == 0 and last == n_points - 1:
            return _Split(dataset.where(col(time_col).isNotNull()), folds, bounds, by_time, True)
        return _Split(dataset.where(by_time((first, last))), folds, bounds, by_time, whole=False)

    def _bad_label(self, dataset: DataFrame) -> Any:
        """A condition true for rows whose label is null (or NaN); False without a label."""
        from pyspark.sql import functions as F

        evaluator = self.getEvaluator()
        label = (
            evaluator.getLabelCol() if callable(getattr(evaluator, "getLabelCol", None)) else None
        )
        if (
            label is None
            or label not in dataset.columns
            or _may_produce(self.getEstimator(), label)
        ):
            return F.lit(False)  # no label, or one a Pipeline stage makes (or may remake)
        return _spark.null_or_nan(dataset, label)

    def _refuse_bad_labels(self, counts: list[int], times: list[Any]) -> None:
        """Raise when rows have a null or NaN label (counted per time point)."""
        total = sum(counts)
        if not total:
            return
        where = next(t for t, n in zip(times, counts, strict=True) if n)
        raise InvalidInputError(
            f"labelCol '{self.getEvaluator().getLabelCol()}' is null or NaN in "
            f"{count_of(total, 'row')} "
            f"(the first at {self.getTimeCol()} = {_json_value(where)}); Spark ML cannot fit "
            "or evaluate them, and the best map is refitted on all the data. Drop or fill "
            "them first."
        )

    def _raise_missing_values(self, dataset: DataFrame, error: BaseException) -> None:
        """After a fit or evaluation failed on a null or NaN: name the input column that has them.

        Spark ML's stages refuse nulls (and NaN) in their inputs unless told
        otherwise, with a JVM error that names neither the column nor the
        rows. They are not refused before the search: an ``Imputer`` or a
        ``handleInvalid`` setting makes them valid input. Raises
        :class:`InvalidInputError` (Spark's error kept as its ``__context__``,
        not printed) when the error is about a missing value and a column the
        estimator's stages read has nulls or NaN; returns otherwise, and the
        caller raises Spark's own error, as it does when this diagnosis
        itself fails.
        """
        if not _about_missing(str(error)):
            return
        try:
            found = self._missing_values(dataset, error)
        except Exception:  # the query failed too: Spark's own error is the one to see
            return
        if found is None:
            return
        found.__context__ = error  # kept for a debugger, not printed (from None)
        raise found from None

    def _missing_values(self, dataset: DataFrame, error: BaseException) -> InvalidInputError | None:
        from pyspark.sql import functions as F

        reason = _spark_reason(str(error))
        read = _read_columns(self.getEstimator(), dataset.columns)
        # The columns of the stage the reason names first ("StringIndexer
        # encountered NULL value"), in the Pipeline's order.
        read.sort(key=lambda pair: pair[1] not in reason)
        columns = [name for name, _ in read]
        conditions = [_spark.null_or_nan(dataset, name) for name in columns]
        if not conditions:
            return None
        row = dataset.agg(
            *[F.count(F.when(c, 1)).alias(f"n{i}") for i, c in enumerate(conditions)]
        ).first()
        counts = [int(row[i]) for i in range(len(columns))] if row is not None else []
        bad = [i for i, n in enumerate(counts) if n]
        if not bad:
            return None
        first = bad[0]
        others = ", ".join(f"'{columns[i]}' in {counts[i]}" for i in bad[1:])
        where = " ".join(getattr(error, "__notes__", []))
        return InvalidInputError(
            f"Column '{columns[first]}' is null or NaN in {count_of(counts[first], 'row')} of the "
            f"data ({_spark.example_row(dataset, conditions[first])})"
            + (f"; also {others}" if others else "")
            + ". A stage of the estimator refused it"
            + (f": {reason}" if reason else "")
            + (f" {where}" if where else "")
            + " Nothing was dropped: drop or fill those rows first, or let the stage take "
            "them (handleInvalid='skip' or 'keep' on a VectorAssembler or StringIndexer, an "
            "Imputer before it)."
        )

    @staticmethod
    def _window(frame: DataFrame, inside: Any) -> DataFrame:
        return frame.where(inside).drop(_INDEX)

    def _check_classes(
        self, frame: DataFrame, folds: list[_Fold], bounds: list[dict], in_span: Any
    ) -> None:
        """Windows with a single class: refused where the metric is undefined, else a warning.

        A ``BinaryClassificationEvaluator``'s areas under the ROC and PR curves
        need both classes in a validation window (scikit-learn's ``roc_auc_score``
        refuses one class too). Spark ML fits a training window of one class
        (a model that predicts it) and computes the
        ``MulticlassClassificationEvaluator``'s metrics (accuracy, F1...) on
        one class, as ``CrossValidator`` would: those folds get a warning.
        Not checked when a Pipeline stage makes the label (see
        :meth:`_check_label`): the classes are known only after the stages ran.
        """
        from pyspark.ml.evaluation import (
            BinaryClassificationEvaluator,
            MulticlassClassificationEvaluator,
        )
        from pyspark.sql import functions as F

        evaluator = self.getEvaluator()
        if not isinstance(
            evaluator, (BinaryClassificationEvaluator, MulticlassClassificationEvaluator)
        ):
            return
        label = evaluator.getLabelCol()
        if label not in frame.columns:
            return
        aggs = []
        for i, fold in enumerate(folds):
            for part, span in (("train", fold.train), ("validation", fold.validation)):
                aggs.append(F.count_distinct(F.when(in_span(span), col(label))).alias(f"{part}{i}"))
        counts = frame.agg(*aggs).first().asDict()
        single = []
        for name, n_classes in counts.items():
            part = "train" if name.startswith("train") else "validation"
            fold = int(name[len(part) :])
            if n_classes >= 2:
                continue
            undefined = isinstance(evaluator, BinaryClassificationEvaluator)
            if n_classes == 0 or (undefined and part == "validation"):
                raise InvalidInputError(
                    f"fold {fold}: the {part} window {bounds[fold]} has {n_classes} class(es) "
                    f"in '{label}'; {type(evaluator).__name__}'s "
                    f"{evaluator.getMetricName()} needs two or more. Use longer "
                    "windows (horizon, trainWindow) or fewer folds."
                )
            single.append(f"fold {fold} {part}")
        if single:
            warnings.warn(
                SingleClassWarning(
                    f"One class in '{label}' in {len(single)} window(s) ({', '.join(single)}): "
                    "a model fitted on one class predicts only it, and a metric over one "
                    "class says little. Use longer windows (horizon, trainWindow) or fewer "
                    "folds."
                ),
                stacklevel=6,  # the caller's fit(): Estimator.fit, _fit, _fit_resolved, ...
            )

    # --- fitting ----------------------------------------------------------

    def _fit(self, dataset: DataFrame) -> TimeSeriesCrossValidatorModel:
        time_col, series = _as_in_data(dataset, [self.getTimeCol()]), self.getSeriesIdCols()
        resolved = {self.timeCol: time_col[0], self.seriesIdCols: _as_in_data(dataset, series)}
        same = resolved[self.timeCol] == self.getTimeCol() and resolved[self.seriesIdCols] == series
        return (self if same else self.copy(resolved))._fit_resolved(dataset)

    def _fit_resolved(self, dataset: DataFrame) -> TimeSeriesCrossValidatorModel:
        self._check_params(dataset)
        split = self._indexed(dataset)
        # One cache for every fold: the windows below are filters over it.
        frame = split.frame.cache()
        try:
            return self._fit_folds(dataset, frame, split)
        finally:
            frame.unpersist()

    def _fit_folds(
        self, dataset: DataFrame, frame: DataFrame, split: _Split
    ) -> TimeSeriesCrossValidatorModel:
        folds, bounds, in_span = split.folds, split.bounds, split.in_span
        est, epm, eva = self.getEstimator(), self.getEstimatorParamMaps(), self.getEvaluator()
        self._check_classes(frame, folds, bounds, in_span)
        n_folds, n_maps = len(folds), len(epm)
        collect = self.getCollectSubModels()

        def evaluate(f: int, j: int) -> tuple[int, int, float, Any]:
            train = self._window(frame, in_span(folds[f].train))
            validation = self._window(frame, in_span(folds[f].validation))
            try:
                model = est.fit(train, epm[j])
                metric = float(eva.evaluate(model.transform(validation, epm[j])))
            except Exception as exc:
                _add_fold_note(exc, f, bounds[f], j)
                raise
            return f, j, metric, model if collect else None

        metrics = np.full((n_folds, n_maps), np.nan)
        sub_models: list[list[Any]] = [[None] * n_maps for _ in range(n_folds)]
        workers = min(self.getParallelism(), n_folds * n_maps)
        # As pyspark's CrossValidator: each thread runs in the caller's session
        # (on Spark Connect a thread has no active session of its own, which
        # some models' fits need) with its local properties and tags.
        in_session = inheritable_thread_target(dataset.sparkSession)(evaluate)
        # Side by side, the folds with the longest training windows first: the
        # pairs that finish the search are then the cheapest, so the last
        # threads to finish leave the least idle time. In turn, in time order
        # (an error then comes from the earliest fold that has it).
        fold_order = list(range(n_folds))
        if workers > 1:
            fold_order.sort(key=lambda f: folds[f].train[0] - folds[f].train[1])
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(in_session, f, j) for f in fold_order for j in range(n_maps)]
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [fut for fut in done if fut.exception() is not None]
            if failed:
                for fut in pending:
                    fut.cancel()
                wait(pending)
                error = failed[0].exception()
                assert error is not None
                self._raise_missing_values(dataset, error)
                raise error
            for fut in futures:
                f, j, metric, model = fut.result()
                metrics[f, j] = metric
                sub_models[f][j] = model

        avg = metrics.mean(axis=0)
        best = int(np.argmax(avg) if eva.isLargerBetter() else np.argmin(avg))
        # On all of the data, as CrossValidator does: the cached dataset when
        # that is what was cached, so the source is not read again.
        if not split.whole:
            data = dataset
        else:
            data = frame.drop(_INDEX) if _INDEX in frame.columns else frame
        try:
            best_model = est.fit(data, epm[best])
        except Exception as exc:
            if hasattr(exc, "add_note"):
                exc.add_note(
                    f"In TimeSeriesCrossValidator's refit of parameter map {best} on all the data."
                )
            self._raise_missing_values(dataset, exc)
            raise
        model = TimeSeriesCrossValidatorModel(
            bestModel=best_model,
            avgMetrics=avg.tolist(),
            stdMetrics=metrics.std(axis=0).tolist(),
            foldMetrics=metrics.tolist(),
            foldBoundaries=bounds,
            subModels=sub_models if collect else None,
        )
        return self._copyValues(model)

    def copy(self, extra: dict | None = None) -> TimeSeriesCrossValidator:
        """A copy with the estimator and evaluator copied too (as CrossValidator)."""
        extra = dict(extra or {})
        new = Params.copy(self, extra)
        if self.isSet(self.estimator):
            new.setEstimator(self.getEstimator().copy(extra))  # type: ignore[attr-defined]
        if self.isSet(self.evaluator):
            new.setEvaluator(self.getEvaluator().copy(extra))  # type: ignore[attr-defined]
        return new

    def setEstimator(self, value: Estimator) -> TimeSeriesCrossValidator:
        """Set the estimator."""
        return self._set(estimator=value)

    def setEvaluator(self, value: Any) -> TimeSeriesCrossValidator:
        """Set the evaluator."""
        return self._set(evaluator=value)

    def setEstimatorParamMaps(self, value: list) -> TimeSeriesCrossValidator:
        """Set the parameter maps."""
        return self._set(estimatorParamMaps=value)

    def setTimeCol(self, value: str) -> TimeSeriesCrossValidator:
        """Set the time column."""
        return self._set(timeCol=value)

    def setNumFolds(self, value: int) -> TimeSeriesCrossValidator:
        """Set the number of folds."""
        return self._set(numFolds=value)

    def setCutoffs(self, value: list) -> TimeSeriesCrossValidator:
        """Set explicit cut-offs (last training time of each fold)."""
        return self._set(cutoffs=value)

    def setHorizon(self, value: int) -> TimeSeriesCrossValidator:
        """Set time points per validation window."""
        return self._set(horizon=value)

    def setGap(self, value: int) -> TimeSeriesCrossValidator:
        """Set time points left out between training and validation."""
        return self._set(gap=value)

    def setWindowType(self, value: str) -> TimeSeriesCrossValidator:
        """Set 'expanding' or 'sliding'."""
        return self._set(windowType=value)

    def setTrainWindow(self, value: int) -> TimeSeriesCrossValidator:
        """Set training time points per fold with a sliding window."""
        return self._set(trainWindow=value)

    def setSeriesIdCols(self, value: list[str] | None) -> TimeSeriesCrossValidator:
        """Set the series id columns (None or [] for none)."""
        return self._set(seriesIdCols=value or [])

    def setParallelism(self, value: int) -> TimeSeriesCrossValidator:
        """Set how many (fold, parameter map) pairs run at once."""
        return self._set(parallelism=value)

    def setCollectSubModels(self, value: bool) -> TimeSeriesCrossValidator:
        """Set whether to keep every fold's models."""
        return self._set(collectSubModels=value)

    def setSeed(self, value: int) -> TimeSeriesCrossValidator:
        """Set the seed (kept for CrossValidator compatibility; splitting is not random)."""
        return self._set(seed=value)

    def write(self) -> MLWriter:
        """A writer: ``cv.write().overwrite().save(path)``, as ``CrossValidator``'s.

        The unfitted validator is saved as its Params plus the estimator, the
        evaluator and the ``estimatorParamMaps`` (so it can also sit unfitted in
        a saved ``Pipeline``); all three must be set and writable.
        """
        return _ValidatorWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        """A reader: ``TimeSeriesCrossValidator.load(path)``."""
        return _ValidatorReader()


class TimeSeriesCrossValidatorModel(Model, _TimeSeriesCVParams, MLReadable, MLWritable):
    """The result of :class:`TimeSeriesCrossValidator`: the best model and the metrics.

    Attributes
    ----------
    bestModel : pyspark.ml.Model
        Refitted on the whole dataset with the best parameter map.
    avgMetrics : list of float
        Mean metric over folds, one per parameter map.
    stdMetrics : list of float
        Standard deviation over folds, one per parameter map.
    foldMetrics : list of list of float
        ``foldMetrics[fold][paramMap]``.
    foldBoundaries : list of dict
        Per fold: ``trainStart``, ``trainEnd``, ``validationStart``,
        ``validationEnd`` (inclusive), or with ``seriesIdCols`` the point
        ranges counted back from each series' end. Numbers and strings are the
        column's values; dates are ISO 8601 (``2024-01-31``); timestamps are
        ISO 8601 wall-clock times in the Spark session time zone with its UTC
        offset (``2026-11-01T01:00:00-05:00``), so each names one instant;
        timestamp_ntz values are ISO 8601 without an offset, as they have none.
    subModels : list of list of Model or None
        With ``collectSubModels``: ``subModels[fold][paramMap]`` (not saved).
    """

    def __init__(
        self,
        bestModel: Model,
        avgMetrics: list[float],
        stdMetrics: list[float],
        foldMetrics: list[list[float]],
        foldBoundaries: list[dict],
        subModels: list[list[Any]] | None = None,
    ) -> None:
        super().__init__()
        self.bestModel = bestModel
        self.avgMetrics = avgMetrics
        self.stdMetrics = stdMetrics
        self.foldMetrics = foldMetrics
        self.foldBoundaries = foldBoundaries
        self.subModels = subModels

    def _transform(self, dataset: DataFrame) -> DataFrame:
        return self.bestModel.transform(dataset)

    def copy(self, extra: dict | None = None) -> TimeSeriesCrossValidatorModel:
        """A copy sharing the fitted best model."""
        new = TimeSeriesCrossValidatorModel(
            self.bestModel.copy(extra),
            list(self.avgMetrics),
            list(self.stdMetrics),
            [list(m) for m in self.foldMetrics],
            [dict(b) for b in self.foldBoundaries],
            self.subModels,
        )
        return self._copyValues(new, extra)

    def write(self) -> MLWriter:
        """A writer: ``model.write().overwrite().save(path)``."""
        return _ModelWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        """A reader: ``TimeSeriesCrossValidatorModel.load(path)``."""
        return _ModelReader()


# Simple Params that are saved with the model (the estimator, evaluator and
# parameter maps are not: they are objects, and the best model carries what
# prediction needs).
_SAVED_PARAMS = (
    "timeCol",
    "numFolds",
    "cutoffs",
    "horizon",
    "gap",
    "windowType",
    "trainWindow",
    "seriesIdCols",
    "parallelism",
    "collectSubModels",
    "seed",
)


_VALIDATOR_CLASS = "sparklift.tuning.TimeSeriesCrossValidator"
_MODEL_CLASS = "sparklift.tuning.TimeSeriesCrossValidatorModel"


class _Writer(InstanceWriter):
    """JSON metadata written with Spark (so any Hadoop path works), and the stages' own saves."""

    def _mode(self) -> str:
        return "overwrite" if self.shouldOverwrite else "error"  # Connect knows "error"

    def _write_metadata(self, path: str, class_name: str, **extra: Any) -> None:
        instance = self.instance
        # Set Params only (defaults stay defaults after a load, as pyspark's writers keep them).
        params = {
            name: _json_value(instance.getOrDefault(name))
            for name in _SAVED_PARAMS
            if instance.isSet(getattr(instance, name))
        }
        if "cutoffs" in params:
            params["cutoffs"] = [_encode_cutoff(c) for c in instance.getCutoffs()]
        metadata = {
            "class": class_name,
            "formatVersion": FORMAT_VERSION,
            "uid": instance.uid,
            "params": params,
            **extra,
        }
        self._write_text(json.dumps(metadata, allow_nan=True), f"{path}/metadata")

    def _write_text(self, text: str, path: str) -> None:
        frame = self.sparkSession.createDataFrame([(text,)], "value string").coalesce(1)
        frame.write.mode(self._mode()).text(path)

    def _write_setup(self, setup: dict | None, path: str) -> None:
        """The estimator, the evaluator and the maps (see :func:`_saved_setup`).

        Without them, ``setup`` is written as JSON null all the same, so that
        an overwrite replaces the setup of an earlier save at this path.
        """
        if setup is not None:
            self._write(self.instance.getEstimator(), f"{path}/estimator")
            self._write(self.instance.getEvaluator(), f"{path}/evaluator")
        self._write_text(json.dumps(setup), f"{path}/setup")

    def _write(self, stage: Any, path: str) -> None:
        writer = stage.write()
        if self.shouldOverwrite:
            writer = writer.overwrite()
        writer.save(path)


class _ModelWriter(_Writer):
    """The model: its metrics and fold boundaries, the best model, and the setup when it can."""

    def saveImpl(self, path: str) -> None:
        model = self.instance
        best = model.bestModel
        self._write_metadata(
            path,
            _MODEL_CLASS,
            avgMetrics=model.avgMetrics,
            stdMetrics=model.stdMetrics,
            foldMetrics=model.foldMetrics,
            foldBoundaries=model.foldBoundaries,
            bestModelClass=f"{type(best).__module__}.{type(best).__qualname__}",
        )
        self._write(best, f"{path}/bestModel")
        # As CrossValidatorModel: the estimator, the evaluator and the maps, so
        # that a loaded model's avgMetrics can be matched to the maps they score.
        self._write_setup(_saved_setup(model)[0], path)


class _ValidatorWriter(_Writer):
    """The unfitted validator: its Params and the setup, which it cannot do without."""

    def saveImpl(self, path: str) -> None:
        setup, reason = _saved_setup(self.instance)
        if setup is None:
            raise InvalidInputError(f"This TimeSeriesCrossValidator cannot be saved: {reason}.")
        self._write_metadata(path, _VALIDATOR_CLASS)
        self._write_setup(setup, path)


def _add_fold_note(exc: BaseException, fold: int, bounds: dict, param_map: int) -> None:
    """Say which fold and map an error of a fit or an evaluation came from (Python 3.11+)."""
    if not hasattr(exc, "add_note"):
        return
    note = f"In TimeSeriesCrossValidator fold {fold} {bounds}, parameter map {param_map}."
    if "Unseen label" in str(exc):
        note += (
            " A value first appears in a later window than the one a StringIndexer was "
            "fitted on: set handleInvalid='keep' on it, or index that column (a label or a "
            "feature) before the validator."
        )
    exc.add_note(note)


def _stages_by_uid(stage: Any) -> dict[str, Any]:
    """A stage and, for a Pipeline (or PipelineModel), every stage inside it, by uid."""
    found = {stage.uid: stage}
    if callable(getattr(stage, "getStages", None)):  # Pipeline
        inner = stage.getStages()
    else:  # PipelineModel (a fitted stage inside a Pipeline), or no stages
        inner = getattr(stage, "stages", None) or []
    for child in inner:
        found.update(_stages_by_uid(child))
    return found


def _saved_setup(model: Any) -> tuple[dict | None, str]:
    """The classes of the estimator and evaluator and the maps as JSON, or None and why.

    None when the validator's estimator or evaluator is not set or cannot be
    written, or a map holds a value JSON cannot (a model is then saved
    without them; the unfitted validator is not saved).
    """
    names = ("estimator", "evaluator", "estimatorParamMaps")
    unset = [n for n in names if not model.isDefined(getattr(model, n))]
    if unset:
        return None, f"{', '.join(unset)} not set"
    est, eva = model.getEstimator(), model.getEvaluator()
    for name, stage in (("estimator", est), ("evaluator", eva)):
        if not callable(getattr(stage, "write", None)):
            return None, f"its {name} ({type(stage).__name__}) has no writer"
    stages = _stages_by_uid(est)
    for uid, stage in stages.items():  # as a Pipeline's writer checks, before anything is written
        if stage is not est and not isinstance(stage, MLWritable):
            return None, f"its Pipeline stage {uid} ({type(stage).__name__}) has no writer"
    maps = []
    for param_map in model.getEstimatorParamMaps():
        entries = []
        for param, value in param_map.items():
            if param.parent not in stages:
                return None, (
                    f"a parameter map sets {param.name!r} of {param.parent}, which is not "
                    "the estimator nor one of its Pipeline stages"
                )
            entries.append({"parent": param.parent, "name": param.name, "value": value})
        maps.append(entries)
    try:
        text = json.dumps(maps, default=_json_value)
    except (TypeError, ValueError) as exc:
        return None, f"a parameter map holds a value JSON cannot ({exc})"
    return {
        "estimatorClass": f"{type(est).__module__}.{type(est).__qualname__}",
        "evaluatorClass": f"{type(eva).__module__}.{type(eva).__qualname__}",
        "estimatorParamMaps": json.loads(text),
    }, ""


def _load_setup(spark: Any, path: str, required: bool = False) -> dict[str, Any]:
    """The estimator, evaluator and maps saved by :func:`_saved_setup`, if any.

    A model may have been saved without them (``{}``); a validator
    (``required``) cannot.
    """
    import importlib

    try:
        rows = spark.read.text(f"{path}/setup").collect()
        setup = json.loads(rows[0][0])
    except Exception:  # saved before the setup was written, or without it
        setup = None
    if setup is None:
        if required:
            raise ModelFormatError(
                f"{path} has no estimator, evaluator and parameter maps (an interrupted save?)"
            )
        return {}

    def load(key: str, where: str) -> Any:
        module, _, name = setup[key].rpartition(".")
        return getattr(importlib.import_module(module), name).load(f"{path}/{where}")

    est, eva = load("estimatorClass", "estimator"), load("evaluatorClass", "evaluator")
    stages = _stages_by_uid(est)
    maps = [
        {stages[e["parent"]].getParam(e["name"]): e["value"] for e in entries}
        for entries in setup["estimatorParamMaps"]
    ]
    return {"estimator": est, "evaluator": eva, "estimatorParamMaps": maps}


def _read_metadata(spark: Any, path: str, class_name: str) -> dict:
    """The JSON metadata a :class:`_Writer` wrote, checked for its class and format version."""
    name = class_name.rpartition(".")[2]
    try:
        rows = spark.read.text(f"{path}/metadata").collect()
        metadata = json.loads(rows[0][0])
    except Exception as exc:
        raise ModelFormatError(
            f"{path} is not a saved {name} (no readable "
            f"metadata: {type(exc).__name__}: {str(exc).splitlines()[0]})"
        ) from None
    if metadata.get("class") != class_name:
        raise ModelFormatError(f"{path} holds a {metadata.get('class')!r}, not a {name}.")
    if metadata.get("formatVersion") != FORMAT_VERSION:
        raise ModelFormatError(
            f"{path} has format version {metadata.get('formatVersion')}; this sparklift "
            f"reads version {FORMAT_VERSION}."
        )
    return metadata


def _restore(instance: Any, metadata: dict, setup: dict[str, Any]) -> None:
    instance._resetUid(metadata["uid"])
    params = dict(metadata["params"])
    if "cutoffs" in params:
        params["cutoffs"] = [_decode_cutoff(c) for c in params["cutoffs"]]
    instance._set(**params)
    instance._set(**setup)


def _encode_cutoff(value: Any) -> Any:
    """A cut-off as JSON that loads back as the same value, type included.

    Dates, datetimes (naive ones stay naive: F.lit reads them in Python's
    local zone, as the original's were) and Decimals are tagged; a string
    stays a string (old saves hold ISO text, which is read as before).
    """
    if isinstance(value, _dt.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, _dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, _decimal.Decimal):
        return {"decimal": format(value, "f")}
    return _json_value(value)


_CUTOFF_TYPES: dict[str, Any] = {
    "datetime": _dt.datetime.fromisoformat,
    "date": _dt.date.fromisoformat,
    "decimal": _decimal.Decimal,
}


def _decode_cutoff(value: Any) -> Any:
    if isinstance(value, dict):
        ((kind, text),) = value.items()
        return _CUTOFF_TYPES[kind](text)
    return value


class _ModelReader(MLReader):
    def load(self, path: str) -> TimeSeriesCrossValidatorModel:
        import importlib

        metadata = _read_metadata(self.sparkSession, path, _MODEL_CLASS)
        module, _, name = metadata["bestModelClass"].rpartition(".")
        best_cls = getattr(importlib.import_module(module), name)
        best = best_cls.load(f"{path}/bestModel")
        model = TimeSeriesCrossValidatorModel(
            bestModel=best,
            avgMetrics=metadata["avgMetrics"],
            stdMetrics=metadata["stdMetrics"],
            foldMetrics=metadata["foldMetrics"],
            foldBoundaries=metadata["foldBoundaries"],
        )
        _restore(model, metadata, _load_setup(self.sparkSession, path))
        return model


class _ValidatorReader(MLReader):
    def load(self, path: str) -> TimeSeriesCrossValidator:
        metadata = _read_metadata(self.sparkSession, path, _VALIDATOR_CLASS)
        validator = TimeSeriesCrossValidator()
        _restore(validator, metadata, _load_setup(self.sparkSession, path, required=True))
        return validator
