"""``sparklift tune``: a scikit-learn grid search over a Parquet file, on Spark.

Example::

    sparklift tune data.parquet --label y \\
        --estimator sklearn.linear_model.LogisticRegression \\
        --grid '{"C": [0.1, 1, 10]}' --cv 5 --scoring accuracy --output results.json

The Parquet file is read on the driver (a search needs X and y in memory
anyway); every (candidate, fold) fit runs as a Spark task. The result is JSON:
best parameters and score, and ``cv_results_`` without the timing columns'
NumPy types.

Arguments are checked before the search starts, each failure one
``sparklift: error:`` line and exit status 1 (see :func:`sparklift.cli.main`):
the --output file's directory, the estimator and its --estimator-params, the
--grid (a parameter grid of the estimator's own parameters), the --scoring
name, --cv (2 or more, and a first split of the data), and the columns
(present, without nulls, features numeric).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import inspect
import json
import os
import sys
from typing import Any

import numpy as np

from sparklift.cli import EXCEPTION_LINE, add_spark_options
from sparklift.errors import (
    InvalidInputError,
    PathExistsError,
    SparkliftError,
    count_of,
    first_line,
)


def _error_score(text: str) -> float | str:
    """``--error-score``: a number, or ``raise`` (scikit-learn's ``error_score``)."""
    if text == "raise":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number or 'raise'; got {text!r}") from None


def _estimator(path: str, params_json: str | None) -> Any:
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise InvalidInputError(
            f"--estimator must be a dotted class path such as "
            f"sklearn.linear_model.LogisticRegression; got {path!r}."
        )
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise InvalidInputError(f"--estimator {path!r} cannot be imported: {exc}") from None
    if not isinstance(cls, type):
        raise InvalidInputError(f"--estimator {path!r} is not a class.")
    params = _json_arg("--estimator-params", params_json) if params_json else {}
    if not isinstance(params, dict):
        raise InvalidInputError(
            f"--estimator-params must be a JSON object of constructor arguments, such as "
            f"'{{\"max_iter\": 500}}'; got {params_json!r}."
        )
    given = f" from --estimator-params {params_json}" if params_json else ""
    try:
        estimator = cls(**params)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"--estimator {path} cannot be built{given}: {exc}{_accepted(cls)}"
        ) from None
    # scikit-learn checks values (a string for max_iter) only in fit: check
    # them here, before any fit runs, where the estimator declares its rules.
    validate = getattr(estimator, "_validate_params", None)
    declared = isinstance(getattr(type(estimator), "_parameter_constraints", None), dict)
    if params and declared and callable(validate):
        try:
            validate()
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"--estimator {path} cannot be built{given}: {exc}") from None
    if not (hasattr(estimator, "fit") and hasattr(estimator, "get_params")):
        raise InvalidInputError(
            f"--estimator {path!r} is not a scikit-learn estimator (no fit or get_params)."
        )
    return estimator


def _accepted(cls: type) -> str:
    """``'; it accepts [...]'``: the constructor's keyword names, where they can be read."""
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - a class without a signature
        return ""
    names = [p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return f"; it accepts {names}." if names else ""


def _grid(text: str, estimator: Any) -> Any:
    """The parsed --grid, checked as GridSearchCV would check it, and against ``estimator``."""
    from sklearn.model_selection import ParameterGrid

    grid = _json_arg("--grid", text)
    try:
        candidates = ParameterGrid(grid)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"--grid is not a scikit-learn parameter grid ({exc}); give a JSON object of "
            f"lists, such as '{{\"C\": [0.1, 1, 10]}}', or a list of such objects."
        ) from None
    if len(candidates) == 0:
        raise InvalidInputError(f"--grid has no candidates: {text!r}.")
    known = estimator.get_params(deep=True)
    names = {name for part in candidates.param_grid for name in part}
    unknown = sorted(names - set(known))
    if unknown:
        raise InvalidInputError(
            f"--grid parameter(s) {unknown} are not parameters of "
            f"{type(estimator).__name__}; it has {sorted(known)}."
        )
    return grid


