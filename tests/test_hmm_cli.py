"""``sparklift hmm fit`` / ``hmm decode``: fitted parameters and decoded paths equal hmmlearn's.

The commands run in-process through ``sparklift.cli.main`` and reuse the test
session (they only stop sessions they start themselves).
"""

from __future__ import annotations

import csv
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparklift.cli import main

hmmlearn_hmm = pytest.importorskip("hmmlearn.hmm")

N_COMPONENTS, N_SYMBOLS = 3, 4


def _sample(seed: int, n_seq: int = 30):
    """Sequences from a known categorical HMM, hmmlearn's (X, lengths)."""
    rng = np.random.RandomState(seed)
    true = hmmlearn_hmm.CategoricalHMM(N_COMPONENTS, random_state=seed)
    true.startprob_ = np.array([0.6, 0.3, 0.1])
    true.transmat_ = np.array([[0.8, 0.15, 0.05], [0.1, 0.8, 0.1], [0.2, 0.1, 0.7]])
    true.emissionprob_ = np.array(
        [[0.7, 0.1, 0.1, 0.1], [0.1, 0.7, 0.1, 0.1], [0.05, 0.05, 0.2, 0.7]]
    )
    true.n_features = N_SYMBOLS
    lengths = rng.randint(5, 25, size=n_seq)
    X = np.concatenate([true.sample(n, random_state=rng)[0] for n in lengths])
    return X, lengths


def _write_parquet(path, X, lengths):
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    sequences = pa.ListArray.from_arrays(pa.array(offsets), pa.array(X[:, 0].astype(np.int64)))
    pq.write_table(pa.table({"seq_id": np.arange(len(lengths)), "sequence": sequences}), str(path))


def _reference(X, lengths, n_iter=5):
    ref = hmmlearn_hmm.CategoricalHMM(N_COMPONENTS, n_iter=n_iter, tol=0.0, random_state=1)
    return ref.fit(X, lengths)


