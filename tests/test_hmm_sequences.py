"""Sequence columns: validation, Arrow -> numpy, sampling, building from events.

References are numpy computations on the same generated data.
"""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pytest

from sparklift import _spark
from sparklift.errors import InvalidColumnTypeError, InvalidInputError
from sparklift.hmm.sequences import (
    batch_to_arrays,
    sample_frames,
    sequences_from_arrays,
    sequences_from_events,
    validate_sequences,
)

# ---------------------------------------------------------------------------
# batch_to_arrays: no Spark


def test_batch_to_arrays_int_symbols():
    column = pa.array([[1, 2, 3], [0], [4, 4]], type=pa.list_(pa.int64()))
    X, offsets = batch_to_arrays(column, "int")
    assert X.dtype == np.int64
    assert X.shape == (6, 1)
    np.testing.assert_array_equal(X[:, 0], [1, 2, 3, 0, 4, 4])
    np.testing.assert_array_equal(offsets, [0, 3, 4, 6])
    assert offsets.dtype == np.int64
    # int64 values are not copied
    assert np.shares_memory(X, column.values.to_numpy())


def test_batch_to_arrays_int32_and_slices():
    column = pa.array([[9], [1, 2], [3], [5, 6, 7]], type=pa.list_(pa.int32())).slice(1, 2)
    X, offsets = batch_to_arrays(column, "int")
    assert X.dtype == np.int64
    np.testing.assert_array_equal(X[:, 0], [1, 2, 3])
    np.testing.assert_array_equal(offsets, [0, 2, 3])


def test_batch_to_arrays_vectors_zero_copy_and_chunked():
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(n, 3)) for n in (4, 1, 2)]
    column = pa.array([s.tolist() for s in seqs], type=pa.list_(pa.list_(pa.float64())))
    X, offsets = batch_to_arrays(column, "vector")
    np.testing.assert_array_equal(X, np.concatenate(seqs))
    assert X.flags.c_contiguous
    np.testing.assert_array_equal(offsets, [0, 4, 5, 7])
    assert np.shares_memory(X, column.values.values.to_numpy())
    chunked = pa.chunked_array([column.slice(0, 1), column.slice(1, 2)])
    X2, offsets2 = batch_to_arrays(chunked, "vector")
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(offsets2, offsets)


def test_batch_to_arrays_vectors_stored_flat_equal_nested():
    # EM streams multivariate frames flattened (sequences.flat_frames): the same
    # (X, offsets) as the nested column, also on a sliced batch.
    rng = np.random.default_rng(1)
    seqs = [rng.normal(size=(n, 3)) for n in (4, 1, 2, 5)]
    nested = pa.array([s.tolist() for s in seqs], type=pa.list_(pa.list_(pa.float64())))
    flat = pa.array([s.ravel().tolist() for s in seqs], type=pa.list_(pa.float64()))
    for a, b in ((nested, flat), (nested.slice(1, 2), flat.slice(1, 2))):
        X_nested, off_nested = batch_to_arrays(a, "vector")
        X_flat, off_flat = batch_to_arrays(b, "vector", dim=3)
        np.testing.assert_array_equal(X_flat, X_nested)
        np.testing.assert_array_equal(off_flat, off_nested)
    with pytest.raises(InvalidInputError, match="not a multiple of its frame dimension 3"):
        batch_to_arrays(pa.array([[1.0, 2.0, 3.0, 4.0]]), "vector", dim=3)


def test_batch_to_arrays_float_and_univariate_vector():
    column = pa.array([[1.5, 2.5], [3.0]], type=pa.list_(pa.float32()))
    for kind in ("float", "vector"):
        X, offsets = batch_to_arrays(column, kind)
        assert X.dtype == np.float64
        np.testing.assert_array_equal(X, [[1.5], [2.5], [3.0]])
        np.testing.assert_array_equal(offsets, [0, 2, 3])


@pytest.mark.parametrize(
    ("values", "kind", "message"),
    [
        ([[1, 2], None], "int", "null sequences"),
        ([[1, None]], "int", "null values"),
        ([[[1.0, 2.0], [3.0]]], "vector", "dimension other than 2"),
        ([[[1.0, 2.0], None]], "vector", "null frames"),
    ],
)
def test_batch_to_arrays_bad_batches(values, kind, message):
    with pytest.raises(InvalidInputError, match=message):
        batch_to_arrays(pa.array(values), kind)