def _check_scoring(name: str | None) -> None:
    if name is None:
        return
    from sklearn.metrics import get_scorer, get_scorer_names

    try:
        get_scorer(name)
    except ValueError:
        close = difflib.get_close_matches(name, get_scorer_names(), n=3)
        hint = f"did you mean {close}? " if close else ""
        raise InvalidInputError(
            f"--scoring {name!r} is not a scikit-learn scorer; {hint}"
            "sklearn.metrics.get_scorer_names() lists them."
        ) from None


def _check_output(path: str | None, overwrite: bool = False) -> None:
    """Refuse an --output that cannot be written, or exists without --overwrite, before the search."""
    if path is None:
        return
    if os.path.isdir(path):
        raise InvalidInputError(f"--output {path!r} is a directory; give a file name.")
    if os.path.exists(path) and not overwrite:
        raise PathExistsError(f"{path} already exists; pass --overwrite to replace it")
    # The file is written beside the output and renamed over it: the folder
    # must exist and be writable (the real one, when the output is a link).
    folder = os.path.dirname(os.path.realpath(path))
    if not os.path.isdir(folder):
        raise InvalidInputError(f"--output {path!r}: the directory {folder!r} does not exist.")
    if not os.access(folder, os.W_OK):
        raise InvalidInputError(f"--output {path!r} cannot be written: {folder!r} is read-only.")


def _write_replacing(path: str, text: str) -> None:
    """Write ``text`` beside ``path`` and rename it over it (through a link, to its target).

    An interrupted write keeps the old file; the new one takes the old one's
    mode, or the umask's for a new file.
    """
    import shutil

    target = os.path.realpath(path)
    folder, name = os.path.split(target)
    partial = os.path.join(folder, f".{name}.{os.getpid()}.sparklift-partial")
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        with open(os.open(partial, flags, 0o666), "w", encoding="utf-8") as out:
            out.write(text)
        if os.path.exists(target):
            shutil.copymode(target, partial)
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def _check_features(frame: Any, features: list[str]) -> None:
    import pandas as pd

    for column in features:
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values.dtype):
            example = values.iloc[0] if len(values) else None
            raise InvalidInputError(
                f"feature column {column!r} is not numeric ({values.dtype}, for example "
                f"{example!r}); encode it first, or leave it out with --features."
            )


def _check_cv(cv: int, estimator: Any, X: Any, y: Any) -> None:
    """The first split, made as the search will make it: a --cv the data cannot take fails here."""
    from sklearn.base import is_classifier
    from sklearn.model_selection import check_cv

    try:
        next(iter(check_cv(cv, y, classifier=is_classifier(estimator)).split(X, y)))
    except ValueError as exc:
        raise InvalidInputError(f"--cv {cv} cannot split the data: {exc}") from None


