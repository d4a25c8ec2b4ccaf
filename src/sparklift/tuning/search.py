"""scikit-learn's hyper-parameter searches, with every fit a Spark task.

:class:`GridSearchCV`, :class:`RandomizedSearchCV`, :class:`HalvingGridSearchCV`
and :class:`HalvingRandomSearchCV` are scikit-learn's own classes with one
thing changed: where scikit-learn hands the (candidate, split) fits to
joblib, they go to Spark instead. Everything else -- splitting, scoring,
``cv_results_``, ranks, ``refit``, multi-metric scoring, ``error_score`` with
the failing fit's traceback in the warning, ``return_train_score``, metadata
routing, successive halving -- is scikit-learn's code running unchanged, so
the results equal scikit-learn's for the same data, estimator and splits.

Why this design
---------------
``BaseSearchCV.fit`` builds ``Parallel(n_jobs=..., pre_dispatch=...)`` and
calls it with a generator of ``delayed(_fit_and_score)(...)`` calls. That
``Parallel`` is the one seam we replace: the name ``Parallel`` in
``sklearn.model_selection._search`` is swapped (once, at import) for a switch
that returns scikit-learn's ``Parallel`` unless the current thread is inside a
sparklift search's ``fit``, in which case it returns a dispatcher that
collects the calls of one round and runs them on Spark. The coupling is to
two facts of scikit-learn's source (checked in 1.9.1, the version the tests
run): the module-level name ``Parallel`` and the ``(function, args, kwargs)``
calls it receives; a scikit-learn without that name fails at import with a
clear message instead of silently running the fits locally.
Copying ``fit`` instead would fork a 250-line method that changes every
release.

The data (X, y, splits, scorers) is serialised once per round on the
driver, not once per fit: see :mod:`sparklift.tuning._data`. Spark then
broadcasts it to each executor once per job (a round is at most
:data:`~sparklift.tuning._executor.MAX_JOBS_PER_ROUND` jobs) and hands it to
a Python worker once per task (a few tasks per task slot), where it is
unpickled once per worker; :class:`SparkTransfer` reports each of these.
``n_jobs`` and ``pre_dispatch`` are accepted for compatibility and ignored;
Spark's task slots decide the parallelism.

What a fit prints and warns in its task is repeated on the driver (see
:func:`~sparklift.tuning._data.run_payload`), as scikit-learn in one process
would show it. Only the search's own ``Parallel`` goes to Spark: a later one
in the same ``fit`` (the refit of a best estimator that is itself a search)
is scikit-learn's, and a sparklift search fitted inside a Spark task (nested
cross-validation) runs its fits there.
"""

from __future__ import annotations

import contextvars
import os
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import sklearn.model_selection._search as _sk_search
from sklearn import get_config
from sklearn.experimental import enable_halving_search_cv  # noqa: F401 (enables the import below)
from sklearn.model_selection import GridSearchCV as _SkGridSearchCV
from sklearn.model_selection import HalvingGridSearchCV as _SkHalvingGridSearchCV
from sklearn.model_selection import HalvingRandomSearchCV as _SkHalvingRandomSearchCV
from sklearn.model_selection import RandomizedSearchCV as _SkRandomizedSearchCV
from tqdm.auto import tqdm

from sparklift.tuning._data import pack_calls
from sparklift.tuning._executor import run_packed

__all__ = [
    "GridSearchCV",
    "HalvingGridSearchCV",
    "HalvingRandomSearchCV",
    "RandomizedSearchCV",
    "SearchInWorkerWarning",
    "SparkTransfer",
]

_DISPATCHER: contextvars.ContextVar[_SparkDispatcher | None] = contextvars.ContextVar(
    "sparklift_search_dispatcher", default=None
)


#: Name prefixes of the worker processes of joblib's loky backend, of
#: multiprocessing.Pool (joblib's multiprocessing backend) and its variants.
POOL_WORKER_NAMES = ("LokyProcess", "ForkPoolWorker", "SpawnPoolWorker", "ForkServerPoolWorker")


def _in_pool_worker() -> bool:
    """Whether this process is a worker of a process pool (not a program's own child)."""
    import multiprocessing

    if multiprocessing.parent_process() is None:
        return False
    return multiprocessing.current_process().name.startswith(POOL_WORKER_NAMES)


class SearchInWorkerWarning(UserWarning):
    """A search was fitted in a worker process without a Spark session.

    Such as a joblib worker when the search is the estimator of
    ``cross_val_score(..., n_jobs=2)``: its fits ran in that process, as
    scikit-learn's would, rather than starting a Spark there.
    """


