"""The EM loop on the driver: ship parameters, reduce statistics, monitor, checkpoint.

Each iteration is one Spark job (:func:`sparklift._spark.map_reduce`) over the
cached sequences: the current parameters travel inside the partition
function (a ``functools.partial`` of a module-level function over a small
NumPy dict), every Arrow batch is turned into ``(X, offsets)`` without a copy
and run through :func:`sparklift.hmm.core.e_step`, and the additive
:class:`~sparklift.hmm.core.Stats` of each partition come back to the driver,
where they are summed and the M-step runs. Nothing proportional to the data
is held or computed on the driver.

The loop is hmmlearn's ``_BaseHMM.fit`` loop, step for step: E-step, M-step,
``monitor.report(log_prob)``, stop when converged; so the same starting
parameters give the same iterates.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from sparklift._spark import map_reduce
from sparklift.errors import InvalidInputError
from sparklift.hmm import core, persistence
from sparklift.hmm.sequences import batch_to_arrays

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame


def _arrays(
    batches: Iterator[pa.RecordBatch], col: str, kind: str, dim: int | None = None
) -> Iterator[tuple[pa.RecordBatch, np.ndarray, np.ndarray]]:
    """``(batch, X, offsets)`` for every non-empty Arrow batch of a partition."""
    for batch in batches:
        if batch.num_rows:
            X, offsets = batch_to_arrays(batch.column(col), kind, dim)
            yield batch, X, offsets


def _bind(fn: Any, family: Any, params: dict[str, np.ndarray], **kwargs: Any) -> Any:
    # A picklable partition function: a module-level function over local values.
    params = {k: np.ascontiguousarray(v) for k, v in params.items()}
    return functools.partial(fn, family=family, params=params, **kwargs)


def estep_partition(
    batches: Iterator[pa.RecordBatch],
    *,
    family: Any,
    params: dict[str, np.ndarray],
    col: str,
    kind: str,
    implementation: str,
    fit_params: str,
    dim: int | None = None,
) -> Any:
    """E-step over one partition: the sum of :func:`core.e_step` over its batches.

    Runs on the Spark workers; returns ``None`` for an empty partition.
    """
    total = None
    for _batch, X, offsets in _arrays(batches, col, kind, dim):
        stats = core.e_step(family, params, X, offsets, implementation, fit_params)
        total = stats if total is None else total + stats
    return total


def expected_statistics(
    data: DataFrame,
    col: str,
    kind: str,
    family: Any,
    params: dict[str, np.ndarray],
    *,
    implementation: str,
    fit_params: str,
    dim: int | None = None,
) -> Any:
    """One distributed E-step: the summed :class:`core.Stats` of every sequence.

    ``dim``: the frame dimension when ``col`` holds vectors stored flat
    (:func:`sparklift.hmm.sequences.flat_frames`).

    Raises
    ------
    InvalidInputError
        When the data hold no sequences.
    """
    fn = _bind(
        estep_partition,
        family,
        params,
        col=col,
        kind=kind,
        implementation=implementation,
        fit_params=fit_params,
        dim=dim,
    )
    stats = map_reduce(data, fn)
    if stats is None:
        raise InvalidInputError(f"Column '{col}' holds no sequences: there is nothing to fit.")
    return stats


# --------------------------------------------------------------------------- progress


def show_progress(progress: bool | None, verbose: bool) -> bool:
    """Whether to draw a progress bar: asked for, or by default only on a terminal."""
    if progress is not None:
        return bool(progress)
    return bool(verbose) or sys.stderr.isatty()


class _Progress:
    """tqdm bar over EM iterations showing log-likelihood and its change."""

    def __init__(self, enabled: bool, total: int, initial: int, desc: str):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit="iter", leave=True)

    def update(self, monitor: Any) -> None:
        if self.bar is None:
            return
        history = list(monitor.history)
        delta = history[-1] - history[-2] if len(history) >= 2 else float("nan")
        self.bar.set_postfix(log_likelihood=f"{history[-1]:.6g}", delta=f"{delta:+.3g}")
        self.bar.update(1)

    def writing(self) -> Any:
        """Context in which other stderr output (hmmlearn's verbose report) does not break the bar."""
        if self.bar is None:
            import contextlib

            return contextlib.nullcontext()
        return type(self.bar).external_write_mode(file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --------------------------------------------------------------------------- checkpoints


@dataclasses.dataclass
class Checkpoint:
    """Where one EM run keeps its checkpoint, and what it must match to resume.

    Parameters
    ----------
    directory : str
        Folder of this run's checkpoint (one per ``n_init`` restart).
    fingerprint : dict
        JSON-encodable description of the fit (hyperparameters, data
        summary, restart index). A checkpoint written by a different fit is
        refused instead of silently resumed.
    """

    directory: str
    fingerprint: dict[str, Any]

    @property
    def digest(self) -> str:
        text = json.dumps(persistence.to_json_value(self.fingerprint), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def load(self) -> tuple[dict[str, np.ndarray], list[float], bool] | None:
        """``(params, history, finished)`` from the last checkpoint, or None."""
        found = persistence.read_checkpoint(self.directory)
        if found is None:
            return None
        state, arrays = found
        if state.get("fingerprint_digest") != self.digest:
            raise InvalidInputError(
                f"checkpoint_dir {self.directory} holds a checkpoint of a different fit "
                "(other data or hyperparameters). Use a new checkpoint_dir, or delete this "
                "one to start again."
            )
        return arrays, [float(x) for x in state["history"]], bool(state.get("finished"))

    def save(self, params: dict[str, np.ndarray], monitor: Any, finished: bool) -> None:
        state = {
            "fingerprint": self.fingerprint,
            "fingerprint_digest": self.digest,
            "history": list(monitor.history),
            "iter": monitor.iter,
            "finished": finished,
        }
        persistence.write_checkpoint(self.directory, state, params, tag=f"{monitor.iter:06d}")


def _restore_monitor(monitor: Any, history: list[float]) -> None:
    monitor.history.clear()
    monitor.history.extend(history)
    monitor.iter = len(history)


# --------------------------------------------------------------------------- the loop


def run_em(
    data: DataFrame,
    col: str,
    kind: str,
    family: Any,
    params: dict[str, np.ndarray],
    *,
    n_iter: int,
    tol: float,
    implementation: str,
    fit_params: str,
    startprob_prior: Any,
    transmat_prior: Any,
    verbose: bool = False,
    progress: bool | None = None,
    checkpoint: Checkpoint | None = None,
    desc: str = "EM",
    dim: int | None = None,
) -> tuple[dict[str, np.ndarray], Any]:
    """Fit by EM from ``params`` on the (cached) sequence column ``col`` of ``data``.

    Parameters
    ----------
    data : pyspark.sql.DataFrame
        Holds the sequence column; cache it before calling.
    col, kind : str
        Sequence column and its kind (see :mod:`sparklift.hmm.sequences`).
    family : emission family object
        From :data:`sparklift.hmm.emissions.FAMILIES`.
    params : dict of str to ndarray
        Starting parameters (``startprob``, ``transmat``, family keys).
    n_iter, tol : int, float
        hmmlearn's stopping rule.
    implementation : {"log", "scaling"}
        Forward-backward implementation.
    fit_params : str
        Letters of the parameters to update (hmmlearn's ``params``).
    startprob_prior, transmat_prior : float or ndarray
        Dirichlet priors, applied once in the M-step.
    verbose : bool
        hmmlearn's per-iteration report on stderr.
    progress : bool or None
        Progress bar; None draws one only on a terminal or when verbose.
    checkpoint : Checkpoint, optional
        Save after every iteration; resume from a saved one.
    desc : str
        Label of the progress bar.
    dim : int, optional
        Frame dimension when ``col`` holds vectors stored flat
        (:func:`sparklift.hmm.sequences.flat_frames`).

    Returns
    -------
    params : dict of str to ndarray
        Fitted parameters.
    monitor : core.ConvergenceMonitor
        hmmlearn's monitor, ``history`` holding every iteration's log-likelihood.
    """
    monitor = core.ConvergenceMonitor(tol, n_iter, verbose)
    if checkpoint is not None:
        resumed = checkpoint.load()
        if resumed is not None:
            params, history, finished = resumed
            _restore_monitor(monitor, history)
            if monitor.iter > n_iter:
                # The checkpoint holds only the latest parameters: the state after n_iter
                # iterations is gone, so refuse rather than return iter > n_iter.
                raise ValueError(
                    f"The checkpoint in {checkpoint.directory} already holds {monitor.iter} "
                    f"iterations, more than n_iter={n_iter}. Use n_iter >= {monitor.iter} to "
                    "resume it, or another checkpoint_dir to start again."
                )
            if finished and monitor.converged:
                return params, monitor
    bar = _Progress(show_progress(progress, verbose), n_iter, monitor.iter, desc)
    try:
        while monitor.iter < n_iter:
            _refuse_unusable(family, params, monitor.iter)
            stats = expected_statistics(
                data,
                col,
                kind,
                family,
                params,
                implementation=implementation,
                fit_params=fit_params,
                dim=dim,
            )
            # hmmlearn's order: M-step before the convergence check (n_iter=1 still updates).
            params = core.m_step(family, params, stats, fit_params, startprob_prior, transmat_prior)
            _refuse_dead_states(params, monitor.iter + 1)
            with bar.writing():
                monitor.report(float(stats.logprob))
            converged = monitor.converged
            if checkpoint is not None:
                checkpoint.save(params, monitor, finished=converged)
            bar.update(monitor)
            if converged:
                break
    finally:
        bar.close()
    return params, monitor


def covariance_advice(family: Any) -> str:
    """What to change when EM ends up with a covariance that defines no distribution."""
    if getattr(family, "covariance_type", None) != "full":
        return ""
    if getattr(family, "n_mix", None) is not None:
        return (
            " A mixture component that gets (almost) no frames keeps little more than its "
            "prior. Use fewer n_components or n_mix, more data, or covariance_type='diag'."
        )
    return (
        " A state that gets (almost) no frames keeps only the prior, and a scalar "
        "covars_prior makes a 'full' covariance that is not positive-definite. "
        "Use fewer n_components, more data, covariance_type='diag', or a "
        "positive-definite covars_prior (e.g. 0.01 * np.eye(n_features))."
    )


def _refuse_unusable(family: Any, params: core.Params, done: int) -> None:
    """Refuse, on the driver, parameters the next E-step could not use.

    hmmlearn raises the same ``ValueError`` from its next E-step; here it would
    come from inside a Spark task, so the check runs first (a Cholesky
    factorisation per covariance matrix, no data involved).
    """
    try:
        family.check_likelihood(params)
    except ValueError as exc:
        where = (
            "the starting parameters"
            if done == 0
            else f"EM iteration {done} ended with parameters that"
        )
        raise InvalidInputError(
            f"{where} define no distribution: {exc}.{covariance_advice(family)}"
        ) from None


def _refuse_dead_states(params: core.Params, iteration: int) -> None:
    """Stop EM when a state has no expected transition out of it.

    Its ``transmat_`` row would be all zero: hmmlearn warns ("Some rows of
    transmat_ have zero sum") and goes on to return a model that cannot score
    anything. Refusing at the iteration where it happens says why, and does
    not spend the remaining iterations first.
    """
    dead = np.flatnonzero(np.asarray(params["transmat"]).sum(axis=1) == 0)
    if dead.size:
        raise InvalidInputError(
            f"EM iteration {iteration}: no transition out of state(s) {dead.tolist()} is "
            "expected in the data, so their transmat_ rows would be all zero and the model "
            "could not score anything. Either every sequence has length 1, or these states "
            "explain none of the frames: use fewer n_components, longer sequences or other "
            "starting parameters, or leave 't' out of params to keep transmat_ as it starts."
        )


# --------------------------------------------------------------------------- decoding, scoring, sampling


def _list_array(values: pa.Array, offsets: np.ndarray) -> pa.Array:
    import pyarrow as pa

    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), values)


def decode_batch(
    family: Any,
    params: dict[str, np.ndarray],
    X: np.ndarray,
    offsets: np.ndarray,
    *,
    algorithm: str,
    implementation: str,
    want_posteriors: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Per-sequence log-likelihood, decoded states and (optionally) posteriors of a batch.

    The states are hmmlearn's ``decode(algorithm=...)`` path; the
    log-likelihood is the forward one (hmmlearn's ``score`` per sequence).
    """
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    posteriors = None
    if want_posteriors:
        logprob, posteriors = core.posteriors(family, params, X, offsets, implementation)
    else:
        logprob = core.score(family, params, X, offsets, implementation)
    if algorithm == "map" and posteriors is not None:
        states = np.argmax(posteriors, axis=1)
    else:
        _, states = core.decode(family, params, X, offsets, algorithm, implementation)
    return np.asarray(logprob, dtype=np.float64), np.asarray(states, dtype=np.int32), posteriors


def _decode_partition(
    batches: Iterator[pa.RecordBatch],
    *,
    family: Any,
    params: dict[str, np.ndarray],
    col: str,
    kind: str,
    algorithm: str,
    implementation: str,
    out_names: list[str],
) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    want_posteriors = len(out_names) > 2
    for batch, X, offsets in _arrays(batches, col, kind):
        logprob, states, posteriors = decode_batch(
            family,
            params,
            X,
            offsets,
            algorithm=algorithm,
            implementation=implementation,
            want_posteriors=want_posteriors,
        )
        columns = [pa.array(logprob, type=pa.float64()), _list_array(pa.array(states), offsets)]
        if posteriors is not None:
            n_frames, k = posteriors.shape
            rows = _list_array(
                pa.array(np.ascontiguousarray(posteriors).reshape(-1)),
                np.arange(0, n_frames * k + 1, k),
            )
            columns.append(_list_array(rows, offsets))
        yield pa.RecordBatch.from_arrays(
            list(batch.columns) + columns, names=list(batch.schema.names) + out_names
        )


def decode_partition_fn(family: Any, params: dict[str, np.ndarray], **kwargs: Any) -> Any:
    """The ``map_partitions`` function of ``Model.transform`` (see :func:`decode_batch`)."""
    return _bind(_decode_partition, family, params, **kwargs)


def _score_partition(
    batches: Iterator[pa.RecordBatch],
    *,
    family: Any,
    params: dict[str, np.ndarray],
    col: str,
    kind: str,
    implementation: str,
) -> np.ndarray | None:
    total = None
    for _batch, X, offsets in _arrays(batches, col, kind):
        logprob = core.score(family, params, X, offsets, implementation)
        part = np.array([float(np.sum(logprob)), float(offsets[-1] - offsets[0])])
        total = part if total is None else total + part
    return total


def score_partition_fn(family: Any, params: dict[str, np.ndarray], **kwargs: Any) -> Any:
    """The ``map_reduce`` function of ``Model.score``: ``[sum of log-likelihoods, n_frames]``."""
    return _bind(_score_partition, family, params, **kwargs)


def _sample_partition(
    batches: Iterator[pa.RecordBatch],
    *,
    family: Any,
    params: dict[str, np.ndarray],
    length: int,
    seed: int,
    nested: bool,
    integral: bool,
    names: list[str],
) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    for batch in batches:
        ids = batch.column(0).to_numpy()
        if len(ids) == 0:
            continue
        frames, paths = [], []
        for seq_id in ids:
            rng = np.random.RandomState(
                np.random.SeedSequence([seed, int(seq_id)]).generate_state(1)[0]
            )
            X, states = core.sample(family, params, length, rng)
            frames.append(X)
            paths.append(states)
        offsets = np.arange(0, (len(ids) + 1) * length, length)
        # Symbols and counts as integers, the type the model reads them in.
        X = np.concatenate(frames).astype(np.int64 if integral else np.float64)
        if nested:
            n_features = X.shape[1]
            values = _list_array(
                pa.array(X.reshape(-1)), np.arange(0, X.shape[0] * n_features + 1, n_features)
            )
        else:
            values = pa.array(X.reshape(-1))
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(ids, type=pa.int64()),
                _list_array(values, offsets),
                _list_array(pa.array(np.concatenate(paths).astype(np.int32)), offsets),
            ],
            names=names,
        )


def sample_partition_fn(family: Any, params: dict[str, np.ndarray], **kwargs: Any) -> Any:
    """The ``map_partitions`` function of ``Model.sample`` over a DataFrame of ids."""
    return _bind(_sample_partition, family, params, **kwargs)
