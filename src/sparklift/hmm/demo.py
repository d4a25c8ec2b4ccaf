"""The demo behind ``make demo``: shopping sessions from a known hidden process.

A web shop's click log is generated with NumPy from a hidden Markov model we
know: each visitor moves between four hidden intents (browsing, comparing,
buying, leaving) and each click lands on a page type whose probabilities
depend on the intent. The demo then does what a user would do with a real
click log:

1. writes the log to Parquet (one row per click, as a web server would);
2. builds one sequence per session with
   :func:`~sparklift.hmm.sequences.sequences_from_events`;
3. fits a :class:`~sparklift.hmm.CategoricalHMM` on local Spark, with the
   progress bar;
4. matches the learned states to the true ones (Hungarian assignment on the
   emission distributions) and prints the learned transition matrix beside
   the true one;
5. decodes every session (Viterbi), writes the paths to Parquet and measures
   how many clicks got their true intent back;
6. saves the model and a PNG of the log-likelihood curve;
7. prints a ``sparklift hmm decode`` command to try next on those outputs.

Everything it writes goes under one folder; nothing is fetched from the
network.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: Hidden intents of a shopper.
STATES = ("browsing", "comparing", "buying", "leaving")
#: Page types a click can land on (the observed symbols).
PAGES = (
    "home",
    "search",
    "category",
    "product",
    "reviews",
    "compare",
    "cart",
    "checkout",
    "payment",
    "help",
)
#: The true process the data come from.
TRUE_STARTPROB = np.array([0.70, 0.15, 0.05, 0.10])
TRUE_TRANSMAT = np.array(
    [
        [0.80, 0.12, 0.03, 0.05],  # browsing: keep browsing, sometimes compare
        [0.10, 0.75, 0.10, 0.05],  # comparing: back to browsing or on to buying
        [0.03, 0.05, 0.82, 0.10],  # buying: checkout takes a few clicks, then leave
        [0.02, 0.01, 0.01, 0.96],  # leaving: rarely comes back
    ]
)
TRUE_EMISSIONPROB = np.array(
    [
        # home search categ product review compare cart checkout payment help
        [0.20, 0.20, 0.30, 0.20, 0.03, 0.02, 0.02, 0.00, 0.00, 0.03],  # browsing
        [0.02, 0.10, 0.05, 0.33, 0.25, 0.20, 0.03, 0.00, 0.00, 0.02],  # comparing
        [0.01, 0.01, 0.01, 0.07, 0.02, 0.01, 0.35, 0.30, 0.20, 0.02],  # buying
        [0.40, 0.05, 0.05, 0.03, 0.02, 0.01, 0.02, 0.01, 0.01, 0.40],  # leaving
    ]
)


@dataclass
class ClickLog:
    """A generated click log: one entry per click, sessions contiguous and in order.

    Attributes
    ----------
    session_id, ts, page_id, true_state : ndarray of shape (n_clicks,)
        Session of each click, its time (seconds since the start of the day),
        the page type clicked (index into :data:`PAGES`) and the hidden intent
        that produced it (index into :data:`STATES`; the model never sees it).
    lengths : ndarray of shape (n_sessions,)
        Clicks per session.
    """

    session_id: np.ndarray
    ts: np.ndarray
    page_id: np.ndarray
    true_state: np.ndarray
    lengths: np.ndarray

    def to_arrow(self) -> Any:
        """The log as a ``pyarrow.Table`` (adds the ``page`` name column)."""
        import pyarrow as pa

        names = pa.array(PAGES)
        return pa.table(
            {
                "session_id": pa.array(self.session_id),
                "ts": pa.array(self.ts),
                "page": names.take(pa.array(self.page_id)),
                "page_id": pa.array(self.page_id),
                "true_state": pa.array(self.true_state),
            }
        )


def _draw(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    # One categorical draw per row of `probs` (rows sum to 1).
    u = rng.random(probs.shape[0])[:, None]
    cumulative = np.cumsum(probs, axis=1)
    return np.minimum((u > cumulative).sum(axis=1), probs.shape[1] - 1)


def generate_clicks(
    n_sessions: int,
    seed: int = 0,
    *,
    mean_length: float = 30.0,
    startprob: np.ndarray = TRUE_STARTPROB,
    transmat: np.ndarray = TRUE_TRANSMAT,
    emissionprob: np.ndarray = TRUE_EMISSIONPROB,
) -> ClickLog:
    """Generate a click log from a known hidden Markov model.

    Sessions are simulated side by side (vectorised over sessions, one step
    per click), so a million clicks take well under a second.

    Parameters
    ----------
    n_sessions : int
        Number of sessions.
    seed : int, default 0
        Seed of ``numpy.random.default_rng``.
    mean_length : float, default 30
        Mean clicks per session; lengths are ``5 + Poisson(mean_length - 5)``.
    startprob, transmat, emissionprob : ndarray
        The hidden process (defaults: :data:`TRUE_STARTPROB`,
        :data:`TRUE_TRANSMAT`, :data:`TRUE_EMISSIONPROB`).

    Returns
    -------
    ClickLog
    """
    if n_sessions < 1:
        raise ValueError(f"n_sessions must be >= 1; got {n_sessions}")
    rng = np.random.default_rng(seed)
    lengths = 5 + rng.poisson(max(mean_length - 5.0, 0.0), size=n_sessions)
    max_len = int(lengths.max())
    states = np.empty((n_sessions, max_len), dtype=np.int32)
    pages = np.empty((n_sessions, max_len), dtype=np.int32)
    state = _draw(rng, np.broadcast_to(startprob, (n_sessions, len(startprob))))
    for t in range(max_len):
        if t:
            state = _draw(rng, transmat[state])
        states[:, t] = state
        pages[:, t] = _draw(rng, emissionprob[state])
    # Seconds between clicks: a few seconds on a page, sometimes a minute.
    gaps = rng.exponential(20.0, size=(n_sessions, max_len)).round().astype(np.int64) + 1
    starts = rng.integers(0, 86_400, size=n_sessions)
    times = starts[:, None] + np.cumsum(gaps, axis=1)
    mask = np.arange(max_len)[None, :] < lengths[:, None]
    session_id = np.broadcast_to(np.arange(n_sessions, dtype=np.int64)[:, None], mask.shape)
    return ClickLog(
        session_id=session_id[mask],
        ts=times[mask],
        page_id=pages[mask],
        true_state=states[mask],
        lengths=lengths.astype(np.int64),
    )


def match_states(true_emissionprob: np.ndarray, learned_emissionprob: np.ndarray) -> np.ndarray:
    """The learned state that corresponds to each true state.

    EM finds the states in an arbitrary order. They are matched by the
    Hungarian algorithm on the Hellinger distance between emission
    distributions.

    Parameters
    ----------
    true_emissionprob, learned_emissionprob : ndarray of shape (n_states, n_symbols)

    Returns
    -------
    ndarray of shape (n_states,), int
        ``order[i]`` is the learned state matched with true state ``i``, so
        ``learned_transmat[np.ix_(order, order)]`` is comparable with the true one.
    """
    from scipy.optimize import linear_sum_assignment

    root_true = np.sqrt(true_emissionprob)[:, None, :]
    root_learned = np.sqrt(learned_emissionprob)[None, :, :]
    cost = np.sqrt(0.5 * ((root_true - root_learned) ** 2).sum(axis=-1))
    rows, cols = linear_sum_assignment(cost)
    return cols[np.argsort(rows)]


def format_matrices(true: np.ndarray, learned: np.ndarray, labels: tuple[str, ...]) -> str:
    """Two row-labelled matrices side by side, as plain text."""
    width = max(len(s) for s in labels)
    head = " ".join(f"{s[:5]:>5}" for s in labels)
    lines = [
        f"{'':>{width}}  true{'':{len(head) - 4}}    learned",
        f"{'':>{width}}  {head}    {head}",
    ]
    for i, label in enumerate(labels):
        left = " ".join(f"{v:5.2f}" for v in true[i])
        right = " ".join(f"{v:5.2f}" for v in learned[i])
        lines.append(f"{label:>{width}}  {left}    {right}")
    return "\n".join(lines)


def plot_loglik(history: list[float], path: str, title: str = "EM log-likelihood") -> str | None:
    """Save the log-likelihood curve as a PNG; ``None`` when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(np.arange(1, len(history) + 1), history, marker="o", markersize=2)
    ax.set_xlabel("EM iteration")
    ax.set_ylabel("total log-likelihood")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _shown_path(path: str) -> str:
    """``path`` relative to the working directory when it lies below it, else absolute."""
    path = os.path.abspath(path)
    relative = os.path.relpath(path, os.getcwd())
    return path if relative.startswith(os.pardir) else relative


