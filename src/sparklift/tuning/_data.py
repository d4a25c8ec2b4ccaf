"""Packing search tasks so that the data is pickled once, not once per fit.

A search is many calls ``func(*args, **kwargs)`` that share most of their
arguments: the same ``X``, ``y``, fit parameters and scorers, and a handful of
train/test index arrays reused by every candidate. Pickling each call on its
own (what joblib's Spark backend does, batch by batch) copies ``X`` and ``y``
into every task. Here the calls are pickled *against a shared store*: every
object that is the same object in several calls, and every large array, is
replaced in the per-task pickle by a reference (pickle's ``persistent_id``)
and pickled once into the store. The store is serialised once per round on
the driver; Spark broadcasts it to each executor once per job and hands it to
a Python worker once per task (a few tasks per task slot, not one per fit;
see :mod:`._executor`). A Python worker unpickles it only once and keeps it
in a small cache keyed by its content hash, so later tasks of the same round
on that worker only unpickle their own few kilobytes.

Nothing here imports pyspark: this module is plain pickling, tested on its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import pickle
import sys
import traceback
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# cloudpickle (as bundled with pyspark) pickles functions and classes defined
# in __main__ or notebooks by value, which plain pickle cannot ship to workers.
from pyspark import cloudpickle

from sparklift._serialize import using_driver_paths
from sparklift.errors import SparkliftError, TaskError

#: Arrays at least this large are always moved to the shared store.
_LARGE_BYTES = 1024

#: How many stores a Python worker keeps (a search has one per round).
_CACHE_SIZE = 2

_WORKER_CACHE: OrderedDict[str, dict[int, Any]] = OrderedDict()


@dataclass(frozen=True)
class PackedTasks:
    """Calls pickled against one shared store.

    Attributes
    ----------
    shared : bytes
        The pickled shared store (data, splits, scorers): serialised once
        per round, broadcast to each executor once per Spark job and handed
        to a Python worker once per Spark task.
    key : str
        SHA-256 of ``shared``; workers cache the unpickled store under it.
    payloads : list of bytes
        One small pickle per call, referring to the store.
    """

    shared: bytes
    key: str
    payloads: list[bytes]

    @property
    def shared_bytes(self) -> int:
        """Size of the shared store in bytes."""
        return len(self.shared)

    @property
    def task_bytes(self) -> int:
        """Total size of the per-task pickles in bytes."""
        return sum(len(p) for p in self.payloads)


def _is_large(obj: Any) -> bool:
    if isinstance(obj, np.ndarray):
        return obj.nbytes >= _LARGE_BYTES
    nbytes = getattr(obj, "nbytes", None)  # pandas objects, scipy.sparse via data
    if isinstance(nbytes, (int, np.integer)) and not isinstance(obj, type):
        return nbytes >= _LARGE_BYTES
    return type(obj).__module__.startswith(("pandas.", "scipy.sparse"))


def _pickles_its_dict(value: Any) -> bool:
    """Whether ``value`` pickles as its class plus its plain ``__dict__``.

    Only then is each attribute pickled on its own terms, so that moving one
    to the shared store changes nothing. A class with its own ``__reduce__``
    or ``__getstate__`` (pandas objects, estimators) may hold attributes that
    cannot be pickled alone (a pandas DataFrame's flags hold a weak reference).
    """
    cls = type(value)
    if isinstance(value, type) or not hasattr(value, "__dict__"):
        return False
    return (
        cls.__reduce_ex__ is object.__reduce_ex__
        and cls.__reduce__ is object.__reduce__
        and getattr(cls, "__getstate__", None) is getattr(object, "__getstate__", None)
    )


def _top_level_values(call: tuple[Any, tuple, dict]) -> list[Any]:
    func, args, kwargs = call
    values = list(args) + list(kwargs.values())
    # scikit-learn's delayed wrapper carries the config, the warning filters
    # and a copy of the function's docstring: the same for every call.
    values.extend(getattr(func, "__dict__", {}).values())
    for value in list(values):
        if isinstance(value, dict):  # fit_params, score_params, scorer dicts
            values.extend(value.values())
        elif isinstance(value, tuple):  # (train, test) pairs
            values.extend(value)
        elif _pickles_its_dict(value):
            # One level into objects: scikit-learn's per-fit callback contexts
            # all point to one parent that lists every fit; pickled per call,
            # it would make each call's pickle grow with the number of calls.
            values.extend(vars(value).values())
    return values


def _shared_objects(calls: Sequence[tuple[Any, tuple, dict]]) -> dict[int, Any]:
    """Objects worth pickling once: repeated across calls, or large."""
    seen: dict[int, int] = {}
    objects: dict[int, Any] = {}
    for call in calls:
        for value in {id(v): v for v in _top_level_values(call)}.values():
            if value is None or isinstance(value, (bool, int, float)):
                continue
            if isinstance(value, (str, bytes)) and len(value) < 256:
                continue
            seen[id(value)] = seen.get(id(value), 0) + 1
            objects[id(value)] = value
    return {key: obj for key, obj in objects.items() if seen[key] > 1 or _is_large(obj)}


class _SharedPickler(cloudpickle.Pickler):
    def __init__(self, file: io.BytesIO, refs: dict[int, int]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._refs = refs

    def persistent_id(self, obj: Any) -> int | None:
        return self._refs.get(id(obj))


class _SharedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, store: dict[int, Any]) -> None:
        super().__init__(file)
        self._store = store

    def persistent_load(self, pid: Any) -> Any:
        return self._store[pid]


def _dumps(obj: Any, refs: dict[int, int]) -> bytes:
    buffer = io.BytesIO()
    _SharedPickler(buffer, refs).dump(obj)
    return buffer.getvalue()


def pack_calls(calls: Sequence[tuple[Any, tuple, dict]]) -> PackedTasks:
    """Pickle calls ``(func, args, kwargs)`` against one shared store.

    Parameters
    ----------
    calls : sequence of (callable, tuple, dict)
        What joblib's ``delayed`` produces.

    Returns
    -------
    PackedTasks
    """
    shared = _shared_objects(calls)
    refs = {obj_id: index for index, obj_id in enumerate(shared)}
    store = {refs[obj_id]: obj for obj_id, obj in shared.items()}
    # The store itself is pickled plainly: objects inside it may refer to each
    # other (a dict of arrays), and pickle's memo keeps those links.
    try:
        shared_blob = cloudpickle.dumps(store, protocol=pickle.HIGHEST_PROTOCOL)
        payloads = [_dumps(call, refs) for call in calls]
    except Exception as exc:
        raise SparkliftError(
            f"the search's fits cannot be pickled to send them to Spark "
            f"({type(exc).__name__}: {exc}). X, y, the fit parameters, the scorers and "
            "the estimator must all be picklable."
        ) from exc
    key = hashlib.sha256(shared_blob).hexdigest()
    return PackedTasks(shared=shared_blob, key=key, payloads=payloads)


def store_is_cached(key: str) -> bool:
    """Whether this worker already holds the unpickled store ``key``."""
    return key in _WORKER_CACHE


def load_store(key: str, shared: Any) -> dict[int, Any]:
    """The unpickled shared store, from this worker's cache when it is there.

    ``shared`` is only read on a cache miss (it may be any buffer).
    """
    store = _WORKER_CACHE.get(key)
    if store is None:
        store = pickle.loads(shared)
        _WORKER_CACHE[key] = store
        while len(_WORKER_CACHE) > _CACHE_SIZE:
            _WORKER_CACHE.popitem(last=False)
    else:
        _WORKER_CACHE.move_to_end(key)
    return store


def unpickling_error(exc: BaseException) -> SparkliftError:
    """The error for a worker that cannot unpickle what the driver sent."""
    return SparkliftError(
        f"a Spark worker could not unpickle the search's data or estimator "
        f"({type(exc).__name__}: {exc}). Every class and function in it must be importable "
        "on the workers (the same packages installed there, or a folder on the driver's "
        "sys.path that the workers can read too), or defined in __main__."
    )


def _rebuildable(exc: BaseException, text: str) -> BaseException:
    """``exc``, or if pickle cannot rebuild it a TaskError carrying its traceback ``text``."""
    try:
        pickle.loads(cloudpickle.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:
        cls = type(exc)
        return TaskError(f"{cls.__module__}.{cls.__qualname__}", str(exc), text)
    return exc


#: What one fit printed is relayed to the driver up to this many characters.
MAX_RELAYED_CHARS = 100_000


def _warning_record(w: warnings.WarningMessage) -> tuple[type[Warning], str, str, int]:
    """A caught warning as (category, message, filename, lineno), its category picklable."""
    category, message = w.category, str(w.message)
    try:
        pickle.loads(cloudpickle.dumps(category))
    except Exception:
        message = f"{category.__module__}.{category.__qualname__}: {message}"
        category = UserWarning
    return category, message, w.filename, w.lineno


def run_payload(payload: Any, store: dict[int, Any], paths: Sequence[str] = ()) -> bytes:
    """Run one packed call and pickle its outcome.

    The outcome is ``("ok", result, relayed)`` or ``("raised", exception,
    traceback, relayed)``: an exception is returned, not raised, so that Spark
    does not retry a task that fails the same way every time and the driver
    can raise the user's own exception rather than a Spark error. An exception
    that pickle cannot rebuild is replaced by a
    :class:`~sparklift.errors.TaskError` carrying its class name, message and
    traceback. ``relayed`` is what the call printed to stdout and the warnings
    it raised (under the driver's filters, which scikit-learn's wrapper sets),
    for :func:`unpack_outcome` to repeat on the driver, where scikit-learn run
    in one process would have shown them (its ``verbose`` lines, "Scoring
    failed" warnings, an estimator's ConvergenceWarning).
    """
    printed = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(printed):
        try:
            func, args, kwargs = using_driver_paths(
                paths, lambda: _SharedUnpickler(io.BytesIO(payload), store).load()
            )
        except Exception as exc:
            outcome: tuple[Any, ...] = ("raised", unpickling_error(exc), traceback.format_exc())
        else:
            try:
                outcome = ("ok", func(*args, **kwargs))
            except Exception as exc:
                text = traceback.format_exc()
                outcome = ("raised", _rebuildable(exc, text), text)
    text = printed.getvalue()
    if len(text) > MAX_RELAYED_CHARS:
        text = (
            text[:MAX_RELAYED_CHARS] + f"\n[... {len(text) - MAX_RELAYED_CHARS} more characters]\n"
        )
    relayed = (text, [_warning_record(w) for w in caught])
    try:
        return cloudpickle.dumps((*outcome, relayed), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # an unpicklable result
        text = "".join(traceback.format_exception(*sys.exc_info()))
        return cloudpickle.dumps(
            ("raised", RuntimeError(f"could not send a fit's outcome back: {text}"), text, relayed)
        )


def unpack_outcome(blob: bytes) -> Any:
    """The result of a call run by :func:`run_payload`, or its exception raised.

    What the call printed is printed here, and its warnings are warned again
    (through the driver's filters), before the result is returned.
    """
    try:
        outcome = pickle.loads(blob)
    except Exception as exc:  # e.g. a class the driver cannot import
        raise SparkliftError(
            f"the driver could not unpickle a fit's outcome ({type(exc).__name__}: {exc}); "
            "the classes a fit returns or raises must be importable on the driver."
        ) from exc
    printed, caught = outcome[-1]
    if printed:
        print(printed, end="", flush=True)
    for category, message, filename, lineno in caught:
        warnings.warn_explicit(message, category, filename, lineno)
    if outcome[0] == "ok":
        return outcome[1]
    exc, text = outcome[1], outcome[2]
    if hasattr(exc, "add_note") and not isinstance(exc, TaskError):
        exc.add_note(f"Raised in a Spark task:\n{text}")
    raise exc
