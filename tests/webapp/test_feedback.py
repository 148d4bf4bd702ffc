"""The feedback store (fsdl_webapp.feedback) on its own: the prediction log, answers written file
first and log second, retries, conflicts and expiry. Through HTTP: test_api.py and test_served.py."""

from __future__ import annotations

import hashlib
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


def test_a_correction_lands_under_the_claimed_class_by_content_hash(store):
    prediction = predicted(store)
    result = store.give_feedback(prediction, False, "mountain")
    sha = hashlib.sha256(PHOTO).hexdigest()
    assert result.path == f"mountain/{sha}.jpg"
    assert (store.feedback_dir / result.path).read_bytes() == PHOTO
    assert not store.upload_path(prediction, "jpg").exists()
    assert result.model_version == "3"
    (row,) = store.rows()
    assert (row["feedback_label"], row["feedback_correct"], row["upload_state"]) == ("mountain", 0, "used")


def test_the_same_answer_again_is_a_no_op_and_a_different_one_conflicts(store):
    prediction = predicted(store)
    store.give_feedback(prediction, True, "forest")
    again = store.give_feedback(prediction, True, "forest")
    assert again.repeated is True
    with pytest.raises(ConflictError, match="already has feedback"):
        store.give_feedback(prediction, False, "sea")
    assert [p.relative_to(store.feedback_dir).parts[0] for p in store.feedback_dir.rglob("*.jpg")] == ["forest"]


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


def test_unknown_and_expired_predictions(store):
    with pytest.raises(NotFoundError):
        store.give_feedback("b" * 32, True, "forest")
    prediction = predicted(store)
    assert store.expire(now=time.time() + store.ttl + 1) == 1
    assert not store.upload_path(prediction, "jpg").exists()
    with pytest.raises(GoneError, match="expired"):
        store.give_feedback(prediction, True, "forest")
