"""``sparklift predict``: a saved model + a Parquet dataset -> Parquet with predictions.

The model file is written by :func:`sparklift.inference.save_model` (skops by
default; a pickle file needs ``--allow-pickle``), or the model is a folder
written by :meth:`sparklift.grouped.GroupedModel.save`. Scoring is
:func:`sparklift.inference.predict` (or ``GroupedModel.predict``), so every
input column is kept and one output column is added.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from sparklift.cli import add_spark_options


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


#: Library wording -> the command line's spelling of the same option.
_CLI_WORDS = (
    ("on_null='null'", "--on-null null"),
    ("on_unknown='null'", "--on-unknown null"),
    ("give input_cols (", "give --input-cols ("),
    ("give either input_cols or features_col", "give either --input-cols or --features-col"),
    (" or features_col (", " or --features-col ("),
    ("column in features_col)", "column in --features-col)"),
)


def _cli_words(message: str) -> str:
    """A library message with the command line's spelling of its options."""
    for library, cli in _CLI_WORDS:
        message = message.replace(library, cli)
    return message


def _grouped_model_folder(path: str) -> bool:
    """Whether ``--model`` names a folder written by ``GroupedModel.save`` (else a model file)."""
    import os

    from sparklift.cli import local_path
    from sparklift.errors import ModelFormatError

    local = local_path(path)
    if local is None:
        return True  # on a Spark file system (hdfs://, s3a://): only a folder can be read there
    if not os.path.isdir(local):
        return False
    if os.path.isdir(os.path.join(local, "metadata")):
        return True
    raise ModelFormatError(
        f"{path} is a folder: --model takes a file written by "
        "sparklift.inference.save_model, or a folder written by GroupedModel.save"
    )


def _predict(args: argparse.Namespace) -> int:
    from sparklift._spark import translate_errors
    from sparklift.cli import (
        CommandSession,
        local_path,
        refuse_existing_output,
        write_parquet_output,
    )
    from sparklift.errors import InvalidInputError
    from sparklift.inference import load_model, predict

    # What can be checked without Spark is checked before a session starts.
    refuse_existing_output(args.output, args.overwrite)
    grouped = _grouped_model_folder(args.model)
    if grouped and (args.input_cols or args.features_col):
        raise InvalidInputError(
            f"{args.model} is a GroupedModel, which scores the feature columns it was "
            "fitted on: drop --input-cols/--features-col"
        )
    if not grouped and args.on_unknown is not None:
        raise InvalidInputError("--on-unknown applies to a GroupedModel folder only")
    model = (
        None
        if grouped
        else load_model(args.model, trusted=args.trust or (), allow_pickle=args.allow_pickle)
    )
    input_cols = _split(args.input_cols)
    no_names = getattr(model, "feature_names_in_", None) is None
    if not grouped and input_cols is None and args.features_col is None and no_names:
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
            method = methods[0] if len(methods) == 1 else methods
            try:
                if grouped:
                    from sparklift.errors import ModelFormatError
                    from sparklift.grouped import GroupedModel

                    try:
                        loaded = GroupedModel.load(
                            args.model,
                            spark=spark,
                            trusted=args.trust or (),
                            allow_pickle=args.allow_pickle,
                        )
                    except ModelFormatError as exc:
                        if local_path(args.model) is not None:
                            raise
                        raise ModelFormatError(
                            f"{exc} (a model file written by save_model is read from this "
                            "machine's file system only)"
                        ) from None
                    scored = loaded.predict(
                        df,
                        output_col=args.output_col,
                        method=method,
                        on_null=args.on_null,
                        on_unknown=args.on_unknown or "null",
                    )
                else:
                    scored = predict(
                        df,
                        model,
                        input_cols=input_cols,
                        features_col=args.features_col,
                        output_col=args.output_col,
                        method=method,
                        on_null=args.on_null,
                    )
            except InvalidInputError as exc:
                if _cli_words(str(exc)) == str(exc):
                    raise
                raise InvalidInputError(_cli_words(str(exc))) from None
        for warning in caught:  # one line each, not Python's source-quoting form
            print(f"sparklift: warning: {_cli_words(str(warning.message))}", file=sys.stderr)
        try:
            write_parquet_output(scored, args.output, args.overwrite)
        except InvalidInputError as exc:
            raise InvalidInputError(_cli_words(str(exc))) from None
        out_type = scored.schema[args.output_col].dataType.simpleString()
    print(f"wrote {args.output} (column '{args.output_col}': {out_type})", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``predict`` subcommand."""
    parser = subparsers.add_parser(
        "predict",
        help="score a saved model over a Parquet dataset",
        description="Score a model saved with sparklift.inference.save_model (or a "
        "GroupedModel folder) over a Parquet dataset and write the rows with an added "
        "prediction column as Parquet.",
    )
    parser.add_argument(
        "--model",
        required=True,
        help="model file (save_model output), or a folder written by GroupedModel.save "
        "(each row scored with its group's model)",
    )
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
    parser.add_argument(
        "--on-unknown",
        choices=["null", "error"],
        default=None,
        help="GroupedModel only: rows whose group has no model get a null output and are "
        "counted (default), or fail the run",
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
