"""Fit a categorical HMM on Spark, then decode, score, save it and hand it to hmmlearn.

This reproduces, the sparklift way, the hand-written PySpark job this project
started from (the "seed" the file names refer to): a published write-up that
trained an hmmlearn hidden Markov model on Spark by broadcasting the
parameters by hand, running a per-sequence E-step over an RDD, summing the
statistics with a wide ``groupBy().agg`` and running the M-step and a
convergence monitor on the driver. With sparklift that whole loop is one
estimator; everything else the seed wanted is a method.

Run it with the virtual environment that ``make demo`` or ``make test`` creates::

    .venv/bin/python examples/hmm_seed_recipe.py                     # 100,000 sequences x 50
    .venv/bin/python examples/hmm_seed_recipe.py --sequences 500000  # the seed's scale

Steps: integer sequences drawn from a known 8-state, 20-symbol HMM are written
to Parquet; ``CategoricalHMM`` fits them on local Spark (progress bar,
hmmlearn's convergence monitor); the model decodes and scores the sequences,
is saved and loaded again, and becomes an hmmlearn object with the same
parameters. Without ``--workdir`` the data and model go to a temporary
folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def write_sequences(path: str, n_sequences: int, length: int, seed: int = 0) -> None:
    """Sequences from a sticky 8-state HMM over 20 symbols, as Parquet (array<int>)."""
    rng = np.random.default_rng(seed)
    n_states, n_symbols = 8, 20
    transmat = 0.7 * np.eye(n_states) + 0.3 * rng.dirichlet(np.ones(n_states), size=n_states)
    emissionprob = rng.dirichlet(np.full(n_symbols, 0.3), size=n_states)
    state = rng.integers(0, n_states, size=n_sequences)
    symbols = np.empty((n_sequences, length), dtype=np.int32)
    for t in range(length):
        if t:
            cumulative = np.cumsum(transmat[state], axis=1)
            state = (rng.random((n_sequences, 1)) > cumulative).sum(axis=1).clip(max=n_states - 1)
        cumulative = np.cumsum(emissionprob[state], axis=1)
        symbols[:, t] = (
            (rng.random((n_sequences, 1)) > cumulative).sum(axis=1).clip(max=n_symbols - 1)
        )
    offsets = pa.array(np.arange(0, n_sequences * length + 1, length, dtype=np.int32))
    events = pa.ListArray.from_arrays(offsets, pa.array(symbols.ravel()))
    table = pa.table({"user_id": np.arange(n_sequences), "events": events})
    pq.write_table(table, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sequences", type=int, default=100_000, help="number of sequences (default: 100000)"
    )
    parser.add_argument("--length", type=int, default=50, help="symbols per sequence (default: 50)")
    parser.add_argument(
        "--n-iter", type=int, default=20, help="maximum number of EM iterations (default: 20)"
    )
    parser.add_argument(
        "--workdir",
        default=None,
        help="folder for the data and the model, kept afterwards "
        "(default: a temporary folder, removed at the end)",
    )
    args = parser.parse_args()

    workdir = args.workdir or tempfile.mkdtemp(prefix="sparklift-hmm-")
    try:
        run(args, workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
            print(f"removed the temporary folder {workdir} (pass --workdir to keep the outputs)")


def run(args: argparse.Namespace, workdir: str) -> None:
    """The steps, writing data and model under ``workdir``."""
    from sparklift.hmm import CategoricalHMM, CategoricalHMMModel
    from sparklift.session import get_spark

    data_path = os.path.join(workdir, "sequences.parquet")
    write_sequences(data_path, args.sequences, args.length)
    print(f"{args.sequences:,} sequences of {args.length} symbols in {data_path}")

    start = time.perf_counter()
    spark = get_spark("sparklift-hmm-seed-recipe")  # local[*]; SPARK_REMOTE for Connect
    df = spark.read.parquet(data_path)

    # The seed's whole EM loop: broadcast, E-step per partition, reduce, M-step, monitor.
    est = CategoricalHMM(
        n_components=8,
        n_iter=args.n_iter,
        tol=1e-2,
        random_state=0,
        sequence_col="events",
        progress=True,
    )
    model = est.fit(df)
    print(f"fitted in {time.perf_counter() - start:.1f} s (Spark start-up included)")
    # monitor_.converged is hmmlearn's flag, also True when EM merely ran out of
    # iterations: the last log-likelihood change tells the two apart.
    monitor = model.monitor_
    history = list(monitor.history)
    change = history[-1] - history[-2] if len(history) >= 2 else float("nan")
    if len(history) >= 2 and change < monitor.tol:
        print(
            f"EM converged (log-likelihood change {change:.3g} < tol {monitor.tol:g}) "
            f"after {monitor.iter} iterations"
        )
    else:
        print(
            f"EM stopped at n_iter={monitor.n_iter} without converging "
            f"(last log-likelihood change {change:.3g}, tol {monitor.tol:g})"
        )
    print("transmat_ diagonal:", np.round(np.diag(model.transmat_), 3))

    # Beyond the seed: decode and score at scale, persist, hand over to hmmlearn.
    decoded = model.transform(df)  # + log_likelihood, states
    decoded.select("user_id", "log_likelihood", "states").show(3, truncate=60)
    print("score (total log-likelihood):", model.score(df))
    print("bic:", model.bic(df))

    model_path = os.path.join(workdir, "model")
    model.write().overwrite().save(model_path)
    again = CategoricalHMMModel.load(model_path)
    assert np.array_equal(again.transmat_, model.transmat_)
    reference = model.to_hmmlearn()  # an hmmlearn CategoricalHMM, same parameters
    print("hmmlearn object:", type(reference).__name__, "saved model:", model_path)
    spark.stop()


if __name__ == "__main__":
    main()
