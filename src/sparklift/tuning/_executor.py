"""Running packed calls as Spark tasks, one call per partition.

Layout of a job: ``spark.range(start, end, numPartitions=end - start)`` gives
exactly one row per partition -- one Spark task -- and the calls are dealt to
these tasks round-robin (task ``t`` of ``T`` runs calls ``t, t + T, ...``), so
every task gets a mix of candidates and Spark hands tasks to whichever slot is
free (dynamic load balancing, as joblib does). There are at most
:data:`TASKS_PER_SLOT` tasks per task slot: a Python task costs tens of
milliseconds of scheduling, too much to pay per fit when fits are short,
while four tasks a slot still balance the load. The shared store and all the
calls' small pickles travel in one row, cross-joined as a broadcast table:
the JVM ships it to each executor once per job, and a Python worker
unpickles the store once per search (see :mod:`._data`).

The calls of one round are split into a few jobs submitted together from
driver threads, so a progress bar can count finished fits while Spark keeps
every slot busy. Only the DataFrame API is used, so this runs on Spark
Connect too.
"""

from __future__ import annotations

import functools
import math
import pickle
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from sparklift._spark import map_partitions, translate_errors
from sparklift.errors import ResourceLimitError
from sparklift.tuning._data import (
    PackedTasks,
    load_store,
    run_payload,
    unpack_outcome,
    unpickling_error,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: Upper bound on Spark jobs per round: each job re-broadcasts the shared
#: store, so more jobs mean a finer progress bar but more bytes shipped.
MAX_JOBS_PER_ROUND = 4

#: Spark tasks per task slot in a round (see the module docstring).
TASKS_PER_SLOT = 4

#: Spark cannot hold a binary value of 2 GiB or more in one row.
_MAX_SHARED_BYTES = 2**31 - 2**20

_RESULT_SCHEMA = "id long, outcome binary"


def _run_partition(n_tasks: int, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    # One row per task: its number, and the round's shared store and calls.
    ids: list[int] = []
    outcomes: list[bytes] = []
    for batch in batches:
        for row in range(batch.num_rows):
            task = batch.column("task")[row].as_py()
            key = batch.column("key")[row].as_py()
            # as_buffer: no copy of the store unless this worker lacks it.
            try:
                store = load_store(key, batch.column("shared")[row].as_buffer())
            except Exception as exc:
                raise unpickling_error(exc) from None
            payloads = pickle.loads(batch.column("calls")[row].as_buffer())
            for call_id in range(task, len(payloads), n_tasks):
                outcomes.append(run_payload(payloads[call_id], store))
                ids.append(call_id)
    if ids:
        yield pa.RecordBatch.from_arrays(
            [pa.array(ids, pa.int64()), pa.array(outcomes, pa.binary())],
            names=["id", "outcome"],
        )


_SLOTS_CACHE: dict[int, int] = {}


def task_slots(spark: SparkSession) -> int:
    """How many tasks the session runs at once (its default parallelism).

    Read as the number of partitions ``spark.range`` makes by default, which
    works on Classic and Connect alike; cached per session.
    """
    from pyspark.sql import functions as F

    key = id(spark)
    if key not in _SLOTS_CACHE:
        parts = spark.range(0, 1 << 16).select(F.spark_partition_id().alias("p"))
        row = parts.agg(F.max("p").alias("p")).first()
        _SLOTS_CACHE[key] = max(1, int(row["p"]) + 1) if row is not None else 1
    return _SLOTS_CACHE[key]


def _job_frame(spark: SparkSession, tasks: range, n_tasks: int, round_df: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    slots = spark.range(tasks.start, tasks.stop, 1, numPartitions=len(tasks))
    frame = slots.withColumnRenamed("id", "task").crossJoin(F.broadcast(round_df))
    return map_partitions(frame, functools.partial(_run_partition, n_tasks), _RESULT_SCHEMA)


def job_bounds(n_calls: int, max_jobs: int = MAX_JOBS_PER_ROUND) -> list[tuple[int, int]]:
    """Contiguous ``[start, stop)`` ranges of calls, one per Spark job."""
    if n_calls == 0:
        return []
    n_jobs = min(n_calls, max_jobs)
    size = math.ceil(n_calls / n_jobs)
    return [(start, min(start + size, n_calls)) for start in range(0, n_calls, size)]


def run_packed(
    spark: SparkSession,
    packed: PackedTasks,
    *,
    progress: Any = None,
    max_jobs: int | None = None,
    n_tasks: int | None = None,
) -> tuple[list[Any], int]:
    """Run packed calls on Spark and return their results in order.

    Parameters
    ----------
    spark : SparkSession
    packed : PackedTasks
    progress : tqdm-like, optional
        ``progress.update(n)`` is called as each job's fits finish.
    max_jobs : int, optional
        At most this many Spark jobs (progress steps); default
        :data:`MAX_JOBS_PER_ROUND`.
    n_tasks : int, optional
        Spark tasks to deal the calls to; by default
        ``TASKS_PER_SLOT * task_slots(spark)``, at most one per call.

    Returns
    -------
    results : list
        One result per call, in call order.
    n_jobs : int
        How many Spark jobs ran (each ships the shared store once per executor).

    Raises
    ------
    Exception
        The first call's own exception when one raised (in call order).
    """
    if packed.shared_bytes > _MAX_SHARED_BYTES:
        raise ResourceLimitError(
            f"The search data pickles to {packed.shared_bytes / 2**30:.2f} GiB; Spark "
            "cannot ship one value of 2 GiB or more. Subsample X or use a smaller "
            "dtype (e.g. float32)."
        )
    # One row: the store and every call's small pickle; each task picks its own.
    round_df = spark.createDataFrame(
        pd.DataFrame(
            {
                "key": [packed.key],
                "shared": [packed.shared],
                "calls": [pickle.dumps(packed.payloads)],
            }
        ),
        schema="key string, shared binary, calls binary",
    )
    n_calls = len(packed.payloads)
    if n_tasks is None:
        n_tasks = TASKS_PER_SLOT * task_slots(spark)
    n_tasks = max(1, min(n_tasks, n_calls))
    bounds = job_bounds(n_tasks, MAX_JOBS_PER_ROUND if max_jobs is None else max_jobs)
    blobs: dict[int, bytes] = {}

    def run_job(start: int, stop: int) -> int:
        frame = _job_frame(spark, range(start, stop), n_tasks, round_df)
        with translate_errors():
            rows = frame.collect()
        for row in rows:
            blobs[row["id"]] = row["outcome"]
        return len(rows)

    # All jobs are submitted at once: Spark's FIFO scheduler runs them in order
    # and fills every free slot, while each finished job moves the bar.
    with ThreadPoolExecutor(max_workers=len(bounds) or 1) as pool:
        futures = [pool.submit(run_job, start, stop) for start, stop in bounds]
        for future in as_completed(futures):
            done = future.result()
            if progress is not None:
                progress.update(done)
    missing = sorted(set(range(n_calls)) - set(blobs))
    if missing:  # pragma: no cover - Spark lost rows: never silently
        raise RuntimeError(f"{len(missing)} fits returned no result (first: task {missing[0]})")
    return [unpack_outcome(blobs[i]) for i in range(n_calls)], len(bounds)


__all__: Sequence[str] = ["job_bounds", "run_packed", "task_slots"]