@dataclass
class SparkTransfer:
    """What a search sent to Spark, summed over its rounds.

    The data of a round travels in three steps, each counted here: it is
    serialised once on the driver (``shared_bytes + task_bytes``), broadcast
    to each executor once per Spark job (``broadcast_bytes``), and handed by
    the JVM to a Python worker once per Spark task (``worker_bytes``,
    measured in the tasks).

    Attributes
    ----------
    n_fits : int
        (candidate, split) fits run.
    n_rounds : int
        Rounds of candidates (1, or one per iteration of successive halving).
    n_spark_jobs : int
        Spark jobs run; each broadcasts the round's data to each executor.
    n_spark_tasks : int
        Spark tasks run (successful attempts), a few per task slot and round;
        each hands the round's data to a Python worker and runs several fits.
    shared_bytes : int
        The shared store (X, y, fit parameters, splits, scorers), pickled once
        per round on the driver.
    task_bytes : int
        The per-fit pickles (estimator clone and parameters), each pickled
        once on the driver.
    broadcast_bytes : int
        What each executor receives, derived rather than measured: the
        round's row (store plus the list of every fit's pickle) times the
        round's Spark jobs. This is per executor: a cluster of E executors
        moves E times as much (on ``local`` the driver is the executor and
        nothing crosses a network). Spark may compress the broadcast.
    worker_bytes : int
        Bytes delivered to Python workers, measured in the tasks: each task
        counts the store and fit pickles the JVM handed it, so this is
        ``n_spark_tasks`` times the round's row. It grows with the number of
        tasks (task slots), not with the number of fits.
    store_unpickles : int
        Tasks that unpickled the store because their Python worker did not
        have it cached; the others reused it (about one per Python worker and
        round when Spark reuses workers, its default).
    """

    n_fits: int = 0
    n_rounds: int = 0
    n_spark_jobs: int = 0
    n_spark_tasks: int = 0
    shared_bytes: int = 0
    task_bytes: int = 0
    broadcast_bytes: int = 0
    worker_bytes: int = 0
    store_unpickles: int = 0

    @property
    def total_bytes(self) -> int:
        """Bytes serialised on the driver (``shared_bytes + task_bytes``).

        Not what reaches the workers: see ``broadcast_bytes`` and ``worker_bytes``.
        """
        return self.shared_bytes + self.task_bytes

    def as_dict(self) -> dict[str, int]:
        """The counts as a plain dict (``total_bytes`` included)."""
        return {**asdict(self), "total_bytes": self.total_bytes}


def _with_config(func: Any, config: dict, filters: list) -> Any:
    # What sklearn.utils.parallel.Parallel.__call__ does: the worker runs the
    # fit under the driver thread's scikit-learn config and warning filters.
    if hasattr(func, "with_config_and_warning_filters"):
        return func.with_config_and_warning_filters(config, filters)
    return func


def _without_unused_caller(kwargs: dict) -> dict:
    # scikit-learn passes the search object itself as ``caller``, read only by
    # the fit callbacks its ``callback_ctx`` holds. Without callbacks it is not
    # needed, and shipping it would pickle whatever the search holds (a
    # generator ``cv`` cannot be pickled, though scikit-learn accepts one).
    if kwargs.get("caller") is None:
        return kwargs
    if getattr(kwargs.get("callback_ctx"), "_callbacks", None):
        return kwargs
    return {**kwargs, "caller": None}


def _bar_disabled(verbose: int) -> bool | None:
    """tqdm's ``disable``: off with ``TQDM_DISABLE`` set, on with ``verbose > 0``, else only on a terminal.

    Passing ``disable`` at all overrides tqdm's own reading of the variable.
    """
    if os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false", "no"):
        return True
    return None if verbose <= 0 else False


class _SparkDispatcher:
    """Stands in for joblib's ``Parallel`` inside a sparklift search's ``fit``."""

    def __init__(self, label: str, verbose: int) -> None:
        self.label = label
        self.verbose = verbose
        self.transfer = SparkTransfer()
        # Handed out once, to the search's own ``Parallel``: any later one in
        # the same fit (the refit of a best estimator that is itself a
        # scikit-learn search) runs as scikit-learn would run it.
        self.claimed = False

    def __enter__(self) -> _SparkDispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __call__(self, iterable: Any) -> list[Any]:
        config = get_config()
        filters = list(getattr(warnings, "_get_filters", lambda: warnings.filters)())
        calls = [
            (_with_config(f, config, filters), args, _without_unused_caller(kwargs))
            for f, args, kwargs in iterable
        ]
        if not calls:
            return []
        from sparklift.session import get_spark

        # Only now: scikit-learn has checked the search's parameters by the
        # time it dispatches fits, so a typo costs no Spark start.
        spark = get_spark()
        packed = pack_calls(calls)
        bar = tqdm(
            total=len(calls),
            desc=f"{self.label} fits",
            unit="fit",
            disable=_bar_disabled(self.verbose),
        )
        try:
            results, stats = run_packed(spark, packed, progress=bar)
        finally:
            bar.close()
        t = self.transfer
        t.n_fits += len(calls)
        t.n_rounds += 1
        t.n_spark_jobs += stats.n_jobs
        t.n_spark_tasks += stats.n_tasks
        t.shared_bytes += packed.shared_bytes
        t.task_bytes += packed.task_bytes
        t.broadcast_bytes += stats.round_bytes * stats.n_jobs
        t.worker_bytes += stats.worker_bytes
        t.store_unpickles += stats.store_unpickles
        return results