@pytest.mark.smoke
def test_fit_then_decode_match_hmmlearn(spark, tmp_path, capsys):
    from sparklift.hmm import CategoricalHMMModel

    X, lengths = _sample(0)
    data = tmp_path / "sequences.parquet"
    _write_parquet(data, X, lengths)
    model_dir = tmp_path / "model"
    argv = ["hmm", "fit", str(data), "-o", str(model_dir), "--n-components", "3"]
    argv += ["--n-iter", "2", "--tol", "0", "--random-state", "1", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "2 EM iterations, stopped at n_iter without converging" in out
    assert str(model_dir) in out

    ref = _reference(X, lengths, n_iter=2)
    model = CategoricalHMMModel.load(str(model_dir))
    np.testing.assert_allclose(model.startprob_, ref.startprob_, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(model.transmat_, ref.transmat_, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(model.emissionprob_, ref.emissionprob_, rtol=1e-6, atol=1e-10)

    decoded_dir = tmp_path / "decoded"
    assert main(["hmm", "decode", str(model_dir), str(data), "-o", str(decoded_dir)]) == 0
    assert "Decoded 30 sequences" in capsys.readouterr().out
    table = pq.read_table(str(decoded_dir)).to_pandas().sort_values("seq_id")
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    for i, row in enumerate(table.itertuples()):
        seq = X[offsets[i] : offsets[i + 1]]
        _, states = ref.decode(seq)
        np.testing.assert_array_equal(row.states, states)
        np.testing.assert_allclose(row.log_likelihood, ref.score(seq), rtol=1e-6)

    # Decoding again: refused without --overwrite; with it, Viterbi paths replaced
    # by MAP paths and nothing left beside the output.
    argv = ["hmm", "decode", str(model_dir), str(data), "-o", str(decoded_dir)]
    assert main(argv) == 1
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite", "--algorithm", "map"]) == 0
    again = pq.read_table(str(decoded_dir)).to_pandas().sort_values("seq_id")
    for i, row in enumerate(again.itertuples()):
        seq = X[offsets[i] : offsets[i + 1]]
        np.testing.assert_array_equal(row.states, ref.decode(seq, algorithm="map")[1])
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]

    # Decoding a decoded file: its columns clash, and the flags the error names
    # exist and give the new columns other names.
    redecoded = str(tmp_path / "redecoded")
    argv = ["hmm", "decode", str(model_dir), str(decoded_dir), "-o", redecoded]
    assert main(argv) == 1
    assert "--loglik-col, --states-col" in capsys.readouterr().err
    assert (
        main([*argv, "--loglik-col", "ll2", "--states-col", "states2", "--algorithm", "map"]) == 0
    )
    both = pq.read_table(redecoded).to_pandas().sort_values("seq_id")
    np.testing.assert_array_equal(np.concatenate(both["states2"]), np.concatenate(both["states"]))
    np.testing.assert_allclose(both["ll2"], both["log_likelihood"], rtol=1e-12)


@pytest.mark.slow
def test_fit_from_csv_event_table(spark, tmp_path, capsys):
    from sparklift.hmm import CategoricalHMMModel

    X, lengths = _sample(1, n_seq=20)
    rng = np.random.default_rng(0)
    rows = [
        (sid, t, int(X[start + t, 0]))
        for sid, (start, n) in enumerate(zip(np.cumsum(lengths) - lengths, lengths, strict=True))
        for t in range(n)
    ]
    rows = [rows[i] for i in rng.permutation(len(rows))]  # a log is not sorted
    path = tmp_path / "clicks.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["session", "t", "page"])
        writer.writerows(rows)
    model_dir = tmp_path / "model"
    argv = ["hmm", "fit", str(path), "-o", str(model_dir), "--id-col", "session"]
    argv += ["--order-col", "t", "--value-cols", "page", "--n-components", "3"]
    argv += ["--n-iter", "2", "--tol", "0", "--random-state", "1", "--no-progress"]
    assert main(argv) == 0
    ref = _reference(X, lengths, n_iter=2)
    model = CategoricalHMMModel.load(str(model_dir))
    np.testing.assert_allclose(model.transmat_, ref.transmat_, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(model.emissionprob_, ref.emissionprob_, rtol=1e-6, atol=1e-10)


def test_decode_csv_sequence_strings_map(spark, tmp_path):
    X, lengths = _sample(2, n_seq=8)
    ref = _reference(X, lengths, n_iter=2)
    from sparklift.hmm import CategoricalHMMModel

    model = CategoricalHMMModel.from_hmmlearn(ref)
    model.set(model.sequence_col, "events")  # decode uses it when --sequence-col is not given
    model_dir = tmp_path / "model"
    model.save(str(model_dir))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    path = tmp_path / "sequences.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "events"])
        for i in range(len(lengths)):
            writer.writerow([i, " ".join(str(v) for v in X[offsets[i] : offsets[i + 1], 0])])
    out = tmp_path / "decoded"
    argv = ["hmm", "decode", str(model_dir), str(path), "-o", str(out), "--algorithm", "map"]
    assert main(argv) == 0
    table = pq.read_table(str(out)).to_pandas().sort_values("id")
    for i, row in enumerate(table.itertuples()):
        _, states = ref.decode(X[offsets[i] : offsets[i + 1]], algorithm="map")
        np.testing.assert_array_equal(row.states, states)


def test_bad_data_gives_one_clear_error(spark, tmp_path, capsys):
    X, lengths = _sample(3, n_seq=10)
    X[3, 0] = -2
    data = tmp_path / "bad.parquet"
    _write_parquet(data, X, lengths)
    argv = ["hmm", "fit", str(data), "-o", str(tmp_path / "m"), "--n-components", "2"]
    assert main([*argv, "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sparklift: error: Column 'sequence' has 1 bad row out of 10")
    assert "negative symbol" in err
    assert "offending value: -2" in err
    assert len(err.splitlines()) == 1  # no traceback
    assert not os.path.exists(tmp_path / "m")


def test_usage_errors(spark, tmp_path, capsys):
    X, lengths = _sample(4, n_seq=5)
    data = tmp_path / "s.parquet"
    _write_parquet(data, X, lengths)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    assert main(["hmm", "fit", str(data), "-o", str(model_dir)]) == 1
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    argv = ["hmm", "fit", str(data), "-o", str(tmp_path / "m2"), "--covariance-type", "full"]
    assert main(argv) == 1
    assert "--covariance-type does not apply to --family categorical" in capsys.readouterr().err
    assert main(["hmm", "fit", str(tmp_path / "nope.parquet"), "-o", str(tmp_path / "m3")]) == 1
    assert "does not exist" in capsys.readouterr().err
    argv = ["hmm", "fit", str(data), "-o", str(tmp_path / "m4"), "--id-col", "seq_id"]
    assert main(argv) == 1
    assert "--id-col needs --order-col and --value-cols" in capsys.readouterr().err
    assert main(["hmm"]) == 2


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--covariance-type", "fulll"], "argument --covariance-type: invalid choice: 'fulll'"),
        (["--n-components", "0"], "argument --n-components: must be >= 1; got 0"),
        (["--n-iter", "x"], "argument --n-iter: invalid integer: 'x'"),
        (["--tol", "nan"], "argument --tol: must be a number; got nan"),
        (["--implementation", "fast"], "argument --implementation: invalid choice: 'fast'"),
        (["--family", "binomial"], "argument --family: invalid choice: 'binomial'"),
    ],
)
def test_bad_option_values_are_one_line_usage_errors(tmp_path, capsys, option, message):
    argv = ["hmm", "fit", str(tmp_path / "x.parquet"), "-o", str(tmp_path / "out"), *option]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(f"sparklift hmm fit: error: {message}")


def test_estimator_value_errors_are_usage_errors(tmp_path, capsys, monkeypatch):
    import sparklift.hmm as hmm

    class Rejecting:
        def __init__(self, **settings):
            raise ValueError("Could not convert 'x' to a valid parameter value\nsecond line")

    monkeypatch.setattr(hmm, "CategoricalHMM", Rejecting)
    data = tmp_path / "x.parquet"
    data.write_bytes(b"")
    with pytest.raises(SystemExit) as info:
        main(["hmm", "fit", str(data), "-o", str(tmp_path / "out")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "sparklift hmm fit: error: second line"
    assert "Traceback" not in err


def test_missing_input_fails_before_spark_starts(tmp_path, capsys, monkeypatch):
    import sparklift.session

    def no_spark(*args, **kwargs):
        raise AssertionError("Spark started before the input was checked")

    monkeypatch.setattr(sparklift.session, "get_spark", no_spark)
    for command in (["fit"], ["decode", str(tmp_path)]):
        argv = ["hmm", *command, str(tmp_path / "nope.parquet"), "-o", str(tmp_path / "out")]
        assert main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert err == f"sparklift: error: Input {tmp_path / 'nope.parquet'} does not exist"


def test_convergence_status_needs_the_gain_below_tol():
    from sparklift.hmm.cli import convergence_status

    assert convergence_status([-10.0, -9.0, -8.995], 0.01) == (
        True,
        "converged (log-likelihood gain < tol)",
    )
    # hmmlearn's monitor says converged when iter == n_iter; the gain says otherwise
    assert convergence_status([-10.0, -9.0], 0.01) == (
        False,
        "stopped at n_iter without converging",
    )
    assert not convergence_status([-10.0], 0.01)[0]
    assert not convergence_status([-10.0, -9.0], float("-inf"))[0]


def test_csv_sequence_text_with_a_word_is_one_clear_error(spark, tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("id,seq\n0,0 1 1 0\n1,0 1 x 1 0\n2,1;1;0\n3,2 one\n")
    argv = ["hmm", "fit", str(path), "-o", str(tmp_path / "m"), "--sequence-col", "seq"]
    assert main([*argv, "--n-components", "2", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sparklift: error: Column 'seq' has 2 rows whose text is not a list")
    assert "'0 1 x 1 0'" in err or "'2 one'" in err
    assert len(err.splitlines()) == 1  # no JVM log, no traceback
    assert not os.path.exists(tmp_path / "m")


def test_fit_summary_counts_in_the_singular_for_one():
    from sparklift.errors import count_of as _count

    assert _count(1, "state") == "1 state"
    assert _count(4, "state") == "4 states"
    assert _count(1, "EM iteration") == "1 EM iteration"
