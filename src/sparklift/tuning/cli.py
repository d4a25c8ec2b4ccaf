"""``sparklift tune``: a scikit-learn grid search over a Parquet file, on Spark.

Example::

    sparklift tune data.parquet --label y \\
        --estimator sklearn.linear_model.LogisticRegression \\
        --grid '{"C": [0.1, 1, 10]}' --cv 5 --scoring accuracy --output results.json

The Parquet file is read on the driver (a search needs X and y in memory
anyway); every (candidate, fold) fit runs as a Spark task. The result is JSON:
best parameters and score, and ``cv_results_`` without the timing columns'
NumPy types.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

import numpy as np

from sparklift.errors import InvalidInputError


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
    params = _json_arg("--estimator-params", params_json) if params_json else {}
    return cls(**params)


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

    from sparklift.tuning.search import GridSearchCV

    frame = pd.read_parquet(args.data)
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
    data = frame[[*features, args.label]]
    bad = data.isna().any(axis=1)
    if bad.any():
        column = data.columns[data.isna().any()].tolist()[0]
        raise InvalidInputError(
            f"column {column!r} has missing values: {int(bad.sum())} rows with nulls, for "
            f"example row {int(np.flatnonzero(bad.to_numpy())[0])}. Drop or impute them first."
        )
    grid = _json_arg("--grid", args.grid)
    search = GridSearchCV(
        _estimator(args.estimator, args.estimator_params),
        grid,
        cv=args.cv,
        scoring=args.scoring,
        verbose=1 if args.progress else 0,
    )
    search.fit(data[features].to_numpy(), data[args.label].to_numpy())
    result = {
        "best_params": _plain(search.best_params_),
        "best_score": _plain(search.best_score_),
        "n_fits": search.spark_transfer_.n_fits,
        "cv_results": _plain(search.cv_results_),
    }
    text = json.dumps(result, indent=2)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
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
    parser.add_argument("--progress", action="store_true", help="show a progress bar of fits")
    parser.set_defaults(func=_tune)
