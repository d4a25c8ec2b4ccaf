"""sparklift.hmm against hmmlearn: issue 3's speed and memory claims, side by side.

Every comparison runs hmmlearn (default settings: ``implementation="log"``)
and the public sparklift estimator on the SAME data from the SAME initial
parameters (``init_params=""``; sparklift gets them through ``init_model``),
in one process, on ``local[2]`` by default. hmmlearn is slow, so it runs
``--hmmlearn-iter`` iterations (2 by default); sparklift runs ``--iter``.
The metric is time per EM iteration (the median for sparklift, skipping the
first iteration, which loads the compiled kernels into fresh workers).

Correctness, checked outside the timed runs: the log-likelihoods of the first
min(hmmlearn's, sparklift's) iterations, and the fitted parameters after the
same number k of iterations (k = ``--hmmlearn-iter``, at least 2), must agree
with hmmlearn's to ``CHECK_RTOL`` (relative). With ``--hmmlearn-iter 1`` that
takes one extra, untimed hmmlearn fit of 2 iterations; sparklift's parameters
after k iterations come from an extra, untimed k-iteration fit unless
``--iter`` is k. A disagreement is printed as ``DISAGREE`` and makes the script
exit with status 1. sparklift is
timed with ``implementation="log"`` (hmmlearn's default: like for like) and
with ``"scaling"`` (same results, fewer transcendental functions);
``--implementations`` picks.

Claims (``--only`` picks some; all by default):

==============  ======================================================  ==========
name            what                                                    target
==============  ======================================================  ==========
kernel          compiled E-step alone, one core, categorical 8x20       >= 10 M symbols/s
categorical     8 states, 20 symbols, 200,000 x 50, per EM iteration    >= 20x hmmlearn
gaussian        8 states, 3-d, full covariance, 20,000 x 50             >= 30x hmmlearn
long            categorical 8x20, 200 sequences x 5,000                  >= 10x hmmlearn
overhead        Spark's own cost of one EM iteration on cached data     < 0.3 s
memory          Python worker / driver peak memory, data 1x vs 4x        bounded by batch
seed-scale      500,000 x 50 categorical, 20 iterations, end to end     < 180 s
                (fresh process: Spark start-up included)
==============  ======================================================  ==========

    python benchmarks/bench_hmm_speed.py                  # the issue's full scale
    python benchmarks/bench_hmm_speed.py --quick          # about a tenth of it
    python benchmarks/bench_hmm_speed.py --only kernel,categorical

Output goes to stdout and to ``benchmarks/results/hmm_<name>[-quick].txt``.
Data sets are generated with NumPy from a known HMM and written to Parquet
under ``bench-output/hmm`` (not timed). Numbers taken while other work runs on
the machine are not representative: the load average is printed with each
result.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
DATA_DIR = os.path.join(os.path.dirname(HERE), "bench-output", "hmm")
CLAIMS = ("kernel", "categorical", "gaussian", "long", "overhead", "memory", "seed-scale")

FULL = {
    "categorical": (200_000, 50),
    "gaussian": (20_000, 50),
    "long": (200, 5_000),
    "seed-scale": (500_000, 50),
    "memory": (100_000, 50),
}
QUICK = {
    "categorical": (20_000, 50),
    "gaussian": (2_000, 50),
    "long": (20, 5_000),
    "seed-scale": (50_000, 50),
    "memory": (10_000, 50),
}
N_STATES, N_SYMBOLS, N_DIM = 8, 20, 3
# Correctness check: iterations compared at least (the extra hmmlearn work is at most this
# many iterations), the tolerance, and the fitted parameters compared per family.
CHECK_ITER = 2
CHECK_RTOL = 1e-8
FITTED = {
    "categorical": ("startprob_", "transmat_", "emissionprob_"),
    "gaussian": ("startprob_", "transmat_", "means_", "covars_"),
}
FAILED: list[str] = []


# --------------------------------------------------------------------------- data


def true_params(seed: int = 0) -> dict[str, np.ndarray]:
    """A sticky 8-state process with distinct emissions (categorical and Gaussian)."""
    rng = np.random.default_rng(seed)
    transmat = rng.dirichlet(np.ones(N_STATES), size=N_STATES) * 0.3 + 0.7 * np.eye(N_STATES)
    a = rng.normal(size=(N_STATES, N_DIM, N_DIM)) * 0.3
    return {
        "startprob": rng.dirichlet(np.ones(N_STATES)),
        "transmat": transmat / transmat.sum(1, keepdims=True),
        "emissionprob": rng.dirichlet(np.full(N_SYMBOLS, 0.3), size=N_STATES),
        "means": rng.normal(scale=3.0, size=(N_STATES, N_DIM)),
        "covars": a @ a.transpose(0, 2, 1) + 0.5 * np.eye(N_DIM),
    }


def start_params(family: str, seed: int = 1) -> dict[str, np.ndarray]:
    """Initial parameters both libraries start from (random, not the truth)."""
    rng = np.random.default_rng(seed)
    out = {
        "startprob": rng.dirichlet(np.ones(N_STATES)),
        "transmat": rng.dirichlet(np.ones(N_STATES) * 2, size=N_STATES),
    }
    if family == "categorical":
        out["emissionprob"] = rng.dirichlet(np.ones(N_SYMBOLS), size=N_STATES)
    else:
        out["means"] = rng.normal(scale=3.0, size=(N_STATES, N_DIM))
        out["covars"] = np.tile(np.eye(N_DIM) * 2.0, (N_STATES, 1, 1))
    return out


def _draw(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    u = rng.random(probs.shape[0])[:, None]
    return np.minimum((u > np.cumsum(probs, axis=1)).sum(axis=1), probs.shape[1] - 1)


def sample_chunk(family: str, n_seq: int, length: int, seed: int) -> np.ndarray:
    """Frames of ``n_seq`` sequences of ``length``: (n_seq, length) ints or (n_seq, length, 3)."""
    p = true_params()
    rng = np.random.default_rng(seed)
    states = np.empty((n_seq, length), dtype=np.int64)
    state = _draw(rng, np.broadcast_to(p["startprob"], (n_seq, N_STATES)))
    for t in range(length):
        if t:
            state = _draw(rng, p["transmat"][state])
        states[:, t] = state
    if family == "categorical":
        return _draw(rng, p["emissionprob"][states.ravel()]).reshape(n_seq, length).astype(np.int32)
    chol = np.linalg.cholesky(p["covars"])
    z = rng.normal(size=(n_seq, length, N_DIM))
    return p["means"][states] + np.einsum("nlij,nlj->nli", chol[states], z)


def write_dataset(family: str, n_seq: int, length: int) -> str:
    """Generate (once) and write a Parquet data set; returns its path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = os.path.join(DATA_DIR, f"{family}-{n_seq}x{length}.parquet")
    if os.path.exists(os.path.join(path, "_DONE")):
        return path
    os.makedirs(path, exist_ok=True)
    chunk = max(1, min(n_seq, 2_000_000 // length))
    writer = None
    for i, start in enumerate(range(0, n_seq, chunk)):
        n = min(chunk, n_seq - start)
        frames = sample_chunk(family, n, length, seed=1000 + i)
        flat = pa.array(frames.reshape(-1))
        if family == "categorical":
            values = flat
        else:
            inner = pa.array(np.arange(0, len(flat) + 1, N_DIM, dtype=np.int32))
            values = pa.ListArray.from_arrays(inner, flat)
        outer = pa.array(np.arange(0, n * length + 1, length, dtype=np.int32))
        table = pa.table(
            {
                "seq_id": pa.array(np.arange(start, start + n, dtype=np.int64)),
                "sequence": pa.ListArray.from_arrays(outer, values),
            }
        )
        if writer is None:
            writer = pq.ParquetWriter(os.path.join(path, "part-0.parquet"), table.schema)
        writer.write_table(table, row_group_size=chunk)
    assert writer is not None
    writer.close()
    open(os.path.join(path, "_DONE"), "w").close()
    return path


def load_arrays(path: str, family: str) -> tuple[np.ndarray, np.ndarray]:
    """hmmlearn's (X, lengths) of a data set."""
    import pyarrow.parquet as pq

    from sparklift.hmm.sequences import batch_to_arrays

    column = pq.read_table(os.path.join(path, "part-0.parquet"), columns=["sequence"]).column(0)
    X, offsets = batch_to_arrays(column, "int" if family == "categorical" else "vector")
    return X, np.diff(offsets)


# --------------------------------------------------------------------------- timing helpers


def hmmlearn_model(family: str, params: dict[str, np.ndarray], n_iter: int) -> Any:
    from hmmlearn import hmm

    if family == "categorical":
        model = hmm.CategoricalHMM(N_STATES, n_iter=n_iter, tol=0.0, init_params="")
        model.emissionprob_ = params["emissionprob"].copy()
        model.n_features = N_SYMBOLS
    else:
        model = hmm.GaussianHMM(N_STATES, "full", n_iter=n_iter, tol=0.0, init_params="")
        model.means_ = params["means"].copy()
        model.covars_ = params["covars"].copy()
    model.startprob_ = params["startprob"].copy()
    model.transmat_ = params["transmat"].copy()
    return model


def fitted(family: str, model: Any) -> dict[str, np.ndarray]:
    """The fitted parameters of an hmmlearn or sparklift model, copied."""
    return {name: np.array(getattr(model, name), dtype=np.float64) for name in FITTED[family]}


def time_hmmlearn(family: str, X: np.ndarray, lengths: np.ndarray, n_iter: int) -> dict:
    model = hmmlearn_model(family, start_params(family), n_iter)
    start = time.perf_counter()
    model.fit(X, lengths)
    seconds = time.perf_counter() - start
    return {
        "per_iter": seconds / n_iter,
        "history": list(model.monitor_.history),
        "params": fitted(family, model),
    }


class IterationClock:
    """Time every EM iteration of the public estimator.

    Wraps ``sparklift.hmm.em.expected_statistics`` (one call per iteration)
    to note when each iteration starts; the estimator itself is untouched.
    """

    def __init__(self) -> None:
        self.starts: list[float] = []

    def __enter__(self) -> IterationClock:
        from sparklift.hmm import em

        self._original = em.expected_statistics

        def timed(*args: Any, **kwargs: Any) -> Any:
            self.starts.append(time.perf_counter())
            return self._original(*args, **kwargs)

        em.expected_statistics = timed
        return self

    def __exit__(self, *exc: Any) -> None:
        from sparklift.hmm import em

        em.expected_statistics = self._original
        self.end = time.perf_counter()

    def per_iter(self, end: float) -> list[float]:
        marks = [*self.starts, end]
        return [b - a for a, b in itertools.pairwise(marks)]


def sparklift_estimator(family: str, n_iter: int, implementation: str) -> Any:
    from sparklift.hmm import CategoricalHMM, GaussianHMM

    init = hmmlearn_model(family, start_params(family), 1)
    if family == "categorical":
        est = CategoricalHMM(n_components=N_STATES, n_features=N_SYMBOLS)
    else:
        est = GaussianHMM(n_components=N_STATES, covariance_type="full")
    est.setParams(
        n_iter=n_iter,
        tol=0.0,
        init_params="",
        init_model=init,
        progress=False,
        implementation=implementation,
    )
    return est


def time_sparklift(
    spark: Any, family: str, path: str, n_iter: int, implementation: str = "log"
) -> dict:
    est = sparklift_estimator(family, n_iter, implementation)
    df = spark.read.parquet(path)
    with IterationClock() as clock:
        start = time.perf_counter()
        model = est.fit(df)
        fit_end = time.perf_counter()
    iters = clock.per_iter(fit_end)
    steady = iters[1:] if len(iters) > 1 else iters
    return {
        "per_iter": statistics.median(steady),
        "iters": iters,
        "fit_total": fit_end - start,
        "history": list(model.monitor_.history),
        "params": fitted(family, model),
    }


def fit_sparklift(spark: Any, family: str, path: str, n_iter: int, implementation: str) -> dict:
    """An untimed fit, for the parameter check: history and parameters after n_iter."""
    model = sparklift_estimator(family, n_iter, implementation).fit(spark.read.parquet(path))
    return {"history": list(model.monitor_.history), "params": fitted(family, model)}


# --------------------------------------------------------------------------- report


class Report:
    def __init__(self, name: str, quick: bool, master: str) -> None:
        self.name, self.quick, self.master = name, quick, master
        self.lines: list[str] = []

    def add(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    def header(self, title: str) -> None:
        import pyspark

        import sparklift

        self.add(f"== {title}")
        self.add(
            f"   {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.machine()}, "
            f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; "
            f"master {self.master}; sparklift {sparklift.__version__}, pyspark "
            f"{pyspark.__version__}, python {platform.python_version()}"
            + ("; QUICK run (reduced sizes)" if self.quick else "")
        )

    def table(self, head: list[str], rows: list[list[str]]) -> None:
        widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
        line = "  ".join(f"{h:<{w}}" for h, w in zip(head, widths, strict=True))
        self.add(line)
        self.add("  ".join("-" * w for w in widths))
        for row in rows:
            self.add("  ".join(f"{c!s:<{w}}" for c, w in zip(row, widths, strict=True)))

    def save(self) -> str:
        os.makedirs(RESULTS, exist_ok=True)
        suffix = "-quick" if self.quick else ""
        path = os.path.join(RESULTS, f"hmm_{self.name}{suffix}.txt")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("\n".join(self.lines) + "\n")
        print(f"   -> {path}\n", flush=True)
        return path


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


def _rel_array(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute difference over the largest absolute value of ``b``."""
    if a.shape != b.shape:
        return float("inf")
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


# --------------------------------------------------------------------------- claims


def claim_kernel(args: argparse.Namespace, spark: Any) -> None:
    from sparklift.hmm import core, emissions

    n_seq, length = args.sizes["categorical"]
    rep = Report("kernel", args.quick, "none (one core, in-process)")
    rep.header(f"E-step kernel alone: categorical {N_STATES}x{N_SYMBOLS}, {n_seq:,} x {length}")
    X, lengths = load_arrays(write_dataset("categorical", n_seq, length), "categorical")
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    family = emissions.FAMILIES["categorical"](n_features=N_SYMBOLS)
    params = start_params("categorical")
    X = family.prepare(X)
    core.e_step(family, params, X[:1000], offsets[:21], "log", "ste")  # compile / load cache
    rows = []
    for implementation in ("log", "scaling"):
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            core.e_step(family, params, X, offsets, implementation, "ste")
            best = min(best, time.perf_counter() - start)
        rate = len(X) / best
        rows.append(
            [
                implementation,
                f"{len(X):,}",
                f"{best:.3f}",
                f"{rate / 1e6:.1f}",
                ">= 10",
                "yes" if rate >= 10e6 else "NO",
            ]
        )
    rep.add("core.e_step on one batch of all sequences (emission lookups, forward-backward,")
    rep.add("posteriors, start/transition/emission statistics), single thread, best of repeats:")
    rep.table(["implementation", "symbols", "seconds", "M symbols/s/core", "target", "met"], rows)
    rep.save()


def _compare(args: argparse.Namespace, spark: Any, name: str, family: str, target: float) -> None:
    n_seq, length = args.sizes[name]
    rep = Report(name, args.quick, args.master)
    what = (
        f"categorical {N_STATES} states x {N_SYMBOLS} symbols"
        if family == "categorical"
        else f"Gaussian {N_STATES} states, {N_DIM}-d, full covariance"
    )
    rep.header(f"EM per iteration: {what}, {n_seq:,} sequences x {length:,}")
    path = write_dataset(family, n_seq, length)
    X, lengths = load_arrays(path, family)
    ref = time_hmmlearn(family, X, lengths, args.hmmlearn_iter)
    # The reference for the correctness check (untimed): hmmlearn's log-likelihoods and its
    # parameters after k >= CHECK_ITER iterations. With fewer timed iterations, one extra
    # hmmlearn fit of CHECK_ITER iterations from the same start on the same data.
    check = ref
    if len(ref["history"]) < CHECK_ITER:
        check = time_hmmlearn(family, X, lengths, CHECK_ITER)
    k = len(check["history"])
    rows = [
        ["hmmlearn 0.3 (defaults: log)", args.hmmlearn_iter, f"{ref['per_iter']:.3f}", "1x", "", ""]
    ]
    notes = []
    for implementation in args.implementations.split(","):
        ours = time_sparklift(spark, family, path, args.iter, implementation)
        ratio = ref["per_iter"] / ours["per_iter"]
        rows.append(
            [
                f"sparklift {args.master}, implementation={implementation}",
                args.iter,
                f"{ours['per_iter']:.3f}",
                f"{ratio:.1f}x",
                f">= {target:g}x",
                "yes" if ratio >= target else "NO",
            ]
        )
        # Correctness (untimed): log-likelihoods of the iterations both ran, and the
        # parameters after k iterations (an extra short sparklift fit unless --iter is k).
        n = min(len(check["history"]), len(ours["history"]))
        ll_diff = max(_rel(ours["history"][i], check["history"][i]) for i in range(n))
        same = ours if len(ours["history"]) == k else None
        if same is None:
            same = fit_sparklift(spark, family, path, k, implementation)
        if len(same["history"]) == k:
            par_diff = max(
                _rel_array(same["params"][p], check["params"][p]) for p in FITTED[family]
            )
        else:  # one of the fits stopped early (tol=0: the log-likelihood went down)
            par_diff = float("inf")
        ok = ll_diff <= CHECK_RTOL and par_diff <= CHECK_RTOL
        if not ok:
            FAILED.append(f"{name}/{implementation}")
        notes.append(
            f"{implementation}: iterations (s) "
            + ", ".join(f"{t:.2f}" for t in ours["iters"])
            + f"; whole fit incl. validation, caching, set-up {ours['fit_total']:.1f} s"
        )
        notes.append(
            f"{implementation}: vs hmmlearn, log-likelihoods of iterations 1-{n} within "
            f"{ll_diff:.1e} and parameters ({', '.join(FITTED[family])}) after {k} "
            f"iterations within {par_diff:.1e} relative (max |difference| / max |value|, "
            f"per array): {'agree' if ok else 'DISAGREE'} (tolerance {CHECK_RTOL:g})"
        )
    rep.table(["library", "iterations", "s/iteration", "ratio", "target", "met"], rows)
    for note in notes:
        rep.add(note)
    rep.save()


def claim_categorical(args: argparse.Namespace, spark: Any) -> None:
    _compare(args, spark, "categorical", "categorical", 20)


def claim_gaussian(args: argparse.Namespace, spark: Any) -> None:
    _compare(args, spark, "gaussian", "gaussian", 30)


def claim_long(args: argparse.Namespace, spark: Any) -> None:
    _compare(args, spark, "long", "categorical", 10)


def _zero_partial(batches: Any, *, shape: tuple[int, int]) -> Any:
    # A partial the size of a categorical EM partial, from batches that are discarded.
    for _ in batches:
        pass
    return np.zeros(shape)


def _read_partial(batches: Any, *, shape: tuple[int, int]) -> Any:
    from sparklift.hmm.sequences import batch_to_arrays

    n = 0
    for batch in batches:
        X, _ = batch_to_arrays(batch.column(0), "int")
        n += len(X)
    out = np.zeros(shape)
    out[0, 0] = n
    return out


def claim_overhead(args: argparse.Namespace, spark: Any) -> None:
    import functools

    from sparklift import _spark

    n_seq, length = args.sizes["categorical"]
    rep = Report("overhead", args.quick, args.master)
    rep.header(f"Spark's own cost per EM iteration on cached data ({n_seq:,} x {length})")
    path = write_dataset("categorical", n_seq, length)
    df = spark.read.parquet(path).select("sequence").repartition(2).cache()
    df.count()
    tiny = spark.read.parquet(path).select("sequence").limit(2).repartition(2).cache()
    tiny.count()
    shape = (N_STATES + 2, N_STATES + N_SYMBOLS)
    rows = []
    for label, data, fn in (
        ("one job + statistics reduce (2 sequences)", tiny, _zero_partial),
        ("one job streaming the cached data to Python", df, _zero_partial),
        ("... + every batch turned into NumPy arrays", df, _read_partial),
    ):
        partial = functools.partial(fn, shape=shape)
        _spark.map_reduce(data, partial)  # warm the workers
        times = []
        for _ in range(args.repeats + 2):
            start = time.perf_counter()
            _spark.map_reduce(data, partial)
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        rows.append([label, f"{median:.3f}", "< 0.3", "yes" if median < 0.3 else "NO"])
    df.unpersist()
    tiny.unpersist()
    rep.table(["what (median of repeats)", "s/iteration", "target", "met"], rows)
    rep.add("Row 1 is what every EM iteration pays to Spark whatever the data (scheduling one")
    rep.add("job over the cached partitions and reducing the statistics on the driver); rows 2")
    rep.add("and 3 add moving the cached data set to the Python workers, and into NumPy.")
    rep.save()


def _self_command(*extra: str) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), *extra]


def _peak_kib() -> int:
    """This process's peak resident memory in KiB.

    Linux's VmHWM belongs to the process image, so it starts afresh at exec;
    ``ru_maxrss`` does not: a child started with subprocess reports at least its
    parent's resident size at the fork.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _rss_partial(batches: Any) -> Any:
    from sparklift.hmm.sequences import batch_to_arrays  # noqa: F401  (same imports as EM)

    for _ in batches:
        pass
    return [(os.getpid(), _peak_kib())]


def child_memory(args: argparse.Namespace) -> None:
    """In a fresh process: fit 3 iterations, report driver and worker peak RSS."""
    from sparklift import _spark
    from sparklift.hmm import CategoricalHMM
    from sparklift.session import get_spark

    spark = get_spark("bench-hmm-memory", master=args.master)
    df = spark.read.parquet(args.path)
    CategoricalHMM(
        n_components=N_STATES,
        n_features=N_SYMBOLS,
        n_iter=3,
        tol=0.0,
        random_state=0,
        progress=False,
    ).fit(df)
    # Python workers are reused: the ones that ran the E-steps report their peak.
    workers = _spark.map_reduce(df.select("sequence").repartition(2), _rss_partial)
    print(
        json.dumps(
            {
                "driver_kib": _peak_kib(),
                "workers_kib": sorted(dict(workers).values()),
            }
        )
    )
    spark.stop()


def claim_memory(args: argparse.Namespace, spark: Any) -> None:
    n_seq, length = args.sizes["memory"]
    rep = Report("memory", args.quick, args.master)
    rep.header(f"Peak memory, data 1x vs 4x ({n_seq:,} and {4 * n_seq:,} sequences x {length})")
    rows = []
    for n in (n_seq, 4 * n_seq):
        path = write_dataset("categorical", n, length)
        proc = subprocess.run(
            _self_command("--child", "memory", "--path", path, "--master", args.master),
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(
            [
                f"{n:,}",
                f"{n * length * 4 / 2**20:,.0f}",
                f"{result['driver_kib'] / 1024:,.0f}",
                ", ".join(f"{k / 1024:,.0f}" for k in result["workers_kib"]),
            ]
        )
    rep.table(["sequences", "data MiB (int32)", "driver peak MiB", "Python worker peaks MiB"], rows)
    rep.add("Each size in a fresh process (fit, 3 EM iterations). Bounded by the batch: the")
    rep.add("worker and driver peaks should not grow with the data (Arrow batches of 10,000 rows).")
    rep.save()


def child_seed_scale(args: argparse.Namespace) -> None:
    """In a fresh process: Spark start-up + read + 20 EM iterations."""
    start = time.perf_counter()
    from sparklift.hmm import CategoricalHMM
    from sparklift.session import get_spark

    spark = get_spark("bench-hmm-seed-scale", master=args.master)
    started = time.perf_counter()
    model = CategoricalHMM(
        n_components=N_STATES,
        n_features=N_SYMBOLS,
        n_iter=args.seed_iter,
        tol=0.0,
        random_state=0,
        progress=False,
    ).fit(spark.read.parquet(args.path))
    end = time.perf_counter()
    print(
        json.dumps(
            {
                "total": end - start,
                "startup": started - start,
                "fit": end - started,
                "iterations": len(model.monitor_.history),
            }
        )
    )
    spark.stop()


def claim_seed_scale(args: argparse.Namespace, spark: Any) -> None:
    n_seq, length = args.sizes["seed-scale"]
    rep = Report("seed-scale", args.quick, args.master)
    rep.header(
        f"The seed's scale end to end: {n_seq:,} x {length} categorical {N_STATES}x{N_SYMBOLS}, "
        f"{args.seed_iter} EM iterations"
    )
    path = write_dataset("categorical", n_seq, length)
    wall = time.perf_counter()
    proc = subprocess.run(
        [
            *_self_command("--child", "seed-scale", "--path", path, "--master", args.master),
            "--seed-iter",
            str(args.seed_iter),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - wall
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    rep.table(
        ["run", "seconds", "target", "met"],
        [
            ["seed, hmmlearn on one machine (reported)", f"{91.6 * 60:,.0f}", "", ""],
            ["seed, PySpark on 15 nodes (reported)", f"{6.4 * 60:,.0f}", "", ""],
            [
                f"sparklift {args.master}: process start to fitted model",
                f"{wall:.1f}",
                "< 180",
                "yes" if wall < 180 else "NO",
            ],
            ["  of which Spark start-up", f"{result['startup']:.1f}", "", ""],
            [
                f"  of which read + validate + {result['iterations']} EM iterations",
                f"{result['fit']:.1f}",
                "",
                "",
            ],
        ],
    )
    rep.add("The seed's figures are from its write-up (its hardware, its iteration count).")
    rep.save()


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about a tenth of the full sizes")
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(CLAIMS)}")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--iter", type=int, default=6, help="sparklift EM iterations timed")
    parser.add_argument("--hmmlearn-iter", type=int, default=2, help="hmmlearn iterations timed")
    parser.add_argument("--seed-iter", type=int, default=20, help="iterations at the seed's scale")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--implementations",
        default="log,scaling",
        help="sparklift forward-backward implementations timed (hmmlearn runs its default, log)",
    )
    parser.add_argument("--child", choices=("memory", "seed-scale"), help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.sizes = QUICK if args.quick else FULL
    if args.child == "memory":
        return child_memory(args)
    if args.child == "seed-scale":
        return child_seed_scale(args)
    chosen = CLAIMS if not args.only else tuple(c.strip() for c in args.only.split(","))
    unknown = sorted(set(chosen) - set(CLAIMS))
    if unknown:
        parser.error(f"unknown claim(s) {unknown}; choose from {', '.join(CLAIMS)}")
    claims: dict[str, Callable[[argparse.Namespace, Any], None]] = {
        "kernel": claim_kernel,
        "categorical": claim_categorical,
        "gaussian": claim_gaussian,
        "long": claim_long,
        "overhead": claim_overhead,
        "memory": claim_memory,
        "seed-scale": claim_seed_scale,
    }
    spark = None
    needs_spark = {"categorical", "gaussian", "long", "overhead"}
    # The seed-scale run starts its own Spark: run it first, before this
    # process holds memory and a JVM of its own.
    order = sorted(chosen, key=lambda c: (c != "seed-scale", c != "memory", CLAIMS.index(c)))
    for name in order:
        if name in needs_spark and spark is None:
            from sparklift.session import get_spark

            spark = get_spark("bench-hmm", master=args.master, driver_memory="4g")
        claims[name](args, spark)
    if spark is not None:
        spark.stop()
    if FAILED:
        print(f"sparklift and hmmlearn DISAGREE: {', '.join(FAILED)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
