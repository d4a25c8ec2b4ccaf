"""``sparklift predict``: a saved model + a Parquet dataset -> Parquet with predictions.

The model file is written by :func:`sparklift.inference.save_model` (skops by
default; a pickle file needs ``--allow-pickle``). Scoring is
:func:`sparklift.inference.predict`, so every input column is kept and one
output column is added.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import warnings

from sparklift.cli import add_spark_options


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def _local_path(path: str) -> str | None:
    """The local file system path of ``path``, or None for another file system."""
    if path.startswith("file:"):
        return path[len("file:") :]
    return None if "://" in path else path


def _first_missing(path: str) -> str | None:
    """The outermost directory of ``path`` that does not exist yet (``path`` itself, or a parent)."""
    path = os.path.abspath(path)
    if os.path.exists(path):
        return None
    while not os.path.exists(os.path.dirname(path)):
        path = os.path.dirname(path)
    return path


def _staging_dir(local: str) -> str:
    """A new directory beside ``local`` (same file system) to write a replacement into."""
    import tempfile

    parent, name = os.path.split(os.path.abspath(local))
    return tempfile.mkdtemp(prefix=f".{name}.sparklift-", dir=parent)


def _swap_in(staging: str, local: str) -> None:
    """Move the output written in ``staging`` to ``local``, replacing what was there.

    Two renames on one file system; the old output is deleted only once the new
    one is in place (it is put back if the second rename fails).
    """
    previous = os.path.join(staging, "previous")
    os.rename(local, previous)
    try:
        os.rename(os.path.join(staging, "output"), local)
    except OSError:
        os.rename(previous, local)
        raise
    shutil.rmtree(staging, ignore_errors=True)


#: Library wording -> the command line's spelling of the same option.
_CLI_WORDS = (
    ("on_null='null'", "--on-null null"),
    ("give input_cols (", "give --input-cols ("),
    ("give either input_cols or features_col", "give either --input-cols or --features-col"),
    (" or features_col (", " or --features-col ("),
)


def _cli_words(message: str) -> str:
    """A library message with the command line's spelling of its options."""
    for library, cli in _CLI_WORDS:
        message = message.replace(library, cli)
    return message


def _predict(args: argparse.Namespace) -> int:
    from sparklift._spark import refusing_existing, translate_errors
    from sparklift.cli import CommandSession
    from sparklift.errors import InvalidInputError
    from sparklift.inference import load_model, predict

    # What can be checked without Spark is checked before a session starts.
    local = _local_path(args.output)
    if local is not None and os.path.exists(local) and not args.overwrite:
        raise InvalidInputError(f"{args.output} already exists; pass --overwrite to replace it")
    model = load_model(args.model, trusted=args.trust or (), allow_pickle=args.allow_pickle)
    input_cols = _split(args.input_cols)
    no_names = getattr(model, "feature_names_in_", None) is None
    if input_cols is None and args.features_col is None and no_names:
        raise InvalidInputError(
            f"{args.model} holds a model fitted without column names (no "
            "feature_names_in_): give --input-cols (comma-separated numeric columns, in "
            "the order the model was fitted on) or --features-col (one vector or array column)"
        )
    methods = _split(args.method) or ["predict"]
    with CommandSession(args, "sparklift-predict") as spark:
        with translate_errors():
            df = spark.read.parquet(args.input)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                scored = predict(
                    df,
                    model,
                    input_cols=input_cols,
                    features_col=args.features_col,
                    output_col=args.output_col,
                    method=methods[0] if len(methods) == 1 else methods,
                    on_null=args.on_null,
                )
            except InvalidInputError as exc:
                if _cli_words(str(exc)) == str(exc):
                    raise
                raise InvalidInputError(_cli_words(str(exc))) from None
        for warning in caught:  # one line each, not Python's source-quoting form
            print(f"sparklift: warning: {_cli_words(str(warning.message))}", file=sys.stderr)
        created = None if local is None else _first_missing(local)
        # --overwrite of a local output writes beside it and swaps on success, so a
        # failed job keeps the old output (and the input may be the output itself).
        # On other file systems Spark's overwrite deletes the old output first.
        staging = _staging_dir(local) if args.overwrite and local and created is None else None
        target = args.output
        if staging is not None:
            target = ("file:" if args.output.startswith("file:") else "") + staging + "/output"
        try:
            with refusing_existing(args.output, "pass --overwrite"), translate_errors():
                mode = "overwrite" if args.overwrite and staging is None else "error"
                scored.write.mode(mode).parquet(target)
        except Exception as exc:
            # A failed job leaves the directory it started (empty, or with Spark's
            # _temporary), which would refuse the next run: remove what this run created.
            leftover = staging or created
            if leftover is not None:
                shutil.rmtree(leftover, ignore_errors=True)
            if isinstance(exc, InvalidInputError):
                raise InvalidInputError(_cli_words(str(exc))) from None
            raise
        if staging is not None and local is not None:
            _swap_in(staging, local)
        out_type = scored.schema[args.output_col].dataType.simpleString()
    print(f"wrote {args.output} (column '{args.output_col}': {out_type})", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``predict`` subcommand."""
    parser = subparsers.add_parser(
        "predict",
        help="score a saved model over a Parquet dataset",
        description="Score a model saved with sparklift.inference.save_model over a Parquet "
        "dataset and write the rows with an added prediction column as Parquet.",
    )
    parser.add_argument("--model", required=True, help="model file (save_model output)")
    parser.add_argument("--input", required=True, help="input Parquet path")
    parser.add_argument("--output", required=True, help="output Parquet path")
    inputs = parser.add_mutually_exclusive_group()
    inputs.add_argument(
        "--input-cols",
        help="comma-separated numeric feature columns (default: the model's feature_names_in_)",
    )
    inputs.add_argument("--features-col", help="one vector or array column with all features")
    parser.add_argument(
        "--method",
        default="predict",
        help="model method, or several comma-separated (a struct column): predict, "
        "predict_proba, decision_function, transform, score_samples",
    )
    parser.add_argument("--output-col", default="prediction")
    parser.add_argument(
        "--on-null",
        choices=["error", "null"],
        default="error",
        help="rows with a null feature: fail (default) or predict null",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument(
        "--trust",
        action="append",
        metavar="TYPE",
        help="extra type the skops loader may instantiate (repeatable)",
    )
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="allow a model file stored with pickle (runs code: only for files you trust)",
    )
    add_spark_options(parser)
    parser.set_defaults(func=_predict)
