"""The seed's "next steps": Gaussian and Poisson emissions, from long event tables.

Real data rarely arrive one row per sequence. Here a sensor log (one row per
reading: device, time, three measurements) and a shop's daily order counts
(one row per store and day) are turned into sequence columns with
``sequences_from_events``, then fitted with ``GaussianHMM`` and
``PoissonHMM``. The Gaussian fit checkpoints every iteration: run the script
twice with the same ``--workdir`` and the second fit resumes instead of
starting over.

    python examples/hmm_next_steps.py
    python examples/hmm_next_steps.py --workdir /tmp/hmm-next   # twice: resumes
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np


def sensor_log(n_devices: int, length: int, seed: int = 0):
    """Readings of devices switching between 3 regimes, one row per reading (shuffled)."""
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0, 0.0], [4.0, 1.0, -2.0], [-3.0, 5.0, 2.0]])
    transmat = np.array([[0.95, 0.04, 0.01], [0.03, 0.95, 0.02], [0.02, 0.03, 0.95]])
    rows = []
    for device in range(n_devices):
        state = rng.integers(3)
        for t in range(length):
            state = rng.choice(3, p=transmat[state]) if t else state
            x, y, z = means[state] + rng.normal(scale=0.8, size=3)
            rows.append((device, t, float(x), float(y), float(z)))
    return [rows[i] for i in rng.permutation(len(rows))]


def order_counts(n_stores: int, days: int, seed: int = 1):
    """Daily orders of stores with quiet / busy / sale regimes (Poisson counts)."""
    rng = np.random.default_rng(seed)
    rates = np.array([3.0, 12.0, 40.0])
    transmat = np.array([[0.90, 0.09, 0.01], [0.10, 0.85, 0.05], [0.05, 0.25, 0.70]])
    rows = []
    for store in range(n_stores):
        state = 0
        for day in range(days):
            state = rng.choice(3, p=transmat[state]) if day else state
            rows.append((store, day, int(rng.poisson(rates[state]))))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    from sparklift.hmm import GaussianHMM, PoissonHMM
    from sparklift.hmm.sequences import sequences_from_events
    from sparklift.session import get_spark

    workdir = args.workdir or tempfile.mkdtemp(prefix="sparklift-hmm-")
    spark = get_spark("sparklift-hmm-next-steps")

    readings = spark.createDataFrame(
        sensor_log(200, 100), "device long, t long, x double, y double, z double"
    )
    series = sequences_from_events(readings, "device", "t", ["x", "y", "z"], "readings")
    gaussian = GaussianHMM(
        n_components=3,
        # hmmlearn's initialisation (k-means means, every state starting from the
        # data's overall covariance) lets "full" and "diag" merge these regimes into
        # one; "spherical" separates them. hmmlearn itself behaves the same.
        covariance_type="spherical",
        n_iter=50,
        random_state=0,
        sequence_col="readings",
        checkpoint_dir=os.path.join(workdir, "gaussian-checkpoints"),
        progress=True,
    ).fit(series)
    print("regime means:\n", np.round(gaussian.means_, 2))
    print("covars_ shape (hmmlearn's public shape):", gaussian.covars_.shape)

    orders = spark.createDataFrame(order_counts(100, 120), "store long, day long, orders int")
    daily = sequences_from_events(orders, "store", "day", "orders", "orders")
    poisson = PoissonHMM(
        n_components=3, n_iter=50, random_state=0, sequence_col="orders", progress=True
    ).fit(daily)
    print("order rates per regime:", np.round(np.sort(poisson.lambdas_.ravel()), 1))
    poisson.transform(daily).select("store", "states").show(3, truncate=80)
    spark.stop()


if __name__ == "__main__":
    main()