def sparklift_command() -> str:
    """How to call the ``sparklift`` command of this Python environment from a shell.

    ``sparklift`` when that is what the shell finds (an activated virtual
    environment), else the script's path (``.venv/bin/sparklift`` after
    ``make demo``), else ``python -m sparklift``.
    """
    script = os.path.join(os.path.dirname(sys.executable), "sparklift")
    if os.path.isfile(script):
        found = shutil.which("sparklift")
        if found and os.path.realpath(found) == os.path.realpath(script):
            return "sparklift"
        return shlex.quote(_shown_path(script))
    return f"{shlex.quote(_shown_path(sys.executable))} -m sparklift"


def next_command(paths: dict[str, str]) -> str:
    """A ``sparklift hmm decode`` command that decodes the demo's click log with its model.

    The click log is an event table (one row per click), so the sessions are
    rebuilt from its ``session_id``, ``ts`` and ``page_id`` columns, as the
    demo itself does; the result goes to ``my-decoded.parquet`` beside the
    other outputs.
    """
    output = os.path.join(os.path.dirname(paths["model"]), "my-decoded.parquet")
    words = [
        "hmm",
        "decode",
        _shown_path(paths["model"]),
        _shown_path(paths["clicks"]),
        "--id-col",
        "session_id",
        "--order-col",
        "ts",
        "--value-cols",
        "page_id",
        "--output",
        _shown_path(output),
        "--overwrite",
    ]
    return " ".join([sparklift_command(), *(shlex.quote(w) for w in words)])


