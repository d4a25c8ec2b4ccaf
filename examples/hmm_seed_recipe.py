"""The seed recipe (Zalando's PySpark HMM on hmmlearn), done the sparklift way.

The seed broadcast the parameters by hand, ran a per-sequence E-step over an
RDD, summed the statistics with a wide ``groupBy().agg`` and ran the M-step
and a convergence monitor on the driver. With sparklift that whole loop is
one estimator; everything else the seed wanted is a method:

    python examples/hmm_seed_recipe.py                     # 100,000 sequences x 50
    python examples/hmm_seed_recipe.py --sequences 500000  # the seed's scale

Steps: integer sequences drawn from a known 8-state, 20-symbol HMM are written
to Parquet; ``CategoricalHMM`` fits them on local Spark (progress bar,
hmmlearn's convergence monitor); the model decodes and scores the sequences,
is saved and loaded again, and becomes an hmmlearn object with the same
parameters.
"""

from __future__ import annotations

import argparse
import os
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
    parser.add_argument("--sequences", type=int, default=100_000)
    parser.add_argument("--length", type=int, default=50)
    parser.add_argument("--n-iter", type=int, default=20)
    parser.add_argument("--workdir", default=None, help="where data and model go (default: temp)")
    args = parser.parse_args()

    from sparklift.hmm import CategoricalHMM, CategoricalHMMModel
    from sparklift.session import get_spark

    workdir = args.workdir or tempfile.mkdtemp(prefix="sparklift-hmm-")
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
    print("converged:", model.monitor_.converged, "after", model.monitor_.iter, "iterations")
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
