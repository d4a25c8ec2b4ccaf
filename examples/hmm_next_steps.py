"""Gaussian and Poisson HMMs fitted on Spark from long event tables, with checkpoints.

This goes past the hand-written PySpark job this project started from (the
"seed" the file names refer to: a published write-up that trained a
categorical hmmlearn model on Spark by hand) to what it left as next steps:
Gaussian and Poisson emissions, from long event tables.

Real data rarely arrive one row per sequence. Here a sensor log (one row per
reading: device, time, three measurements) and a shop's daily order counts
(one row per store and day) are turned into sequence columns with
``sequences_from_events``, then fitted with ``GaussianHMM`` and
``PoissonHMM``. The Gaussian fit checkpoints every iteration: run the script
twice with the same ``--workdir`` and the second fit resumes from the
checkpoint instead of starting over (it says so). Without ``--workdir`` the
checkpoints go to a temporary folder that is removed at the end.

Run it with the virtual environment that ``make demo`` or ``make test`` creates::

    .venv/bin/python examples/hmm_next_steps.py
    .venv/bin/python examples/hmm_next_steps.py --workdir /tmp/hmm-next   # twice: resumes
"""

from __future__ import annotations

import argparse
import os
import shutil
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
    parser.add_argument(
        "--workdir",
        default=None,
        help="folder for the Gaussian fit's checkpoints, kept afterwards: run twice with "
        "the same folder and the second fit resumes (default: a temporary folder, "
        "removed at the end)",
    )
    args = parser.parse_args()

    workdir = args.workdir or tempfile.mkdtemp(prefix="sparklift-hmm-")
    try:
        run(workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
            print(f"removed the temporary folder {workdir} (pass --workdir to keep checkpoints)")


def checkpointed_iterations(checkpoint_dir: str) -> int | None:
    """Iterations saved in ``checkpoint_dir`` by an earlier fit, or None when there are none."""
    from sparklift.hmm.persistence import read_checkpoint

    found = read_checkpoint(checkpoint_dir)
    return None if found is None else int(found[0]["iter"])


def run(workdir: str) -> None:
    """Both fits, the Gaussian one checkpointing under ``workdir``."""
    from sparklift.hmm import GaussianHMM, PoissonHMM
    from sparklift.hmm.sequences import sequences_from_events
    from sparklift.session import get_spark

    spark = get_spark("sparklift-hmm-next-steps")

    readings = spark.createDataFrame(
        sensor_log(200, 100), "device long, t long, x double, y double, z double"
    )
    series = sequences_from_events(readings, "device", "t", ["x", "y", "z"], "readings")
    checkpoint_dir = os.path.join(workdir, "gaussian-checkpoints")
    done = checkpointed_iterations(checkpoint_dir)
    if done is None:
        print(
            f"Gaussian fit: no checkpoint yet, starting from scratch (saving to {checkpoint_dir})"
        )
    else:
        print(
            f"Gaussian fit: resuming from the checkpoint in {checkpoint_dir} after {done} iterations"
        )
    gaussian = GaussianHMM(
        n_components=3,
        # hmmlearn's initialisation (k-means means, every state starting from the
        # data's overall covariance) lets "full" and "diag" merge these regimes into
        # one; "spherical" separates them. hmmlearn itself behaves the same.
        covariance_type="spherical",
        n_iter=50,
        random_state=0,
        sequence_col="readings",
        checkpoint_dir=checkpoint_dir,
        progress=True,
    ).fit(series)
    if done is not None and gaussian.monitor_.iter == done:
        print("(the checkpoint's fit had already finished: no new iterations)")
    print(f"Gaussian fit: {gaussian.monitor_.iter} EM iterations in all")
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