@dataclass
class DemoResult:
    """What :func:`run_demo` produced."""

    output: str
    paths: dict[str, str]
    n_sessions: int
    n_clicks: int
    n_iter: int
    converged: bool
    history: list[float]
    state_order: list[int]
    learned_transmat: np.ndarray
    max_transmat_error: float
    max_emission_error: float
    decode_accuracy: float
    seconds: dict[str, float] = field(default_factory=dict)


def run_demo(
    output: str,
    *,
    n_sessions: int = 20_000,
    seed: int = 0,
    n_iter: int = 200,
    tol: float = 1.0,
    random_state: int = 0,
    spark: SparkSession | None = None,
    progress: bool | None = None,
    echo: Callable[[str], None] = print,
) -> DemoResult:
    """Generate shopping sessions, fit an HMM on Spark, decode, write everything.

    Parameters
    ----------
    output : str
        Local folder for every output (created; existing demo outputs in it
        are replaced).
    n_sessions : int, default 20000
        Sessions generated (about 30 clicks each).
    seed : int, default 0
        Seed of the data generator.
    n_iter, tol, random_state : int, float, int
        Passed to :class:`~sparklift.hmm.CategoricalHMM`. ``tol`` is in
        absolute log-likelihood, as hmmlearn's.
    spark : SparkSession, optional
        Defaults to :func:`sparklift.session.get_spark`.
    progress : bool, optional
        Show the EM progress bar. Unset: only when stderr is a terminal, so
        that ``make demo | tee log`` does not fill the log with the bar's
        carriage-return updates.
    echo : callable, default print
        Where the report lines go.

    Returns
    -------
    DemoResult
    """
    import pyarrow.parquet as pq
    from pyspark.sql import functions as F

    from sparklift.hmm import CategoricalHMM
    from sparklift.hmm.cli import convergence_status
    from sparklift.hmm.sequences import sequences_from_events
    from sparklift.session import get_spark

    if progress is None:
        progress = sys.stderr.isatty()
    seconds: dict[str, float] = {}
    output = os.path.abspath(output)
    os.makedirs(output, exist_ok=True)
    paths = {
        "clicks": os.path.join(output, "clicks.parquet"),
        "decoded": os.path.join(output, "decoded.parquet"),
        "model": os.path.join(output, "model"),
        "loglik_png": os.path.join(output, "loglik.png"),
        "report": os.path.join(output, "report.json"),
    }

    start = time.perf_counter()
    log = generate_clicks(n_sessions, seed)
    os.makedirs(paths["clicks"], exist_ok=True)
    for name in os.listdir(paths["clicks"]):
        os.remove(os.path.join(paths["clicks"], name))
    pq.write_table(log.to_arrow(), os.path.join(paths["clicks"], "part-0.parquet"))
    seconds["generate"] = time.perf_counter() - start
    echo(
        f"Generated {n_sessions:,} shopping sessions, {len(log.page_id):,} clicks "
        f"({seconds['generate']:.1f} s): {paths['clicks']}"
    )

    start = time.perf_counter()
    if spark is None:
        spark = get_spark("sparklift-demo")
    seconds["spark"] = time.perf_counter() - start
    clicks = spark.read.parquet(paths["clicks"])
    sessions = sequences_from_events(clicks, "session_id", "ts", "page_id", output_col="pages")
    sessions = sessions.cache()
    try:
        start = time.perf_counter()
        estimator = CategoricalHMM(
            n_components=len(STATES),
            n_iter=n_iter,
            tol=tol,
            random_state=random_state,
            n_features=len(PAGES),
            sequence_col="pages",
            progress=progress,
        )
        echo(f"Fitting a {len(STATES)}-state CategoricalHMM on Spark ({spark.version})...")
        model = estimator.fit(sessions)
        seconds["fit"] = time.perf_counter() - start
        history = [float(v) for v in model.monitor_.history]
        converged, status = convergence_status(history, tol)
        echo(
            f"EM: {len(history)} iterations in {seconds['fit']:.1f} s, {status}; "
            f"final log-likelihood {history[-1]:,.1f}"
        )

        order = match_states(TRUE_EMISSIONPROB, model.emissionprob_)
        learned_transmat = model.transmat_[np.ix_(order, order)]
        learned_emission = model.emissionprob_[order]
        echo("\nTransition matrix, true beside learned (learned states matched to true ones):")
        echo(format_matrices(TRUE_TRANSMAT, learned_transmat, STATES))
        transmat_error = float(np.abs(learned_transmat - TRUE_TRANSMAT).max())
        emission_error = float(np.abs(learned_emission - TRUE_EMISSIONPROB).max())
        echo(
            f"Largest difference: transitions {transmat_error:.3f}, "
            f"page probabilities {emission_error:.3f}"
        )

        start = time.perf_counter()
        if os.path.exists(paths["model"]):
            shutil.rmtree(paths["model"])
        model.save(paths["model"])
        decoded = model.transform(sessions)
        # Learned state numbers -> the true state each was matched with.
        to_true = F.array(*[F.lit(int(np.flatnonzero(order == k)[0])) for k in range(len(STATES))])
        names = F.array(*[F.lit(s) for s in STATES])
        decoded = decoded.select(
            "session_id",
            "pages",
            "log_likelihood",
            F.transform("states", lambda s: F.element_at(to_true, s + 1)).alias("states"),
            F.transform(
                "states", lambda s: F.element_at(names, F.element_at(to_true, s + 1) + 1)
            ).alias("intents"),
        )
        decoded.write.mode("overwrite").parquet(paths["decoded"])
        seconds["decode"] = time.perf_counter() - start

        truth = sequences_from_events(clicks, "session_id", "ts", "true_state", output_col="truth")
        scored = spark.read.parquet(paths["decoded"]).join(truth, "session_id")
        hits = (
            scored.select(
                F.aggregate(
                    F.zip_with("states", "truth", lambda a, b: F.when(a == b, 1).otherwise(0)),
                    F.lit(0),
                    lambda acc, x: acc + x,
                ).alias("hits"),
                F.size("states").alias("n"),
            )
            .agg(F.sum("hits"), F.sum("n"))
            .collect()[0]
        )
        accuracy = float(hits[0]) / float(hits[1])
        echo(
            f"Decoded {n_sessions:,} sessions ({seconds['decode']:.1f} s): "
            f"{accuracy:.1%} of clicks get their true hidden intent back"
        )
        example = scored.orderBy("session_id").limit(1).collect()[0]
        echo(
            "Session 0:\n  pages   "
            + " ".join(PAGES[p] for p in example["pages"][:10])
            + "\n  decoded "
            + " ".join(example["intents"][:10])
            + "\n  truth   "
            + " ".join(STATES[s] for s in example["truth"][:10])
        )

        png = plot_loglik(history, paths["loglik_png"], "Shopping-session HMM: EM log-likelihood")
        if png is None:
            del paths["loglik_png"]
            echo("(matplotlib is not installed: no log-likelihood plot; pip install matplotlib)")

        result = DemoResult(
            output=output,
            paths=paths,
            n_sessions=n_sessions,
            n_clicks=len(log.page_id),
            n_iter=len(history),
            converged=converged,
            history=history,
            state_order=[int(i) for i in order],
            learned_transmat=learned_transmat,
            max_transmat_error=transmat_error,
            max_emission_error=emission_error,
            decode_accuracy=accuracy,
            seconds=seconds,
        )
        report = {
            "states": list(STATES),
            "pages": list(PAGES),
            "n_sessions": n_sessions,
            "n_clicks": result.n_clicks,
            "n_iter": result.n_iter,
            "converged": result.converged,
            "stopped_at_n_iter": not result.converged,
            "log_likelihood_history": history,
            "true_transmat": TRUE_TRANSMAT.tolist(),
            "learned_transmat_matched": learned_transmat.tolist(),
            "true_emissionprob": TRUE_EMISSIONPROB.tolist(),
            "learned_emissionprob_matched": learned_emission.tolist(),
            "learned_state_for_true_state": result.state_order,
            "decode_accuracy": accuracy,
            "seconds": seconds,
        }
        with open(paths["report"], "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)
        echo("\nOutputs:")
        width = max(len(k) for k in paths)
        for key, path in paths.items():
            echo(f"  {key:<{width}}  {path}")
        echo("\nNext: decode the click log yourself with the saved model:")
        echo(f"  {next_command(paths)}")
        return result
    finally:
        sessions.unpersist()
