"""The demo: its data follow the true process, and ``sparklift demo`` runs end to end.

References: the known generating parameters (empirical frequencies of the
generated data) and hmmlearn's decoder on the saved model's parameters.
"""

from __future__ import annotations

import json
import shlex

import numpy as np
import pyarrow.parquet as pq
import pytest

from sparklift.cli import main
from sparklift.hmm.demo import (
    PAGES,
    STATES,
    TRUE_EMISSIONPROB,
    TRUE_STARTPROB,
    TRUE_TRANSMAT,
    generate_clicks,
    match_states,
)


def test_generated_clicks_follow_the_true_process():
    log = generate_clicks(20_000, seed=3)
    offsets = np.concatenate([[0], np.cumsum(log.lengths)])
    assert offsets[-1] == len(log.page_id) == len(log.true_state)
    assert log.lengths.min() >= 5
    # sessions are contiguous, in id order, and time increases within each
    np.testing.assert_array_equal(np.repeat(np.arange(20_000), log.lengths), log.session_id)
    same_session = np.diff(log.session_id) == 0
    assert (np.diff(log.ts)[same_session] > 0).all()

    starts = log.true_state[offsets[:-1]]
    np.testing.assert_allclose(np.bincount(starts, minlength=4) / 20_000, TRUE_STARTPROB, atol=0.01)
    prev, nxt = log.true_state[:-1][same_session], log.true_state[1:][same_session]
    counts = np.zeros((4, 4))
    np.add.at(counts, (prev, nxt), 1)
    np.testing.assert_allclose(counts / counts.sum(1, keepdims=True), TRUE_TRANSMAT, atol=0.01)
    emitted = np.zeros((4, len(PAGES)))
    np.add.at(emitted, (log.true_state, log.page_id), 1)
    np.testing.assert_allclose(
        emitted / emitted.sum(1, keepdims=True), TRUE_EMISSIONPROB, atol=0.01
    )
    # same seed, same data
    np.testing.assert_array_equal(
        generate_clicks(50, seed=3).page_id, generate_clicks(50, 3).page_id
    )


def test_match_states_finds_a_known_permutation():
    rng = np.random.default_rng(0)
    perm = np.array([2, 0, 3, 1])  # learned state k is true state perm[k]
    learned = TRUE_EMISSIONPROB[perm] + rng.uniform(0, 0.02, size=TRUE_EMISSIONPROB.shape)
    learned /= learned.sum(1, keepdims=True)
    order = match_states(TRUE_EMISSIONPROB, learned)
    # order[i] is the learned state matched with true state i
    np.testing.assert_array_equal(perm[order], np.arange(4))


@pytest.mark.smoke
def test_demo_command_end_to_end(spark, tmp_path, capsys):
    hmmlearn_hmm = pytest.importorskip("hmmlearn.hmm")
    out = tmp_path / "demo"
    argv = ["demo", "--output", str(out), "--sessions", "300", "--n-iter", "2", "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "Transition matrix, true beside learned" in printed
    # 2 iterations at tol 1.0 on 300 sessions: EM is still gaining, so no "converged"
    assert "EM: 2 iterations in" in printed
    assert "stopped at n_iter without converging" in printed
    assert all(state in printed for state in STATES)
    for name in ("clicks.parquet", "decoded.parquet", "model", "loglik.png", "report.json"):
        assert str(out / name) in printed

    report = json.loads((out / "report.json").read_text())
    assert report["n_iter"] == 2
    assert report["converged"] is False
    assert report["stopped_at_n_iter"] is True
    history = np.array(report["log_likelihood_history"])
    assert len(history) == 2
    assert (np.diff(history) > 0).all()  # EM never decreases the likelihood here
    assert (out / "loglik.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    clicks = pq.read_table(str(out / "clicks.parquet"))
    assert clicks.num_rows == report["n_clicks"]
    assert set(clicks.column_names) >= {"session_id", "ts", "page", "page_id", "true_state"}

    # decoded paths are hmmlearn's Viterbi paths under the saved parameters
    from sparklift.hmm import CategoricalHMMModel

    model = CategoricalHMMModel.load(str(out / "model"))
    ref = hmmlearn_hmm.CategoricalHMM(len(STATES))
    ref.startprob_, ref.transmat_ = model.startprob_, model.transmat_
    ref.emissionprob_, ref.n_features = model.emissionprob_, len(PAGES)
    to_true = np.argsort(report["learned_state_for_true_state"])  # learned -> true
    decoded = pq.read_table(str(out / "decoded.parquet")).to_pandas()
    assert len(decoded) == 300
    for row in decoded.sort_values("session_id").head(10).itertuples():
        pages = np.asarray(row.pages).reshape(-1, 1)
        _, states = ref.decode(pages)
        np.testing.assert_array_equal(row.states, to_true[states])
        assert list(row.intents) == [STATES[s] for s in to_true[states]]
        np.testing.assert_allclose(row.log_likelihood, ref.score(pages), rtol=1e-6)

    # The suggested next step is a command that works on these outputs.
    lines = printed.splitlines()
    assert lines[-2].startswith("Next: ")
    command = shlex.split(lines[-1])
    assert "sparklift" in " ".join(command[: command.index("hmm")])
    argv = command[command.index("hmm") :]
    assert argv[:2] == ["hmm", "decode"]
    for option in ("--id-col", "--order-col", "--value-cols"):
        assert argv[argv.index(option) + 1] in clicks.column_names
    assert main(argv) == 0
    again = pq.read_table(argv[argv.index("--output") + 1]).to_pandas()
    assert len(again) == 300
    mine = again.sort_values("session_id").head(10)
    theirs = decoded.sort_values("session_id").head(10)
    np.testing.assert_allclose(mine["log_likelihood"], theirs["log_likelihood"], rtol=1e-9)


def test_demo_shows_the_progress_bar_only_on_a_terminal(monkeypatch):
    from sparklift.cli import build_parser

    # Unset by default: run_demo then draws it only when stderr is a terminal
    # (`make demo | tee log` would otherwise fill the log with its updates).
    assert build_parser().parse_args(["demo"]).progress is None
    assert build_parser().parse_args(["demo", "--progress"]).progress is True


@pytest.mark.slow
def test_demo_recovers_the_hidden_process(spark, tmp_path):
    from sparklift.hmm.demo import run_demo

    result = run_demo(
        str(tmp_path / "demo"), n_sessions=2000, tol=0.1, spark=spark, progress=False, echo=str
    )
    assert result.converged
    assert result.history[-1] - result.history[-2] < 0.1
    assert result.max_transmat_error < 0.05
    assert result.max_emission_error < 0.05
    assert result.decode_accuracy > 0.8
