"""The review queue: the answers users give, and the reviewers' decisions on which reach training.

An answer claims its prediction in one statement (of two racing answers, one wins; the other gets
a conflict and leaves nothing behind) and then waits as *pending*. A reviewer accepts, rejects or
relabels it; each decision is logged (who, when, what). Only an accepted answer becomes a file,
``<feedback>/<class>/<sha256>.<ext>``, which the feedback sync merges into training; a rejected one
leaves no file. With the ``trust`` policy every answer is accepted at once (demos, benchmarks).

A crash between a decision and its file is repaired by :meth:`ReviewQueue.export_accepted`, which
housekeeping runs: the database says what must exist, and the file is written from the upload.

Strangers answer too, so the queue has limits (:class:`QueueLimits`): one client may have only so
many answers waiting, and the queue as a whole a most and an age, past which the oldest waiting
answers expire with their uploads (counted by reason). Agreement about an image is counted in
distinct clients, which one client cannot fake; and a reviewer may accept only what was shown to
them (its image was fetched), so a bulk accept takes nothing unseen.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from fsdl_lib import storage
from fsdl_lib.atomic import make_durable
from fsdl_lib.classes import SCENE_CLASSES
from fsdl_lib.exceptions import StorageError
from fsdl_webapp.feedback_db import (
    AnswerConflictError,
    FeedbackDatabase,
    InvalidAnswerError,
    PredictionGoneError,
    TooManyWaitingError,
    UploadsUnavailableError,
)
from fsdl_webapp.prediction_log import PredictionLog

log = logging.getLogger(__name__)

POLICIES: Final = ("review", "trust")
ACTIONS: Final = ("accept", "reject", "relabel")
TRUST_REVIEWER: Final = "trust-policy"
EXPIRY_REASONS: Final = ("age", "cap")


@dataclass(frozen=True)
class QueueLimits:
    """How much the review queue holds (settings WEBAPP_REVIEW_QUEUE_MAX, _MAX_AGE_DAYS, _PENDING_PER_CLIENT)."""

    max_pending: int = 2000
    max_age_seconds: float = 14 * 86400
    per_client: int = 25


@dataclass(frozen=True)
class Answer:
    prediction_id: str
    label: str
    correct: bool
    review_state: str
    path: str | None
    repeated: bool
    model_version: str


@dataclass(frozen=True)
class Decision:
    prediction_id: str
    action: str
    label: str | None
    review_state: str
    repeated: bool
    path: str | None = None
    """Where an accepted label's file is, relative to the feedback folder."""