class _ParallelSwitch:
    """The name ``Parallel`` in scikit-learn's search module, after import."""

    original: Any = None

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        dispatcher = _DISPATCHER.get()
        if dispatcher is None or dispatcher.claimed:
            return cls.original(*args, **kwargs)
        dispatcher.claimed = True
        return dispatcher


def _install_switch() -> None:
    current = getattr(_sk_search, "Parallel", None)
    if current is None:  # pragma: no cover - a scikit-learn we do not know
        raise ImportError(
            "sparklift.tuning needs sklearn.model_selection._search.Parallel, which this "
            "scikit-learn does not have; please report your scikit-learn version."
        )
    if isinstance(current, type) and issubclass(current, _ParallelSwitch):
        return
    _ParallelSwitch.original = current
    _sk_search.Parallel = _ParallelSwitch  # type: ignore[misc,assignment]


_install_switch()


class _SparkSearchMixin:
    """Runs the search's fits on Spark; everything else is scikit-learn's."""

    def fit(self, X: Any, y: Any = None, **params: Any) -> Any:
        """Run fit with all sets of parameters, every fit a Spark task.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, as scikit-learn accepts it (NumPy, pandas, sparse).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
            Target; None for unsupervised learning.
        **params : dict of str -> object
            Parameters for the estimator's ``fit``, the scorer and the CV
            splitter (``groups``), routed as scikit-learn does.

        Returns
        -------
        self : object
            The fitted search. Besides scikit-learn's attributes it has
            ``spark_transfer_`` (:class:`SparkTransfer`): fits, Spark jobs and
            tasks, and the bytes serialised on the driver, broadcast to each
            executor and delivered to the Python workers.
        """
        import multiprocessing

        from pyspark import TaskContext

        from sparklift.session import starts_local_jvm

        in_task = TaskContext.get() is not None
        # A worker process without a session, such as joblib's when this
        # search is the estimator of cross_val_score(..., n_jobs=2): a Spark
        # of its own there would be one more JVM per worker, off the user's
        # cluster.
        in_worker = not in_task and _in_pool_worker() and starts_local_jvm()
        if in_worker:
            warnings.warn(
                f"{type(self).__name__}.fit runs in a worker process (pid "
                f"{multiprocessing.current_process().pid}) with no active Spark session, "
                "such as a joblib worker of an outer n_jobs > 1: its fits run in this "
                "process, as scikit-learn's would. Give the outer call n_jobs=1 to fit on "
                "Spark, or start a session in this process first (sparklift.get_spark()).",
                SearchInWorkerWarning,
                stacklevel=2,
            )
        if in_task or in_worker:
            # In a Spark task (this search is the estimator of another one:
            # nested cross-validation; an executor has no session) or in such
            # a worker, the fits run here, as scikit-learn runs them.
            super().fit(X, y, **params)  # type: ignore[misc]
            self.spark_transfer_ = SparkTransfer()
            return self
        dispatcher = _SparkDispatcher(type(self).__name__, int(getattr(self, "verbose", 0)))
        token = _DISPATCHER.set(dispatcher)
        try:
            super().fit(X, y, **params)  # type: ignore[misc]
        finally:
            _DISPATCHER.reset(token)
        self.spark_transfer_ = dispatcher.transfer
        return self


class GridSearchCV(_SparkSearchMixin, _SkGridSearchCV):
    """Exhaustive search over a parameter grid, each fit a Spark task.

    A drop-in for :class:`sklearn.model_selection.GridSearchCV`: same
    parameters, attributes and results (see the module docstring for how).
    ``n_jobs`` and ``pre_dispatch`` are ignored: Spark's task slots set the
    parallelism. A progress bar counting finished fits appears on a terminal,
    or always when ``verbose > 0`` (``TQDM_DISABLE=1`` hides it).

    Examples
    --------
    >>> from sklearn.svm import SVC
    >>> from sparklift.tuning import GridSearchCV
    >>> search = GridSearchCV(SVC(), {"C": [0.1, 1.0, 10.0]}, cv=3)
    >>> search.fit(X, y).best_params_  # doctest: +SKIP
    """


class RandomizedSearchCV(_SparkSearchMixin, _SkRandomizedSearchCV):
    """Randomized search over parameter distributions, each fit a Spark task.

    A drop-in for :class:`sklearn.model_selection.RandomizedSearchCV`: the
    same ``random_state`` draws the same candidates. ``n_jobs`` and
    ``pre_dispatch`` are ignored.
    """


class HalvingGridSearchCV(_SparkSearchMixin, _SkHalvingGridSearchCV):
    """Successive halving over a grid, each round's fits run as Spark tasks.

    A drop-in for :class:`sklearn.model_selection.HalvingGridSearchCV`; each
    halving iteration is one round of Spark jobs. ``n_jobs`` is ignored.
    """


class HalvingRandomSearchCV(_SparkSearchMixin, _SkHalvingRandomSearchCV):
    """Successive halving over random candidates, each fit a Spark task.

    A drop-in for :class:`sklearn.model_selection.HalvingRandomSearchCV`.
    ``n_jobs`` is ignored.
    """
