"""The feedback store (fsdl_webapp.feedback) on its own: the prediction log, answers claimed in one
statement, the review that decides which become files, retries, races, expiry, and databases from
before the review queue. Through HTTP: test_api.py, test_served.py and the browser tests."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time

import pytest

from fsdl_webapp.errors import ApiError, ConflictError, GoneError, NotFoundError
from fsdl_webapp.feedback import FeedbackStore
from tests.conftest import SAMPLE_DIR

PHOTO = (SAMPLE_DIR / "forest" / "10078.jpg").read_bytes()
PROBABILITIES = {"forest": 0.7, "mountain": 0.3}


@pytest.fixture
def store(tmp_path) -> FeedbackStore:
    store = FeedbackStore(tmp_path / "state", tmp_path / "feedback", ttl_seconds=60)
    store.init()
    return store


def predicted(store: FeedbackStore, prediction_id: str = "a" * 32, label: str = "forest") -> str:
    store.record_prediction(
        prediction_id, PHOTO, "jpg", model_name="m", model_version="3", label=label,
        probabilities=PROBABILITIES, latency_ms=12.0,
    )  # fmt: skip
    return prediction_id


def test_a_prediction_keeps_its_upload_until_answered(store):
    prediction = predicted(store)
    assert store.upload_path(prediction, "jpg").read_bytes() == PHOTO
    (row,) = store.rows()
    assert (row["model_version"], row["predicted_label"], row["upload_state"]) == ("3", "forest", "pending")
    assert row["image_sha256"] == hashlib.sha256(PHOTO).hexdigest()


def files(store: FeedbackStore) -> list[str]:
    return sorted(str(p.relative_to(store.feedback_dir)) for p in store.feedback_dir.rglob("*") if p.is_file())


def test_a_correction_waits_for_review_and_becomes_a_file_only_when_accepted(store):
    prediction = predicted(store)
    result = store.give_feedback(prediction, False, "mountain")
    assert (result.review_state, result.path, result.model_version) == ("pending", None, "3")
    assert files(store) == []
    assert store.upload_path(prediction, "jpg").exists()  # kept for the reviewer
    with pytest.raises(ConflictError, match="open its image before accepting it"):
        store.decide(prediction, "accept", reviewer="alice")  # not shown to anyone yet
    assert files(store) == []
    store.upload_of(prediction, shown=True)  # the review page shows it
    decision = store.decide(prediction, "accept", reviewer="alice")
    assert (decision.review_state, decision.label) == ("accepted", "mountain")
    sha = hashlib.sha256(PHOTO).hexdigest()
    assert files(store) == [f"mountain/{sha}.jpg"]
    assert (store.feedback_dir / "mountain" / f"{sha}.jpg").read_bytes() == PHOTO
    assert not store.upload_path(prediction, "jpg").exists()
    (logged,) = store.decisions()
    assert (logged["reviewer"], logged["action"], logged["label"]) == ("alice", "accept", "mountain")


def test_relabel_and_reject(store):
    relabelled, rejected = predicted(store, "a" * 32), predicted(store, "b" * 32)
    store.give_feedback(relabelled, False, "mountain")
    store.give_feedback(rejected, False, "sea")
    store.upload_of(relabelled, shown=True)
    store.decide(relabelled, "relabel", reviewer="alice", label="glacier")
    store.decide(rejected, "reject", reviewer="bob")
    assert files(store) == [f"glacier/{hashlib.sha256(PHOTO).hexdigest()}.jpg"]
    assert not store.upload_path(rejected, "jpg").exists()
    assert store.queue() == []
    assert [(d["reviewer"], d["action"], d["label"]) for d in store.decisions()] == [
        ("bob", "reject", None),
        ("alice", "relabel", "glacier"),
    ]
    with pytest.raises(ConflictError, match="cannot be decided again"):
        store.decide(rejected, "accept", reviewer="alice")


def test_the_same_answer_again_is_a_no_op_and_a_different_one_conflicts(store):
    prediction = predicted(store)
    store.give_feedback(prediction, True, "forest")
    again = store.give_feedback(prediction, True, "forest")
    assert again.repeated is True
    with pytest.raises(ConflictError, match="already has feedback"):
        store.give_feedback(prediction, False, "sea")
    store.upload_of(prediction, shown=True)
    store.decide(prediction, "accept", reviewer="alice")
    assert [name.split("/")[0] for name in files(store)] == ["forest"]


def test_racing_conflicting_answers_leave_one_answer_and_no_stray_file(tmp_path, monkeypatch):
    """Forced interleaving under the trust policy, where an answer becomes a file at once: the
    second answer arrives while the first is between its claim and its file. It must get a
    conflict and leave nothing; only the first answer's file exists afterwards."""
    store = FeedbackStore(tmp_path / "state", tmp_path / "feedback", ttl_seconds=60, policy="trust")
    store.init()
    prediction = predicted(store)
    claimed, second_done = threading.Event(), threading.Event()
    export = store._export

    def slow_export(row):
        claimed.set()
        assert second_done.wait(30)
        export(row)

    monkeypatch.setattr(store, "_export", slow_export)
    outcome: dict[str, object] = {}

    def answer(name, correct, label):
        try:
            outcome[name] = store.give_feedback(prediction, correct, label)
        except Exception as exc:
            outcome[name] = exc

    first = threading.Thread(target=answer, args=("first", False, "mountain"))
    first.start()
    assert claimed.wait(30)
    answer("second", True, "forest")
    second_done.set()
    first.join(30)
    assert isinstance(outcome["second"], ConflictError)
    assert outcome["first"].review_state == "accepted"
    assert [name.split("/")[0] for name in files(store)] == ["mountain"]
    (row,) = store.rows()
    assert (row["feedback_label"], row["review_label"]) == ("mountain", "mountain")