def test_batch_to_arrays_wrong_types():
    with pytest.raises(InvalidColumnTypeError, match="list column"):
        batch_to_arrays(pa.array([1, 2]), "int")
    with pytest.raises(InvalidColumnTypeError, match="kind='int'"):
        batch_to_arrays(pa.array([[[1.0]]]), "int")
    with pytest.raises(InvalidInputError, match="kind must be one of"):
        batch_to_arrays(pa.array([[1]]), "ints")


# ---------------------------------------------------------------------------
# validate_sequences


def _random_sequences(seed, n_seq, n_symbols, dim=None):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 12, size=n_seq)
    if dim is None:
        X = rng.integers(0, n_symbols, size=lengths.sum())
    else:
        X = rng.normal(size=(lengths.sum(), dim))
    return X, lengths


def test_validate_summary_matches_numpy(spark):
    X, lengths = _random_sequences(1, 40, 7)
    df = sequences_from_arrays(spark, X, lengths, col="events")
    summary = validate_sequences(df, "events", "int")
    assert summary.n_sequences == len(lengths)
    assert summary.n_frames == lengths.sum()
    assert summary.n_features == X.max() + 1
    assert (summary.min_length, summary.max_length) == (lengths.min(), lengths.max())
    assert summary.integral
    assert not summary.nested
    # given n_features wins over the inferred one when it is larger
    assert validate_sequences(df, "events", "int", n_features=12).n_features == 12


def test_validate_vectors_summary(spark):
    X, lengths = _random_sequences(2, 15, None, dim=3)
    df = sequences_from_arrays(spark, X, lengths)
    summary = validate_sequences(df, "sequence", "vector")
    assert (summary.n_features, summary.n_frames, summary.nested) == (3, lengths.sum(), True)
    univariate = sequences_from_arrays(spark, X[:, 0], lengths)
    assert validate_sequences(univariate, "sequence", "float").n_features == 1
    assert validate_sequences(univariate, "sequence", "vector").n_features == 1


def _bad_df(spark, schema, rows):
    return spark.createDataFrame([(i, r) for i, r in enumerate(rows)], f"id long, seq {schema}")


BAD_CASES = [
    # schema, rows, kind, kwargs, expected fragments (count of bad rows, what, example);
    # each case is a Spark job: a representative few run by default, the rest are slow
    pytest.param(
        *(
            "array<int>",
            [[0, 1], None, [2], None],
            "int",
            {},
            ["2 bad rows out of 4", "2 with a null sequence", "example row: {id=1, seq=None}"],
        ),
        marks=pytest.mark.slow,
    ),
    pytest.param(
        *("array<int>", [[0, 1], [], [1]], "int", {}, ["1 bad row out of 3", "an empty sequence"]),
        marks=pytest.mark.slow,
    ),
    pytest.param(
        *(
            "array<int>",
            [[0, 1], [1, 5, 2], [7], [2]],
            "int",
            {"n_features": 5},
            ["2 bad rows out of 4", "a symbol >= n_features=5", "id=1", "offending value: 5"],
        ),
        marks=pytest.mark.slow,
    ),
    (
        "array<int>",
        [[0, -3], [1]],
        "int",
        {},
        ["1 bad row out of 2", "a negative symbol", "offending value: -3"],
    ),
    pytest.param(
        *("array<int>", [[0, None], [1]], "int", {}, ["1 bad row", "a null value"]),
        marks=pytest.mark.slow,
    ),
    pytest.param(
        *(
            "array<double>",
            [[0.5, float("nan")], [1.0], [float("inf")]],
            "float",
            {},
            ["2 bad rows out of 3", "NaN or infinite", "offending value: nan"],
        ),
        marks=pytest.mark.slow,
    ),
    (
        "array<array<double>>",
        [[[1.0, 2.0]], [[1.0, 2.0], [3.0]], [[1.0, 2.0, 3.0]]],
        "vector",
        {},
        ["2 bad rows out of 3", "differs from the first row's (2)", "offending value: [3.0]"],
    ),
    pytest.param(
        *(
            "array<array<double>>",
            [[[1.0, 2.0]], [[1.0, 2.0], [3.0, 4.0]]],
            "vector",
            {"n_features": 3},
            ["2 bad rows out of 2", "dimension is not n_features=3"],
        ),
        marks=pytest.mark.slow,
    ),
    pytest.param(
        *(
            "array<array<double>>",
            [[[1.0, float("nan")]], [[1.0, 2.0]]],
            "vector",
            {},
            ["1 bad row out of 2", "NaN or infinite"],
        ),
        marks=pytest.mark.slow,
    ),
    pytest.param(
        *(
            "array<array<double>>",
            [[[1.0, None]], [[1.0, 2.0]], [None]],
            "vector",
            {},
            ["2 bad rows out of 3", "1 with a null value", "1 with a null frame"],
        ),
        marks=pytest.mark.slow,
    ),
    (
        "array<array<int>>",
        [[[1, 2]], [[3, -1]], [[0, 3]]],
        "vector",
        {"nonnegative": True, "n_trials": 3},
        ["1 with a negative value", "1 with frames whose counts do not sum to n_trials=3"],
    ),
]