class ReviewQueue:
    def __init__(
        self,
        db: FeedbackDatabase,
        predictions: PredictionLog,
        feedback_dir: Path,
        policy: str = "review",
        limits: QueueLimits | None = None,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"feedback policy must be one of {POLICIES}, not {policy!r}")
        self.db = db
        self.predictions = predictions
        self.feedback_dir = feedback_dir
        self.policy = policy
        self.limits = limits or QueueLimits()

    def answer(self, prediction_id: str, correct: bool, label: str, client: str | None = None) -> Answer:
        """Record a user's answer; it waits for review (or is accepted at once under ``trust``).

        The answer claims the prediction in one statement: a retry of the same answer is a no-op,
        a different answer is a conflict, and neither writes anything. A ``client`` with its share
        of the queue already waiting gets :class:`TooManyWaitingError`; past the queue's most, the oldest
        waiting answers expire.
        """
        row = self.predictions.row(prediction_id)
        if row["feedback_label"] is None and client is not None and self.policy == "review":
            waiting = self.pending_from(client)
            if waiting >= self.limits.per_client:
                raise TooManyWaitingError(
                    f"{waiting} answers from this client already wait for review; try again once they are decided"
                )
        if row["feedback_label"] is None:
            if row["upload_state"] == "unkept":
                raise UploadsUnavailableError(
                    f"the image of prediction {prediction_id} could not be kept (the object store for uploads did "
                    "not answer; its operator checks FSDL_S3_ENDPOINT_URL): the prediction stands, but an answer "
                    "about it cannot reach training"
                )
            if row["upload_state"] != "pending" or (row["expires_at"] < time.time() and not row["sampled"]):
                raise PredictionGoneError(f"prediction {prediction_id} has expired; classify the image again")
            if correct and label != row["predicted_label"]:
                raise InvalidAnswerError(
                    f"correct=true but label {label!r} differs from the prediction {row['predicted_label']!r}"
                )
            if not correct and label == row["predicted_label"]:
                raise InvalidAnswerError(f"correct=false but label {label!r} is what the model predicted")
            teach = 1.0 - json.loads(row["probabilities"]).get(label, 0.0)
            self._keep_for_review(self.predictions.upload_path(prediction_id, row["image_ext"]), prediction_id)
            with self.db.connect() as db:
                claimed = db.execute(
                    "UPDATE predictions SET feedback_correct = ?, feedback_label = ?, feedback_at = ?, "
                    "review_state = 'pending', teach = ?, answer_client = ? WHERE id = ? AND feedback_label IS NULL",
                    (int(correct), label, time.time(), teach, client, prediction_id),
                ).rowcount
            if claimed:
                if self.policy == "trust":
                    try:
                        self.decide(prediction_id, "accept", reviewer=TRUST_REVIEWER)
                    except BaseException:  # no file could be written (a full disk, say): the answer is undone
                        self._unclaim(row)
                        raise
                log.info("feedback for %s: %s (%s)", prediction_id, label, "confirmed" if correct else "corrected")
                self.enforce_limits()
                return self._result(self.predictions.row(prediction_id), repeated=False)
            row = self.predictions.row(prediction_id)  # another answer won the race
        if (bool(row["feedback_correct"]), row["feedback_label"]) == (correct, label):
            return self._result(row, repeated=True)
        raise AnswerConflictError(
            f"prediction {prediction_id} already has feedback "
            f"(correct={bool(row['feedback_correct'])}, label={row['feedback_label']})"
        )

    def _keep_for_review(self, upload: Path, prediction_id: str) -> None:
        """The upload is kept for the reviewer: for good before the answer counts (on a disk, synced;
        an object store's write is already)."""
        try:
            if storage.is_object_store(upload):
                if not storage.exists(upload):
                    raise FileNotFoundError(upload)
            else:
                make_durable(upload)
        except FileNotFoundError:  # lost in a crash of the machine since it was classified
            raise PredictionGoneError(f"the image of prediction {prediction_id} is gone; classify it again") from None
        except StorageError as exc:
            raise self.predictions.store_unavailable(exc) from None

    def _unclaim(self, before: sqlite3.Row) -> None:
        with self.db.connect() as db:
            db.execute(
                "UPDATE predictions SET feedback_correct = NULL, feedback_label = NULL, feedback_at = NULL, "
                "review_state = ?, teach = ?, answer_client = NULL WHERE id = ?",
                (before["review_state"], before["teach"], before["id"]),
            )

    @staticmethod
    def _result(row: sqlite3.Row, *, repeated: bool) -> Answer:
        return Answer(
            prediction_id=row["id"],
            label=row["feedback_label"],
            correct=bool(row["feedback_correct"]),
            review_state=row["review_state"],
            path=row["feedback_path"],
            repeated=repeated,
            model_version=row["model_version"],
        )

    def decide(self, prediction_id: str, action: str, *, reviewer: str, label: str | None = None) -> Decision:
        """Accept, reject or relabel a pending item; the decision is logged, and an accepted label
        is written as a file for training. Repeating the same decision is a no-op."""
        if action not in ACTIONS:
            raise InvalidAnswerError(f"action must be one of: {', '.join(ACTIONS)}")
        if action == "relabel" and label not in SCENE_CLASSES:
            raise InvalidAnswerError(f"relabel needs a label, one of: {', '.join(SCENE_CLASSES)}")
        if action != "relabel" and label is not None:
            raise InvalidAnswerError("only relabel takes a label")
        row = self.predictions.row(prediction_id)
        claim = row["feedback_label"] or row["predicted_label"]  # a sampled item without an answer: the model's
        final = None if action == "reject" else (label if action == "relabel" else claim)
        state = "rejected" if action == "reject" else "accepted"
        if row["review_state"] != "pending":
            if (row["review_state"], row["review_label"]) == (state, final):
                return Decision(prediction_id, action, final, state, repeated=True, path=row["feedback_path"])
            decided = row["review_state"] or "not waiting for review"
            raise AnswerConflictError(f"prediction {prediction_id} is {decided}; it cannot be decided again")
        if state == "accepted" and reviewer != TRUST_REVIEWER and row["shown_at"] is None:
            raise AnswerConflictError(
                f"prediction {prediction_id} has not been shown to a reviewer: open its image before accepting it"
            )
        now = time.time()
        with self.db.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            changed = db.execute(
                "UPDATE predictions SET review_state = ?, review_label = ?, reviewed_by = ?, reviewed_at = ? "
                "WHERE id = ? AND review_state = 'pending'",
                (state, final, reviewer, now, prediction_id),
            ).rowcount
            if changed:
                decision_id = db.execute(
                    "INSERT INTO decisions (prediction_id, decided_at, reviewer, action, label) VALUES (?, ?, ?, ?, ?)",
                    (prediction_id, now, reviewer, action, final),
                ).lastrowid
            db.execute("COMMIT")
        if not changed:  # another reviewer decided in between
            return self.decide(prediction_id, action, reviewer=reviewer, label=label)
        path = None
        if state == "accepted":
            try:
                path = self._export(self.predictions.row(prediction_id))
            except BaseException:  # the file could not be written: the decision is undone, nothing half-done
                self._undo_decision(prediction_id, decision_id)
                raise
        else:
            self._discard_upload(row)
        log.info("review of %s by %s: %s%s", prediction_id, reviewer, action, f" as {final}" if final else "")
        return Decision(prediction_id, action, final, state, repeated=False, path=path)

    def _undo_decision(self, prediction_id: str, decision_id: int | None) -> None:
        with self.db.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM decisions WHERE id = ?", (decision_id,))
            db.execute(
                "UPDATE predictions SET review_state = 'pending', review_label = NULL, reviewed_by = NULL, "
                "reviewed_at = NULL WHERE id = ?",
                (prediction_id,),
            )
            db.execute("COMMIT")

    def _export(self, row: sqlite3.Row) -> str | None:
        """Write the accepted label's file (whole, and only where none is: its name is its content's
        hash), then note it and drop the upload; return its path relative to the feedback place (None
        when the upload is gone). A store that fails raises :class:`UploadsUnavailableError`."""
        relative = f"{row['review_label']}/{row['image_sha256']}.{row['image_ext']}"
        target = self.feedback_dir / relative
        upload = self.predictions.upload_path(row["id"], row["image_ext"])
        try:
            if not storage.exists(target):
                storage.create(target, storage.read_bytes(upload))
        except FileNotFoundError:
            log.error("the upload of accepted prediction %s is gone; its label cannot reach training", row["id"])
            return None
        except StorageError as exc:
            raise self.predictions.store_unavailable(exc) from None
        with self.db.connect() as db:
            db.execute(
                "UPDATE predictions SET exported_at = ?, feedback_path = ?, upload_state = 'used' WHERE id = ?",
                (time.time(), relative, row["id"]),
            )
        self.predictions.remove_upload(upload)
        return relative

    def _discard_upload(self, row: sqlite3.Row) -> None:
        with self.db.connect() as db:
            db.execute("UPDATE predictions SET upload_state = 'used' WHERE id = ?", (row["id"],))
        self.predictions.remove_upload(self.predictions.upload_path(row["id"], row["image_ext"]))

    def export_accepted(self) -> int:
        """Write the file of every accepted answer that has none yet (after a crash, or while the
        store was down); return how many were written."""
        with self.db.connect() as db:
            rows = db.execute(
                "SELECT * FROM predictions WHERE review_state = 'accepted' AND exported_at IS NULL"
            ).fetchall()
        written = 0
        for row in rows:
            try:
                written += self._export(row) is not None
            except UploadsUnavailableError:
                break  # said in the log; the next round tries again
        return written

    def items(self, limit: int = 50) -> list[dict[str, Any]]:
        """Pending items, the ones that would teach the model most first, then the oldest.

        Agreement is counted in distinct clients other than the item's own, among those that
        answered the same image (the model's predictions of one image always agree; one client's
        many answers count once), so that one client cannot fabricate it.
        """
        claim = "COALESCE(p.feedback_label, p.predicted_label)"
        others = (
            "FROM predictions o WHERE o.image_sha256 = p.image_sha256 AND o.id != p.id "
            "AND o.feedback_label IS NOT NULL "
            "AND o.answer_client IS NOT NULL AND o.answer_client IS NOT p.answer_client"
        )
        with self.db.connect() as db:
            rows = db.execute(
                f"SELECT p.*, (SELECT COUNT(DISTINCT o.answer_client) {others} AND o.feedback_label = {claim}) "
                f"AS agreeing_clients, (SELECT COUNT(DISTINCT o.answer_client) {others} "
                f"AND o.feedback_label != {claim}) AS disagreeing_clients, "
                "(SELECT COUNT(*) FROM predictions c WHERE c.answer_client = p.answer_client "
                " AND c.review_state = 'pending') AS client_pending "
                "FROM predictions p WHERE p.review_state = 'pending' ORDER BY p.teach DESC, p.created_at LIMIT ?",
                (limit,),
            ).fetchall()
        return [self._item(row) for row in rows]

    @staticmethod
    def _item(row: sqlite3.Row) -> dict[str, Any]:
        probabilities = json.loads(row["probabilities"])
        return {
            "prediction_id": row["id"],
            "created_at": row["created_at"],
            "answered_at": row["feedback_at"],
            "model_name": row["model_name"],
            "model_version": row["model_version"],
            "predicted_label": row["predicted_label"],
            "confidence": probabilities.get(row["predicted_label"], 0.0),
            "claimed_label": row["feedback_label"],
            "claimed_probability": probabilities.get(row["feedback_label"]) if row["feedback_label"] else None,
            "correct": None if row["feedback_correct"] is None else bool(row["feedback_correct"]),
            "sampled": bool(row["sampled"]),
            "teach": row["teach"],
            "answer_client": row["answer_client"],
            "client_pending": row["client_pending"] if row["answer_client"] else None,
            "agreeing_clients": row["agreeing_clients"],
            "disagreeing_clients": row["disagreeing_clients"],
            "shown": row["shown_at"] is not None,
            "image_ext": row["image_ext"],
        }

    def summary(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        with self.db.connect() as db:
            row = db.execute(
                "SELECT COUNT(*) AS pending, MIN(COALESCE(feedback_at, created_at)) AS oldest "
                "FROM predictions WHERE review_state = 'pending'"
            ).fetchone()
        oldest = row["oldest"]
        return {
            "pending": row["pending"],
            "oldest_age_seconds": None if oldest is None else max(0.0, now - oldest),
            "expired": self.expiries(),
            "limits": dataclasses.asdict(self.limits),
        }

    def decisions(self, limit: int = 100) -> list[dict[str, Any]]:
        with self.db.connect() as db:
            rows = db.execute(
                "SELECT d.*, p.feedback_label AS claimed_label, p.predicted_label FROM decisions d "
                "JOIN predictions p ON p.id = d.prediction_id ORDER BY d.id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [dict(row) for row in rows]

    def pending_from(self, client: str) -> int:
        """Answers of ``client`` that wait for review."""
        with self.db.connect() as db:
            return int(
                db.execute(
                    "SELECT COUNT(*) FROM predictions WHERE answer_client = ? AND review_state = 'pending'", (client,)
                ).fetchone()[0]
            )

    def enforce_limits(self, now: float | None = None) -> dict[str, int]:
        """Expire what waits for review past the queue's age, then the oldest past its most, each
        with its upload; return how many expired, by reason."""
        now = time.time() if now is None else now
        waited = "COALESCE(feedback_at, created_at)"
        expired = {}
        with self.db.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            too_old = db.execute(
                f"SELECT id, image_ext FROM predictions WHERE review_state = 'pending' AND {waited} < ?",
                (now - self.limits.max_age_seconds,),
            ).fetchall()
            over = db.execute(
                f"SELECT id, image_ext FROM predictions WHERE review_state = 'pending' AND {waited} >= ? "
                f"ORDER BY {waited} DESC LIMIT -1 OFFSET ?",
                (now - self.limits.max_age_seconds, self.limits.max_pending),
            ).fetchall()
            for reason, rows in (("age", too_old), ("cap", over)):
                db.executemany(
                    "UPDATE predictions SET review_state = 'expired', upload_state = 'expired', expired_reason = ? "
                    "WHERE id = ? AND review_state = 'pending'",
                    [(reason, row["id"]) for row in rows],
                )
                expired[reason] = len(rows)
            db.execute("COMMIT")
        for row in (*too_old, *over):
            self.predictions.remove_upload(self.predictions.upload_path(row["id"], row["image_ext"]))
        if too_old or over:
            log.warning(
                "review queue: %d answers waited longer than %.0f days and %d were past its most of %d; "
                "they expired with their uploads",
                len(too_old), self.limits.max_age_seconds / 86400, len(over), self.limits.max_pending,
            )  # fmt: skip
        return expired

    def expiries(self) -> dict[str, int]:
        """How many answers expired from the review queue, by reason (age, cap)."""
        with self.db.connect() as db:
            rows = db.execute(
                "SELECT expired_reason, COUNT(*) FROM predictions WHERE expired_reason IS NOT NULL "
                "GROUP BY expired_reason"
            ).fetchall()
        found = dict.fromkeys(EXPIRY_REASONS, 0)
        found.update({reason: count for reason, count in rows})
        return found
