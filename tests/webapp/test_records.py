"""The records on their own (fsdl_webapp.prediction_log, fsdl_webapp.review_queue): the prediction
log, answers claimed in one statement, the review that decides which become files, retries, races
and expiry. Through HTTP: test_api.py, test_served.py, test_review_queue.py and the browser tests."""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
import threading
import time

import pytest

from fsdl_lib.config import Settings
from fsdl_webapp.config import WebSettings
from fsdl_webapp.feedback_db import (
    AnswerConflictError,
    InvalidAnswerError,
    PredictionGoneError,
    UnknownPredictionError,
)
from fsdl_webapp.services import Records, open_records
from tests.conftest import SAMPLE_DIR

PHOTO = (SAMPLE_DIR / "forest" / "10078.jpg").read_bytes()
PROBABILITIES = {"forest": 0.7, "mountain": 0.3}


def open_for_test(tmp_path, **web) -> Records:
    """The records as the web app opens them, with a minute to answer and no queue limit in the way."""
    settings = Settings.from_env({"FSDL_DATA_DIR": str(tmp_path / "data")})
    return open_records(
        tmp_path / "state", settings, dataclasses.replace(WebSettings(), prediction_ttl_seconds=60, **web)
    )


@pytest.fixture
def records(tmp_path) -> Records:
    return open_for_test(tmp_path)


def predicted(records: Records, prediction_id: str = "a" * 32, label: str = "forest") -> str:
    records.predictions.record(
        prediction_id, PHOTO, "jpg", model_name="m", model_version="3", label=label,
        probabilities=PROBABILITIES, latency_ms=12.0,
    )  # fmt: skip
    return prediction_id


def test_a_prediction_keeps_its_upload_until_answered(records):
    prediction = predicted(records)
    assert records.predictions.upload_path(prediction, "jpg").read_bytes() == PHOTO
    (row,) = records.predictions.rows()
    assert (row["model_version"], row["predicted_label"], row["upload_state"]) == ("3", "forest", "pending")
    assert row["image_sha256"] == hashlib.sha256(PHOTO).hexdigest()


def files(records: Records) -> list[str]:
    return sorted(
        str(p.relative_to(records.review.feedback_dir)) for p in records.review.feedback_dir.rglob("*") if p.is_file()
    )


def test_a_correction_waits_for_review_and_becomes_a_file_only_when_accepted(records):
    prediction = predicted(records)
    result = records.review.answer(prediction, False, "mountain")
    assert (result.review_state, result.path, result.model_version) == ("pending", None, "3")
    assert files(records) == []
    assert records.predictions.upload_path(prediction, "jpg").exists()  # kept for the reviewer
    with pytest.raises(AnswerConflictError, match="open its image before accepting it"):
        records.review.decide(prediction, "accept", reviewer="alice")  # not shown to anyone yet
    assert files(records) == []
    records.predictions.upload_of(prediction, shown=True)  # the review page shows it
    decision = records.review.decide(prediction, "accept", reviewer="alice")
    assert (decision.review_state, decision.label) == ("accepted", "mountain")
    sha = hashlib.sha256(PHOTO).hexdigest()
    assert files(records) == [f"mountain/{sha}.jpg"]
    assert (records.review.feedback_dir / "mountain" / f"{sha}.jpg").read_bytes() == PHOTO
    assert not records.predictions.upload_path(prediction, "jpg").exists()
    (logged,) = records.review.decisions()
    assert (logged["reviewer"], logged["action"], logged["label"]) == ("alice", "accept", "mountain")


def test_relabel_and_reject(records):
    relabelled, rejected = predicted(records, "a" * 32), predicted(records, "b" * 32)
    records.review.answer(relabelled, False, "mountain")
    records.review.answer(rejected, False, "sea")
    records.predictions.upload_of(relabelled, shown=True)
    records.review.decide(relabelled, "relabel", reviewer="alice", label="glacier")
    records.review.decide(rejected, "reject", reviewer="bob")
    assert files(records) == [f"glacier/{hashlib.sha256(PHOTO).hexdigest()}.jpg"]
    assert not records.predictions.upload_path(rejected, "jpg").exists()
    assert records.review.items() == []
    assert [(d["reviewer"], d["action"], d["label"]) for d in records.review.decisions()] == [
        ("bob", "reject", None),
        ("alice", "relabel", "glacier"),
    ]
    with pytest.raises(AnswerConflictError, match="cannot be decided again"):
        records.review.decide(rejected, "accept", reviewer="alice")


def test_the_same_answer_again_is_a_no_op_and_a_different_one_conflicts(records):
    prediction = predicted(records)
    records.review.answer(prediction, True, "forest")
    again = records.review.answer(prediction, True, "forest")
    assert again.repeated is True
    with pytest.raises(AnswerConflictError, match="already has feedback"):
        records.review.answer(prediction, False, "sea")
    records.predictions.upload_of(prediction, shown=True)
    records.review.decide(prediction, "accept", reviewer="alice")
    assert [name.split("/")[0] for name in files(records)] == ["forest"]