@pytest.mark.parametrize(("schema", "rows", "kind", "kwargs", "fragments"), BAD_CASES)
def test_validate_bad_rows_one_clear_error(spark, schema, rows, kind, kwargs, fragments):
    df = _bad_df(spark, schema, rows)
    with pytest.raises(InvalidInputError) as info:
        validate_sequences(df, "seq", kind, **kwargs)
    message = str(info.value)
    assert message.startswith("Column 'seq' has ")
    for fragment in fragments:
        assert fragment in message, message
    assert "Traceback" not in message
    assert "JVM" not in message


@pytest.mark.smoke
def test_validate_bad_symbols_smoke(spark):
    df = _bad_df(spark, "array<bigint>", [[0, 1], [1, 9], [2]])
    with pytest.raises(
        InvalidInputError, match=r"1 bad row out of 3: 1 with a symbol >= n_features=3"
    ):
        validate_sequences(df, "seq", "int", n_features=3)


@pytest.mark.parametrize(
    ("schema", "kind", "match"),
    [
        ("array<string>", "int", r"Column 'seq' has type array<string>; expected array<int>"),
        ("array<double>", "int", "symbols must be integers"),
        ("bigint", "float", r"Column 'seq' has type bigint; expected array<double>"),
        ("array<array<double>>", "float", "expected array<double>"),
        ("array<decimal(10,2)>", "float", r"expected array<double>.*cast\('array<double>'\)"),
        ("array<array<decimal(10,2)>>", "vector", r"\.cast\('array<array<double>>'\)\)$"),
        ("array<decimal(10,0)>", "int", r"\.cast\('array<int>'\)\)$"),
    ],
)
def test_validate_wrong_types(spark, schema, kind, match):
    df = spark.createDataFrame([], f"id long, seq {schema}")
    with pytest.raises(InvalidColumnTypeError, match=match):
        validate_sequences(df, "seq", kind)


def test_validate_missing_column_empty_and_multinomial_integer(spark):
    df = _bad_df(spark, "array<int>", [[1]])
    with pytest.raises(InvalidInputError, match=r"Column 'events' not found.*\['id', 'seq'\]"):
        validate_sequences(df, "events", "int")
    empty = spark.createDataFrame([], "seq array<int>")
    with pytest.raises(InvalidInputError, match="has no rows"):
        validate_sequences(empty, "seq", "int")
    doubles = _bad_df(spark, "array<array<double>>", [[[1.0]]])
    with pytest.raises(InvalidColumnTypeError, match="integer counts"):
        validate_sequences(doubles, "seq", "vector", integer=True)


# ---------------------------------------------------------------------------
# batch_to_arrays inside Spark (through the seam)


def _frames_and_lengths(batches, kind):
    xs, lengths = [], []
    for batch in batches:
        X, offsets = batch_to_arrays(batch.column(0), kind)
        xs.append(X)
        lengths.append(np.diff(offsets))
    if not xs:
        return None
    return [(float(np.concatenate(xs).sum()), int(np.concatenate(lengths).sum()))]


@pytest.mark.slow
def test_batch_to_arrays_in_partitions(spark):
    X, lengths = _random_sequences(3, 60, None, dim=2)
    df = sequences_from_arrays(spark, X, lengths, num_partitions=3).select("sequence")
    parts = _spark.map_reduce(df, functools.partial(_frames_and_lengths, kind="vector"))
    assert sum(n for _, n in parts) == lengths.sum()
    np.testing.assert_allclose(sum(s for s, _ in parts), X.sum())


# ---------------------------------------------------------------------------
# sample_frames


def test_sample_frames_small_is_all_frames_in_order(spark):
    X, lengths = _random_sequences(4, 20, None, dim=3)
    df = sequences_from_arrays(spark, X, lengths, num_partitions=2)
    sample = sample_frames(df, "sequence", "vector", max_frames=10_000, seed=0)
    np.testing.assert_array_equal(sample, X)


