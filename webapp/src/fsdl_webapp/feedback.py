"""Predictions, the answers users give, and the review that decides which answers reach training.

One SQLite database (WAL) is the source of truth for labels. Every prediction gets a row; its
upload waits under ``uploads/`` until it is answered and decided, or expires. An answer claims its
prediction in one statement (of two racing answers, one wins; the other gets a conflict and leaves
nothing behind) and then waits in the review queue as *pending*. A reviewer accepts, rejects or
relabels it; each decision is logged (who, when, what). Only an accepted answer becomes a file,
``<feedback>/<class>/<sha256>.<ext>``, which the feedback sync merges into training; a rejected one
leaves no file. With the ``trust`` policy every answer is accepted at once (demos, benchmarks).

A crash between a decision and its file is repaired by :meth:`FeedbackStore.export_accepted`, which
housekeeping runs: the database says what must exist, and the file is written from the upload.

Strangers answer too, so the queue has limits (:class:`QueueLimits`): one client may have only so
many answers waiting, and the queue as a whole a most and an age, past which the oldest waiting
answers expire with their uploads (counted by reason). Each prediction and answer keeps a pseudonym
of its client (never the address), so that agreement about an image is counted in distinct clients,
which one client cannot fake; and a reviewer may accept only what was shown to them (its image was
fetched), so a bulk accept takes nothing unseen.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from fsdl_lib._atomic import atomic_write_bytes, make_durable
from fsdl_lib.classes import SCENE_CLASSES
from fsdl_webapp.errors import ApiError, ConflictError, GoneError, NotFoundError, TooManyError

log = logging.getLogger(__name__)

POLICIES: Final = ("review", "trust")
ACTIONS: Final = ("accept", "reject", "relabel")
TRUST_REVIEWER: Final = "trust-policy"

SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    predicted_label TEXT NOT NULL,
    probabilities TEXT NOT NULL,
    image_sha256 TEXT NOT NULL,
    image_ext TEXT NOT NULL,
    latency_ms REAL,
    upload_state TEXT NOT NULL DEFAULT 'pending',   -- pending | used | expired
    feedback_correct INTEGER,
    feedback_label TEXT,
    feedback_at REAL,
    feedback_path TEXT
);
CREATE INDEX IF NOT EXISTS predictions_created ON predictions (created_at);
CREATE INDEX IF NOT EXISTS predictions_pending ON predictions (upload_state, expires_at);
CREATE INDEX IF NOT EXISTS predictions_image ON predictions (image_sha256);
CREATE TABLE IF NOT EXISTS served (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at REAL NOT NULL,       -- when this server began to serve the version
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    alias TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS drift_checks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    checked_at REAL NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    window_start REAL NOT NULL,     -- the oldest prediction of the window
    window_end REAL NOT NULL,       -- the newest
    n_window INTEGER NOT NULL,
    p_value REAL NOT NULL,          -- of the MMD test on the features
    drift INTEGER NOT NULL,         -- p_value < alpha
    report TEXT NOT NULL            -- the whole fsdl_lib.drift.DriftReport, JSON
);
-- One check per window, however many workers check it.
CREATE UNIQUE INDEX IF NOT EXISTS drift_checks_window ON drift_checks (model_name, model_version, window_end);
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    prediction_id TEXT NOT NULL REFERENCES predictions (id),
    decided_at REAL NOT NULL,
    reviewer TEXT NOT NULL,
    action TEXT NOT NULL,           -- accept | reject | relabel
    label TEXT                      -- what reaches training; NULL when rejected
);
"""

# Added to databases written before the review queue existed (ALTER TABLE, in this order).
REVIEW_COLUMNS: Final = (
    ("review_state", "TEXT"),  # NULL (nothing to review) | pending | accepted | rejected
    ("review_label", "TEXT"),  # the label that reaches training
    ("reviewed_by", "TEXT"),
    ("reviewed_at", "REAL"),
    ("exported_at", "REAL"),  # when the accepted label's file was written
    ("sampled", "INTEGER NOT NULL DEFAULT 0"),  # queued as a random sample of confident predictions
    ("teach", "REAL"),  # how much the item would teach the model: 1 - p(claimed class)
)
LATER_COLUMNS: Final = (
    ("features", "BLOB"),  # the image's backbone features, float16, for the drift checks
    ("client", "TEXT"),  # pseudonym of the client that asked for the prediction (fsdl_webapp.throttle.client_id)
    ("answer_client", "TEXT"),  # and of the one that answered it
    ("shown_at", "REAL"),  # when its image was first shown to a reviewer
    ("expired_reason", "TEXT"),  # age | cap: why an answer waiting for review expired
)
EXPIRY_REASONS: Final = ("age", "cap")