def test_an_accepted_answer_whose_file_was_lost_in_a_crash_is_written_again(store):
    prediction = predicted(store)
    store.give_feedback(prediction, False, "sea")
    with sqlite3.connect(store.db_path) as db:  # what a crash between decision and file leaves
        db.execute(
            "UPDATE predictions SET review_state = 'accepted', review_label = 'sea' WHERE id = ?",
            (prediction,),
        )
    assert files(store) == []
    assert store.export_accepted() == 1
    assert [name.split("/")[0] for name in files(store)] == ["sea"]
    assert store.export_accepted() == 0


def test_a_database_from_before_reviews_keeps_its_answers_as_accepted(tmp_path):
    from fsdl_webapp import feedback

    state = tmp_path / "state"
    state.mkdir()
    old_schema = feedback.SCHEMA.split("CREATE INDEX IF NOT EXISTS predictions_image")[0]
    with sqlite3.connect(state / "feedback.db") as db:
        db.executescript(old_schema)
        db.execute(
            "INSERT INTO predictions (id, created_at, expires_at, model_name, model_version, predicted_label, "
            "probabilities, image_sha256, image_ext, upload_state, feedback_correct, feedback_label, feedback_at, "
            "feedback_path) VALUES ('old', 1, 2, 'm', '1', 'sea', '{}', 'abc', 'jpg', 'used', 0, 'forest', 1.5, "
            "'forest/abc.jpg')"
        )
    store = FeedbackStore(state, tmp_path / "feedback", ttl_seconds=60)
    store.init()
    (row,) = store.rows()
    assert (row["review_state"], row["review_label"], row["exported_at"]) == ("accepted", "forest", 1.5)
    assert store.queue() == []
    store.init()  # twice: nothing changes
    assert store.rows() == [row]


@pytest.mark.parametrize(
    ("correct", "label", "error"),
    [(True, "sea", "differs from the prediction"), (False, "forest", "is what the model predicted")],
)
def test_an_answer_that_contradicts_itself_is_refused_and_writes_nothing(store, correct, label, error):
    prediction = predicted(store)
    with pytest.raises(ApiError, match=error):
        store.give_feedback(prediction, correct, label)
    assert not store.feedback_dir.exists() or not list(store.feedback_dir.rglob("*"))
    assert store.upload_path(prediction, "jpg").exists()


def test_items_waiting_for_review_do_not_expire(store):
    answered = predicted(store, "c" * 32)
    store.give_feedback(answered, False, "sea")
    store.expire(now=time.time() + store.ttl + 1)
    assert store.upload_path(answered, "jpg").exists()


def test_unknown_and_expired_predictions(store):
    with pytest.raises(NotFoundError):
        store.give_feedback("b" * 32, True, "forest")
    prediction = predicted(store)
    assert store.expire(now=time.time() + store.ttl + 1) == 1
    assert not store.upload_path(prediction, "jpg").exists()
    with pytest.raises(GoneError, match="expired"):
        store.give_feedback(prediction, True, "forest")


def test_a_prediction_syncs_nothing_to_disk_and_an_answer_makes_its_upload_durable(store, monkeypatch):
    """The request path of a prediction does no fsync (most are never answered); the answer syncs
    its upload (kept for the reviewer) before it counts; a queued sample is synced at once."""
    import os

    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    prediction = predicted(store)
    assert synced == []
    store.give_feedback(prediction, False, "mountain")
    upload = str(store.upload_path(prediction, "jpg"))
    assert synced[:2] == [upload, str(store.uploads)]

    synced.clear()
    store.record_prediction(
        "c" * 32, PHOTO, "jpg", model_name="m", model_version="3", label="forest",
        probabilities=PROBABILITIES, latency_ms=1.0, sampled=True,
    )  # fmt: skip
    assert any("c" * 32 in path for path in synced), synced  # its temporary name, before the rename
    assert str(store.uploads) in synced  # then the rename


def test_an_answer_whose_upload_was_lost_in_a_crash_asks_to_classify_again(store):
    prediction = predicted(store)
    store.upload_path(prediction, "jpg").unlink()  # what a crash of the machine can leave
    with pytest.raises(GoneError, match="classify it again"):
        store.give_feedback(prediction, False, "mountain")
    (row,) = store.rows()
    assert row["feedback_label"] is None