def _json_arg(flag: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{flag} is not valid JSON ({exc}): {text!r}") from None


def _plain(value: Any) -> Any:
    if isinstance(value, np.ma.MaskedArray):
        return [None if m else _plain(v) for v, m in zip(value.data, value.mask, strict=True)]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _tune(args: argparse.Namespace) -> int:
    import pandas as pd

    from sparklift.cli import CommandSession
    from sparklift.tuning.search import GridSearchCV

    # Everything that can be checked without the data first, then the data:
    # the search (every fit a Spark task) starts only on arguments that work.
    _check_output(args.output, args.overwrite)
    estimator = _estimator(args.estimator, args.estimator_params)
    grid = _grid(args.grid, estimator)
    _check_scoring(args.scoring)
    if args.cv < 2:
        raise InvalidInputError(f"--cv must be 2 or more; got {args.cv}.")
    # Read by one thread: pyarrow's reader threads can outlive a short process
    # and abort it at exit (status 134 after the error line; apache/arrow#34314,
    # 4 runs in 40 here), which one thread avoided in 40 of 40.
    frame = pd.read_parquet(args.data, use_threads=False, pre_buffer=False)
    if args.label not in frame.columns:
        raise InvalidInputError(
            f"--label column {args.label!r} is not in {args.data}; columns: {list(frame.columns)}."
        )
    features = (
        args.features.split(",") if args.features else [c for c in frame.columns if c != args.label]
    )
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise InvalidInputError(f"--features {missing} not in {args.data}.")
    if args.label in features:
        raise InvalidInputError(
            f"--features names the --label column {args.label!r}: a model would learn the "
            "answer from itself. Leave it out of --features."
        )
    repeated = sorted({c for c in features if features.count(c) > 1})
    if repeated:
        raise InvalidInputError(f"--features names {repeated} more than once.")
    data = frame[[*features, args.label]]
    bad = data.isna().any(axis=1)
    if bad.any():
        column = data.columns[data.isna().any()].tolist()[0]
        raise InvalidInputError(
            f"column {column!r} has missing values: {count_of(int(bad.sum()), 'row')} with nulls, for "
            f"example row {int(np.flatnonzero(bad.to_numpy())[0])}. Drop or impute them first."
        )
    _check_features(data, features)
    X, y = data[features].to_numpy(), data[args.label].to_numpy()
    _check_cv(args.cv, estimator, X, y)
    search = GridSearchCV(
        estimator,
        grid,
        cv=args.cv,
        scoring=args.scoring,
        error_score=args.error_score,
        verbose=1 if args.progress else 0,
    )
    # A session that cannot start is its own error, not a failed fit.
    with CommandSession(args, "sparklift-tune"):
        # stdout carries the results JSON; scikit-learn's verbose lines go to stderr.
        try:
            with contextlib.redirect_stdout(sys.stderr):
                search.fit(X, y)
        except SparkliftError:
            raise
        except Exception as exc:
            if args.error_score == "raise":
                # The failing candidate's own exception, stopped at as asked: one line.
                raise InvalidInputError(
                    f"a fit failed and --error-score raise stops the search there: "
                    f"{type(exc).__name__}: {first_line(exc)}"
                ) from None
            if not isinstance(exc, ValueError) or "fits failed" not in str(exc):
                raise
            # scikit-learn's own message when no candidate could be fitted: the
            # count and each distinct error with its traceback; keep the errors.
            lines = [line for line in str(exc).splitlines() if line.strip()]
            errors = [line.strip() for line in lines if EXCEPTION_LINE.match(line.strip())]
            raise InvalidInputError(
                f"{lines[0].rstrip('.')}: " + "; ".join(dict.fromkeys(errors or lines[1:2]))
            ) from None
    result = {
        "best_params": _plain(search.best_params_),
        "best_score": _plain(search.best_score_),
        "n_fits": search.spark_transfer_.n_fits,
        "cv_results": _plain(search.cv_results_),
    }
    text = json.dumps(result, indent=2)
    if args.output:
        _write_replacing(args.output, text + "\n")
        print(f"best {result['best_params']} score {result['best_score']}; wrote {args.output}")
    else:
        sys.stdout.write(text + "\n")
    return 0


def register(subparsers: Any) -> None:
    """Add the ``tune`` subcommand."""
    parser = subparsers.add_parser(
        "tune",
        help="grid-search a scikit-learn estimator over a Parquet file, fits on Spark",
        description="Grid search with sparklift.tuning.GridSearchCV over a Parquet file; "
        "prints or writes the results as JSON.",
    )
    parser.add_argument("data", help="Parquet file or directory (read on the driver)")
    parser.add_argument("--label", required=True, help="target column")
    parser.add_argument("--features", help="comma-separated feature columns (default: all others)")
    parser.add_argument("--estimator", required=True, help="class path, e.g. sklearn.svm.SVC")
    parser.add_argument("--estimator-params", help="JSON object of constructor arguments")
    parser.add_argument(
        "--grid", required=True, help="JSON parameter grid, e.g. '{\"C\": [1, 10]}'"
    )
    parser.add_argument("--cv", type=int, default=5, help="number of folds (default 5)")
    parser.add_argument("--scoring", help="scikit-learn scorer name (default: the estimator's)")
    parser.add_argument("--output", help="write the JSON here instead of stdout")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    parser.add_argument("--progress", action="store_true", help="show a progress bar of fits")
    parser.add_argument(
        "--error-score",
        type=_error_score,
        default=float("nan"),
        help="score of a fit that raises: a number (default nan), or 'raise' to stop",
    )
    add_spark_options(parser)
    parser.set_defaults(func=_tune)
