"""``sparklift hmm fit``, ``sparklift hmm decode`` and ``sparklift demo``.

``hmm fit`` reads sequences from Parquet or CSV and saves a fitted model
folder; ``hmm decode`` reads a saved model and sequences and writes Parquet
with each sequence's log-likelihood and state path; ``demo`` runs
:func:`sparklift.hmm.demo.run_demo`.

Input is either one row per sequence (an array column; in CSV a string of
numbers separated by spaces, commas or semicolons) or, with ``--id-col``, a
long event table (one row per event) turned into sequences with
:func:`sparklift.hmm.sequences.sequences_from_events`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from sparklift.cli import (
    CommandSession,
    add_spark_options,
    refuse_existing_output,
    write_parquet_output,
)

# The Spark options and session handling every command shares.
from sparklift.errors import count_of

#: Choices of the string options.
COVARIANCE_TYPES = ("spherical", "diag", "full", "tied")
IMPLEMENTATIONS = ("log", "scaling")
ALGORITHMS = ("viterbi", "map")

#: Estimator class of each ``--family``.
FAMILY_CLASSES = {
    "categorical": "CategoricalHMM",
    "gaussian": "GaussianHMM",
    "poisson": "PoissonHMM",
    "multinomial": "MultinomialHMM",
    "gmm": "GMMHMM",
}


def _number(kind: type, minimum: float, *, strict: bool = False, name: str = "") -> Any:
    """An argparse type: ``kind`` of the text, at least (or above) ``minimum``."""

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid {'integer' if kind is int else 'number'}: {text!r}"
            ) from None
        if value != value:
            raise argparse.ArgumentTypeError(f"must be a number; got {text}")
        if value <= minimum if strict else value < minimum:
            raise argparse.ArgumentTypeError(
                f"must be {'>' if strict else '>='} {minimum:g}; got {text}"
            )
        return value

    convert.__name__ = name or kind.__name__
    return convert


_POSITIVE_INT = _number(int, 1)
_NONNEGATIVE_INT = _number(int, 0)
_ANY_FLOAT = _number(float, float("-inf"), name="float")  # tol: negative runs all n_iter
_POSITIVE = _number(float, 0.0, strict=True)

# (flag, Param name, type, help, choices): estimator options, passed on only when given.
_ESTIMATOR_OPTIONS: list[tuple[str, str, Any, str, tuple[str, ...] | None]] = [
    ("--n-components", "n_components", _POSITIVE_INT, "number of hidden states (default 1)", None),
    ("--n-iter", "n_iter", _POSITIVE_INT, "maximum number of EM iterations (default 10)", None),
    (
        "--tol",
        "tol",
        _ANY_FLOAT,
        "stop when the log-likelihood gain is below this (default 0.01)",
        None,
    ),
    ("--random-state", "random_state", _NONNEGATIVE_INT, "seed of the initialisation", None),
    (
        "--params",
        "update_params",
        str,
        "letters of the parameters EM updates (hmmlearn's params)",
        None,
    ),
    ("--init-params", "init_params", str, "letters of the parameters initialised before EM", None),
    ("--n-init", "n_init", _POSITIVE_INT, "EM restarts; the best log-likelihood is kept", None),
    (
        "--implementation",
        "implementation",
        str,
        "forward-backward (default scaling)",
        IMPLEMENTATIONS,
    ),
    ("--algorithm", "algorithm", str, "decoder stored in the model (default viterbi)", ALGORITHMS),
    ("--startprob-prior", "startprob_prior", _POSITIVE, "Dirichlet prior of startprob_", None),
    ("--transmat-prior", "transmat_prior", _POSITIVE, "Dirichlet prior of transmat_ rows", None),
    ("--n-features", "n_features", _POSITIVE_INT, "categorical: number of symbols", None),
    ("--covariance-type", "covariance_type", str, "gaussian/gmm (default diag)", COVARIANCE_TYPES),
    ("--min-covar", "min_covar", _POSITIVE, "gaussian/gmm: floor on the covariance diagonal", None),
    ("--n-mix", "n_mix", _POSITIVE_INT, "gmm: Gaussian components per state", None),
    ("--n-trials", "n_trials", _POSITIVE_INT, "multinomial: trials per frame", None),
    ("--checkpoint-dir", "checkpoint_dir", str, "save parameters every iteration; resume", None),
    ("--num-partitions", "num_partitions", _POSITIVE_INT, "partitions of the cached data", None),
    ("--init-sample-size", "init_sample_size", _POSITIVE_INT, "frames sampled for init", None),
]


def convergence_status(history: list[float], tol: float) -> tuple[bool, str]:
    """Whether EM stopped on ``tol`` and the words saying so.

    hmmlearn's ``monitor.converged`` is also True when EM merely ran out of
    iterations, so the history is checked instead: EM converged only when the
    last log-likelihood gain is below ``tol``.
    """
    if len(history) >= 2 and history[-1] - history[-2] < tol:
        return True, "converged (log-likelihood gain < tol)"
    return False, "stopped at n_iter without converging"


def _add_input_options(
    parser: argparse.ArgumentParser, sequence_default: str | None = "sequence"
) -> None:
    group = parser.add_argument_group("input")
    group.add_argument("input", help="Parquet or CSV file or folder")
    group.add_argument(
        "--format",
        choices=("parquet", "csv"),
        help="input format (default: from the extension, else parquet)",
    )
    group.add_argument(
        "--sequence-col",
        default=sequence_default,
        help="column of sequences, one row per sequence (default: "
        + (sequence_default or "the model's sequence_col")
        + ")",
    )
    group.add_argument(
        "--id-col",
        help="read a long event table instead: the column identifying each sequence",
    )
    group.add_argument("--order-col", help="with --id-col: the column ordering events")
    group.add_argument(
        "--value-cols",
        help="with --id-col: comma-separated value column(s); several make vector frames",
    )


def register(subparsers: Any) -> None:
    """Add ``hmm fit``, ``hmm decode`` and ``demo`` to the ``sparklift`` command."""
    hmm = subparsers.add_parser(
        "hmm",
        help="fit and decode hidden Markov models on Spark",
        description="Hidden Markov models trained by distributed EM (sparklift.hmm).",
    )
    commands = hmm.add_subparsers(dest="hmm_command", metavar="COMMAND")
    hmm.set_defaults(func=lambda args: _usage(hmm))

    fit = commands.add_parser(
        "fit",
        help="fit an HMM on sequences from Parquet or CSV and save the model",
        description="Fit an HMM by distributed EM and save the model folder (JSON + NPZ). "
        "Options mirror the estimator's parameters; unset ones keep hmmlearn's defaults.",
    )
    _add_input_options(fit)
    fit.add_argument("--output", "-o", required=True, help="model folder to write")
    fit.add_argument(
        "--family",
        choices=sorted(FAMILY_CLASSES),
        default="categorical",
        help="emission family (default: categorical)",
    )
    model_opts = fit.add_argument_group("estimator")
    for flag, dest, kind, text, choices in _ESTIMATOR_OPTIONS:
        if choices:
            model_opts.add_argument(flag, dest=f"param_{dest}", choices=choices, help=text)
        else:
            metavar = "STR" if kind is str else "N" if "int" in kind.__name__ else "X"
            model_opts.add_argument(
                flag, dest=f"param_{dest}", type=kind, metavar=metavar, help=text
            )
    model_opts.add_argument(
        "--init-model", help="a saved sparklift model folder giving the non-initialised parameters"
    )
    fit.add_argument("--overwrite", action="store_true", help="replace an existing model folder")
    fit.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="show the EM progress bar (default: on)",
    )
    add_spark_options(fit)
    fit.set_defaults(func=_fit, parser=fit)

    decode = commands.add_parser(
        "decode",
        help="decode sequences with a saved model and write Parquet with the states",
        description="Add each sequence's log-likelihood and decoded state path and write "
        "the result as Parquet.",
    )
    decode.add_argument("model", help="model folder written by 'sparklift hmm fit' or save()")
    _add_input_options(decode, sequence_default=None)
    decode.add_argument("--output", "-o", required=True, help="Parquet folder to write")
    decode.add_argument("--algorithm", choices=ALGORITHMS, help="decoder (default: the model's)")
    decode.add_argument(
        "--loglik-col", help="column for each sequence's log-likelihood (default: log_likelihood)"
    )
    decode.add_argument("--states-col", help="column for the decoded states (default: states)")
    decode.add_argument("--posteriors-col", help="also write state posteriors in this column")
    decode.add_argument("--overwrite", action="store_true", help="replace an existing output")
    add_spark_options(decode)
    decode.set_defaults(func=_decode)

    demo = subparsers.add_parser(
        "demo",
        help="fit an HMM to generated shopping sessions on local Spark (make demo)",
        description="Generate shopping sessions from a known hidden process, fit a "
        "CategoricalHMM on Spark, print the learned transition matrix beside the true one, "
        "decode the sessions and write data, decoded paths, the model and a log-likelihood "
        "plot to the output folder.",
    )
    demo.add_argument("--output", "-o", default="demo-output", help="folder (default: demo-output)")
    demo.add_argument(
        "--sessions", type=_POSITIVE_INT, default=20_000, help="sessions (default: 20000)"
    )
    demo.add_argument(
        "--seed", type=_NONNEGATIVE_INT, default=0, help="seed of the data (default: 0)"
    )
    demo.add_argument(
        "--n-iter", type=_POSITIVE_INT, default=200, help="maximum EM iterations (default: 200)"
    )
    demo.add_argument("--tol", type=_ANY_FLOAT, default=1.0, help="EM tolerance (default: 1.0)")
    demo.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show the EM progress bar (default: only when stderr is a terminal)",
    )
    add_spark_options(demo)
    demo.set_defaults(func=_demo)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _input_format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    path = args.input.rstrip("/")
    if path.lower().endswith(".csv") or path.lower().endswith(".csv.gz"):
        return "csv"
    if os.path.isdir(path):
        names = [n for n in os.listdir(path) if not n.startswith((".", "_"))]
        if names and all(n.lower().endswith((".csv", ".csv.gz")) for n in names):
            return "csv"
    return "parquet"


def _check_input(path: str) -> None:
    """Fail before Spark starts when a local input path is missing."""
    if not os.path.exists(path) and "://" not in path:
        raise FileNotFoundError(f"Input {path} does not exist")


def _read_sequences(spark: Any, args: argparse.Namespace, kind: str) -> Any:
    """The input as one row per sequence in ``args.sequence_col``."""
    from pyspark.sql import functions as F

    from sparklift import _spark
    from sparklift.errors import InvalidInputError
    from sparklift.hmm.sequences import sequences_from_events

    _check_input(args.input)
    fmt = _input_format(args)
    if fmt == "csv":
        df = spark.read.csv(args.input, header=True, inferSchema=True)
    else:
        df = spark.read.parquet(args.input)
    if args.id_col:
        if not args.order_col or not args.value_cols:
            raise InvalidInputError("--id-col needs --order-col and --value-cols as well")
        values = [v.strip() for v in args.value_cols.split(",") if v.strip()]
        return sequences_from_events(
            df,
            args.id_col,
            args.order_col,
            values[0] if len(values) == 1 else values,
            output_col=args.sequence_col,
        )
    col = args.sequence_col
    if col in df.columns and dict(df.dtypes)[col] == "string":
        # CSV cannot hold arrays: a sequence is a string of numbers.
        element = "bigint" if kind == "int" else "double"
        text = _spark.col(col)
        parts = F.split(F.trim(text), r"[\s,;]+")
        parsed = F.when(F.trim(text) == "", F.array().cast(f"array<{element}>")).otherwise(
            F.transform(parts, lambda x: x.try_cast(element))
        )
        # A token that is not a number parses to null (try_cast): count and show them.
        bad = df.filter(F.exists(parsed, lambda x: x.isNull()))
        example = bad.limit(1).collect()
        if example:
            n_bad = bad.count()
            what = "whole numbers" if kind == "int" else "numbers"
            raise InvalidInputError(
                f"Column '{col}' has {n_bad} row{'s' if n_bad != 1 else ''} whose text is not "
                f"a list of {what}, for example {example[0].asDict()}; separate {what} with "
                "spaces, commas or semicolons"
            )
        df = df.withColumn(col, parsed)
    elif fmt == "csv" and col not in df.columns:
        raise InvalidInputError(
            f"Column '{col}' not found in {args.input} (columns: {df.columns}); name the "
            "sequence column with --sequence-col, or read an event table with --id-col, "
            "--order-col and --value-cols"
        )
    return df


def _estimator(args: argparse.Namespace) -> Any:
    import sparklift.hmm as hmm
    from sparklift.errors import InvalidInputError

    cls = getattr(hmm, FAMILY_CLASSES[args.family])
    settings: dict[str, Any] = {"sequence_col": args.sequence_col, "progress": args.progress}
    for flag, dest, *_ in _ESTIMATOR_OPTIONS:
        value = getattr(args, f"param_{dest}")
        if value is None:
            continue
        if not cls().hasParam(dest):
            raise InvalidInputError(f"{flag} does not apply to --family {args.family}")
        settings[dest] = value
    if args.init_model:
        from sparklift.hmm.estimators import _HMMModel

        settings["init_model"] = _HMMModel.load(args.init_model)
    try:
        return cls(**settings)
    except (ValueError, TypeError) as exc:
        # Param converters reject a value: a usage error, one line, exit 2.
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
        args.parser.error(message)


def _kind(family: str) -> str:
    return "int" if family == "categorical" else "vector"


def _fit(args: argparse.Namespace) -> int:
    refuse_existing_output(args.output, args.overwrite)
    _check_input(args.input)
    estimator = _estimator(args)
    with CommandSession(args, "sparklift-hmm-fit") as spark:
        sequences = _read_sequences(spark, args, _kind(args.family))
        model = estimator.fit(sequences)
        writer = model.write()
        if args.overwrite:
            writer = writer.overwrite()
        writer.save(args.output)
    history = [float(v) for v in model.monitor_.history]
    _, status = convergence_status(history, float(model.getOrDefault("tol")))
    n_states = int(model.getOrDefault("n_components"))
    print(
        f"Fitted {type(model).__name__} with {count_of(n_states, 'state')} "
        f"and {count_of(int(model.n_features), 'feature')}: "
        f"{count_of(len(history), 'EM iteration')}, {status}, "
        f"log-likelihood {history[-1]:.6g}"
    )
    print(f"Model saved to {os.path.abspath(args.output)}")
    return 0


def _decode(args: argparse.Namespace) -> int:
    from sparklift.hmm.estimators import _HMMModel

    refuse_existing_output(args.output, args.overwrite)
    _check_input(args.input)
    model = _HMMModel.load(args.model)
    if args.sequence_col is None:
        args.sequence_col = model.getOrDefault("sequence_col")
    else:
        model.set(model.sequence_col, args.sequence_col)
    if args.algorithm:
        model.set(model.algorithm, args.algorithm)
    for name in ("loglik_col", "states_col", "posteriors_col"):
        if getattr(args, name):
            model.set(model.getParam(name), getattr(args, name))
    with CommandSession(args, "sparklift-hmm-decode") as spark:
        sequences = _read_sequences(spark, args, _kind(model._family_name))
        decoded = model.transform(sequences)
        from sparklift._spark import translate_errors

        write_parquet_output(decoded, args.output, args.overwrite)
        with translate_errors():
            n_rows = spark.read.parquet(args.output).count()
    print(
        f"Decoded {n_rows} sequences with {type(model).__name__} "
        f"({model.getOrDefault('algorithm')}): {os.path.abspath(args.output)}"
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from sparklift.hmm.demo import run_demo

    with CommandSession(args, "sparklift-demo") as spark:
        run_demo(
            args.output,
            n_sessions=args.sessions,
            seed=args.seed,
            n_iter=args.n_iter,
            tol=args.tol,
            spark=spark,
            progress=args.progress,
        )
    sys.stdout.flush()
    return 0