def test_racing_conflicting_answers_leave_one_answer_and_no_stray_file(tmp_path, monkeypatch):
    """Forced interleaving under the trust policy, where an answer becomes a file at once: the
    second answer arrives while the first is between its claim and its file. It must get a
    conflict and leave nothing; only the first answer's file exists afterwards."""
    records = open_for_test(tmp_path, feedback_policy="trust")
    prediction = predicted(records)
    claimed, second_done = threading.Event(), threading.Event()
    export = records.review._export

    def slow_export(row):
        claimed.set()
        assert second_done.wait(30)
        export(row)

    monkeypatch.setattr(records.review, "_export", slow_export)
    outcome: dict[str, object] = {}

    def answer(name, correct, label):
        try:
            outcome[name] = records.review.answer(prediction, correct, label)
        except Exception as exc:
            outcome[name] = exc

    first = threading.Thread(target=answer, args=("first", False, "mountain"))
    first.start()
    assert claimed.wait(30)
    answer("second", True, "forest")
    second_done.set()
    first.join(30)
    assert isinstance(outcome["second"], AnswerConflictError)
    assert outcome["first"].review_state == "accepted"
    assert [name.split("/")[0] for name in files(records)] == ["mountain"]
    (row,) = records.predictions.rows()
    assert (row["feedback_label"], row["review_label"]) == ("mountain", "mountain")


def test_an_accepted_answer_whose_file_was_lost_in_a_crash_is_written_again(records):
    prediction = predicted(records)
    records.review.answer(prediction, False, "sea")
    with sqlite3.connect(records.review.db.path) as db:  # what a crash between decision and file leaves
        db.execute(
            "UPDATE predictions SET review_state = 'accepted', review_label = 'sea' WHERE id = ?",
            (prediction,),
        )
    assert files(records) == []
    assert records.review.export_accepted() == 1
    assert [name.split("/")[0] for name in files(records)] == ["sea"]
    assert records.review.export_accepted() == 0


@pytest.mark.parametrize(
    ("correct", "label", "error"),
    [(True, "sea", "differs from the prediction"), (False, "forest", "is what the model predicted")],
)
def test_an_answer_that_contradicts_itself_is_refused_and_writes_nothing(records, correct, label, error):
    prediction = predicted(records)
    with pytest.raises(InvalidAnswerError, match=error):
        records.review.answer(prediction, correct, label)
    assert not records.review.feedback_dir.exists() or not list(records.review.feedback_dir.rglob("*"))
    assert records.predictions.upload_path(prediction, "jpg").exists()


def test_items_waiting_for_review_do_not_expire(records):
    answered = predicted(records, "c" * 32)
    records.review.answer(answered, False, "sea")
    records.predictions.expire(now=time.time() + records.predictions.ttl + 1)
    assert records.predictions.upload_path(answered, "jpg").exists()


def test_unknown_and_expired_predictions(records):
    with pytest.raises(UnknownPredictionError):
        records.review.answer("b" * 32, True, "forest")
    prediction = predicted(records)
    assert records.predictions.expire(now=time.time() + records.predictions.ttl + 1) == 1
    assert not records.predictions.upload_path(prediction, "jpg").exists()
    with pytest.raises(PredictionGoneError, match="expired"):
        records.review.answer(prediction, True, "forest")


def test_a_prediction_syncs_nothing_to_disk_and_an_answer_makes_its_upload_durable(records, monkeypatch):
    """The request path of a prediction does no fsync (most are never answered); the answer syncs
    its upload (kept for the reviewer) before it counts; a queued sample is synced at once."""
    import os

    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    prediction = predicted(records)
    assert synced == []
    records.review.answer(prediction, False, "mountain")
    upload = str(records.predictions.upload_path(prediction, "jpg"))
    assert synced[:2] == [upload, str(records.predictions.uploads)]

    synced.clear()
    records.predictions.record(
        "c" * 32, PHOTO, "jpg", model_name="m", model_version="3", label="forest",
        probabilities=PROBABILITIES, latency_ms=1.0, sampled=True,
    )  # fmt: skip
    assert any("c" * 32 in path for path in synced), synced  # its temporary name, before the rename
    assert str(records.predictions.uploads) in synced  # then the rename


def test_an_answer_whose_upload_was_lost_in_a_crash_asks_to_classify_again(records):
    prediction = predicted(records)
    records.predictions.upload_path(prediction, "jpg").unlink()  # what a crash of the machine can leave
    with pytest.raises(PredictionGoneError, match="classify it again"):
        records.review.answer(prediction, False, "mountain")
    (row,) = records.predictions.rows()
    assert row["feedback_label"] is None