@dataclass(frozen=True)
class QueueLimits:
    """How much the review queue holds (settings WEBAPP_REVIEW_QUEUE_MAX, _MAX_AGE_DAYS, _PENDING_PER_CLIENT)."""

    max_pending: int = 2000
    max_age_seconds: float = 14 * 86400
    per_client: int = 25


@dataclass(frozen=True)
class FeedbackResult:
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


class FeedbackStore:
    def __init__(
        self,
        state_dir: Path,
        feedback_dir: Path,
        ttl_seconds: float,
        policy: str = "review",
        limits: QueueLimits | None = None,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"feedback policy must be one of {POLICIES}, not {policy!r}")
        self.db_path = state_dir / "feedback.db"
        self.uploads = state_dir / "uploads"
        self.feedback_dir = feedback_dir
        self.ttl = ttl_seconds
        self.policy = policy
        self.limits = limits or QueueLimits()

    def init(self) -> None:
        self.uploads.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            present = {row["name"] for row in db.execute("PRAGMA table_info(predictions)")}
            missing = [(name, kind) for name, kind in REVIEW_COLUMNS if name not in present]
            for name, kind in missing:
                db.execute(f"ALTER TABLE predictions ADD COLUMN {name} {kind}")
            for name, kind in LATER_COLUMNS:
                if name not in present:
                    db.execute(f"ALTER TABLE predictions ADD COLUMN {name} {kind}")
            if missing:
                # Answers given before reviews existed were trusted and their files written then.
                db.execute(
                    "UPDATE predictions SET review_state = 'accepted', review_label = feedback_label, "
                    "reviewed_by = 'before-review', reviewed_at = feedback_at, exported_at = feedback_at "
                    "WHERE feedback_label IS NOT NULL AND review_state IS NULL"
                )
            db.execute("CREATE INDEX IF NOT EXISTS predictions_review ON predictions (review_state, teach)")
            db.execute(
                "CREATE INDEX IF NOT EXISTS predictions_answer_client ON predictions (answer_client, review_state)"
            )

    @contextlib.contextmanager
    def _connect(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """A connection; with ``durable=False`` its commits are not synced to disk (in WAL mode a
        crash of the machine may lose the last ones, never the database's consistency)."""
        db = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        if not durable:
            db.execute("PRAGMA synchronous=NORMAL")
        try:
            yield db
        finally:
            db.close()

    def upload_path(self, prediction_id: str, ext: str) -> Path:
        return self.uploads / f"{prediction_id}.{ext}"

    # -- predictions and answers -------------------------------------------------------------------

    def record_prediction(
        self,
        prediction_id: str,
        image: bytes,
        ext: str,
        *,
        model_name: str,
        model_version: str,
        label: str,
        probabilities: dict[str, float],
        latency_ms: float,
        sampled: bool = False,
        features: np.ndarray | None = None,
        client: str | None = None,
    ) -> None:
        """Keep the upload and log the prediction (the file first: a row always has its image).

        ``sampled`` queues it for review without an answer (a prediction drawn at random). Its
        ``features`` are kept as float16 (4 KB for ResNet50) for the drift checks.
        Nothing is synced to disk on this, the request path, unless it is queued: most predictions
        are never answered. An answer makes its upload durable (:meth:`give_feedback`).
        """
        now = time.time()
        path = self.upload_path(prediction_id, ext)
        atomic_write_bytes(path, image, durable=sampled)
        try:
            with self._connect(durable=sampled) as db:
                db.execute(
                    "INSERT INTO predictions (id, created_at, expires_at, model_name, model_version, "
                    "predicted_label, probabilities, image_sha256, image_ext, latency_ms, review_state, "
                    "sampled, teach, features, client) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        prediction_id, now, now + self.ttl, model_name, model_version, label,
                        json.dumps(probabilities), hashlib.sha256(image).hexdigest(), ext, latency_ms,
                        "pending" if sampled else None, int(sampled), 1.0 - probabilities.get(label, 0.0),
                        None if features is None else np.asarray(features, dtype=np.float16).tobytes(), client,
                    ),
                )  # fmt: skip
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        if sampled:
            self.enforce_limits()

    def give_feedback(self, prediction_id: str, correct: bool, label: str, client: str | None = None) -> FeedbackResult:
        """Record a user's answer; it waits for review (or is accepted at once under ``trust``).

        The answer claims the prediction in one statement: a retry of the same answer is a no-op,
        a different answer is a conflict, and neither writes anything. A ``client`` with its share
        of the queue already waiting gets :class:`TooManyError`; past the queue's most, the oldest
        waiting answers expire.
        """
        row = self._row(prediction_id)
        if row["feedback_label"] is None and client is not None and self.policy == "review":
            waiting = self.pending_from(client)
            if waiting >= self.limits.per_client:
                raise TooManyError(
                    f"{waiting} answers from this client already wait for review; try again once they are decided"
                )
        if row["feedback_label"] is None:
            if row["upload_state"] != "pending" or (row["expires_at"] < time.time() and not row["sampled"]):
                raise GoneError(f"prediction {prediction_id} has expired; classify the image again")
            if correct and label != row["predicted_label"]:
                raise ApiError(
                    f"correct=true but label {label!r} differs from the prediction {row['predicted_label']!r}"
                )
            if not correct and label == row["predicted_label"]:
                raise ApiError(f"correct=false but label {label!r} is what the model predicted")
            teach = 1.0 - json.loads(row["probabilities"]).get(label, 0.0)
            try:  # the upload is kept for the reviewer: on disk for good before the answer counts
                make_durable(self.upload_path(prediction_id, row["image_ext"]))
            except FileNotFoundError:  # lost in a crash of the machine since it was classified
                raise GoneError(f"the image of prediction {prediction_id} is gone; classify it again") from None
            with self._connect() as db:
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
                return self._result(self._row(prediction_id), repeated=False)
            row = self._row(prediction_id)  # another answer won the race
        if (bool(row["feedback_correct"]), row["feedback_label"]) == (correct, label):
            return self._result(row, repeated=True)
        raise ConflictError(
            f"prediction {prediction_id} already has feedback "
            f"(correct={bool(row['feedback_correct'])}, label={row['feedback_label']})"
        )

    def _unclaim(self, before: sqlite3.Row) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE predictions SET feedback_correct = NULL, feedback_label = NULL, feedback_at = NULL, "
                "review_state = ?, teach = ?, answer_client = NULL WHERE id = ?",
                (before["review_state"], before["teach"], before["id"]),
            )

    def _row(self, prediction_id: str) -> sqlite3.Row:
        with self._connect() as db:
            row = db.execute("SELECT * FROM predictions WHERE id = ?", (prediction_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no prediction with id {prediction_id}")
        return row

    @staticmethod
    def _result(row: sqlite3.Row, *, repeated: bool) -> FeedbackResult:
        return FeedbackResult(
            prediction_id=row["id"],
            label=row["feedback_label"],
            correct=bool(row["feedback_correct"]),
            review_state=row["review_state"],
            path=row["feedback_path"],
            repeated=repeated,
            model_version=row["model_version"],
        )

    # -- review ------------------------------------------------------------------------------------

    def decide(self, prediction_id: str, action: str, *, reviewer: str, label: str | None = None) -> Decision:
        """Accept, reject or relabel a pending item; the decision is logged, and an accepted label
        is written as a file for training. Repeating the same decision is a no-op."""
        if action not in ACTIONS:
            raise ApiError(f"action must be one of: {', '.join(ACTIONS)}")
        if action == "relabel" and label not in SCENE_CLASSES:
            raise ApiError(f"relabel needs a label, one of: {', '.join(SCENE_CLASSES)}")
        if action != "relabel" and label is not None:
            raise ApiError("only relabel takes a label")
        row = self._row(prediction_id)
        claim = row["feedback_label"] or row["predicted_label"]  # a sampled item without an answer: the model's
        final = None if action == "reject" else (label if action == "relabel" else claim)
        state = "rejected" if action == "reject" else "accepted"
        if row["review_state"] != "pending":
            if (row["review_state"], row["review_label"]) == (state, final):
                return Decision(prediction_id, action, final, state, repeated=True, path=row["feedback_path"])
            decided = row["review_state"] or "not waiting for review"
            raise ConflictError(f"prediction {prediction_id} is {decided}; it cannot be decided again")
        if state == "accepted" and reviewer != TRUST_REVIEWER and row["shown_at"] is None:
            raise ConflictError(
                f"prediction {prediction_id} has not been shown to a reviewer: open its image before accepting it"
            )
        now = time.time()
        with self._connect() as db:
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
                path = self._export(self._row(prediction_id))
            except BaseException:  # the file could not be written: the decision is undone, nothing half-done
                self._undo_decision(prediction_id, decision_id)
                raise
        else:
            self._discard_upload(row)
        log.info("review of %s by %s: %s%s", prediction_id, reviewer, action, f" as {final}" if final else "")
        return Decision(prediction_id, action, final, state, repeated=False, path=path)

    def _undo_decision(self, prediction_id: str, decision_id: int | None) -> None:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM decisions WHERE id = ?", (decision_id,))
            db.execute(
                "UPDATE predictions SET review_state = 'pending', review_label = NULL, reviewed_by = NULL, "
                "reviewed_at = NULL WHERE id = ?",
                (prediction_id,),
            )
            db.execute("COMMIT")

    def _export(self, row: sqlite3.Row) -> str | None:
        """Write the accepted label's file (atomically), then note it and drop the upload; return its
        path relative to the feedback folder (None when the upload is gone)."""
        relative = f"{row['review_label']}/{row['image_sha256']}.{row['image_ext']}"
        target = self.feedback_dir / relative
        upload = self.upload_path(row["id"], row["image_ext"])
        if not target.exists():
            try:
                atomic_write_bytes(target, upload.read_bytes())
            except FileNotFoundError:
                log.error("the upload of accepted prediction %s is gone; its label cannot reach training", row["id"])
                return None
        with self._connect() as db:
            db.execute(
                "UPDATE predictions SET exported_at = ?, feedback_path = ?, upload_state = 'used' WHERE id = ?",
                (time.time(), relative, row["id"]),
            )
        upload.unlink(missing_ok=True)
        return relative

    def _discard_upload(self, row: sqlite3.Row) -> None:
        with self._connect() as db:
            db.execute("UPDATE predictions SET upload_state = 'used' WHERE id = ?", (row["id"],))
        self.upload_path(row["id"], row["image_ext"]).unlink(missing_ok=True)

    def export_accepted(self) -> int:
        """Write the file of every accepted answer that has none yet (after a crash); return how many."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM predictions WHERE review_state = 'accepted' AND exported_at IS NULL"
            ).fetchall()
        for row in rows:
            self._export(row)
        return len(rows)

    def queue(self, limit: int = 50) -> list[dict[str, Any]]:
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
        with self._connect() as db:
            rows = db.execute(
                f"SELECT p.*, (SELECT COUNT(DISTINCT o.answer_client) {others} AND o.feedback_label = {claim}) "
                f"AS agreeing_clients, (SELECT COUNT(DISTINCT o.answer_client) {others} "
                f"AND o.feedback_label != {claim}) AS disagreeing_clients, "
                "(SELECT COUNT(*) FROM predictions c WHERE c.answer_client = p.answer_client "
                " AND c.review_state = 'pending') AS client_pending "
                "FROM predictions p WHERE p.review_state = 'pending' ORDER BY p.teach DESC, p.created_at LIMIT ?",
                (limit,),
            ).fetchall()
        return [self._queue_item(row) for row in rows]

    @staticmethod
    def _queue_item(row: sqlite3.Row) -> dict[str, Any]:
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

    def queue_summary(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        with self._connect() as db:
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
        with self._connect() as db:
            rows = db.execute(
                "SELECT d.*, p.feedback_label AS claimed_label, p.predicted_label FROM decisions d "
                "JOIN predictions p ON p.id = d.prediction_id ORDER BY d.id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [dict(row) for row in rows]

    def upload_of(self, prediction_id: str, *, shown: bool = False) -> tuple[Path, str]:
        """The kept upload of a prediction and its extension (for the review page); ``shown`` notes
        that a reviewer is looking at it (only what was shown may be accepted)."""
        row = self._row(prediction_id)
        path = self.upload_path(prediction_id, row["image_ext"])
        if not path.exists():
            raise GoneError(f"the upload of prediction {prediction_id} is no longer kept")
        if shown and row["shown_at"] is None:
            with self._connect() as db:
                db.execute(
                    "UPDATE predictions SET shown_at = ? WHERE id = ? AND shown_at IS NULL",
                    (time.time(), prediction_id),
                )
        return path, row["image_ext"]

    # -- the queue's limits -------------------------------------------------------------------------

    def pending_from(self, client: str) -> int:
        """Answers of ``client`` that wait for review."""
        with self._connect() as db:
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
        with self._connect() as db:
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
            self.upload_path(row["id"], row["image_ext"]).unlink(missing_ok=True)
        if too_old or over:
            log.warning(
                "review queue: %d answers waited longer than %.0f days and %d were past its most of %d; "
                "they expired with their uploads",
                len(too_old), self.limits.max_age_seconds / 86400, len(over), self.limits.max_pending,
            )  # fmt: skip
        return expired

    def expiries(self) -> dict[str, int]:
        """How many answers expired from the review queue, by reason (age, cap)."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT expired_reason, COUNT(*) FROM predictions WHERE expired_reason IS NOT NULL "
                "GROUP BY expired_reason"
            ).fetchall()
        found = dict.fromkeys(EXPIRY_REASONS, 0)
        found.update({reason: count for reason, count in rows})
        return found

    # -- which version served when ------------------------------------------------------------------

    def record_served(self, model_name: str, model_version: str, alias: str, at: float | None = None) -> None:
        """Note that the server began to serve a version (the model service calls it at each swap)."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO served (started_at, model_name, model_version, alias) VALUES (?, ?, ?, ?)",
                (time.time() if at is None else at, model_name, model_version, alias),
            )

    def served_history(self, limit: int = 20) -> list[dict[str, Any]]:
        """Each time a version began to serve, newest first, with its live figures from the log:
        predictions, answers, the share of answers that confirmed it, and review outcomes."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT s.started_at, s.model_name, s.model_version, s.alias, "
                "LEAD(s.started_at) OVER (ORDER BY s.id) AS ended_at, "
                "(SELECT COUNT(*) FROM predictions p WHERE p.model_version = s.model_version "
                " AND p.model_name = s.model_name) AS predictions, "
                "(SELECT COUNT(*) FROM predictions p WHERE p.model_version = s.model_version "
                " AND p.model_name = s.model_name AND p.feedback_label IS NOT NULL) AS answers, "
                "(SELECT COUNT(*) FROM predictions p WHERE p.model_version = s.model_version "
                " AND p.model_name = s.model_name AND p.feedback_correct = 1) AS confirmed "
                "FROM served s ORDER BY s.id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        history = []
        for row in rows:
            item = dict(row)
            item["live_accuracy"] = item["confirmed"] / item["answers"] if item["answers"] else None
            history.append(item)
        return history

    # -- drift ---------------------------------------------------------------------------------------

    def drift_window(self, model_name: str, model_version: str, limit: int) -> dict[str, Any]:
        """The newest ``limit`` predictions of a version that kept their features, oldest first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT created_at, predicted_label, probabilities, features FROM predictions "
                "WHERE model_name = ? AND model_version = ? AND features IS NOT NULL "
                "ORDER BY created_at DESC LIMIT ?",
                (model_name, model_version, limit),
            ).fetchall()[::-1]
        if not rows:
            return {
                "created_at": np.zeros(0),
                "features": np.zeros((0, 0), np.float16),
                "labels": [],
                "confidence": np.zeros(0),
            }
        return {
            "created_at": np.array([r["created_at"] for r in rows]),
            "features": np.stack([np.frombuffer(r["features"], dtype=np.float16) for r in rows]),
            "labels": [r["predicted_label"] for r in rows],
            "confidence": np.array([json.loads(r["probabilities"])[r["predicted_label"]] for r in rows]),
        }

    def record_drift(self, model_name: str, model_version: str, window: dict[str, Any], report: dict[str, Any]) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR IGNORE INTO drift_checks (checked_at, model_name, model_version, window_start, window_end, "
                "n_window, p_value, drift, report) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    time.time(), model_name, model_version, float(window["created_at"][0]),
                    float(window["created_at"][-1]), report["n_window"], report["p_value"], int(report["drift"]),
                    json.dumps(report),
                ),
            )  # fmt: skip

    def prune_features(self, keep: int) -> int:
        """Drop the features of all but the newest ``keep`` predictions (4 KB each; only recent
        windows are checked); return how many were dropped."""
        with self._connect() as db:
            newest = db.execute(
                "SELECT created_at FROM predictions WHERE features IS NOT NULL ORDER BY created_at DESC "
                "LIMIT 1 OFFSET ?",
                (max(0, keep - 1),),
            ).fetchone()
            if newest is None:
                return 0
            return db.execute(
                "UPDATE predictions SET features = NULL WHERE features IS NOT NULL AND created_at < ?",
                (newest["created_at"],),
            ).rowcount

    def drift_checks(self, limit: int = 200) -> list[dict[str, Any]]:
        """The newest checks, oldest first, each with its report."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM drift_checks ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [{**dict(row), "drift": bool(row["drift"]), "report": json.loads(row["report"])} for row in rows[::-1]]

    def sampled_accuracy(self) -> dict[str, dict[str, int]]:
        """Per version, the randomly sampled predictions a reviewer decided, and how many were right."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT model_version, COUNT(*) AS reviewed, SUM(review_label = predicted_label) AS correct, "
                "(SELECT COUNT(*) FROM predictions q WHERE q.sampled = 1 AND q.model_version = p.model_version) "
                "AS sampled FROM predictions p WHERE sampled = 1 AND review_state = 'accepted' GROUP BY model_version"
            ).fetchall()
        return {r["model_version"]: {"sampled": r["sampled"], "reviewed": r["reviewed"], "correct": r["correct"]}
                for r in rows}  # fmt: skip

    # -- housekeeping ------------------------------------------------------------------------------

    def expire(self, now: float | None = None) -> int:
        """Remove uploads that got no answer in time (items waiting for review are kept)."""
        now = time.time() if now is None else now
        with self._connect() as db:
            rows = db.execute(
                "SELECT id, image_ext FROM predictions WHERE upload_state = 'pending' AND expires_at < ? "
                "AND review_state IS NULL",
                (now,),
            ).fetchall()
            for row in rows:
                self.upload_path(row["id"], row["image_ext"]).unlink(missing_ok=True)
                db.execute("UPDATE predictions SET upload_state = 'expired' WHERE id = ?", (row["id"],))
            kept = {r["id"] for r in db.execute("SELECT id FROM predictions WHERE upload_state = 'pending'")}
        orphans = 0
        for path in self.uploads.iterdir():
            # Left by a crash between writing an upload and logging it.
            if path.stem not in kept and path.stat().st_mtime < now - self.ttl:
                path.unlink(missing_ok=True)
                orphans += 1
        if rows or orphans:
            log.info("expired %d uploads that got no feedback, removed %d orphans", len(rows), orphans)
        return len(rows) + orphans

    def housekeeping(self) -> None:
        self.export_accepted()
        self.enforce_limits()
        self.expire()

    def rows(self) -> list[dict[str, Any]]:
        """Every prediction, without its features (4 KB each: only the drift checks read them)."""
        with self._connect() as db:
            columns = [r["name"] for r in db.execute("PRAGMA table_info(predictions)") if r["name"] != "features"]
            return [dict(r) for r in db.execute(f"SELECT {', '.join(columns)} FROM predictions ORDER BY created_at")]


def decide_many(
    store: FeedbackStore, decisions: Sequence[dict[str, Any]], *, reviewer: str
) -> tuple[list[dict[str, Any]], bool]:
    """Apply several decisions in order; per item its outcome, and whether any conflicted."""
    results, conflicted = [], False
    for item in decisions:
        try:
            decision = store.decide(item["prediction_id"], item["action"], reviewer=reviewer, label=item.get("label"))
        except (ConflictError, NotFoundError, GoneError) as exc:
            conflicted = True
            results.append({"prediction_id": item["prediction_id"], "error": exc.message, "status": exc.status})
            continue
        results.append(
            {
                "prediction_id": decision.prediction_id,
                "action": decision.action,
                "label": decision.label,
                "review_state": decision.review_state,
                "repeated": decision.repeated,
                "path": decision.path,
            }
        )
    return results, conflicted
