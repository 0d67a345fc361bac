"""Quality scores: pairs and feedback in, 0–10 scores with evidence counts out."""

from __future__ import annotations

import json

import pytest

from llmroute.quality import ENOUGH_EVIDENCE, QualityStore, find_answer, has_enough_evidence


@pytest.fixture
def store(tmp_path):
    return QualityStore(tmp_path / "state", clock=lambda: 1000.0)


def test_no_evidence_means_no_scores(store):
    assert store.scores() == {}
    assert store.feedback_counts() == {}


def test_pairs_make_the_winner_score_higher_and_count_evidence(store):
    for _ in range(12):
        store.record_pair("x/good", "y/bad", "a")
    for _ in range(3):
        store.record_pair("y/bad", "x/good", "tie")
    store.record_pair("y/bad", "x/good", "a")  # given in the other order: y won this one
    scores = store.scores()
    assert scores["x/good"][1] == 16 and scores["y/bad"][1] == 16
    assert scores["x/good"][0] > 6 > 4 > scores["y/bad"][0]
    assert 0 <= scores["y/bad"][0] <= 10
    assert has_enough_evidence(scores["x/good"][1]) and ENOUGH_EVIDENCE == 10


def test_pair_counts_survive_in_state_file_keyed_by_unordered_pair(tmp_path, store):
    store.record_pair("b/m", "a/m", "a")
    doc = json.loads((tmp_path / "state" / "quality.json").read_text())
    assert doc == {"pairs": {"a/m\tb/m": [0, 1, 0]}}
    assert QualityStore(tmp_path / "state").scores()["b/m"][0] > 5


def test_bad_outcomes_and_votes_are_refused(store):
    with pytest.raises(ValueError):
        store.record_pair("a/m", "b/m", "A")
    with pytest.raises(ValueError):
        store.record_feedback("r1", "a/m", "sideways")
    store.record_pair("a/m", "a/m", "a")  # a target against itself says nothing
    assert store.scores() == {}


def test_feedback_moves_a_score_and_a_changed_vote_replaces_the_old_one(store):
    store.record_feedback("r1", "a/m", "up")
    store.record_feedback("r2", "a/m", "up")
    assert store.scores()["a/m"][0] > 5
    store.record_feedback("r1", "a/m", "down")
    store.record_feedback("r2", "a/m", "down")
    assert store.feedback_counts() == {"a/m": (0, 2)}
    score, evidence = store.scores()["a/m"]
    assert score < 5 and evidence == 2


def test_corrupt_entries_are_ignored(tmp_path, store):
    (tmp_path / "state").mkdir(exist_ok=True)
    (tmp_path / "state" / "quality.json").write_text(json.dumps({"pairs": {"a\tb": [1, "x", 0], "junk": [1, 0, 0]}}))
    (tmp_path / "state" / "feedback.json").write_text(json.dumps({"votes": {"r": {"target": 3}}}))
    assert store.scores() == {}


def _write_ledger(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_find_answer_last_ask_and_by_request_id(tmp_path):
    ledger = tmp_path / "ledger.jsonl"
    ts = "2026-01-01T00:00:00.000Z"
    records = [{"ts": ts, "request_id": f"r{i}", "kind": "ask", "status": "ok", "target": f"p/m{i}"}
               for i in range(500)]
    records += [{"ts": ts, "request_id": "c1", "kind": "compare", "status": "ok", "target": "p/c"},
                {"ts": ts, "request_id": "r9999", "kind": "ask", "status": "error", "target": "p/failed"}]
    _write_ledger(ledger, records)
    with open(ledger, "a") as handle:
        handle.write("{torn line\n")
    assert find_answer(ledger, None) == ("r499", "p/m499")
    assert find_answer(ledger, "r3") == ("r3", "p/m3")
    assert find_answer(ledger, "c1") == ("c1", "p/c")
    assert find_answer(ledger, "nope") is None
    assert find_answer(tmp_path / "missing.jsonl", None) is None