def test_sample_frames_bounded_seeded_real_frames(spark):
    X, lengths = _random_sequences(5, 300, None, dim=2)
    df = sequences_from_arrays(spark, X, lengths, num_partitions=3).cache()
    a = sample_frames(df, "sequence", "vector", max_frames=200, seed=7, n_frames=int(lengths.sum()))
    b = sample_frames(df, "sequence", "vector", max_frames=200, seed=7)
    c = sample_frames(df, "sequence", "vector", max_frames=200, seed=8)
    assert 150 <= len(a) <= 200
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # every sampled frame is a frame of the data, and frames keep the DataFrame's order
    in_order, _ = batch_to_arrays(df.select("sequence").toArrow().column(0), "vector")
    index = {tuple(row): i for i, row in enumerate(in_order)}
    assert len(index) == len(X)
    positions = [index[tuple(row)] for row in a]
    assert positions == sorted(positions)
    df.unpersist()


@pytest.mark.slow
def test_sample_frames_int_kind(spark):
    X, lengths = _random_sequences(6, 50, 4)
    df = sequences_from_arrays(spark, X, lengths)
    sample = sample_frames(df, "sequence", "int", max_frames=40, seed=1)
    assert sample.shape[1] == 1
    assert sample.dtype == np.int64
    assert len(sample) <= 40
    assert set(np.unique(sample)) <= set(np.unique(X))


# ---------------------------------------------------------------------------
# sequences_from_events


@pytest.mark.smoke
def test_sequences_from_events_orders_each_id(spark):
    rng = np.random.default_rng(8)
    n_events = 200
    ids = rng.integers(0, 12, size=n_events)
    times = rng.permutation(n_events)  # unique orders, shuffled
    pages = rng.integers(0, 5, size=n_events)
    price = rng.normal(size=n_events)
    events = spark.createDataFrame(
        [
            (int(i), int(t), int(p), float(x))
            for i, t, p, x in zip(ids, times, pages, price, strict=True)
        ],
        "session long, ts long, page int, price double",
    )
    out = sequences_from_events(events, "session", "ts", "page", output_col="pages")
    assert dict(out.dtypes)["pages"] == "array<int>"
    got = {r["session"]: r["pages"] for r in out.collect()}
    for session in np.unique(ids):
        mask = ids == session
        expected = pages[mask][np.argsort(times[mask])]
        assert got[int(session)] == expected.tolist()
    vectors = sequences_from_events(events, "session", "ts", ["page", "price"])
    assert dict(vectors.dtypes)["sequence"] == "array<array<double>>"
    row = vectors.filter("session = 3").collect()[0]
    mask = ids == 3
    order = np.argsort(times[mask])
    expected = np.column_stack([pages[mask][order], price[mask][order]])
    np.testing.assert_allclose(np.array(row["sequence"]), expected)


def test_sequences_from_events_takes_any_column_name(spark):
    """Dots, backticks and spaces in names are names, not struct paths or quoting."""
    events = spark.createDataFrame(
        [(1, 2, 7, 0.5), (1, 1, 8, 1.5), (2, 1, 9, None), (1, 3, 6, 2.5)],
        "`id.x` long, `t``s` long, `p q` int, `v.w` double",
    )
    out = sequences_from_events(events, "id.x", "t`s", "p q", output_col="s`e.q")
    assert out.columns == ["id.x", "s`e.q"]
    assert {r[0]: r[1] for r in out.collect()} == {1: [8, 7, 6], 2: [9]}
    # A null value is named by its own column, odd name included.
    with pytest.raises(InvalidInputError, match=r"Column 'v\.w' is null in 1 event row"):
        sequences_from_events(events, "id.x", "t`s", ["p q", "v.w"])


def test_sequences_from_events_null_ids_and_orders(spark):
    events = spark.createDataFrame(
        [(1, 1, 0), (None, 2, 1), (None, 3, 1), (2, None, 0)], "id long, t long, v int"
    )
    with pytest.raises(
        InvalidInputError, match=r"Column 'id' is null in 2 event rows.*example row"
    ):
        sequences_from_events(events, "id", "t", "v")
    with pytest.raises(InvalidInputError, match=r"Column 't' is null in 1 event row\b"):
        sequences_from_events(events.filter("id is not null"), "id", "t", "v")
    with pytest.raises(InvalidInputError, match=r"not found"):
        sequences_from_events(events, "id", "time", "v")


def test_sequences_from_arrays_lengths_checked(spark):
    with pytest.raises(InvalidInputError, match="sum to len"):
        sequences_from_arrays(spark, np.zeros(5, dtype=int), [2, 2])
