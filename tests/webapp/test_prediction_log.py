"""The prediction log (fsdl_webapp.prediction_log): every prediction with its upload while it is kept,
what reaches the disk and when, expiry, and uploads kept without their metadata."""

from __future__ import annotations

import hashlib
import io
import os
import time

import numpy as np
import pytest

from fsdl_lib import storage
from fsdl_lib.images import decode_image
from fsdl_webapp.feedback_db import PredictionGoneError, UnknownPredictionError
from tests.conftest import REVIEWER
from tests.lib.test_metadata import SECRETS, jpeg_with_everything
from tests.webapp.conftest import PHOTO, basic, client_at, make_app, predict, predicted


def test_a_prediction_keeps_its_upload_until_answered(kept_records):
    records = kept_records
    prediction = predicted(records)
    assert storage.read_bytes(records.predictions.upload_path(prediction, "jpg")) == PHOTO
    assert records.predictions.upload_of(prediction) == (PHOTO, "jpg")
    (row,) = records.predictions.rows()
    assert (row["model_version"], row["predicted_label"], row["upload_state"]) == ("3", "forest", "pending")
    assert row["image_sha256"] == hashlib.sha256(PHOTO).hexdigest()


def test_unknown_and_expired_predictions(kept_records):
    records = kept_records
    with pytest.raises(UnknownPredictionError):
        records.review.answer("b" * 32, True, "forest")
    prediction = predicted(records)
    assert records.predictions.expire(now=time.time() + records.predictions.ttl + 1) == 1
    assert not storage.exists(records.predictions.upload_path(prediction, "jpg"))
    assert storage.files(records.predictions.uploads) == {}
    with pytest.raises(PredictionGoneError, match="expired"):
        records.review.answer(prediction, True, "forest")


def test_expired_prediction_is_gone_and_its_upload_removed(app, client, photo):
    body = predict(client, photo)
    predictions = app.extensions["fsdl_records"].predictions
    assert predictions.expire(now=time.time() + predictions.ttl + 1) == 1
    assert not predictions.upload_path(body["prediction_id"], "jpg").exists()
    response = client.post(
        "/api/v1/feedback", json={"prediction_id": body["prediction_id"], "correct": True, "label": body["label"]}
    )
    assert response.status_code == 410
    assert "expired" in response.json["error"]
    assert not list(app.config["FSDL_SETTINGS"].scenes_feedback_dir.rglob("*.jpg"))


def test_items_waiting_for_review_do_not_expire(records):
    answered = predicted(records, "c" * 32)
    records.review.answer(answered, False, "sea")
    records.predictions.expire(now=time.time() + records.predictions.ttl + 1)
    assert records.predictions.upload_path(answered, "jpg").exists()


def test_a_prediction_syncs_nothing_to_disk_and_an_answer_makes_its_upload_durable(records, monkeypatch):
    """The request path of a prediction does no fsync (most are never answered); the answer syncs
    its upload (kept for the reviewer) before it counts; a queued sample is synced at once."""
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
    predicted(records, "c" * 32, sampled=True)
    assert any("c" * 32 in path for path in synced), synced  # its temporary name, before the rename
    assert str(records.predictions.uploads) in synced  # then the rename


def test_an_answer_whose_upload_was_lost_in_a_crash_asks_to_classify_again(records):
    prediction = predicted(records)
    records.predictions.upload_path(prediction, "jpg").unlink()  # what a crash of the machine can leave
    with pytest.raises(PredictionGoneError, match="classify it again"):
        records.review.answer(prediction, False, "mountain")
    (row,) = records.predictions.rows()
    assert row["feedback_label"] is None


def test_uploads_are_kept_and_trained_on_without_their_metadata(tmp_path, extractor, production_model):
    """Before: uploads were stored byte for byte, GPS included, and accepted ones went into training so."""
    app = make_app(tmp_path, production_model)
    original = jpeg_with_everything()
    client = client_at(app, "203.0.113.99")
    prediction = client.post(
        "/api/v1/predict", data={"image": (io.BytesIO(original), "phone.jpg")}, content_type="multipart/form-data"
    ).json
    (upload,) = (tmp_path / "webapp" / "uploads").iterdir()
    kept = upload.read_bytes()
    assert not [secret for secret in SECRETS if secret in kept]
    assert np.array_equal(np.asarray(decode_image(kept)[0]), np.asarray(decode_image(original)[0]))
    assert np.array_equal(extractor.extract([decode_image(kept)[0]]), extractor.extract([decode_image(original)[0]]))

    wrong = next(c for c in ("sea", "street") if c != prediction["label"])
    body = {"prediction_id": prediction["prediction_id"], "correct": False, "label": wrong}
    assert client.post("/api/v1/feedback", json=body).status_code == 200
    reviewer = app.test_client()
    assert reviewer.get(f"/review/image/{prediction['prediction_id']}", headers=basic(*REVIEWER)).data == kept
    decision = reviewer.post(
        "/api/v1/review/decisions",
        json={"decisions": [{"prediction_id": prediction["prediction_id"], "action": "accept"}]},
        headers=basic(*REVIEWER),
    )
    assert decision.status_code == 200, decision.json
    (trained,) = (tmp_path / "data" / "feedback" / "intel_scenes" / wrong).iterdir()
    assert trained.read_bytes() == kept
