"""Running packed calls as Spark tasks, one call per partition.

Layout of a job: ``spark.range(start, end, numPartitions=end - start)`` gives
exactly one row per partition -- one Spark task -- and the calls are dealt to
these tasks round-robin (task ``t`` of ``T`` runs calls ``t, t + T, ...``), so
every task gets a mix of candidates and Spark hands tasks to whichever slot is
free (dynamic load balancing, as joblib does). There are at most
:data:`TASKS_PER_SLOT` tasks per task slot: a Python task costs tens of
milliseconds of scheduling, too much to pay per fit when fits are short,
while four tasks a slot still balance the load.

How the data travels (measured in :class:`RunStats`):

* the shared store and the calls' small pickles, grouped into one blob per
  task, are serialised once per round on the driver, into one row;
* that row is cross-joined as a broadcast table, so each Spark job of the
  round (at most :data:`MAX_JOBS_PER_ROUND`) broadcasts it to each executor
  once;
* the JVM keeps only the task's own blob of calls (``element_at``, before
  Python sees the row) and hands the whole store plus that blob to a Python
  worker once per task (``TASKS_PER_SLOT x`` task slots per round) -- the
  bytes each task received are counted in the task and summed on the driver;
* a Python worker unpickles the store only when its cache lacks it, which is
  once per worker per round when Spark reuses its Python workers (the
  default; see :mod:`._data`).

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from sparklift._serialize import driver_paths, using_driver_paths
from sparklift._spark import map_partitions, translate_errors
from sparklift.errors import ResourceLimitError
from sparklift.tuning._data import (
    PackedTasks,
    load_store,
    run_payload,
    store_is_cached,
    unpack_outcome,
    unpickling_error,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: Upper bound on Spark jobs per round: each job broadcasts the shared store
#: to each executor again, so more jobs mean a finer progress bar but more
#: bytes moved to the executors.
MAX_JOBS_PER_ROUND = 4

#: Spark tasks per task slot in a round (see the module docstring); each task
#: hands the whole store to its Python worker.
TASKS_PER_SLOT = 4

#: Spark cannot hold a binary value of 2 GiB or more in one row.
_MAX_SHARED_BYTES = 2**31 - 2**20

# One row per call (``id`` >= 0, its pickled outcome), plus one row per task
# (``id`` -1) with what the task measured: the bytes it was handed and whether
# its worker had to unpickle the store.
_RESULT_SCHEMA = "id long, outcome binary, received long, unpickled long"


@dataclass(frozen=True)
class RunStats:
    """What one round cost in Spark jobs, tasks and bytes.

    Attributes
    ----------
    n_jobs : int
        Spark jobs run; each broadcasts the round's row to each executor.
    n_tasks : int
        Spark tasks run (successful attempts); each hands the row to a Python worker.
    round_bytes : int
        The round's broadcast row as serialised on the driver: the shared
        store plus every task's blob of calls.
    worker_bytes : int
        Bytes the Python workers received, measured in each task and summed
        over tasks: the store once per task plus each task's own calls.
    store_unpickles : int
        Tasks whose Python worker did not have the store cached and unpickled it.
    """

    n_jobs: int
    n_tasks: int
    round_bytes: int
    worker_bytes: int
    store_unpickles: int


def _run_partition(n_tasks: int, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    # One row per task: its number, the round's shared store and its own calls.
    ids: list[int] = []
    outcomes: list[bytes] = []
    received: list[int] = []
    unpickled: list[int] = []
    for batch in batches:
        for row in range(batch.num_rows):
            task = batch.column("task")[row].as_py()
            key = batch.column("key")[row].as_py()
            # as_buffer: a view of what the JVM sent, no copy.
            shared = batch.column("shared")[row].as_buffer()
            calls = batch.column("calls")[row].as_buffer()
            paths, payloads = pickle.loads(calls)
            cached = store_is_cached(key)
            try:
                store = using_driver_paths(paths, functools.partial(load_store, key, shared))
            except Exception as exc:
                raise unpickling_error(exc) from None
            ids.append(-1)
            outcomes.append(b"")
            received.append(shared.size + calls.size)
            unpickled.append(0 if cached else 1)
            # The task's calls are calls task, task + n_tasks, ... of the round.
            for index, payload in enumerate(payloads):
                outcomes.append(run_payload(payload, store, paths))
                ids.append(task + index * n_tasks)
                received.append(0)
                unpickled.append(0)
    if ids:
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(ids, pa.int64()),
                pa.array(outcomes, pa.binary()),
                pa.array(received, pa.int64()),
                pa.array(unpickled, pa.int64()),
            ],
            names=["id", "outcome", "received", "unpickled"],
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
    # The projection runs in the JVM: a task's Python worker gets its own calls only.
    frame = (
        slots.withColumnRenamed("id", "task")
        .crossJoin(F.broadcast(round_df))
        .select(
            "task",
            "key",
            "shared",
            F.element_at("calls", (F.col("task") + 1).cast("int")).alias("calls"),
        )
    )
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
) -> tuple[list[Any], RunStats]:
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
    stats : RunStats
        Spark jobs and tasks run, and the bytes the Python workers received.

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
    n_calls = len(packed.payloads)
    if n_tasks is None:
        n_tasks = TASKS_PER_SLOT * task_slots(spark)
    n_tasks = max(1, min(n_tasks, n_calls))
    # One row: the store, and per task one pickle of its calls (dealt round-robin),
    # with the driver's import path for the workers (see using_driver_paths).
    paths = driver_paths()
    calls = [
        pickle.dumps((paths, packed.payloads[task::n_tasks]), protocol=pickle.HIGHEST_PROTOCOL)
        for task in range(n_tasks)
    ]
    round_df = spark.createDataFrame(
        pd.DataFrame({"key": [packed.key], "shared": [packed.shared], "calls": [calls]}),
        schema="key string, shared binary, calls array<binary>",
    )
    bounds = job_bounds(n_tasks, MAX_JOBS_PER_ROUND if max_jobs is None else max_jobs)
    blobs: dict[int, bytes] = {}
    # Per-task measurements: [tasks, bytes received, store unpickles].
    measured = [0, 0, 0]

    def run_job(start: int, stop: int) -> int:
        frame = _job_frame(spark, range(start, stop), n_tasks, round_df)
        with translate_errors():
            rows = frame.collect()
        done = 0
        for row in rows:
            if row["id"] < 0:
                measured[0] += 1
                measured[1] += row["received"]
                measured[2] += row["unpickled"]
            else:
                blobs[row["id"]] = row["outcome"]
                done += 1
        return done

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
    stats = RunStats(
        n_jobs=len(bounds),
        n_tasks=measured[0],
        round_bytes=packed.shared_bytes + sum(len(blob) for blob in calls),
        worker_bytes=measured[1],
        store_unpickles=measured[2],
    )
    return [unpack_outcome(blobs[i]) for i in range(n_calls)], stats


__all__: Sequence[str] = ["RunStats", "job_bounds", "run_packed", "task_slots"]
