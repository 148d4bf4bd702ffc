"""The review queue (fsdl_webapp.review_queue): answers claimed in one statement, the reviewers'
decisions on which become files, retries, races and crashes; and the queue under attack.

Before the queue had its defences, six answers from one client about one image showed "5 of 5 other
predictions of this image agree" at its top; every answer waited for ever with its upload; a bulk
accept took whatever was selected, seen or not; and wrong corrections went straight into training.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time

import pytest

from fsdl_deploy.objectstore import BUCKETS
from fsdl_lib import storage
from fsdl_lib.dataset import dataset_version, scan_split
from fsdl_lib.merge import merge_feedback
from fsdl_lib.seeding import seed_scenes
from fsdl_lib.storage import ObjectStore
from fsdl_tools.clients import free_port
from fsdl_webapp.feedback_db import AnswerConflictError, InvalidAnswerError, UploadsUnavailableError
from fsdl_webapp.services import Records
from tests.conftest import SAMPLE_DIR
from tests.webapp.conftest import (
    AS_REVIEWER,
    PHOTO,
    answer,
    client_at,
    make_app,
    open_records_for_test,
    predict,
    predicted,
    wrong_label,
)

# --- answers and decisions, on the records themselves -----------------------------------------------


def files(records: Records) -> list[str]:
    return sorted(storage.files(records.review.feedback_dir))


def test_a_correction_waits_for_review_and_becomes_a_file_only_when_accepted(kept_records):
    records = kept_records
    prediction = predicted(records)
    result = records.review.answer(prediction, False, "mountain")
    assert (result.review_state, result.path, result.model_version) == ("pending", None, "3")
    assert files(records) == []
    assert storage.exists(records.predictions.upload_path(prediction, "jpg"))  # kept for the reviewer
    with pytest.raises(AnswerConflictError, match="open its image before accepting it"):
        records.review.decide(prediction, "accept", reviewer="alice")  # not shown to anyone yet
    assert files(records) == []
    records.predictions.upload_of(prediction, shown=True)  # the review page shows it
    decision = records.review.decide(prediction, "accept", reviewer="alice")
    assert (decision.review_state, decision.label) == ("accepted", "mountain")
    sha = hashlib.sha256(PHOTO).hexdigest()
    assert files(records) == [f"mountain/{sha}.jpg"]
    assert storage.read_bytes(records.review.feedback_dir / "mountain" / f"{sha}.jpg") == PHOTO
    assert not storage.exists(records.predictions.upload_path(prediction, "jpg"))
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
    records = open_records_for_test(tmp_path, feedback_policy="trust")
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


def test_an_accepted_answer_whose_file_was_lost_in_a_crash_is_written_again(kept_records):
    records = kept_records
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


def test_a_store_down_at_acceptance_undoes_the_decision_and_the_next_round_writes_it(kept_records):
    """The feedback's store fails while a reviewer accepts: the reviewer is told (503), the answer
    waits for review as before, nothing is half written; once the store is back, it is accepted."""
    records = kept_records
    prediction = predicted(records)
    records.review.answer(prediction, False, "sea")
    records.predictions.upload_of(prediction, shown=True)
    reachable = records.review.feedback_dir
    records.review.feedback_dir = storage.location(
        f"s3://{BUCKETS['uploads']}/feedback", ObjectStore(f"http://127.0.0.1:{free_port()}", "k", "s")
    )
    with pytest.raises(UploadsUnavailableError, match="uploads cannot be kept right now"):
        records.review.decide(prediction, "accept", reviewer="alice")
    assert records.predictions.row(prediction)["review_state"] == "pending"
    assert records.review.decisions() == []
    records.review.feedback_dir = reachable
    assert files(records) == []
    assert storage.exists(records.predictions.upload_path(prediction, "jpg"))  # still there to accept
    assert records.review.decide(prediction, "accept", reviewer="alice").review_state == "accepted"
    assert [name.split("/")[0] for name in files(records)] == ["sea"]


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


def test_trust_policy_accepts_at_once(tmp_path, extractor, production_model, photo):
    app = make_app(tmp_path, production_model, feedback_policy="trust")
    client = app.test_client()
    body = predict(client, photo)
    response = client.post(
        "/api/v1/feedback", json={"prediction_id": body["prediction_id"], "correct": True, "label": body["label"]}
    )
    assert response.json["review_state"] == "accepted"
    assert response.json["path"].startswith(f"{body['label']}/")
    assert (app.config["FSDL_SETTINGS"].scenes_feedback_dir / response.json["path"]).read_bytes() == photo


# --- the queue's limits ---------------------------------------------------------------------------


def waiting(records: Records, name: str, when: float) -> str:
    prediction_id = name * 32
    records.predictions.record(
        prediction_id, PHOTO, "jpg", model_name="m", model_version="1", label="forest",
        probabilities={"forest": 0.9, "sea": 0.1}, latency_ms=1.0, client=f"client-{name}",
    )  # fmt: skip
    records.review.answer(prediction_id, False, "sea", client=f"client-{name}")
    with records.review.db.connect() as db:  # as if answered then
        db.execute("UPDATE predictions SET created_at = ?, feedback_at = ? WHERE id = ?", (when, when, prediction_id))
    return prediction_id


def test_the_oldest_waiting_answers_expire_with_their_uploads_past_the_queues_most_and_age(tmp_path):
    records = open_records_for_test(tmp_path, review_queue_max=3, review_max_age_days=1.0)
    now = time.time()
    old = waiting(records, "a", now - 2 * 86400)  # older than the queue's age of a day
    kept = [waiting(records, name, now - 600 + i) for i, name in enumerate("bcd")]  # each answer enforces the limits
    assert records.review.summary(now)["expired"] == {"age": 1, "cap": 0}
    assert not records.predictions.upload_path(old, "jpg").exists()
    newest = waiting(records, "e", now)  # a fourth answer within the age: the oldest of the rest goes
    assert records.review.summary(now)["pending"] == 3
    expired = [row["id"] for row in records.predictions.rows() if row["review_state"] == "expired"]
    assert sorted(expired) == sorted([old, kept[0]])
    assert not records.predictions.upload_path(kept[0], "jpg").exists()
    assert all(records.predictions.upload_path(p, "jpg").exists() for p in (*kept[1:], newest))
    assert records.review.summary(now)["expired"] == {"age": 1, "cap": 1}
    assert records.review.enforce_limits(now) == {"age": 0, "cap": 0}  # nothing more to do


# --- under attack, through HTTP ------------------------------------------------------------------


def test_one_client_cannot_fabricate_agreement(app):
    attacker = client_at(app, "203.0.113.5")
    predictions = [predict(attacker) for _ in range(6)]
    claim = wrong_label(predictions[0])
    for prediction in predictions:
        assert answer(attacker, prediction, claim).status_code == 200
    items = app.test_client().get("/api/v1/review/queue", headers=AS_REVIEWER).json["items"]
    assert len(items) == 6
    for item in items:
        assert item["agreeing_clients"] == 0  # six answers, one client: nobody else agrees
        assert item["disagreeing_clients"] == 0
        assert item["client_pending"] == 6  # where they came from: one client with six waiting
    assert len({item["answer_client"] for item in items}) == 1

    # Two other people who give the same answer do count, once each, however often they answer.
    for address, times in (("198.51.100.1", 3), ("198.51.100.2", 1)):
        someone = client_at(app, address)
        for _ in range(times):
            assert answer(someone, predict(someone), claim).status_code == 200
    items = app.test_client().get("/api/v1/review/queue", headers=AS_REVIEWER).json["items"]
    attackers = [item for item in items if item["client_pending"] == 6]
    assert {item["agreeing_clients"] for item in attackers} == {2}
    # The page says it in those words.
    page = app.test_client().get("/static/review.js").get_data(as_text=True)
    assert "agreeing_clients" in page
    assert "agreeing_predictions" not in page


def test_one_client_may_have_only_its_share_of_the_queue_waiting(tmp_path, extractor, production_model):
    app = make_app(tmp_path, production_model, review_pending_per_client=3)
    flooder = client_at(app, "203.0.113.6")
    predictions = [predict(flooder) for _ in range(5)]
    statuses = [answer(flooder, p, wrong_label(p)).status_code for p in predictions]
    assert statuses == [200, 200, 200, 429, 429]
    refused = answer(flooder, predictions[3], wrong_label(predictions[3]))
    assert "already wait for review" in refused.json["error"]
    assert int(refused.headers["Retry-After"]) > 0
    # Nothing of the refused answers was kept as an answer; someone else still answers.
    rows = {row["id"]: row for row in app.extensions["fsdl_records"].predictions.rows()}
    assert rows[predictions[3]["prediction_id"]]["feedback_label"] is None
    other = client_at(app, "198.51.100.3")
    assert answer(other, predict(other), "sea").status_code == 200
    # Once the reviewer decides, the client may answer again.
    first = predictions[0]["prediction_id"]
    decided = app.test_client().post(
        "/api/v1/review/decisions",
        json={"decisions": [{"prediction_id": first, "action": "reject"}]},
        headers=AS_REVIEWER,
    )
    assert decided.status_code == 200
    assert answer(flooder, predictions[3], wrong_label(predictions[3])).status_code == 200


def train_version(settings) -> str:
    return dataset_version(scan_split(settings.scenes_raw_dir / "train"))


def test_fifty_wrong_corrections_never_reach_training_unless_accepted(tmp_path, extractor, production_model):
    """50 wrong corrections from 50 addresses (one client may have only its share waiting): none
    reaches the training split until a reviewer accepts it, and once they are rejected the next
    dataset version is the one before them."""
    app = make_app(tmp_path, production_model)
    settings = app.config["FSDL_SETTINGS"]
    seed_scenes(SAMPLE_DIR, settings.scenes_raw_dir, test_per_class=5)
    before = train_version(settings)
    photos = sorted(SAMPLE_DIR.glob("*/*.jpg"))[:50]
    ids = []
    for i, photo in enumerate(photos):
        client = client_at(app, f"203.0.113.{i + 1}")
        body = predict(client, photo.read_bytes())
        # The attacker's claim: a class the photo does not show, and not the model's answer.
        wrong = next(c for c in ("street", "sea") if c not in (photo.parent.name, body["label"]))
        assert answer(client, body, wrong).status_code == 200
        ids.append(body["prediction_id"])

    report = merge_feedback(settings, "poisoning-1")
    assert report.merged == 0
    assert train_version(settings) == before
    assert not list(settings.scenes_feedback_dir.rglob("*.jpg"))

    queue = client.get("/api/v1/review/queue?limit=100", headers=AS_REVIEWER).json
    assert queue["pending"] == 50
    rejected = client.post(
        "/api/v1/review/decisions",
        json={"decisions": [{"prediction_id": i, "action": "reject"} for i in ids]},
        headers=AS_REVIEWER,
    )
    assert rejected.status_code == 200, rejected.json
    assert {r["review_state"] for r in rejected.json["results"]} == {"rejected"}

    report = merge_feedback(settings, "poisoning-2")
    assert report.merged == 0
    assert train_version(settings) == before
    assert client.get("/api/v1/review/queue", headers=AS_REVIEWER).json["pending"] == 0
    assert len(client.get("/api/v1/review/decisions", headers=AS_REVIEWER).json["decisions"]) == 50
